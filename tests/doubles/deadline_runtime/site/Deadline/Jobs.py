"""``Deadline.Jobs`` (the runtime double): the Job and Task objects."""

from tests.doubles.deadline_runtime.jobs import Job, Task

__all__ = ["Job", "Task"]
