"""Test double of Autodesk Flame's ``flame`` module (importable only while a FlameSession is open).

Built from shared/reference/flame.md by tests/doubles/flame/harness.py, whose docstring is the contract and
lists every guess. Every public name (``flame.PyClip``, ``flame.import_clips``, ``flame.projects``...) is
resolved through the session's runtime: each access is refused outside Flame's main thread or after the
session closed, and recorded while hook files load (to tell whether a hook touched ``flame`` at import).
"""

from __future__ import annotations

from typing import Any, List

from . import _state


def _attach(runtime: Any) -> None:
    _state.RUNTIME = runtime


def _detach() -> None:
    _state.RUNTIME = None


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(f"module 'flame' has no attribute '{name}'")
    return _state.runtime().module_attribute(name)


def __dir__() -> List[str]:
    rt = _state.RUNTIME
    return sorted(rt.public_names()) if rt is not None else []
