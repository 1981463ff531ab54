"""What the farm needs to know of a Flame clip, sequence or segment, and the helpers both kinds share.

:class:`FlameSource` is one selected item as the farm will see it; :class:`SelectionError` says why an item
cannot be sent, with the fix. ``media`` describes and exports clips and sequences, ``segments`` timeline
segments; both read Flame's attributes with the helpers here. Everything here is handed Flame's objects;
nothing imports ``flame``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple

from farm_plugin.errors import BadInput, ServiceError

_FRAME_FILE = re.compile(r"^(?P<head>.*?)(?P<number>\d+)(?P<tail>\.[A-Za-z0-9]+)$")
_FRAME_RANGE = re.compile(r"^(?P<head>.*?)\[(?P<first>\d+)-\d+\](?P<tail>\.[A-Za-z0-9]+)$")


class SelectionError(BadInput):
    """The selection cannot be sent to the farm: the message names the clip and the fix."""


class ExportError(ServiceError):
    """Flame refused to export a clip for the farm (``PyExporter.export`` or ``flame.duplicate`` raised):
    the message names the clip and says what Flame said."""

    def __init__(self, clip_name: str, reason: str) -> None:
        self.clip_name = clip_name
        self.reason = reason
        super().__init__(f"Flame could not export '{clip_name}' for the farm ({reason}): fix it in Flame (render "
                         "its Timeline FX, make its library writable, free disk space) and submit again")


@dataclass(frozen=True)
class FlameSource:
    """One selected clip, sequence or segment, as the farm will see it."""

    name: str
    frames: Tuple[int, ...]  # the frame numbers of the plate to process (marks applied)
    width: int
    height: int
    fps: Optional[float]
    bit_depth: Optional[int]
    start_frame: int
    timecode: Optional[str]
    uid: str
    wiretap_id: str
    pattern: Optional[str]  # a #### pattern when the media is an image sequence on disk
    marks: Optional[Tuple[int, int]]  # the marks applied to ``frames``: (in, out) relative, out exclusive
    flame_object: Any = None  # the PyClip, PySequence or PySegment
    clip_marks: Optional[Tuple[int, int]] = None  # the clip's marks, applied or not
    colour_space: Optional[str] = None  # Flame's name for it, as get_colour_space() says
    positioner: Optional[int] = None  # the frame number under the clip's positioner (current_time), if known

    @property
    def needs_export(self) -> bool:
        return self.pattern is None


def value_of(value: Any) -> Any:
    """A PyAttribute's value (``get_value()``), or a plain value as it is."""
    return value.get_value() if hasattr(value, "get_value") else value


def text_of(value: Any) -> str:
    value = value_of(value)
    return "" if value is None else str(value)


def clip_length(clip: Any) -> int:
    """The number of frames of a clip or sequence, marks or not: where its last segment ends (``record_out``,
    the last frame, relative to the clip's first). Not ``clip.duration``, which counts between the marks when
    the clip has any (logik-portal's set_in_and_out_plus_one_frame clears the marks before it reads it)."""
    ends = [int(s.record_out.relative_frame) for v in clip.versions for t in v.tracks for s in t.segments]
    if ends:
        return max(ends)
    if value_of(clip.in_mark) is None and value_of(clip.out_mark) is None:
        return int(clip.duration.frame)
    raise SelectionError(f"'{text_of(clip.name)}' has no segments to count its frames from: clear its marks")


def fps_of(frame_rate: str) -> Optional[float]:
    """``"23.976 fps"`` → 23.976; ``"29.97 fps DF"`` → 29.97."""
    match = re.search(r"\d+(?:\.\d+)?", frame_rate or "")
    return float(match.group(0)) if match else None


def frame_pattern(file_path: str) -> Optional[Tuple[str, int]]:
    """``/plates/sh010.1001.exr`` → (``/plates/sh010.####.exr``, 1001); the ``[1001-1100]`` form too; None
    when there is no frame number."""
    ranged = _FRAME_RANGE.match(file_path or "")
    if ranged is not None:
        first = ranged.group("first")
        return f"{ranged.group('head')}{'#' * len(first)}{ranged.group('tail')}", int(first)
    match = _FRAME_FILE.match(file_path or "")
    if match is None:
        return None
    number = match.group("number")
    return f"{match.group('head')}{'#' * len(number)}{match.group('tail')}", int(number)


def marks_of(clip: Any) -> Optional[Tuple[int, int]]:
    """A clip's or sequence's in and out marks, relative (1 = first frame, out exclusive); None without marks."""
    def relative(attr: Any) -> Optional[int]:
        value = attr.get_value() if hasattr(attr, "get_value") else attr
        if value is None:
            return None
        return int(getattr(value, "relative_frame", value))

    mark_in, mark_out = relative(clip.in_mark), relative(clip.out_mark)
    if mark_in is None and mark_out is None:
        return None
    return (mark_in or 1, mark_out or clip_length(clip) + 1)


def positioner_of(clip: Any) -> Optional[int]:
    """The relative frame (1 = first) under a clip's or sequence's positioner (``current_time``), or None when
    Flame cannot say."""
    try:
        value = clip.current_time.get_value() if hasattr(clip.current_time, "get_value") else clip.current_time
        return None if value is None else int(getattr(value, "relative_frame", value))
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None


def colour_space_of(item: Any) -> Optional[str]:
    """``get_colour_space()`` of a clip or segment, or None when Flame cannot say."""
    try:
        return str(item.get_colour_space()) or None
    except (AttributeError, RuntimeError, TypeError):
        return None


class CollectPaths:
    """Export hooks that keep the paths Flame wrote (``postExportAsset``)."""

    def __init__(self) -> None:
        self.assets: List[str] = []

    def preExport(self, info: Any, userData: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802, N803
        pass

    def postExportAsset(self, info: Any, userData: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N802, N803
        self.assets.append(str(Path(info["destinationPath"]) / info["resolvedPath"]))
