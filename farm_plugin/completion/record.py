"""The completion record itself: build it from a job record and the outputs on disk, write it once, read it.

The package docstring (``farm_plugin/completion/__init__.py``) says what the record is and who writes it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from farm_plugin import __version__
from farm_plugin.atomic import write_text_atomic
from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.layers import pass_channels
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, layered, output_frames, pass_patterns
from farm_plugin.paths import PathMapping, map_path
from farm_plugin.workflow.package import DEFAULT_PASS

if TYPE_CHECKING:
    from farm_plugin.frames.image_io import PlateInfo

logger = logging.getLogger(__name__)

COMPLETION_SCHEMA = 3  # 3: ``contact_sheet``; 2: ``passes``, one entry per pass (1: the one output at the top level)
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
HANDLED_FOLDER = "imported"  # where Flame moves the records it has handled


@dataclass(frozen=True)
class PassOutput:
    """One pass as it is on disk: its pattern (the artist's path, #### padding), the frames verified there."""

    name: str
    output_pattern: str
    frames: Tuple[int, ...]
    missing_frames: Tuple[int, ...]
    width: Optional[int] = None
    height: Optional[int] = None
    channels: Optional[int] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PassOutput:
        values = _known(cls, data)
        for key in ("frames", "missing_frames"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)


@dataclass(frozen=True)
class CompletionRecord:
    """What Flame imports. ``passes`` lists every pass the job wrote; the top-level ``output_pattern``,
    ``frames``, ``missing_frames``, ``width`` and ``height`` are its first pass's, and ``missing_frames``
    counts a frame missing from any pass."""

    deadline_job_id: str
    job_key: str
    status: str  # completed | failed
    reason: str  # why it failed, or why it is incomplete; "" when complete
    part: str  # "main", or "preview" for a quick-look job
    output_pattern: str  # the artist's path, #### padding
    frames: Tuple[int, ...]  # verified on disk
    missing_frames: Tuple[int, ...]
    width: Optional[int]
    height: Optional[int]
    source_pattern: str
    source_frames: Tuple[int, ...]
    source_timecode: Optional[str]
    fps: Optional[float]
    workflow: str
    workflow_title: str
    parameters: Mapping[str, Any]
    relink: Mapping[str, Any]
    passes: Tuple[PassOutput, ...] = ()
    contact_sheet: Optional[str] = None  # the JPEG of each pass's first, middle and last frame (artist's path)
    written_at: float = field(default_factory=time.time)
    written_by: str = __version__
    schema: int = COMPLETION_SCHEMA

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETED and not self.missing_frames

    def to_json(self) -> str:
        values = asdict(self)
        if values["contact_sheet"] is None:  # no sheet, no field: such a record reads as schema 2 did
            del values["contact_sheet"]
        return json.dumps(values, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompletionRecord:
        """A record of any schema: fields an older comfyfarm did not write take their defaults, and fields a newer
        one added are left out (logged), so that the relink reads records from a farm upgraded before it."""
        values = _known(cls, data)
        for key in ("frames", "missing_frames", "source_frames"):
            values[key] = tuple(values.get(key) or ())
        passes = tuple(PassOutput.from_dict(item) for item in values.get("passes") or ())
        values["passes"] = passes or (PassOutput(name=DEFAULT_PASS, output_pattern=values["output_pattern"],
                                                 frames=values["frames"], missing_frames=values["missing_frames"],
                                                 width=values.get("width"), height=values.get("height")),)
        return cls(**values)


def _known(cls: Any, data: Mapping[str, Any]) -> Dict[str, Any]:
    """``data``'s entries that are fields of the dataclass ``cls``; the others are logged and left out."""
    names = {item.name for item in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        logger.debug("%s: left out the fields %s, from a newer comfyfarm", cls.__name__, ", ".join(unknown))
    return {key: value for key, value in data.items() if key in names}


def read_completion(path: str | Path) -> CompletionRecord:
    return CompletionRecord.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def verify_outputs(pattern: FramePattern, frames: List[int]) -> Tuple[List[int], List[int], Optional[PlateInfo]]:
    """``(present, missing, header of the first present)``: frames whose output exists and whose header reads.
    OpenImageIO is imported here, not with the module: Flame's relink reads records without it."""
    from farm_plugin.frames.image_io import probe

    present, missing = [], []
    first: Optional[PlateInfo] = None
    for frame in frames:
        try:
            info = probe(pattern.path(frame))
        except PlateError:
            missing.append(frame)
            continue
        present.append(frame)
        first = first or info
    return present, missing, first


def artist_path(record: JobRecord, path: str) -> str:
    """A farm path of ``record``'s job as the artist's workstation sees it (the record's path mappings)."""
    if not record.workstation_os or not record.farm_os:
        return path
    mappings = [PathMapping.from_dict(m) for m in record.path_mappings]
    return map_path(path, mappings, source_os=record.farm_os, target_os=record.workstation_os)


def build_completion(record: JobRecord, *, deadline_job_id: str, job_failed: bool, reason: str = "",
                     part: str = "main", frames: Optional[List[int]] = None,
                     output_pattern: Optional[str] = None) -> CompletionRecord:
    """The record for a finished (or failed) job, every pass's outputs verified, paths mapped back for the
    artist. ``output_pattern`` is the job's output pattern as this machine sees it, where it differs."""
    wanted = output_frames(record, frames)
    artist_patterns = pass_patterns(record)
    names = [spec.name for spec in record.workflow.passes]
    passes = []
    verified: Dict[str, Tuple[List[int], List[int], Optional[PlateInfo]]] = {}  # by pattern: layers share one
    for name, pattern in pass_patterns(record, output_pattern).items():
        key = pattern.to_hashes()
        if key not in verified:
            verified[key] = verify_outputs(pattern, wanted)
        present, missing, header = verified[key]
        channels = header.channels if header else None
        if header is not None and layered(record):  # this pass's layer of the frames' EXR
            channels = len(pass_channels(header.channel_names, names)[name])
        passes.append(PassOutput(name=name, output_pattern=artist_path(record, artist_patterns[name].to_hashes()),
                                 frames=tuple(present), missing_frames=tuple(missing),
                                 width=header.width if header else None, height=header.height if header else None,
                                 channels=channels))
    missing_any = sorted({frame for item in passes for frame in item.missing_frames})
    status = STATUS_FAILED if job_failed else STATUS_COMPLETED
    if not job_failed and missing_any:
        reason = f"{len(missing_any)} frame(s) missing or unreadable: {format_frame_list(missing_any)}"
        if len(passes) > 1 and not layered(record):  # layers: every pass misses the same frames
            reason += " (" + "; ".join(f"{item.name}: {format_frame_list(item.missing_frames)}"
                                       for item in passes if item.missing_frames) + ")"
    first = passes[0]
    relink = asdict(record.relink) if record.relink else {}
    return CompletionRecord(
        deadline_job_id=deadline_job_id,
        job_key=record.job_id,
        status=status,
        reason=reason,
        part=part,
        output_pattern=first.output_pattern,
        frames=first.frames,
        missing_frames=tuple(missing_any),
        width=first.width,
        height=first.height,
        source_pattern=artist_path(record, record.source.pattern),
        source_frames=tuple(record.source.frames),
        source_timecode=record.source.timecode,
        fps=record.source.fps,
        workflow=record.workflow.name,
        workflow_title=record.workflow.title,
        parameters=dict(record.workflow.parameters),
        relink=relink,
        passes=tuple(passes),
    )


def write_completion(completion: CompletionRecord, inbox: str | Path) -> Optional[Path]:
    """Write ``<inbox>/<deadline job id>.json`` atomically, once. Returns the path, or None if it was there."""
    folder = Path(inbox)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{completion.deadline_job_id}.json"
    handled = folder / HANDLED_FOLDER / target.name
    if target.exists() or handled.exists():
        logger.info("completion record %s already written: nothing to do", target)
        return None
    # Never replaced: if another Worker wrote it meanwhile, theirs stands.
    if not write_text_atomic(target, completion.to_json(), mode=0o644, overwrite=False):
        logger.info("completion record %s appeared meanwhile: kept", target)
        return None
    logger.info("wrote completion record %s (%s, %d frame(s))", target, completion.status, len(completion.frames))
    return target


def completion_summary(completion: CompletionRecord) -> Dict[str, Any]:
    return {"status": completion.status, "frames": format_frame_list(completion.frames),
            "missing": format_frame_list(completion.missing_frames), "reason": completion.reason}
