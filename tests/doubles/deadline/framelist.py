"""Deadline frame lists, as the Deadline double reads them (written for the double; no product code).

Syntax (Thinkbox, "Frame List Formatting Options"; shared/reference/deadline.md section 3):

* ``5``; ``5,10,15`` or ``5 10 15`` (commas and/or whitespace separate items);
* ranges ``1-100`` or ``1:100``; reverse ranges ``100-1``; negative frames ``-10--1``, ``-5-5``;
* stepped ranges ``1-100x5``, ``1-100step5``, ``1-100by5``, ``1-100every5``, ``1:100:5``, reverse ``100-1x5``.

Frames keep list order; a frame seen again is dropped. Tasks take ``ChunkSize`` frames at a time in that
order (the last one may be short), and a task's ``Frames`` string is ``"first-last"`` of its chunk, even for
one frame (``"21-21"``).

Where Deadline's own parser is not documented, the double is strict and raises :class:`FrameListError`: an
empty list or an empty item (``"1,,2"``, ``"1,"``), a step of 0, step words in capitals or mixed with a colon
range (``1:100x5``), a ``+`` sign, a frame outside a 32-bit integer, or more than :data:`MAX_FRAMES` frames.
"""

from __future__ import annotations

import re
from typing import List, Sequence

MAX_FRAMES = 1_000_000
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

_SINGLE = re.compile(r"^(-?\d+)$")
_DASH_RANGE = re.compile(r"^(-?\d+)-(-?\d+)(?:(x|step|by|every)(\d+))?$")
_COLON_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(\d+))?$")


class FrameListError(ValueError):
    """A frame list the double refuses (the message quotes the offending text)."""


def _frame(text: str, whole: str) -> int:
    value = int(text)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise FrameListError(f"frame {text} in {whole!r} is outside the 32-bit frame range")
    return value


def _expand(start: int, end: int, step: int, item: str) -> range:
    if step <= 0:
        raise FrameListError(f"the step of {item!r} must be at least 1")
    if start <= end:
        return range(start, end + 1, step)
    return range(start, end - 1, -step)


def _items(text: str) -> List[str]:
    items: List[str] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            raise FrameListError(f"empty item in frame list {text!r}")
        items.extend(words)
    return items


def parse_frame_list(text: str) -> List[int]:
    """The frames of a Deadline frame-list string, in list order, duplicates dropped."""
    if not isinstance(text, str):
        raise FrameListError(f"a frame list must be a string, not {type(text).__name__}")
    if not text.strip():
        raise FrameListError("the frame list is empty")
    frames: List[int] = []
    seen = set()
    for item in _items(text.strip()):
        match = _SINGLE.match(item)
        if match:
            values: Sequence[int] = [_frame(match.group(1), text)]
        else:
            match = _DASH_RANGE.match(item)
            if match:
                start, end = _frame(match.group(1), text), _frame(match.group(2), text)
                step = int(match.group(4)) if match.group(4) is not None else 1
            else:
                match = _COLON_RANGE.match(item)
                if not match:
                    raise FrameListError(f"{item!r} is not a frame, a range or a stepped range (in {text!r})")
                start, end = _frame(match.group(1), text), _frame(match.group(2), text)
                step = int(match.group(3)) if match.group(3) is not None else 1
            values = _expand(start, end, step, item)
            if len(values) > MAX_FRAMES:
                raise FrameListError(f"{item!r} has more than {MAX_FRAMES} frames")
        for value in values:
            if value not in seen:
                seen.add(value)
                frames.append(value)
        if len(frames) > MAX_FRAMES:
            raise FrameListError(f"frame list {text[:60]!r} has more than {MAX_FRAMES} frames")
    return frames


def chunk_frames(frames: Sequence[int], chunk_size: int) -> List[List[int]]:
    """Tasks' frames: ``chunk_size`` frames at a time in list order, the last chunk possibly short."""
    if chunk_size < 1:
        raise FrameListError(f"the chunk size must be at least 1, not {chunk_size}")
    return [list(frames[i:i + chunk_size]) for i in range(0, len(frames), chunk_size)]


def task_frames_text(chunk: Sequence[int]) -> str:
    """A task's ``Frames`` string: ``"first-last"`` of its chunk (``"21-21"`` for one frame)."""
    return f"{chunk[0]}-{chunk[-1]}"
