"""Results as they arrive: how many of a job's frames each pass has on disk, and a thumbnail of the latest.

``comfyfarm status JOB`` shows it per pass (``flame_submitter/cli/farm.py``). A frame is done in a pass when its
file is there and its header reads (the runner renames a frame into place only once it is whole: a file at a
frame's name is a finished frame) and, for a job that writes its passes as the layers of one EXR per frame, when
the file has the pass's layer. The latest frame is the one written last (the newest file; the higher frame
number of two written in the same second). Its thumbnail is ``latest_<pass>.jpg`` in the job folder, as the
contact sheet shows a frame (``contact_sheet.display_pixels``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from farm_plugin.completion.contact_sheet import write_thumbnail
from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import PlateInfo, probe
from farm_plugin.frames.layers import pass_channels
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, layered, output_frames, pass_patterns

THUMBNAIL_WIDTH = 320


@dataclass(frozen=True)
class PassProgress:
    """One pass of a running (or finished) job: its pattern as this machine sees it, the frames done out of
    ``total``, and the frame written last."""

    name: str
    pattern: FramePattern
    done: Tuple[int, ...]
    total: int
    latest: Optional[int]

    @property
    def latest_path(self) -> Optional[str]:
        return None if self.latest is None else self.pattern.path(self.latest)


def pass_progress(record: JobRecord, frames: Optional[Sequence[int]] = None,
                  output_pattern: Optional[str] = None) -> List[PassProgress]:
    """Each pass's progress, in the manifest's order: of the output frames of ``frames`` (the job's source frames;
    default the record's), those done at ``pass_patterns(record, output_pattern)``."""
    wanted = output_frames(record, frames)
    names = [spec.name for spec in record.workflow.passes]
    headers: Dict[str, Optional[Tuple[PlateInfo, float]]] = {}  # by path: the layers of one file are read once
    progress = []
    for name, pattern in pass_patterns(record, output_pattern).items():
        done: List[Tuple[float, int]] = []  # (written at, frame)
        for frame in wanted:
            path = pattern.path(frame)
            if path not in headers:
                headers[path] = _header(path)
            found = headers[path]
            if found is None:
                continue
            info, written = found
            if layered(record) and not pass_channels(info.channel_names, names)[name]:
                continue  # the file lacks this pass's layer: the frame is redone
            done.append((written, frame))
        progress.append(PassProgress(name=name, pattern=pattern, done=tuple(frame for _, frame in done),
                                     total=len(wanted), latest=max(done)[1] if done else None))
    return progress


def write_latest_thumbnail(record: JobRecord, item: PassProgress, folder: Path) -> Optional[Path]:
    """``folder/latest_<pass>.jpg``: the thumbnail of ``item``'s latest frame, written atomically; None when the pass
    has no frame yet. Raises ContactSheetError when the frame or the folder cannot be used."""
    if item.latest_path is None:
        return None
    spec = next(spec for spec in record.workflow.passes if spec.name == item.name)
    return write_thumbnail(item.latest_path, folder / f"latest_{item.name}.jpg", pass_name=item.name,
                           pass_names=[spec.name for spec in record.workflow.passes], layers=layered(record),
                           data=spec.data, plate_space=record.colour.plate_space, config=record.colour.config,
                           width=THUMBNAIL_WIDTH)


def _header(path: str) -> Optional[Tuple[PlateInfo, float]]:
    """``path``'s header and modification time, or None where it is not there or does not read."""
    try:
        written = os.stat(path).st_mtime
        return probe(path), written
    except (OSError, PlateError):
        return None
