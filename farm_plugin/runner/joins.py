"""Cross-fading the frames two windows both computed (``blend: crossfade``), also across chunks.

At every window edge (the first own frame ``b`` of a window that has a window before it) the first
``overlap`` own frames ``b, b+1, …`` are *faded in*: the window before computed them too, as its right
handle frames, and the frame at offset ``j`` from ``b`` is written as::

    (1 - w) * before + w * after,    w = (j + 1) / (overlap + 1)

so the later window's weight rises from ``1/(overlap+1)`` to ``overlap/(overlap+1)`` and the two
weights always sum to one. The frames before the edge are the earlier window's own; those after the
fade are the later window's own. No frame changes abruptly from one window's look to the other's.

Two chunks share an edge but may run on different Workers at different times, so each leaves its part
(ComfyUI's image for that frame, as returned) in the job's join folder, ``<job>/joins/<b>/<frame>.before.npy``
or ``.after.npy`` (float32, working space, with the plate's alpha where it has one) on the full-precision
path, ``.png`` (8-bit) on the 8-bit one, and whoever finds both parts writes the frame and removes the parts.
The fade is computed in float whatever the parts are. Writing is
idempotent (same inputs, same atomic output), so two Workers joining at once do no harm; the completion
step (and local mode, at the end) joins whatever is left, so a join missed on a slow shared filesystem
is still made.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from farm_plugin.atomic import atomic_path
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.image_io import PlateInfo, read_pixels
from farm_plugin.frames.staging import read_frame_file
from farm_plugin.runner.output import OutputWriter

logger = logging.getLogger(__name__)

BEFORE = "before"
AFTER = "after"
SIDES = (BEFORE, AFTER)
PART_SUFFIXES = (".npy", ".png")  # full precision first

_JOIN_LOCK = threading.Lock()  # one join at a time in this process: no frame is written or counted twice


def fade_weight(offset: int, overlap: int) -> float:
    """The later window's weight for the frame ``offset`` frames after the edge (0-based)."""
    return (offset + 1) / (overlap + 1)


def _part_pixels(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return read_frame_file(path)
    return read_pixels(path, straight_alpha=True)


def crossfade(before: np.ndarray, after: np.ndarray, weight: float) -> np.ndarray:
    if before.shape != after.shape:
        raise FrameError(f"the two windows' images differ in size ({before.shape[1]}x{before.shape[0]} and "
                         f"{after.shape[1]}x{after.shape[0]}): the workflow must keep the frame size")
    return ((1.0 - weight) * before + weight * after).astype(np.float32)


class JoinStore:
    """The parts waiting to be joined, under ``root`` (a folder on storage every Worker of the job sees)."""

    def __init__(self, root: Path, clip_frames: Sequence[int], overlap: int) -> None:
        self.root = Path(root)
        self.overlap = overlap
        self._positions: Dict[int, int] = {frame: index for index, frame in enumerate(clip_frames)}

    def part(self, boundary: int, frame: int, side: str) -> Path:
        """This side's part: the full-precision one where it is there, else the 8-bit one."""
        folder = self.root / str(boundary)
        for suffix in PART_SUFFIXES:
            path = folder / f"{frame}.{side}{suffix}"
            if path.is_file():
                return path
        return folder / f"{frame}.{side}{PART_SUFFIXES[0]}"

    def has(self, boundary: int, frame: int, side: str) -> bool:
        return self.part(boundary, frame, side).is_file()

    def put(self, boundary: int, frame: int, side: str, image: Path) -> None:
        """Keep ``image`` (ComfyUI's 8-bit result) as this side's part, atomically."""
        target = self.root / str(boundary) / f"{frame}.{side}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as temp:
            shutil.copyfile(image, temp)

    def put_pixels(self, boundary: int, frame: int, side: str, pixels: np.ndarray) -> None:
        """Keep ``pixels`` (a full-precision result, working space) as this side's part, atomically."""
        target = self.root / str(boundary) / f"{frame}.{side}.npy"
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as temp, open(temp, "wb") as stream:
            np.save(stream, np.ascontiguousarray(pixels, dtype="<f4"))

    def boundaries(self) -> List[int]:
        if not self.root.is_dir():
            return []
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.lstrip("-").isdigit())

    def joinable(self, boundary: int) -> List[int]:
        """The frames at this edge whose two parts are both here."""
        folder = self.root / str(boundary)
        if not folder.is_dir():
            return []
        frames = {int(p.name.split(".")[0]) for suffix in PART_SUFFIXES for p in folder.glob(f"*.{AFTER}{suffix}")}
        return sorted(f for f in frames if self.has(boundary, f, BEFORE))

    def weight(self, boundary: int, frame: int) -> float:
        offset = self._positions[frame] - self._positions[boundary]
        if not 0 <= offset < self.overlap:
            raise FrameError(f"frame {frame} is not in the {self.overlap}-frame fade after frame {boundary}")
        return fade_weight(offset, self.overlap)

    def blend(self, boundary: int, frame: int) -> np.ndarray:
        """The cross-faded frame, float32 in the workflow's working space (as ComfyUI gave both parts)."""
        before, after = (_part_pixels(self.part(boundary, frame, side)) for side in SIDES)
        if before.shape[2] != after.shape[2]:  # a part from a ComfyUI without alpha: fade the colour alone
            before, after = before[:, :, :3], after[:, :, :3]
        return crossfade(before, after, self.weight(boundary, frame))

    def discard(self, boundary: int, frame: int) -> None:
        for side in SIDES:
            for suffix in PART_SUFFIXES:
                (self.root / str(boundary) / f"{frame}.{side}{suffix}").unlink(missing_ok=True)
        folder = self.root / str(boundary)
        try:
            folder.rmdir()
        except OSError:
            pass  # other frames' parts still wait there

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def join_edge(store: JoinStore, boundary: int, writer: OutputWriter, *,
              known: Optional[Dict[int, PlateInfo]] = None,
              on_written: Optional[Callable[[int], None]] = None) -> List[int]:
    """Write every frame at this edge whose two parts are here; returns the frames written."""
    written = []
    with _JOIN_LOCK:
        for frame in store.joinable(boundary):
            if writer.path(frame).is_file() and writer.is_done(frame):
                store.discard(boundary, frame)
                continue
            writer.write_pixels(frame, store.blend(boundary, frame), writer.source_info(frame, known))
            store.discard(boundary, frame)
            written.append(frame)
            logger.info("frame %d: cross-faded the windows before and after frame %d", frame, boundary)
            if on_written is not None:
                on_written(frame)
    return written


def finish_joins(writer: OutputWriter, join_dir: Path) -> List[int]:
    """Join whatever is left in ``join_dir`` (end of a local run, the job's completion); when every output
    frame of the job is then on disk, remove the folder. Returns the frames written."""
    sequence = writer.record.workflow.sequence
    if sequence is None or not Path(join_dir).is_dir():
        return []
    store = JoinStore(join_dir, writer.record.source.frames, sequence.overlap_frames)
    written = []
    for boundary in store.boundaries():
        try:
            written.extend(join_edge(store, boundary, writer))
        except FrameError as exc:
            logger.error("could not cross-fade the frames after frame %d: %s", boundary, exc)
    if not writer.output.missing_frames(writer.retime.output_frames()):
        store.remove()
    return written
