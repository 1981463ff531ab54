"""dsine_normal_refine, depth_normal_ao_maps and matte_depth_normal through their real packs (DSINE and Depth
Anything V2 from comfyui_controlnet_aux, kijai's Depth Anything V2, InSPyReNet, ComfyUI_essentials), with
stand-in weights where the real ones are not installed: every pass at the plate's size, under the source
frame numbers, with values that make sense for the pass (a depth that varies, normals of unit length)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pytest

from farm_plugin.frames.image_io import probe, read_pixels
from tests.real_packs.plates import FULL_PRECISION, HEIGHT, WIDTH, Run, run_package, sequence, subject_plate
from tests.real_packs.plugin import PacksComfyUI

FRAMES = (1001, 1002)
DSINE_FAST = ("resolution=512", "iterations=3")  # the smallest processing size: a CPU runs it in seconds

PACKAGES: Dict[str, Sequence[str]] = {
    "dsine_normal_refine": ["dsine.pt"],
    "depth_normal_ao_maps": ["dsine.pt", "depth_anything_v2_vitl_fp32.safetensors"],
    "matte_depth_normal": ["dsine.pt", "depth_anything_v2_vitl.pth", "ckpt_base.pth"],
}


def _run(comfyui: PacksComfyUI, package: str, folder: Path, frames: int = len(FRAMES), plate: str = "") -> Run:
    comfyui.require(package, models=PACKAGES[package])
    plate = plate or subject_plate(folder / "plate", frames=frames)
    settings = DSINE_FAST if package == "dsine_normal_refine" else ()
    run = run_package(comfyui, package, plate, folder, *settings)
    assert run.result.returncode == 0, run.result.stderr
    assert FULL_PRECISION in run.result.stderr.splitlines()
    return run


def _working(run: Run, name: str, frame: int) -> np.ndarray:
    """A data pass's pixels as the workflow gave them (written without colour conversion, tagged data), its
    first three channels: what a compositor decodes."""
    path = run.output / f"{name}.{frame}.exr"
    assert probe(path).metadata.get("oiio:ColorSpace") == "data", path
    return run.frame(name, frame)[..., :3]


def _plate_alpha(run: Run, frame: int) -> np.ndarray:
    return read_pixels(run.output.parent / "plate" / f"plate.{frame}.exr")[..., 3]


def assert_unit_normals(rgb: np.ndarray) -> None:
    """Normals encoded 0..1 (X red, Y green, Z blue): of unit length once decoded, at 8-bit precision."""
    assert rgb.min() >= -1e-3 and rgb.max() <= 1 + 4e-3
    length = np.linalg.norm(rgb * 2 - 1, axis=-1)
    assert np.median(length) == pytest.approx(1.0, abs=0.03), np.median(length)
    assert np.mean(np.abs(length - 1) < 0.1) > 0.9


def assert_depth(gray: np.ndarray) -> None:
    """A relative depth: one value per pixel (grey), 0..1, that varies over the frame."""
    assert np.allclose(gray[..., 0], gray[..., 1], atol=2e-3) and np.allclose(gray[..., 0], gray[..., 2], atol=2e-3)
    assert gray.min() >= -1e-3 and gray.max() <= 1 + 4e-3
    assert gray.max() - gray.min() > 0.5 and len(np.unique(np.round(gray[..., 0], 3))) > 16


@pytest.mark.timeout(3600)
def test_dsine_normal_refine_gives_unit_normals_at_the_plate_size(packs_comfyui: PacksComfyUI, tmp_path: Path) -> None:
    run = _run(packs_comfyui, "dsine_normal_refine", tmp_path)
    assert run.files() == {"o": sequence("o", FRAMES)}
    for frame in FRAMES:
        pixels = run.frame("o", frame)
        assert pixels.shape == (HEIGHT, WIDTH, 4)
        assert np.array_equal(pixels[..., 3], _plate_alpha(run, frame))  # the plate's alpha, carried
        assert_unit_normals(_working(run, "o", frame))


@pytest.mark.timeout(3600)
def test_depth_normal_ao_maps_writes_three_passes_at_the_plate_size(
        packs_comfyui: PacksComfyUI, tmp_path: Path) -> None:
    run = _run(packs_comfyui, "depth_normal_ao_maps", tmp_path)
    assert run.files() == {f"o_{name}": sequence(f"o_{name}", FRAMES) for name in ("ao", "depth", "normals")}
    for frame in FRAMES:
        for name in ("depth", "normals", "ao"):
            pixels = run.frame(f"o_{name}", frame)
            assert pixels.shape == (HEIGHT, WIDTH, 4), name
            assert np.array_equal(pixels[..., 3], _plate_alpha(run, frame)), name
        assert_depth(_working(run, "o_depth", frame))
        assert_unit_normals(_working(run, "o_normals", frame))
        ao = _working(run, "o_ao", frame)
        assert ao.min() >= -1e-3 and ao.max() <= 1 + 4e-3


@pytest.mark.timeout(3600)
def test_matte_depth_normal_writes_the_matte_and_the_passes_at_the_plate_size(
        packs_comfyui: PacksComfyUI, tmp_path: Path) -> None:
    run = _run(packs_comfyui, "matte_depth_normal", tmp_path, frames=1)
    assert run.files() == {f"o_{name}": sequence(f"o_{name}", FRAMES[:1]) for name in ("depth", "normals", "rgba")}
    rgba = run.frame("o_rgba", 1001)
    plate = read_pixels(run.output.parent / "plate" / "plate.1001.exr")
    assert rgba.shape == (HEIGHT, WIDTH, 4) and np.allclose(rgba[..., :3], plate[..., :3], atol=1e-3)
    assert rgba[..., 3].min() >= 0 and rgba[..., 3].max() <= 1
    for name in ("depth", "normals"):
        pixels = run.frame(f"o_{name}", 1001)
        assert pixels.shape == (HEIGHT, WIDTH, 4), name
        assert np.array_equal(pixels[..., 3], plate[..., 3]), name
    assert_depth(_working(run, "o_depth", 1001))
    assert_unit_normals(_working(run, "o_normals", 1001))
