""".NET-style events and the strict attribute rules shared by every Deadline object the double offers.

* ``self.XCallback += handler`` adds a handler, ``-=`` removes one, ``del self.XCallback`` removes them all
  (what a plugin's ``Cleanup`` does). Assigning anything else to an event raises TypeError.
* An object whose Python ``__init__`` did not call ``super().__init__()`` cannot use its events (Deadline 10
  under Python 3 needs that call): the first event access raises RuntimeError saying so.
* Reading an attribute that Deadline's class does not have raises
  ``AttributeError("Deadline's DeadlinePlugin has no attribute 'X'")``. A plugin's own attributes (set on
  ``self``) are its business and work as usual.
* Settings such as ``PluginType`` or ``StdoutHandling`` are typed: a wrong type raises TypeError.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

_EVENTS = "_dl_events"
_SETTINGS = "_dl_settings"


class Event:
    """One event of one object: an ordered list of handlers."""

    def __init__(self, owner: str, name: str) -> None:
        self._owner = owner
        self._name = name
        self._handlers: List[Callable[..., Any]] = []

    def __iadd__(self, handler: Callable[..., Any]) -> Event:
        if not callable(handler):
            raise TypeError(f"{self._owner}.{self._name} += needs a callable, not {type(handler).__name__}")
        self._handlers.append(handler)
        return self

    def __isub__(self, handler: Callable[..., Any]) -> Event:
        if handler in self._handlers:
            self._handlers.remove(handler)
        return self

    @property
    def handler_count(self) -> int:
        return len(self._handlers)

    def invoke(self, *args: Any) -> Any:
        """Call every handler in order; the last one's result is the event's (as a .NET delegate does)."""
        result = None
        for handler in tuple(self._handlers):
            result = handler(*args)
        return result

    def clear(self) -> None:
        self._handlers.clear()

    def __repr__(self) -> str:
        return f"<event {self._owner}.{self._name} ({len(self._handlers)} handler(s))>"


def _state(obj: Any, key: str, what: str) -> Dict[str, Any]:
    state = obj.__dict__.get(key)
    if state is None:
        raise RuntimeError(f"{type(obj).__name__}.__init__ must call super().__init__() before using {what} "
                           "(Deadline 10 runs Python 3 plugins that way)")
    return state


def init_deadline_object(obj: Any) -> None:
    """What every Deadline base class's ``__init__`` does: make room for events and settings."""
    obj.__dict__.setdefault(_EVENTS, {})
    obj.__dict__.setdefault(_SETTINGS, {})


def is_initialised(obj: Any) -> bool:
    return _EVENTS in obj.__dict__


class EventSlot:
    """A class attribute that gives each instance its own :class:`Event`."""

    def __init__(self) -> None:
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _events(self, obj: Any) -> Dict[str, Event]:
        return _state(obj, _EVENTS, self.name)

    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        events = self._events(obj)
        event = events.get(self.name)
        if event is None:
            event = events[self.name] = Event(type(obj).__name__, self.name)
        return event

    def __set__(self, obj: Any, value: Any) -> None:
        if value is self._events(obj).get(self.name):
            return  # the result of ``+=`` / ``-=``
        raise TypeError(f"{self.name} is an event: add a handler with `self.{self.name} += handler` "
                        f"(assigning {type(value).__name__} to it is not possible in Deadline)")

    def __delete__(self, obj: Any) -> None:
        event = self._events(obj).pop(self.name, None)
        if event is not None:
            event.clear()


def event_of(obj: Any, name: str) -> Optional[Event]:
    """The event ``name`` of ``obj`` if a handler was ever added and it was not deleted (no creation)."""
    events = obj.__dict__.get(_EVENTS) or {}
    return events.get(name)


def handlers_left(obj: Any) -> List[str]:
    """Names of ``obj``'s events that still hold handlers (what ``Cleanup`` should have deleted)."""
    events = obj.__dict__.get(_EVENTS) or {}
    return sorted(name for name, event in events.items() if event.handler_count)


def invoke(obj: Any, name: str, *args: Any) -> Tuple[bool, Any]:
    """(True, result) after calling the handlers of ``obj``'s event ``name``; (False, None) when it has none."""
    event = event_of(obj, name)
    if event is None or not event.handler_count:
        return False, None
    return True, event.invoke(*args)


class Setting:
    """A typed attribute Deadline reads after InitializeProcess (``self.StdoutHandling = True``...)."""

    def __init__(self, types: Tuple[type, ...], default: Any, *, allow_bool: bool = True,
                 check: Optional[Callable[[Any], None]] = None) -> None:
        self.types = types
        self.default = default
        self.allow_bool = allow_bool
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Optional[type] = None) -> Any:
        if obj is None:
            return self
        return _state(obj, _SETTINGS, self.name).get(self.name, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        if (not isinstance(value, self.types)) or (isinstance(value, bool) and not self.allow_bool):
            names = " or ".join(t.__name__ for t in self.types)
            raise TypeError(f"{type(obj).__name__}.{self.name} must be {names}, not {type(value).__name__} "
                            f"({value!r})")
        if self.check is not None:
            self.check(value)
        _state(obj, _SETTINGS, self.name)[self.name] = value


class StrictMeta(type):
    """Metaclass of the static utility classes (RepositoryUtils...): unknown class attributes raise."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"Deadline's {cls.__name__} has no attribute {name!r}")


class StrictObject:
    """Base of the Deadline classes the double offers: attributes Deadline lacks raise AttributeError."""

    _dl_kind = "object"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name.startswith("_dl_"):
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first (Deadline 10 "
                               "runs Python 3 plugins that way)")
        raise AttributeError(f"Deadline's {self._dl_kind} has no attribute {name!r}")
