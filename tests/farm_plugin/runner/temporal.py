"""Temporal test material: a running-mean workflow package (on the double's ComfyFarmTemporalMean node),
8-bit PNG plates (so staging is the identity and pixel values can be reasoned about), and helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import yaml

from farm_plugin.frames.image_io import read_pixels, write_frame
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import apply_parameters, resolve_parameters

REPO = Path(__file__).resolve().parents[3]


def make_mean_package(folder: Path, *, context: int, overlap: int, radius: int, blend: str = "crossfade") -> Path:
    """A sequence package: LoadImage (the window) → ComfyFarmTemporalMean(radius) → SaveImage."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "window.tif"}},
        "2": {"class_type": "ComfyFarmTemporalMean", "inputs": {"image": ["1", 0], "radius": radius}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "comfyfarm/mean"}},
    }
    (folder / "workflow.json").write_text(json.dumps(graph))
    manifest = {
        "schema": 1, "title": "Running mean", "description": "A test-only temporal workflow.",
        "category": "Testing", "mode": "sequence",
        "input": {"node": "1", "input": "image"}, "output": {"node": "3", "input": "filename_prefix"},
        "sequence": {"context": context, "overlap": overlap, "ratio": 1, "blend": blend},
        "requirements": {"nodes": ["LoadImage", "ComfyFarmTemporalMean", "SaveImage"]},
    }
    (folder / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def write_png_plate(folder: Path, frames: List[int], value: Callable[[int, np.ndarray], np.ndarray],
                    size=(8, 6)) -> str:
    """8-bit sRGB PNG frames whose pixels are ``value(frame, grid)`` (grid: a (h, w, 3) ramp in 0..1)."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0.0, 1.0, size[0] * size[1] * 3, dtype=np.float32).reshape(size[1], size[0], 3)
    for frame in frames:
        write_frame(folder / f"plate.{frame}.png", np.clip(value(frame, grid), 0.0, 1.0), bit_depth="uint8")
    return str(folder / "plate.####.png")


def noise_plate(folder: Path, frames: List[int]) -> str:
    return write_png_plate(folder, frames, lambda f, g: np.random.default_rng(f).random(g.shape, dtype=np.float32))


def smooth_plate(folder: Path, frames: List[int]) -> str:
    """Slow, smooth change over time: a seam between two windows would stand out."""
    return write_png_plate(folder, frames, lambda f, g: 0.5 + 0.35 * np.sin(2 * np.pi * f / 37.0 + 3 * g))


def package_record(package: Path, plate: str, output: str, frames: List[int], *, job_id: str = "temporal",
                   params: Optional[Dict[str, object]] = None) -> JobRecord:
    loaded = load_package(package)
    values = resolve_parameters(loaded, params or {})
    return JobRecord(job_id=job_id, name="temporal", source=SourceSpec(plate, tuple(frames)), output=OutputSpec(output),
                     workflow=WorkflowSpec.from_package(loaded, apply_parameters(loaded, values), values))


def codes(path: Path | str) -> np.ndarray:
    """An 8-bit image's pixels as integer codes 0..255."""
    return np.rint(read_pixels(path)[..., :3] * 255.0).astype(np.int32)
