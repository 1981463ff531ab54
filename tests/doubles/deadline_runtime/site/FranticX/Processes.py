"""``FranticX.Processes`` (the runtime double): ManagedProcess."""

from tests.doubles.deadline_runtime.api import ManagedProcess

__all__ = ["ManagedProcess"]
