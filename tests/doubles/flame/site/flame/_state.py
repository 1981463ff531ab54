"""The one piece of module state: which runtime (FlameSession) this copy of the module serves.

The harness imports a fresh copy of the ``flame`` package for every session and attaches its runtime here;
closing the session closes the runtime, so objects kept from an old session refuse every call.
"""

from __future__ import annotations

from typing import Any, Optional

RUNTIME: Optional[Any] = None  # a flame._runtime.Runtime while a FlameSession is open


def runtime() -> Any:
    """The attached runtime, or an error that says the module only works inside Flame."""
    if RUNTIME is None:
        raise RuntimeError(
            "No Flame session: the flame module only works inside Flame "
            "(tests: create a tests.doubles.flame.harness.FlameSession first)"
        )
    return RUNTIME


def check(member: str) -> Any:
    """Refuse a call from another thread or into a closed session; return the runtime."""
    rt = runtime()
    rt.check(member)
    return rt
