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

from farm_plugin.errors import BadInput

_FRAME_FILE = re.compile(r"^(?P<head>.*?)(?P<number>\d+)(?P<tail>\.[A-Za-z0-9]+)$")
_FRAME_RANGE = re.compile(r"^(?P<head>.*?)\[(?P<first>\d+)-\d+\](?P<tail>\.[A-Za-z0-9]+)$")


class SelectionError(BadInput):
    """The selection cannot be sent to the farm: the message names the clip and the fix."""


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

    @property
    def needs_export(self) -> bool:
        return self.pattern is None


def text_of(value: Any) -> str:
    if hasattr(value, "get_value"):
        value = value.get_value()
    return "" if value is None else str(value)


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
    length = int(clip.duration.frame)
    return (mark_in or 1, mark_out or length + 1)


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
