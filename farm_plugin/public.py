"""What a package lets other packages use, loaded on first use (PEP 562): the one ``__getattr__`` they share.

A package's ``__init__.py`` names its public names by the module each lives in and does no other work, so
that importing one module of it (or the package, as Flame does for the hook at start) imports nothing else::

    _PUBLIC = {"pattern": ("FramePattern",), "image_io": ("probe", "write_frame")}
    __all__, __getattr__ = public_names(__name__, _PUBLIC)

tests/test_public_api.py keeps every ``__all__`` true and every import across packages inside it.
Standard library only.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, List, Mapping, Sequence, Tuple

__all__ = ["public_names"]


def public_names(package: str, public: Mapping[str, Sequence[str]]) -> Tuple[List[str], Callable[[str], Any]]:
    """``__all__`` and the module ``__getattr__`` of ``package``, whose names ``public`` lists by module."""

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module __getattr__ of PEP 562)
        for module, names in public.items():
            if name in names:
                loaded = importlib.import_module(f"{package}.{module}")
                return loaded if name == module else getattr(loaded, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(name for names in public.values() for name in names), __getattr__
