"""A synthetic scene-linear EXR plate for the demo and the benchmarks: a moving disc over a gradient."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import timecode_after, timecode_bcd, write_frame


def frame_timecode(index: int, fps: int, start: str = "01:00:00:00") -> str:
    """The timecode ``index`` frames after ``start`` (non-drop-frame)."""
    return timecode_after(start, index, fps)


def write_demo_plate(
    folder: Path,
    *,
    first_frame: int = 1001,
    frame_count: int = 48,
    width: int = 320,
    height: int = 180,
    fps: int = 24,
    start_timecode: str = "01:00:00:00",
    name: str = "plate",
) -> str:
    """Write ``name.####.exr`` (half float, scene-linear) with per-frame timecode; returns the pattern.

    Raises ``PlateError`` when the folder cannot be written; the frames this call wrote are removed again.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlateError(f"cannot write the demo plate into {folder} ({exc.strerror or exc}): choose a folder you can "
                         "write to, with free space", path=str(folder)) from exc
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, 0.25 * np.ones_like(x)], axis=-1) * 0.8
    written: List[Path] = []
    try:
        for index in range(frame_count):
            frame = first_frame + index
            centre_x = width * (0.2 + 0.6 * index / max(1, frame_count - 1))
            disc = ((x - centre_x) ** 2 + (y - height / 2) ** 2) < (height / 5) ** 2
            pixels = base.copy()
            pixels[disc] = (1.5, 0.9, 0.2)  # above 1.0: scene-linear highlights
            timecode = frame_timecode(index, fps, start_timecode)
            path = folder / f"{name}.{frame:04d}.exr"
            write_frame(
                path,
                pixels,
                file_format="exr",
                metadata={"smpte:TimeCode": [timecode_bcd(timecode), 0], "FramesPerSecond": (fps, 1)},
            )
            written.append(path)
    except PlateError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return str(folder / f"{name}.####.exr")


def demo_frames(first_frame: int = 1001, frame_count: int = 48) -> List[int]:
    return list(range(first_frame, first_frame + frame_count))
