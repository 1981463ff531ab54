"""Flame selections → the frames the farm processes: straight from disk when it can, else an export.

A clip whose media is already an image sequence on shared storage (one segment, no Timeline FX) is used
as it is. Anything else is exported with ``PyExporter`` in the foreground, as 16-bit float OpenEXR
numbered from the clip's start frame (between marks when they are set), into the job's input folder;
the written paths come from the export hooks. Timeline segments are described and exported by
``segments`` (their source media between source in and out). Everything here runs on Flame's main
thread and is handed the ``flame`` module; nothing imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from flame_submitter.flame.segments import describe_segment, export_segment
from flame_submitter.flame.sources import (
    CollectPaths,
    ExportError,
    FlameSource,
    SelectionError,
    clip_length,
    colour_space_of,
    fps_of,
    frame_pattern,
    marks_of,
    positioner_of,
    text_of,
    value_of,
)

logger = logging.getLogger(__name__)

PRESET_TEMPLATE = Path(__file__).resolve().parent / "presets" / "comfyfarm_openexr16_fp.xml"
FACTORY_EXR_PRESET = ("file_sequence", "OpenEXR", "OpenEXR (16-bit fp Uncompressed).xml")
PRESET_VERSION_BY_YEAR = {2023: 12, 2024: 13, 2025: 14, 2026: 15}  # used only when no factory preset is found


def _segments(clip: Any) -> List[Any]:
    return [s for version in clip.versions for track in version.tracks for s in track.segments]


def describe(selection: Sequence[Any], flame: Any, *, use_marks: bool = True) -> List[FlameSource]:
    """The selected clips, sequences and timeline segments as farm sources (names made unique, since each
    names its job folders and its render); raises SelectionError naming what is wrong."""
    sources = []
    for item in selection:
        if isinstance(item, flame.PySegment):
            sources.append(describe_segment(item, flame, use_marks))
        elif isinstance(item, flame.PyClip):
            sources.append(_describe_clip(item, flame, use_marks))
    if not sources:
        raise SelectionError("nothing to send: select clips or sequences in the Media Panel, or segments in the "
                             "timeline")
    return unique_names(sources)


def unique_names(sources: Sequence[FlameSource]) -> List[FlameSource]:
    """Two sources with the same name would share job folders and renders: the second becomes ``name_2``."""
    seen: Dict[str, int] = {}
    named = []
    for source in sources:
        count = seen.get(source.name, 0) + 1
        seen[source.name] = count
        named.append(source if count == 1 else dataclasses.replace(source, name=f"{source.name}_{count}"))
    return named


def _describe_clip(clip: Any, flame: Any, use_marks: bool) -> FlameSource:
    name = text_of(clip.name)
    segments = _segments(clip)
    gaps = [s for s in segments if getattr(s, "type", "") == "Gap"]
    if gaps:
        raise SelectionError(f"'{name}' has {len(gaps)} gap(s) in its timeline: fill them, or set marks around "
                             "the part to send")
    if not clip.is_rendered():
        raise SelectionError(f"'{name}' has unrendered Timeline FX: render them first (the farm sees rendered "
                             "frames only)")
    sizes = {(s.source_width, s.source_height) for s in segments if getattr(s, "type", "") != "Gap"}
    if isinstance(clip, flame.PySequence) and len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise SelectionError(f"'{name}' mixes resolutions ({listed}): conform its segments to one size first")
    length = clip_length(clip)  # all its frames: clip.duration counts only between the marks
    clip_marks = marks_of(clip)
    marks = clip_marks if use_marks else None
    first_rel, end_rel = marks if marks else (1, length + 1)
    pattern = None
    first_number = int(clip.start_frame)
    if len(segments) == 1 and not isinstance(clip, flame.PySequence) and not segments[0].effects:
        found = frame_pattern(segments[0].file_path)
        if found is not None:
            pattern, first_number = found
    frames = tuple(range(first_number + first_rel - 1, first_number + end_rel - 1))
    start_time = value_of(clip.start_time)  # a PyAttribute holding a PyTime
    positioner = positioner_of(clip)
    return FlameSource(
        name=name, frames=frames, width=int(clip.width), height=int(clip.height), fps=fps_of(clip.frame_rate),
        bit_depth=int(clip.bit_depth) if clip.bit_depth else None, start_frame=int(clip.start_frame),
        timecode=str(getattr(start_time, "timecode", "") or "") or None, uid=str(getattr(clip, "source_uid", "")),
        wiretap_id=str(clip.get_wiretap_node_id()), pattern=pattern, marks=marks, flame_object=clip,
        clip_marks=clip_marks, colour_space=colour_space_of(clip),
        positioner=first_number + positioner - 1 if positioner and 1 <= positioner <= length else None)


def direct_pattern(source: FlameSource, is_shared: Callable[[str], bool]) -> Optional[str]:
    """The source's own image sequence when the farm can read it and every frame is there, else None."""
    if source.pattern is None or not is_shared(source.pattern):
        return None
    head, _, tail = source.pattern.partition("#" * source.pattern.count("#"))
    padding = source.pattern.count("#")
    if all(Path(f"{head}{frame:0{padding}d}{tail}").is_file() for frame in source.frames):
        return source.pattern
    return None


def preset_version(flame: Any) -> int:
    """The running Flame's export preset version, read from its factory OpenEXR preset."""
    try:
        base = flame.PyExporter.get_presets_base_dir(flame.PyExporter.PresetVisibility.Autodesk)
        text = Path(base, *FACTORY_EXR_PRESET).read_text(encoding="utf-8")
        match = re.search(r'<preset version="(\d+)"', text)
        if match:
            return int(match.group(1))
    except (OSError, AttributeError):
        pass
    year = re.match(r"\d+", str(flame.get_version()))  # "2025.2"; anything else: the newest preset version
    return PRESET_VERSION_BY_YEAR.get(int(year.group(0)) if year else 0, max(PRESET_VERSION_BY_YEAR.values()))


def write_preset(flame: Any, folder: Path, start_frame: int) -> Path:
    """The bundled 16-bit float EXR preset with this Flame's version and the clip's start frame."""
    text = PRESET_TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("{version}", str(preset_version(flame))).replace("{start_frame}", str(start_frame))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "comfyfarm_openexr16_fp.xml"
    path.write_text(text, encoding="utf-8")
    return path


def export_source(flame: Any, source: FlameSource, folder: Path) -> str:
    """Export ``source`` into ``folder`` (frames numbered from its start frame, marks respected); returns the
    written sequence as a #### pattern. A duplicate made for the marks is deleted again."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = source.flame_object
    preset = write_preset(flame, folder / ".preset", source.frames[0])
    exporter = flame.PyExporter()
    exporter.foreground = True
    hooks = CollectPaths()
    if isinstance(clip, flame.PySegment):
        export_segment(flame, source, exporter, preset, folder, hooks)
    else:
        duplicate = None
        try:
            if source.marks:
                duplicate = flame.duplicate(clip)
                duplicate.in_mark = source.marks[0]
                duplicate.out_mark = source.marks[1]
                exporter.export_between_marks = True
            exporter.export(duplicate or clip, str(preset), str(folder), hooks=hooks)
        except RuntimeError as exc:  # Flame's refusals (a locked library, a file it will not overwrite, ...)
            raise ExportError(source.name, str(exc) or type(exc).__name__) from exc
        finally:
            if duplicate is not None:
                flame.delete(duplicate, confirm=False)
    return written_pattern(hooks, source, folder)


def written_pattern(hooks: CollectPaths, source: FlameSource, folder: Path) -> str:
    """The exported frames as a #### pattern, from the paths the export hooks collected."""
    if not hooks.assets:
        raise SelectionError(f"Flame exported nothing for '{source.name}' into {folder}")
    written = re.sub(r"\[(\d+)-\d+\]", lambda m: "#" * len(m.group(1)), hooks.assets[0])
    found = frame_pattern(written) if "#" not in written else (written, source.frames[0])
    if found is None:
        raise SelectionError(f"cannot tell the frame numbers of the exported '{written}'")
    logger.info("exported %s to %s", source.name, found[0])
    return found[0]
