"""Small plates for the real-pack tier, and run-local as a user runs it against the tier's ComfyUI.

The plates are half-float scene-linear EXRs with alpha, 96x63 (an odd height, as a 2.39 crop of a 1920-wide
plate is 1920x803), with timecode: what comes out of Flame, small enough for a CPU.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from farm_plugin.frames.image_io import probe, read_pixels, timecode_bcd, write_frame
from tests.flame_submitter.test_run_local import run_local
from tests.real_packs.plugin import PacksComfyUI, run_local_config

WIDTH, HEIGHT = 96, 63
FIRST = 1001
FULL_PRECISION = ("INFO farm_plugin.runner.chunk: full precision: float frames with alpha through comfyfarm's "
                  "frame nodes")


def plate_alpha() -> np.ndarray:
    """The plate's own alpha: a ramp from 0.25 to 1 across the frame (not the workflow's: it is carried)."""
    return np.broadcast_to(np.linspace(0.25, 1.0, WIDTH, dtype=np.float32), (HEIGHT, WIDTH)).copy()


def _write(folder: Path, name: str, frames: Sequence[np.ndarray]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for index, pixels in enumerate(frames):
        write_frame(folder / f"{name}.{FIRST + index}.exr", pixels, file_format="exr",
                    metadata={"smpte:TimeCode": [timecode_bcd(f"01:00:00:{index:02d}"), 0], "FramesPerSecond": (24, 1)})
    return str(folder / f"{name}.####.exr")


def subject_plate(folder: Path, frames: int = 3) -> str:
    """A warm disc moving right over a cool gradient, a scene-linear highlight (1.5) in the disc."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([0.1 + 0.3 * x / WIDTH, 0.2 + 0.3 * y / HEIGHT, 0.45 * np.ones_like(x)], axis=-1)
    out = []
    for index in range(frames):
        centre = WIDTH * (0.35 + 0.1 * index)
        pixels = np.concatenate([base, plate_alpha()[..., None]], axis=-1)
        disc = (x - centre) ** 2 + (y - HEIGHT / 2) ** 2 < (HEIGHT / 4) ** 2
        pixels[disc, :3] = (0.8, 0.35, 0.1)
        pixels[disc & ((x - centre) ** 2 + (y - HEIGHT / 2) ** 2 < 16), :3] = (1.5, 1.2, 0.9)
        out.append(pixels)
    return _write(folder, "plate", out)


def green_screen_plate(folder: Path, frames: int = 2) -> Tuple[str, np.ndarray]:
    """A subject (a warm disc) in front of a green screen; returns the pattern and where the subject is."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    subject = (x - WIDTH / 2) ** 2 + (y - HEIGHT / 2) ** 2 < (HEIGHT / 3) ** 2
    pixels = np.zeros((HEIGHT, WIDTH, 4), np.float32)
    pixels[...] = (0.04, 0.45, 0.05, 1.0)  # a lit green screen, scene-linear
    pixels[subject] = (0.6, 0.3, 0.2, 1.0)
    return _write(folder, "screen", [pixels] * frames), subject


@dataclass(frozen=True)
class Run:
    result: subprocess.CompletedProcess
    output: Path  # the output folder

    def files(self) -> Dict[str, List[str]]:
        """The files written, by sequence name (what is before the frame number)."""
        names: Dict[str, List[str]] = {}
        for path in sorted(self.output.iterdir()):
            names.setdefault(path.name.split(".")[0], []).append(path.name)
        return names

    def frame(self, name: str, frame: int) -> np.ndarray:
        return read_pixels(self.output / f"{name}.{frame}.exr")

    def channels(self, name: str, frame: int) -> Tuple[str, ...]:
        return probe(self.output / f"{name}.{frame}.exr").channel_names


def run_package(comfyui: PacksComfyUI, package: str, plate: str, tmp_path: Path, *settings: str,
                options: Sequence[str] = (), timeout_s: float = 1200) -> Run:
    """``comfyfarm run-local --workflow PACKAGE`` on the plate, attached to the tier's ComfyUI, with ``--set``
    for each of ``settings`` and the other ``options``; output ``o/o.####.exr``."""
    arguments: List[str] = ["--workflow", package, "--input", plate, "--output", str(tmp_path / "o" / "o.####.exr"),
                            "--comfyui-url", comfyui.url, *options]
    for setting in settings:
        arguments += ["--set", setting]
    result = run_local(run_local_config(tmp_path), *arguments, timeout_s=timeout_s)
    return Run(result, tmp_path / "o")


def sequence(name: str, frames: Sequence[int]) -> List[str]:
    return [f"{name}.{frame}.exr" for frame in frames]


def clipped_plate(pattern: str, folder: Path) -> str:
    """The plate with its colour clipped to 0..1 (scene-linear 1 is 1 in the sRGB working space too, and
    the conversion keeps the order of values): what a pack should see of it if it reads 0..1 only."""
    frames = sorted(Path(pattern).parent.glob(Path(pattern).name.replace("####", "*")))
    pixels = [read_pixels(path) for path in frames]
    for frame in pixels:
        frame[..., :3] = np.clip(frame[..., :3], 0, 1)
    return _write(folder, "clipped", pixels)
