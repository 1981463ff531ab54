"""``Deadline.Plugins`` (the runtime double): DeadlinePlugin and PluginType."""

from tests.doubles.deadline_runtime.api import DeadlinePlugin, PluginType

__all__ = ["DeadlinePlugin", "PluginType"]
