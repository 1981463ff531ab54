"""comfyfarm's artist side: the Flame hook, dialog, job builder, Deadline client and the command line."""
