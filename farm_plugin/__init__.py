"""comfyfarm's farm side: the contracts both sides share and the worker runtime.

Plain Python, importable without Deadline or Flame. The Deadline plugin folder (``ComfyUI/``: render jobs and
their hand-back jobs) is a thin adapter over it.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
