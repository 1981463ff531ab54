"""rembg_matte, inspyrenet_matte and clearreality_upscale_4x through their real packs, with stand-in weights
where the real ones are not installed (the pictures mean nothing then; sizes, alpha and ranges are real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm_plugin.frames.image_io import read_pixels
from tests.real_packs.plates import FULL_PRECISION, HEIGHT, WIDTH, run_package, sequence, subject_plate
from tests.real_packs.plugin import PacksComfyUI

FRAMES = (1001, 1002)


def assert_matte_pass(run_folder_frame: np.ndarray, source: np.ndarray) -> None:
    """The plate's own colour (not premultiplied) with a matte in 0..1 that is neither empty nor solid."""
    assert run_folder_frame.shape == (HEIGHT, WIDTH, 4)
    assert np.allclose(run_folder_frame[..., :3], source[..., :3], atol=1e-3)
    alpha = run_folder_frame[..., 3]
    assert alpha.min() >= 0 and alpha.max() <= 1, (alpha.min(), alpha.max())
    assert alpha.max() - alpha.min() > 0.5, (alpha.min(), alpha.max())
    assert not np.allclose(alpha, source[..., 3], atol=1e-2)  # the workflow's matte, not the plate's alpha


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(("package", "model"), [
    ("rembg_matte", "isnet-general-use.onnx"),  # the segmentation as alpha
    ("inspyrenet_matte", "ckpt_base.pth"),  # its soft matte as alpha
])
def test_a_matte_package_writes_the_plate_with_its_matte_as_alpha(packs_comfyui: PacksComfyUI, tmp_path: Path,
                                                                 package: str, model: str) -> None:
    packs_comfyui.require(package, models=[model])
    plate = subject_plate(tmp_path / "plate", frames=len(FRAMES))
    run = run_package(packs_comfyui, package, plate, tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    assert FULL_PRECISION in run.result.stderr.splitlines()
    assert run.files() == {"o": sequence("o", FRAMES)}
    for frame in FRAMES:
        assert run.channels("o", frame) == ("R", "G", "B", "A")
        assert_matte_pass(run.frame("o", frame), read_pixels(plate.replace("####", str(frame))))


@pytest.mark.timeout(1800)
def test_inspyrenet_matte_grows_the_matte_by_the_pixels_asked(packs_comfyui: PacksComfyUI, tmp_path: Path) -> None:
    packs_comfyui.require("inspyrenet_matte", models=["ckpt_base.pth"])
    plate = subject_plate(tmp_path / "plate", frames=1)
    plain = run_package(packs_comfyui, "inspyrenet_matte", plate, tmp_path / "plain")
    grown = run_package(packs_comfyui, "inspyrenet_matte", plate, tmp_path / "grown", "grow=4")
    assert plain.result.returncode == 0 and grown.result.returncode == 0, grown.result.stderr
    before, after = plain.frame("o", 1001)[..., 3], grown.frame("o", 1001)[..., 3]
    assert np.all(after >= before - 1e-3)  # a grown matte covers at least what it covered
    assert after.mean() > before.mean() + 0.01


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(("output_size", "scale"), [("1.0", 4), ("0.5", 2)])
def test_clearreality_upscale_gives_the_plate_at_the_asked_size_in_display_range(
        packs_comfyui: PacksComfyUI, tmp_path: Path, output_size: str, scale: int) -> None:
    packs_comfyui.require("clearreality_upscale_4x", models=["4x-ClearRealityV1.pth"])
    plate = subject_plate(tmp_path / "plate", frames=len(FRAMES))
    run = run_package(packs_comfyui, "clearreality_upscale_4x", plate, tmp_path, f"output_size={output_size}")
    assert run.result.returncode == 0, run.result.stderr
    assert FULL_PRECISION in run.result.stderr.splitlines()
    assert run.files() == {"o": sequence("o", FRAMES)}
    for frame in FRAMES:
        upscaled = run.frame("o", frame)
        assert upscaled.shape[:2] == (HEIGHT * scale, WIDTH * scale)
        assert run.channels("o", frame)[:3] == ("R", "G", "B")
        assert np.isfinite(upscaled).all() and upscaled.std() > 0
