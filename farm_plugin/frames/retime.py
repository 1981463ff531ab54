"""How a workflow that changes the frame count numbers its output frames (the manifest's ``sequence.ratio``).

The numbering depends only on the job's source frame list and the ratio, so the job builder, every chunk
on the farm, local mode and the completion record all compute the same output frames:

- **ratio 1**: output frame = source frame.
- **ratio k** (a whole number, e.g. 2 or 4, an interpolation): the source frame at position ``i`` of the
  job's frame list becomes output frame ``first + i * k``, and the ``k - 1`` frames made between it and the
  next source frame are ``first + i * k + 1`` … ``first + i * k + k - 1``. The last source frame has nothing
  after it, so N source frames give ``(N - 1) * k + 1`` output frames: 1001-1100 at 2x gives 1001-1199,
  where 1001 + 2i is source frame 1001 + i. This is what interpolation nodes return for a window of N
  frames (RIFE VFI, FILM VFI: every source frame once, the in-betweens between them).
- **ratio 1/m** (0.5, 0.25, a decimation): the source frame at position ``i`` is kept when ``i`` is a
  multiple of ``m`` and becomes output frame ``first + i / m``; the workflow returns every m-th frame of its
  window starting with the window's first, so every window starts on a kept frame.

Positions, not frame numbers, drive the mapping: a frame list with holes (1001-1010, 1020-1030) numbers
its outputs as if the frames were consecutive. A source frame *owns* its output frame and the in-betweens
after it; a chunk writes the outputs its own frames own, so the frame shared by two chunks' windows (the
next chunk's first frame, which interpolation needs) is written once and no in-between is lost or doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from farm_plugin.errors import BadInput


class RetimeError(ValueError, BadInput):
    """A ratio comfyfarm cannot number frames for, or a frame that is not in the job."""


def ratio_steps(ratio: float) -> Tuple[int, int]:
    """``(k, m)`` for a ratio of ``k`` (k >= 1, m == 1) or ``1/m`` (k == 1, m >= 2)."""
    if ratio >= 1:
        k = round(ratio)
        if abs(ratio - k) > 1e-6:
            raise RetimeError(f"ratio {ratio:g} is not a whole number: use 2, 3, 4… to add frames, or 0.5, "
                              "0.25… (1/2, 1/4…) to drop them")
        return k, 1
    m = round(1 / ratio)
    if m < 2 or abs(1 / ratio - m) > 1e-6:
        raise RetimeError(f"ratio {ratio:g} is not 1 over a whole number: use 0.5, 0.25 or 1/3 (0.3333…) to "
                          "drop frames, or a whole number to add them")
    return 1, m


@dataclass(frozen=True)
class Retime:
    """The output numbering of a job: ``source_frames`` in the order the job lists them, and the ratio."""

    source_frames: Tuple[int, ...]
    ratio: float = 1.0

    def __post_init__(self) -> None:
        if not self.source_frames:
            raise RetimeError("a job has at least one source frame")
        ratio_steps(self.ratio)

    @property
    def steps(self) -> Tuple[int, int]:
        return ratio_steps(self.ratio)

    @property
    def identity(self) -> bool:
        return self.steps == (1, 1)

    @property
    def first(self) -> int:
        return self.source_frames[0]

    def position(self, frame: int) -> int:
        try:
            return self._positions[frame]
        except KeyError:
            raise RetimeError(f"frame {frame} is not one of the job's source frames") from None

    @property
    def _positions(self) -> Dict[int, int]:
        cached = self.__dict__.get("_position_cache")
        if cached is None:
            cached = {frame: index for index, frame in enumerate(self.source_frames)}
            object.__setattr__(self, "_position_cache", cached)
        return cached

    def outputs_of(self, frame: int) -> Tuple[int, ...]:
        """The output frames ``frame`` owns: its own and the in-betweens after it (none when dropped)."""
        if self.identity:
            self.position(frame)
            return (frame,)
        k, m = self.steps
        index = self.position(frame)
        if m > 1:
            return (self.first + index // m,) if index % m == 0 else ()
        if index == len(self.source_frames) - 1:
            return (self.first + index * k,)
        return tuple(self.first + index * k + j for j in range(k))

    def output_frames(self, frames: Optional[Sequence[int]] = None) -> List[int]:
        """The output frames that ``frames`` (default: the whole job) own, in order."""
        if self.identity:
            return list(self.source_frames if frames is None else frames)
        return [out for frame in (self.source_frames if frames is None else frames) for out in self.outputs_of(frame)]

    def window_results(self, window: Sequence[int]) -> Tuple[int, ...]:
        """The output frame number of each image a workflow returns for ``window`` (consecutive source frames
        of the job), in the order it returns them."""
        if self.identity:
            return tuple(window)
        k, m = self.steps
        start, end = self.position(window[0]), self.position(window[-1])
        if end - start + 1 != len(window):
            raise RetimeError(f"window {window[0]}-{window[-1]} is not consecutive in the job's frame list")
        if m > 1:
            if start % m:
                raise RetimeError(f"a window of a 1/{m} workflow starts on a kept frame, not {window[0]}")
            return tuple(self.first + index // m for index in range(start, end + 1, m))
        return tuple(self.first + index for index in range(start * k, end * k + 1))

    def source_of(self, output: int) -> int:
        """The source frame an output frame comes from: its own, or for an in-between the one before it."""
        k, m = self.steps
        index = (output - self.first) * m // k
        if output < self.first or index >= len(self.source_frames):
            raise RetimeError(f"output frame {output} is outside the job's outputs "
                              f"{self.first}-{self.output_frames()[-1]}")
        return self.source_frames[index]
