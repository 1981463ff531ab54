"""``Deadline.Scripting`` (the runtime double): RepositoryUtils, FileUtils, StringUtils, SystemUtils."""

from tests.doubles.deadline_runtime.api import FileUtils, RepositoryUtils, StringUtils, SystemUtils

__all__ = ["FileUtils", "RepositoryUtils", "StringUtils", "SystemUtils"]
