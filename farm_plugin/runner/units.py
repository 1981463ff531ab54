"""How a chunk's frames become prompts: one frame each (``per_frame``), or windows (``sequence``).

A sequence chunk is split into windows that fit the workflow's ``context``: each window's own frames are
extended by ``overlap`` handle frames on each side, taken from the job's frame list and clamped at its
ends, and only the outputs of the own frames are kept. A workflow that adds frames (ratio k > 1) also
gets the frame after its own (the next window's first) as a right handle, so that the in-betweens after
its last own frame are made; one that drops frames (ratio 1/m) starts every window on a kept frame.

The split depends only on the chunk's frames and the job's, never on what is already written, so a rerun
plans the same windows. With ``blend: crossfade`` the first ``overlap`` own frames after every window
edge (a chunk edge or an edge inside a chunk) are *faded in*: cross-faded from the window before, which
computed them as its right handle frames (its *handoff*), to this window (see joins.py). One-sided
fades need nothing from the neighbour but those handle frames, however short the chunks are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from farm_plugin.frames.retime import Retime
from farm_plugin.workflow.package import SequenceSettings, window_handles


@dataclass(frozen=True)
class Unit:
    """One prompt's worth of frames.

    ``window`` (source frames) goes to ComfyUI, which returns one image per entry of ``results`` (output
    frame numbers, in order); the unit owns ``outputs``: those in ``fade_in`` are cross-faded with the
    window before (whose first own frame is ``boundary``), the rest are written as they come.
    ``handoff`` are the frames after the unit that it computes for the next window's fade.
    """

    frames: Tuple[int, ...]
    window: Tuple[int, ...]
    results: Tuple[int, ...]
    outputs: Tuple[int, ...]
    boundary: Optional[int] = None
    fade_in: Tuple[int, ...] = ()
    handoff: Tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return str(self.frames[0]) if len(self.frames) == 1 else f"{self.frames[0]}-{self.frames[-1]}"

    @property
    def direct(self) -> Tuple[int, ...]:
        """The outputs written as ComfyUI returns them (not faded in)."""
        return tuple(frame for frame in self.outputs if frame not in self.fade_in)


def window_budget(sequence: SequenceSettings) -> int:
    """How many own frames one window of ``sequence.context`` frames can hold (at least 1)."""
    return max(1, sequence.context_frames - window_handles(sequence.overlap_frames, sequence.ratio))


def plan_units(
    frames: Sequence[int], mode: str, sequence: Optional[SequenceSettings], clip_frames: Sequence[int]
) -> List[Unit]:
    """The units of a chunk: ``frames`` (the chunk's source frames, in the job's order) of the job's
    ``clip_frames``."""
    if mode != "sequence" or sequence is None:
        return [Unit((frame,), (frame,), (frame,), (frame,)) for frame in frames]
    clip = list(clip_frames)
    retime = Retime(tuple(clip), sequence.ratio)
    units: List[Unit] = []
    k, _m = retime.steps
    for run in _consecutive_runs([retime.position(frame) for frame in frames]):
        # The clip's last frame needs no frame after it: it rides along with the last window, which has
        # it as its right handle anyway (no one-frame window for it).
        ride_along = k > 1 and len(run) > 1 and run[-1] == len(clip) - 1
        body = run[:-1] if ride_along else run
        pieces = _balanced_pieces(body[0], body[-1], window_budget(sequence))
        if ride_along:
            pieces[-1] = (pieces[-1][0], run[-1])
        units.extend(_unit(clip, retime, sequence, start, end) for start, end in pieces)
    return units


def _unit(clip: List[int], retime: Retime, sequence: SequenceSettings, start: int, end: int) -> Unit:
    k, m = retime.steps
    overlap = sequence.overlap_frames
    first = max(0, start - overlap)
    first -= first % m
    last = min(len(clip) - 1, end + max(overlap, 1 if k > 1 else 0))
    if k > 1 and first == last and first > 0:
        first -= 1  # an interpolation of one frame: give it the frame before (only its own output is kept)
    window = tuple(clip[first:last + 1])
    own = tuple(clip[start:end + 1])
    fading = sequence.blend == "crossfade" and overlap > 0
    return Unit(
        frames=own,
        window=window,
        results=retime.window_results(window),
        outputs=tuple(retime.output_frames(own)),
        boundary=own[0] if fading and start > 0 else None,
        fade_in=own[:overlap] if fading and start > 0 else (),
        handoff=tuple(clip[end + 1:end + 1 + overlap]) if fading else (),
    )


def _consecutive_runs(positions: List[int]) -> List[List[int]]:
    runs: List[List[int]] = []
    for position in positions:
        if runs and position == runs[-1][-1] + 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


def _balanced_pieces(start: int, end: int, budget: int) -> List[Tuple[int, int]]:
    """``start..end`` in as few pieces of at most ``budget`` as possible, of nearly equal length (a short
    last piece would pay for a whole window's handles)."""
    length = end - start + 1
    count = -(-length // budget)
    size, extra = divmod(length, count)
    pieces = []
    for index in range(count):
        piece = size + (1 if index < extra else 0)
        pieces.append((start, start + piece - 1))
        start += piece
    return pieces
