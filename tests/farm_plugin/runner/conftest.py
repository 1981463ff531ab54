from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import pytest
import requests

from farm_plugin.comfyui.server import ComfyUIServer, ServerConfig
from farm_plugin.frames.image_io import read_pixels, timecode_bcd, write_frame
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import apply_parameters, resolve_parameters
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir

REPO = Path(__file__).resolve().parents[3]
FRAMES = list(range(1001, 1009))


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, np.power((encoded + 0.055) / 1.055, 2.4))


def expected_invert(linear_plate: np.ndarray) -> np.ndarray:
    """What invert gives for a scene-linear plate: sRGB 8-bit staging, ComfyUI's truncating save, back."""
    codes = np.round(srgb_encode(linear_plate) * 255.0).astype(np.float32)
    loaded = codes / np.float32(255.0)  # LoadImage, in float32 as ComfyUI computes
    saved = (np.float32(255.0) * (np.float32(1.0) - loaded)).astype(np.uint8)  # SaveImage truncates
    return srgb_decode(saved.astype(np.float64) / 255.0)


def expected_invert_float(linear_plate: np.ndarray) -> np.ndarray:
    """What invert gives on the full-precision path: 1 - value in sRGB, in float, back, nothing clipped: the
    sRGB curve's power segment goes on above 1 and its linear one below 0, as OCIO's transforms do."""
    linear = linear_plate.astype(np.float64)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(np.maximum(linear, 0.0031308), 1 / 2.4)
                       - 0.055)
    inverted = 1.0 - encoded
    return np.where(inverted <= 0.04045, inverted / 12.92,
                    np.power((np.maximum(inverted, 0.04045) + 0.055) / 1.055, 2.4))


def write_plate(folder: Path, frames: List[int] = FRAMES, size=(24, 16)) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        pixels = np.random.default_rng(frame).random((size[1], size[0], 3), dtype=np.float32)
        write_frame(folder / f"plate.{frame}.exr", pixels, file_format="exr", metadata={
            "smpte:TimeCode": [timecode_bcd(f"01:00:00:{index:02d}"), 0], "FramesPerSecond": (24, 1)})
    return str(folder / "plate.####.exr")


def make_record(plate: str, output: str, workflow: str = "invert", frames: List[int] = FRAMES, **params) -> JobRecord:
    package = load_package(REPO / "workflows" / workflow)
    values = resolve_parameters(package, params)
    return JobRecord(job_id=f"test-{workflow}", name="test", source=SourceSpec(plate, tuple(frames)),
                     output=OutputSpec(output),
                     workflow=WorkflowSpec.from_package(package, apply_parameters(package, values), values))


def plate_pixels(plate: str, frame: int) -> np.ndarray:
    return read_pixels(plate.replace("####", str(frame)))


@pytest.fixture
def managed_fake(tmp_path: Path) -> Callable[..., ComfyUIServer]:
    """Start the double through comfyfarm's own lifecycle code (so that restarts are real restarts)."""
    started: List[ComfyUIServer] = []

    def start(faults: str = "", runtime_faults: Optional[dict] = None) -> ComfyUIServer:
        """``faults`` apply to every start (the environment); ``runtime_faults`` to this process only."""
        index = len(started)
        server = ComfyUIServer(ServerConfig(
            comfyui_dir=make_fake_comfyui_dir(tmp_path / f"ComfyUI-{index}"), python=sys.executable, port=free_port(),
            scratch_dir=tmp_path / f"comfyui-scratch-{index}", startup_timeout_s=20,
            extra_env={"COMFYFARM_FAKE_FAULTS": faults} if faults else {},
        ))
        server.start()
        started.append(server)
        if runtime_faults:
            requests.post(f"{server.url}/__fake__/faults", json=runtime_faults, timeout=5).raise_for_status()
        return server

    yield start
    for server in started:
        server.stop()
