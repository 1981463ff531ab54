"""How a chunk's frames become prompts: one frame each (``per_frame``), or windows (``sequence``).

A sequence window is a run of the chunk's frames no longer than the workflow's context, extended by
``overlap`` handle frames on each side taken from the clip's frame list (clamped at its ends); only the
window's own frames are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from farm_plugin.workflow.package import SequenceSettings


@dataclass(frozen=True)
class Unit:
    """One prompt's worth of frames: ``window`` goes to ComfyUI, ``frames`` (a part of it) is written."""

    frames: Tuple[int, ...]
    window: Tuple[int, ...]

    @property
    def label(self) -> str:
        return str(self.frames[0]) if len(self.frames) == 1 else f"{self.frames[0]}-{self.frames[-1]}"


def plan_units(
    frames: Sequence[int], mode: str, sequence: Optional[SequenceSettings], clip_frames: Sequence[int]
) -> List[Unit]:
    if mode != "sequence" or sequence is None:
        return [Unit((frame,), (frame,)) for frame in frames]
    if sequence.ratio != 1.0:
        raise NotImplementedError(
            f"sequence workflows that change the frame count (ratio {sequence.ratio:g}) are not supported yet"
        )
    overlap = sequence.overlap_frames
    own_length = max(1, sequence.context_frames - 2 * overlap)
    clip = list(clip_frames)
    position = {frame: index for index, frame in enumerate(clip)}
    units = []
    for start in range(0, len(frames), own_length):
        own = tuple(frames[start:start + own_length])
        first, last = position[own[0]], position[own[-1]]
        window = tuple(clip[max(0, first - overlap):min(len(clip), last + overlap + 1)])
        units.append(Unit(own, window))
    return units
