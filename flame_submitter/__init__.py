"""comfyfarm's artist side: the Flame hook, dialog, job builder, Deadline client and the command line."""

from typing import List

__all__: List[str] = []  # the packages below are used one by one; see each one's __all__
