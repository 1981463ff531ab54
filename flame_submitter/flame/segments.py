"""Timeline segments → farm sources: a segment's source media between its source in and out.

What the farm gets for a segment is its source media over the frames the edit uses, before the
segment's Timeline FX (what Flame's Match Out gives): the source file sequence itself when it is on
storage the farm reads, else an export of a matched-out copy of the source. Frames keep their source
numbers, and the result keeps the source's timecode, so it lines up with the segment by timecode.

- Name: the segment's name as the timeline shows it, else its shot name, else its source's name.
- Marks: the sequence's in and out marks, where they fall inside the segment, narrow it (not on a retimed
  segment, whose source and record frames differ).
- Export: ``segment.match(destination, include_timeline_fx=False)`` (flameTimewarpML, for Flame 2020 and
  later, calls it the same way) puts a source clip next to the sequence; it gets marks at the segment's
  source in and out, is exported like a clip and deleted again. Whether the matched clip shows the whole
  media or only the used part (``preserve_handle``) does not matter: the marks come from timecodes.

Everything here runs on Flame's main thread and is handed the ``flame`` module; nothing imports it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Tuple

from flame_submitter.flame.sources import (
    CollectPaths,
    ExportError,
    FlameSource,
    SelectionError,
    colour_space_of,
    fps_of,
    frame_pattern,
    marks_of,
    text_of,
    value_of,
)

logger = logging.getLogger(__name__)


def segment_name(segment: Any) -> str:
    """What the artist calls the segment: its name on the timeline, else its shot name, else its source's."""
    for value in (segment.name, getattr(segment, "shot_name", ""), getattr(segment, "source_name", "")):
        text = text_of(value).strip()
        if text:
            return text
    return "segment"


def _whole(value: Any) -> Optional[int]:
    """An int of Flame's, or None for what is not one (``head`` is ``"infinite"`` on generated media)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def source_range(segment: Any) -> Tuple[int, int]:
    """(index of the source in within the media, number of frames) from source in/out (out inclusive)."""
    source_in, source_out = segment.source_in, segment.source_out
    if source_in is None or source_out is None:
        raise SelectionError(f"'{segment_name(segment)}' has no source media (a gap?): select segments with media")
    length = int(source_out.frame) - int(source_in.frame) + 1
    offset = _whole(segment.head)
    if offset is None:
        offset = int(source_in.relative_frame) - 1
    return offset, length


def sequence_of(segment: Any, flame: Any) -> Optional[Any]:
    """The sequence that holds the segment (segment → track → version → sequence)."""
    node = segment
    for _ in range(4):
        node = getattr(node, "parent", None)
        if node is None or isinstance(node, flame.PyClip):
            return node
    return None


def _marks_in_segment(segment: Any, flame: Any, length: int) -> Optional[Tuple[int, int]]:
    """The sequence's marks inside the segment, relative to its first frame (1 = first, out exclusive)."""
    sequence = sequence_of(segment, flame)
    marks = marks_of(sequence) if sequence is not None else None
    if marks is None or int(segment.record_duration.frame) != length:
        return None
    first = int(segment.record_in.relative_frame)
    low, high = max(marks[0], first), min(marks[1], first + length)
    return (low - first + 1, high - first + 1) if low < high else None


def describe_segment(segment: Any, flame: Any, use_marks: bool) -> FlameSource:
    """A selected timeline segment as a farm source; SelectionError names what is wrong and the fix."""
    name = segment_name(segment)
    if str(getattr(segment, "type", "")) == "Gap":
        raise SelectionError(f"'{name}' is a gap in the timeline: select segments with media")
    width, height = int(segment.source_width or 0), int(segment.source_height or 0)
    if not width or not height:
        raise SelectionError(f"'{name}' has no picture (an audio segment?): select video segments")
    offset, length = source_range(segment)
    if length < 1:
        raise SelectionError(f"'{name}' uses no frame of its source (source out before source in)")
    found = frame_pattern(str(segment.file_path or ""))
    pattern, first_number = (found[0], found[1] + offset) if found else (None, int(segment.start_frame) + offset)
    clip_marks = _marks_in_segment(segment, flame, length)
    marks = clip_marks if use_marks else None
    first_rel, end_rel = marks if marks else (1, length + 1)
    source_in = segment.source_in
    return FlameSource(
        name=name, frames=tuple(range(first_number + first_rel - 1, first_number + end_rel - 1)), width=width,
        height=height, fps=fps_of(str(segment.source_frame_rate or "")),
        bit_depth=int(segment.source_bit_depth) if segment.source_bit_depth else None, start_frame=first_number,
        timecode=str(getattr(source_in, "timecode", "") or source_in) or None,
        uid=str(getattr(segment, "source_uid", "") or ""), wiretap_id="", pattern=pattern, marks=marks,
        flame_object=segment, clip_marks=clip_marks, colour_space=colour_space_of(segment))


def container_of(item: Any, flame: Any) -> Any:
    """The reel, folder or library that holds the segment's sequence (where Match Out puts its clip)."""
    node = item
    while node is not None:
        node = getattr(node, "parent", None)
        if isinstance(node, (flame.PyReel, flame.PyFolder, flame.PyLibrary)):
            return node
    raise SelectionError(f"cannot find the reel or library of '{segment_name(item)}': open its sequence from a "
                         "reel or a library")


def _first_frame(clip: Any) -> int:
    """The absolute (timecode) frame of a clip's first frame."""
    segments = [s for v in clip.versions for t in v.tracks for s in t.segments]
    if len(segments) == 1 and segments[0].source_in is not None:
        return int(segments[0].source_in.frame) - int(segments[0].record_in.relative_frame) + 1
    return int(value_of(clip.start_time).frame)  # start_time is a PyAttribute holding a PyTime


def export_segment(flame: Any, source: FlameSource, exporter: Any, preset: Path, folder: Path,
                   hooks: CollectPaths) -> None:
    """Export a segment's source frames ``source.frames`` (numbered from ``source.start_frame``, the source
    in) through a matched-out source clip, deleted again afterwards."""
    segment = source.flame_object
    match = getattr(segment, "match", None)
    if match is None:
        raise SelectionError(f"this Flame cannot match out '{source.name}' from Python: select its source clip in "
                             "the Media Panel instead")
    try:
        matched = match(container_of(segment, flame), include_timeline_fx=False)
    except RuntimeError as exc:
        raise SelectionError(f"Flame could not match out '{source.name}' next to its sequence ({exc}): select its "
                             "source clip in the Media Panel instead") from exc
    if isinstance(matched, (list, tuple)):
        matched = matched[0]
    try:
        mark_in = int(segment.source_in.frame) - _first_frame(matched) + 1 + source.frames[0] - source.start_frame
        matched.in_mark = mark_in
        matched.out_mark = mark_in + len(source.frames)
        exporter.export_between_marks = True
        exporter.export(matched, str(preset), str(folder), hooks=hooks)
    except RuntimeError as exc:  # Flame refused the export of the matched-out clip
        raise ExportError(source.name, str(exc) or type(exc).__name__) from exc
    finally:
        flame.delete(matched, confirm=False)
    logger.info("exported segment %s (source frames %s-%s)", source.name, source.frames[0], source.frames[-1])
