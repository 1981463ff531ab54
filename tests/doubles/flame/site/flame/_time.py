"""Frame rates, timecode arithmetic and ``PyTime``.

Frame-rate strings are the ones Flame documents (PyClip.reformat): ``"23.976 fps"``, ``"24 fps"``, ``"25 fps"``,
``"29.97 NDF"``, ``"29.97 DF"``, ``"30 fps"``, ``"50 fps"``, ``"59.94 NDF"``, ``"59.94 DF"``, ``"60 fps"``; any
other string is refused. Timecode counts frames at the nominal rate (24 for 23.976, 30 for 29.97...), with
SMPTE drop-frame counting for the DF rates. An absolute frame is the timecode expressed in frames since
00:00:00:00 (01:00:00:00 at 24 fps is frame 86400).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Dict, NamedTuple, Optional, Tuple

from . import _state


class FrameRate(NamedTuple):
    name: str
    rate: Fraction
    nominal: int
    drop: bool


FRAME_RATES: Dict[str, FrameRate] = {
    name: FrameRate(name, Fraction(num, den), nominal, drop)
    for name, num, den, nominal, drop in (
        ("23.976 fps", 24000, 1001, 24, False),
        ("24 fps", 24, 1, 24, False),
        ("25 fps", 25, 1, 25, False),
        ("29.97 NDF", 30000, 1001, 30, False),
        ("29.97 DF", 30000, 1001, 30, True),
        ("30 fps", 30, 1, 30, False),
        ("50 fps", 50, 1, 50, False),
        ("59.94 NDF", 60000, 1001, 60, False),
        ("59.94 DF", 60000, 1001, 60, True),
        ("60 fps", 60, 1, 60, False),
    )
}

_TC_RE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:+;.])(\d{2})$")
_DAY_SECONDS = 24 * 3600


def frame_rate(name: Any) -> FrameRate:
    """The FrameRate for a Flame frame-rate string; anything else is a ValueError naming the valid ones."""
    if not isinstance(name, str) or name not in FRAME_RATES:
        raise ValueError(f"Unsupported frame rate {name!r}; Flame's frame rates are: {', '.join(FRAME_RATES)}")
    return FRAME_RATES[name]


def frame_rate_from_fraction(rate: Fraction, drop: bool = False) -> Optional[str]:
    """The Flame frame-rate string for a rational rate (e.g. from an EXR header), or None."""
    for fr in FRAME_RATES.values():
        if fr.rate == rate and fr.drop == drop:
            return fr.name
    return None


def _drop_per_minute(fr: FrameRate) -> int:
    return 2 if fr.nominal == 30 else 4


def timecode_to_frame(timecode: str, rate_name: str) -> int:
    """Absolute frame of a timecode ``HH:MM:SS:FF`` (``+``, ``;`` or ``.`` also accepted before the frames)."""
    fr = frame_rate(rate_name)
    if not isinstance(timecode, str):
        raise TypeError(f"timecode must be a str like '01:00:00:00', not {type(timecode).__name__}")
    m = _TC_RE.match(timecode.strip())
    if not m:
        raise ValueError(f"Invalid timecode {timecode!r}: expected HH:MM:SS:FF")
    hh, mm, ss, ff = int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(5))
    if hh > 23 or mm > 59 or ss > 59 or ff >= fr.nominal:
        raise ValueError(f"Invalid timecode {timecode!r} at {rate_name}")
    frame = (hh * 3600 + mm * 60 + ss) * fr.nominal + ff
    if fr.drop:
        drop = _drop_per_minute(fr)
        if ss == 0 and ff < drop and mm % 10 != 0:
            raise ValueError(f"Invalid drop-frame timecode {timecode!r}: frames 00-{drop - 1:02d} are dropped")
        minutes = hh * 60 + mm
        frame -= drop * (minutes - minutes // 10)
    return frame


def frame_to_timecode(frame: int, rate_name: str, separator: Optional[str] = None) -> str:
    """Timecode of an absolute frame; wraps at 24 hours. Flame style by default: ``01:00:00+00`` (``;`` for DF)."""
    fr = frame_rate(rate_name)
    if separator is None:
        separator = ";" if fr.drop else "+"
    if fr.drop:
        drop = _drop_per_minute(fr)
        per_10_minutes = fr.nominal * 600 - drop * 9
        per_minute = fr.nominal * 60 - drop
        frame %= per_10_minutes * 6 * 24
        tens, rest = divmod(frame, per_10_minutes)
        frame += drop * 9 * tens
        if rest > drop:
            frame += drop * ((rest - drop) // per_minute)
    else:
        frame %= fr.nominal * _DAY_SECONDS
    ff = frame % fr.nominal
    total_seconds = frame // fr.nominal
    hh, rem = divmod(total_seconds, 3600)
    mm, ss = divmod(rem, 60)
    return f"{hh % 24:02d}:{mm:02d}:{ss:02d}{separator}{ff:02d}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class PyTime:
    """Object representing a time unit.

    PyTime(timecode, frame_rate)
    PyTime(relative_frame)
    PyTime(absolute_frame, frame_rate)
    """

    __module__ = "flame"

    def __init__(self, *args: Any) -> None:
        _state.check("PyTime")
        frame: Optional[int] = None
        rate: Optional[str] = None
        relative: Optional[int] = None
        if len(args) == 1 and _is_int(args[0]):
            relative = args[0]
        elif len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], str):
            rate = frame_rate(args[1]).name
            frame = timecode_to_frame(args[0], rate)
        elif len(args) == 2 and _is_int(args[0]) and isinstance(args[1], str):
            rate = frame_rate(args[1]).name
            frame = args[0]
        else:
            raise TypeError(
                "PyTime() takes (timecode: str, frame_rate: str), (relative_frame: int) or "
                f"(absolute_frame: int, frame_rate: str); got {tuple(type(a).__name__ for a in args)}"
            )
        self._frame = frame
        self._rate = rate
        self._relative = relative

    @classmethod
    def _make(cls, frame: Optional[int], rate: Optional[str], relative: Optional[int]) -> PyTime:
        obj = cls.__new__(cls)
        obj._frame, obj._rate, obj._relative = frame, rate, relative
        return obj

    @classmethod
    def _duration(cls, frames: int, rate: str) -> PyTime:
        """A duration: ``frame`` and ``relative_frame`` are both the number of frames."""
        return cls._make(frames, rate, frames)

    # -- properties -------------------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        """Return the absolute frame number."""
        _state.check("PyTime.frame")
        if self._frame is None:
            raise RuntimeError(
                "This PyTime was built from a relative frame only (PyTime(relative_frame)); it has no absolute "
                "frame until Flame resolves it against a clip (e.g. clip.in_mark.get_value().frame)"
            )
        return self._frame

    @property
    def relative_frame(self) -> int:
        """Return the relative frame number."""
        _state.check("PyTime.relative_frame")
        if self._relative is None:
            raise RuntimeError(
                "This PyTime was built from a timecode or an absolute frame, outside any clip: its relative frame "
                "is not defined in the double (read it from a clip's or segment's PyTime instead)"
            )
        return self._relative

    @property
    def frame_rate(self) -> str:
        """Return the object frame rate."""
        _state.check("PyTime.frame_rate")
        if self._rate is None:
            raise RuntimeError("This PyTime was built from a relative frame only; it has no frame rate")
        return self._rate

    @property
    def timecode(self) -> str:
        """Return the timecode."""
        _state.check("PyTime.timecode")
        if self._frame is None or self._rate is None:
            raise RuntimeError("This PyTime was built from a relative frame only; it has no timecode")
        return frame_to_timecode(self._frame, self._rate)

    # -- python protocol --------------------------------------------------------------------------------
    def __str__(self) -> str:
        _state.check("PyTime.__str__")
        if self._frame is None or self._rate is None:
            return str(self._relative)
        return frame_to_timecode(self._frame, self._rate)

    __repr__ = __str__

    def _shift(self, frames: Any) -> PyTime:
        _state.check("PyTime.__add__")
        if not _is_int(frames):
            return NotImplemented  # type: ignore[return-value]
        return PyTime._make(
            None if self._frame is None else self._frame + frames,
            self._rate,
            None if self._relative is None else self._relative + frames,
        )

    def __add__(self, frames: Any) -> PyTime:
        return self._shift(frames)

    __radd__ = __add__

    def __sub__(self, frames: Any) -> PyTime:
        if not _is_int(frames):
            return NotImplemented
        return self._shift(-frames)

    def _key(self) -> Tuple[Optional[int], Optional[str], Optional[int]]:
        return (self._frame, self._rate, self._relative if self._frame is None else None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PyTime):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())
