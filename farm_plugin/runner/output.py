"""Writing a job's output frames: a ComfyUI result → the output pattern, in the source's format, verified.

Used by the chunk runner for what ComfyUI returns, and by the joins for cross-faded frames, so that both
write the same way: atomically, with the header of the source frame the output comes from (for an
in-between made by an interpolation, the source frame before it), checked for a cut-short end before it
takes its name, then its header checked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from farm_plugin.frames.colour import ColourPolicy
from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import PlateInfo, probe, verify_frame, writable_format
from farm_plugin.frames.layers import pass_channels
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.frames.staging import unstage_layers, unstage_pixels, unstage_result
from farm_plugin.jobrecord import JobRecord, PassSpec, job_retime, layered, pass_patterns

logger = logging.getLogger(__name__)


class OutputWriter:
    """Where and how ``record``'s output frames are written (patterns as this machine sees them): one
    pattern per pass (``pass_patterns``); ``output`` is the first pass's, and the one a pass-less call uses.
    An output frame is done when every pass has it."""

    def __init__(self, record: JobRecord) -> None:
        self.record = record
        self.source = FramePattern.parse(record.source.pattern, role="input")
        self.passes = pass_patterns(record)
        self.output = next(iter(self.passes.values()))
        self.retime = job_retime(record)

    @property
    def policy(self) -> Optional[ColourPolicy]:
        colour = self.record.colour
        if colour.plate_space is None:
            return None  # per plate: ColourPolicy.default_for
        return ColourPolicy(plate_space=colour.plate_space, config=colour.config,
                            **({"working_space": colour.working_space} if colour.working_space else {}))

    def path(self, frame: int, pass_name: Optional[str] = None) -> Path:
        return Path((self.passes[pass_name] if pass_name else self.output).path(frame))

    @property
    def layered(self) -> bool:
        """Whether every pass goes into one EXR per frame, as its layers (``write_layers``)."""
        return layered(self.record)

    def is_done(self, frame: int) -> bool:
        """Whether output ``frame`` exists in every pass and reads back whole (for layers: the frame's file
        holds every pass's layer)."""
        if not self.layered:
            return all(self.pass_done(frame, name) for name in self.passes)
        names = list(self.passes)
        if not self.pass_done(frame, names[0]):
            return False
        path = self.path(frame)
        found = pass_channels(probe(path).channel_names, names)
        missing = [name for name in names if not found[name]]
        if missing:
            logger.warning("frame %d: existing output %s has no %s layer, redoing it", frame, path,
                           " / ".join(missing))
            return False
        return True

    def pass_done(self, frame: int, pass_name: str) -> bool:
        """Whether output ``frame`` of pass ``pass_name`` exists and reads back whole."""
        path = self.path(frame, pass_name)
        if not path.is_file():
            return False
        try:
            info = probe(path)
            verify_frame(path, width=info.width, height=info.height, channels=info.channels)
        except PlateError as exc:
            logger.warning("frame %d: existing output %s is unusable, redoing it (%s)", frame, path, exc)
            return False
        return True

    def remove_stale_temporaries(self, frames: Sequence[int]) -> None:
        """Remove what an earlier attempt killed mid-write left beside these frames (``.<name>.*.tmp.*``)."""
        for frame in frames:
            for name in self.passes if not self.layered else list(self.passes)[:1]:
                target = self.path(frame, name)
                for stale in target.parent.glob(f".{target.name}.*.tmp.*"):
                    logger.info("removing %s, left by an attempt that was stopped mid-write", stale)
                    stale.unlink(missing_ok=True)

    def source_info(self, frame: int, known: Optional[Mapping[int, PlateInfo]] = None) -> PlateInfo:
        """The header of the source frame output ``frame`` comes from (``known`` by source frame, if read)."""
        source_frame = self.retime.source_of(frame)
        if known is not None and source_frame in known:
            return known[source_frame]
        return probe(self.source.path(source_frame))

    def write(self, frame: int, result: Path, source: PlateInfo, pass_name: Optional[str] = None) -> PlateInfo:
        """Write ComfyUI's ``result`` image as output ``frame`` (of ``pass_name``) and verify it; raises
        ``FrameError``."""
        target = self.path(frame, pass_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = unstage_result(result, target, source=source, policy=self.policy,
                                 file_format=self.record.output.file_format, data=self._spec(pass_name).data)
        return self._verified(target, written)

    def write_pixels(self, frame: int, pixels: np.ndarray, source: PlateInfo, pass_name: Optional[str] = None
                     ) -> PlateInfo:
        """Write a full-precision result (working space, RGB or RGBA) as output ``frame`` (of ``pass_name``)
        and verify it. The alpha of a pass whose workflow gives one is straight (``unstage_pixels``)."""
        target = self.path(frame, pass_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        spec = self._spec(pass_name)
        written = unstage_pixels(pixels, target, source=source, policy=self.policy,
                                 file_format=self.record.output.file_format, straight_alpha=spec.alpha is not None,
                                 data=spec.data)
        return self._verified(target, written)

    def write_layers(self, frame: int, layers: Sequence[Tuple[str, np.ndarray]], source: PlateInfo) -> PlateInfo:
        """Write every pass's full-precision result (name, working-space pixels, in the job's pass order) as
        the layers of output ``frame``'s EXR, and verify it."""
        target = self.path(frame)
        if writable_format(target) != "openexr":  # preflight refuses such a job: a record made by hand
            raise PlateError(f"cannot write '{target}': the passes go as layers into an EXR, and this is not one: "
                             "name the output .exr, or turn exr_layers off", path=str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        written = unstage_layers(layers, target, source=source, policy=self.policy,
                                 data=[spec.name for spec in self.record.workflow.passes if spec.data])
        return self._verified(target, written)

    def _spec(self, pass_name: Optional[str]) -> PassSpec:
        return next((p for p in self.record.workflow.passes if p.name == pass_name), self.record.workflow.passes[0])

    @staticmethod
    def _verified(target: Path, written: PlateInfo) -> PlateInfo:
        # write_frame decoded the file's ends before renaming: the header check is what is left to do
        verify_frame(target, width=written.width, height=written.height, channels=written.channels,
                     check_pixels=False)
        return written
