"""The farm emulator: Worker processes that run real Deadline plugin files through the plugin runtime double,
over the Web Service double's store (see farm.py for the harness, worker.py for a Worker, bridge.py for their
line to the repository)."""
