"""Deadline frame lists: parse them, write them compactly, cut them into chunks.

Accepted syntax (Deadline's): single frames ``5``; lists separated by commas or spaces ``1,5,10`` /
``1 5 10``; ranges ``1001-1100`` or ``1001:1100``; steps ``1-100x2``, ``1:100:2``, ``1-100step2``,
``1-100by2``, ``1-100every2``; negative frames ``-5--1``. The result is sorted and unique. Unlike
Deadline, a backwards range (``100-1``) is refused: the result is sorted anyway, so a backwards range is
almost always a typo.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, List, Sequence, Set

from .errors import FrameListError

logger = logging.getLogger(__name__)

MAX_FRAMES = 1_000_000
"""More frames than any job could hold: a list naming more is a typo (``1-10000000``)."""

_EXAMPLES = "write frames like 1001-1100, 1-100x2 or 1,5,10-20"

# One entry: a frame, or a range with an optional step. Spaces may surround the separators.
_ENTRY = re.compile(
    r"""
    (?P<start>-?\d+)
    (?:
        \s*(?P<range>-|:)\s*(?P<end>-?\d+)
        (?:\s*(?P<by>x|:|step|by|every)\s*(?P<step>-?\d+))?
    )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_SEPARATOR = re.compile(r"\s*,\s*|\s+")


def parse_frame_list(text: str) -> List[int]:
    """Frames named by a Deadline frame list, sorted and unique."""
    stripped = text.strip()
    if not stripped:
        raise FrameListError(f"frame list is empty: {_EXAMPLES}")
    frames: Set[int] = set()
    position = 0
    while position < len(stripped):
        if stripped[position] == ",":
            raise FrameListError(f"frame list '{text}' has an empty entry between commas: remove the extra comma")
        match = _ENTRY.match(stripped, position)
        if match is None:
            raise FrameListError(f"frame list '{text}' has a bad entry '{_bad_token(stripped, position)}': {_EXAMPLES}")
        frames.update(_entry_frames(match))
        if len(frames) > MAX_FRAMES:
            raise FrameListError(f"frame list '{text}' names more than {MAX_FRAMES} frames: check the range for a typo")
        position = match.end()
        if position == len(stripped):
            break
        separator = _SEPARATOR.match(stripped, position)
        if separator is None:
            raise FrameListError(
                f"frame list '{text}' has a bad entry '{_bad_token(stripped, match.start())}': {_EXAMPLES}"
            )
        position = separator.end()
        if position == len(stripped):
            raise FrameListError(f"frame list '{text}' ends with a comma: remove it")
    return sorted(frames)


def _bad_token(text: str, position: int) -> str:
    """The entry at ``position``, up to the next comma or space, for error messages."""
    return re.split(r"[,\s]", text[position:], maxsplit=1)[0] or text[position:]


def _entry_frames(match: re.Match) -> range:
    entry = match.group(0)
    start = int(match.group("start"))
    if match.group("end") is None:
        return range(start, start + 1)
    end = int(match.group("end"))
    step_text = match.group("step")
    step = 1 if step_text is None else int(step_text)
    if step < 1:
        raise FrameListError(f"frame range '{entry}' has step {step}: the step must be 1 or more, e.g. 1-100x2")
    if (end - start) // step + 1 > MAX_FRAMES:
        raise FrameListError(f"frame range '{entry}' names more than {MAX_FRAMES} frames: check the range for a typo")
    if end < start:
        suffix = "" if step_text is None else f"x{step}"
        raise FrameListError(f"frame range '{entry}' runs backwards: write it as {end}-{start}{suffix}")
    return range(start, end + 1, step)


def format_frame_list(frames: Iterable[int]) -> str:
    """The compact Deadline form of ``frames``: ``[1, 2, 3, 5, 7, 9, 10]`` → ``"1-3,5-9x2,10"``.

    Frames are sorted and made unique first. Consecutive frames become ``a-b``; three or more frames
    with an equal step become ``a-bxN``; the rest are listed. ``parse_frame_list`` reads the result back
    to the same frames. An empty input gives ``""``.
    """
    ordered = sorted(set(frames))
    entries = []
    index = 0
    while index < len(ordered):
        run_end = _run_end(ordered, index)
        start, end = ordered[index], ordered[run_end]
        count = run_end - index + 1
        step = ordered[index + 1] - start if count > 1 else 1
        if count == 1:
            entries.append(str(start))
        elif step == 1:
            entries.append(f"{start}-{end}")
        else:
            entries.append(f"{start}-{end}x{step}")
        index = run_end + 1
    return ",".join(entries)


def _run_end(frames: Sequence[int], index: int) -> int:
    """Index of the last frame of the evenly stepped run that starts at ``index``."""
    if index + 1 >= len(frames):
        return index
    step = frames[index + 1] - frames[index]
    end = index + 1
    while end + 1 < len(frames) and frames[end + 1] - frames[end] == step:
        end += 1
    # A stepped pair reads better as two frames; a stepped run needs three frames to pay off.
    if step != 1 and end - index + 1 < 3:
        return index
    return end


def chunk_frames(frames: Sequence[int], chunk_size: int) -> List[List[int]]:
    """``frames`` cut into groups of ``chunk_size`` in list order, as Deadline forms tasks."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise FrameListError(f"chunk size {chunk_size!r} is not valid: use 1 or more frames per task")
    frames = list(frames)
    return [frames[start : start + chunk_size] for start in range(0, len(frames), chunk_size)]
