"""``PyAttribute`` and the base of every Flame object: checked member access, attributes, version gates.

Two kinds of members, as in Flame: properties return plain values (``clip.width``); PyAttributes
(``clip.name``) need ``get_value()`` / ``set_value(v)`` or plain assignment through the owner
(``clip.name = "x"``). ``str()`` of a string attribute is the value in double quotes (``'"plate"'``);
``attr + "suffix"`` gives the plain string (Autodesk's export_current_frame.py does ``clip.name + "..."``).

Stricter than Flame where Flame's behaviour is unknown and relying on it would be a bug:
``attr == "plate"``, ``bool(attr)`` and ``hash(attr)`` raise TypeError (compare ``attr.get_value()``).

Every public member access checks the thread and the session (see _runtime.Runtime.check); a member that
Flame added in a later version (``_GATED``) is absent (AttributeError) on an older emulated version.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, Iterable, Optional, Tuple

from . import _state

VersionTuple = Tuple[int, ...]

# attribute kinds: how set_value validates and stores a value
STR = "str"
BOOL = "bool"
COLOUR = "colour"
TIME = "time"
STR_LIST = "str_list"
READ_ONLY = "read_only"


def _validate(owner: Any, name: str, kind: str, value: Any) -> Any:
    cls = type(owner).__name__
    if kind == STR:
        if not isinstance(value, str):
            raise TypeError(f"{cls}.{name} takes a str, not {type(value).__name__} ({value!r})")
        return value
    if kind == BOOL:
        if not isinstance(value, bool):
            raise TypeError(f"{cls}.{name} takes a bool, not {type(value).__name__} ({value!r})")
        return value
    if kind == COLOUR:
        if (
            not isinstance(value, (tuple, list))
            or len(value) != 3
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0.0 <= c <= 1.0 for c in value)
        ):
            raise TypeError(f"{cls}.{name} takes an (r, g, b) tuple of floats in 0..1, not {value!r}")
        return tuple(float(c) for c in value)
    if kind == STR_LIST:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{cls}.{name} takes a list of str, not {value!r}")
        return list(value)
    if kind == READ_ONLY:
        raise AttributeError(f"{cls}.{name} is read-only")
    raise AssertionError(f"unknown attribute kind {kind}")


class PyAttribute:
    """A Flame attribute: ``get_value()``, ``set_value(value)``; live (reads its owner on every call)."""

    __module__ = "flame"
    __slots__ = ("_owner", "_name")

    def __init__(self, owner: Any, name: str) -> None:
        self._owner = owner
        self._name = name

    def get_value(self) -> Any:
        _state.check(f"{type(self._owner).__name__}.{self._name}.get_value")
        return self._owner._attr_get(self._name)

    def set_value(self, value: Any) -> bool:
        _state.check(f"{type(self._owner).__name__}.{self._name}.set_value")
        self._owner._attr_set(self._name, value)
        return True

    def __str__(self) -> str:
        value = self.get_value()
        if isinstance(value, str):
            return f'"{value}"'
        return str(value)

    __repr__ = __str__

    def __add__(self, other: Any) -> Any:
        value = self.get_value()
        if isinstance(value, str) and isinstance(other, str):
            return value + other
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        value = self.get_value()
        if isinstance(value, str) and isinstance(other, str):
            return other + value
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        raise TypeError(
            f"Comparing the PyAttribute {type(self._owner).__name__}.{self._name} with == is not reliable in Flame "
            f"(the double refuses it): compare {self._name}.get_value() instead"
        )

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        raise TypeError(
            f"The truth value of the PyAttribute {type(self._owner).__name__}.{self._name} is not its value "
            f"(the double refuses it): test {self._name}.get_value() instead"
        )


def parse_version(text: str) -> VersionTuple:
    """``"2025.2"`` → (2025, 2); ``"2023.2.0.0"`` → (2023, 2, 0, 0); ``"2022.1.pr145"`` → (2022, 1, 0)."""
    parts = []
    for part in str(text).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def version_at_least(version: VersionTuple, minimum: VersionTuple) -> bool:
    width = max(len(version), len(minimum))
    return version + (0,) * (width - len(version)) >= minimum + (0,) * (width - len(minimum))


def checked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Check thread/session/deletion on the call itself (a bound method taken on the main thread and called
    from another thread is refused too)."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._check_member(method.__name__)
        return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__qualname__ = method.__qualname__
    wrapper.__doc__ = method.__doc__
    return wrapper


class _Checked:
    """Access machinery shared by Flame objects and Flame's service objects (media_panel, messages, ...)."""

    __module__ = "flame"

    _ATTRS: ClassVar[Dict[str, str]] = {}  # PyAttribute name -> kind
    _GATED: ClassVar[Dict[str, str]] = {}  # member name -> first Flame version that has it
    _all_attrs: ClassVar[Dict[str, str]] = {}
    _all_gated: ClassVar[Dict[str, VersionTuple]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attrs: Dict[str, str] = {}
        gated: Dict[str, VersionTuple] = {}
        for klass in reversed(cls.__mro__):
            for key, kind in klass.__dict__.get("_ATTRS", {}).items():
                if kind is None:  # a subclass where the member is a plain property instead
                    attrs.pop(key, None)
                else:
                    attrs[key] = kind
            gated.update({k: parse_version(v) for k, v in klass.__dict__.get("_GATED", {}).items()})
        cls._all_attrs = attrs
        cls._all_gated = gated

    def __init__(self, rt: Any, parent: Optional[Any] = None) -> None:
        object.__setattr__(self, "_rt", rt)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_deleted", False)
        object.__setattr__(self, "_values", {})

    # -- access control ---------------------------------------------------------------------------------
    def _check_member(self, name: str) -> None:
        rt = object.__getattribute__(self, "_rt")
        cls = type(self)
        rt.check(f"{cls.__name__}.{name}")
        if object.__getattribute__(self, "_deleted"):
            raise RuntimeError(f"{cls.__name__}.{name}: this object was deleted from Flame")
        gate = cls._all_gated.get(name)
        if gate is not None and not version_at_least(rt.version_tuple, gate):
            raise AttributeError(f"'{cls.__name__}' object has no attribute '{name}'")

    def __getattribute__(self, name: str) -> Any:
        if name[:1] != "_":
            object.__getattribute__(self, "_check_member")(name)
            if name in type(self)._all_attrs:
                return PyAttribute(self, name)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name[:1] == "_":
            object.__setattr__(self, name, value)
            return
        self._check_member(name)
        if name in type(self)._all_attrs:
            self._attr_set(name, value)
            return
        descriptor = getattr(type(self), name, None)
        if isinstance(descriptor, property) and descriptor.fset is not None:
            object.__setattr__(self, name, value)
            return
        if descriptor is not None:
            raise AttributeError(f"can't set attribute '{name}' of {type(self).__name__} (it is read-only)")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __dir__(self) -> Iterable[str]:
        rt = object.__getattribute__(self, "_rt")
        names = set(super().__dir__()) | set(type(self)._all_attrs)
        return sorted(
            n for n in names
            if n not in type(self)._all_gated or version_at_least(rt.version_tuple, type(self)._all_gated[n])
        )

    # -- attribute storage (subclasses override for computed attributes) --------------------------------
    def _attr_get(self, name: str) -> Any:
        return self._values.get(name)

    def _attr_set(self, name: str, value: Any) -> None:
        self._check_member(name)
        kind = type(self)._all_attrs[name]
        self._values[name] = _validate(self, name, kind, value)

    def _init_attr(self, name: str, value: Any) -> None:
        """Set an attribute's initial value without validation (construction only)."""
        self._values[name] = value

    def __repr__(self) -> str:
        if self._deleted:
            return f"<flame.{type(self).__name__} (deleted)>"
        name = self._values.get("name")
        return f"<flame.{type(self).__name__} {name!r}>" if name is not None else f"<flame.{type(self).__name__}>"


class PyFlameObject(_Checked):
    """The basic type of all accessible Flame objects from the python API."""

    __module__ = "flame"

    @property
    def parent(self) -> Any:
        """The parent object of this object."""
        return self._parent

    @property
    def attributes(self) -> list:
        """The attributes of a python object."""
        rt = self._rt
        return sorted(
            n for n in type(self)._all_attrs
            if n not in type(self)._all_gated or version_at_least(rt.version_tuple, type(self)._all_gated[n])
        )
