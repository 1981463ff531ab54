"""comfyfarm's own client for the Deadline 10 Web Service, and what it sends (JobInfo, PluginInfo)."""
