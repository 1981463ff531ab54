"""``Deadline``: the plugin runtime double's stand-in for Deadline 10's scripting modules.

Put ``tests/doubles/deadline_runtime/site`` on ``sys.path`` (the farm emulator's Workers do) and a plugin's
``from Deadline.Plugins import DeadlinePlugin`` finds the double. See tests/doubles/deadline_runtime.
"""
