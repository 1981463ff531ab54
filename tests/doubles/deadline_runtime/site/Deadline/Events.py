"""``Deadline.Events`` (the runtime double): DeadlineEventListener."""

from tests.doubles.deadline_runtime.api import DeadlineEventListener

__all__ = ["DeadlineEventListener"]
