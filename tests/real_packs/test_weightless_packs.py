"""The packages whose packs need no model weights, through their real packs: film_look_lut (ProPost) and
advanced_chroma_key (GeekyRemB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels
from tests.real_packs.plates import (
    FULL_PRECISION,
    HEIGHT,
    WIDTH,
    green_screen_plate,
    run_package,
    sequence,
    subject_plate,
)
from tests.real_packs.plugin import PacksComfyUI

# written into ProPost's LUT folder (ProPost reads ComfyUI/models/luts only): LUTs whose result a check predicts
INVERT_LUT = "comfyfarm_tier_invert.cube"
IDENTITY_LUT = "comfyfarm_tier_identity.cube"
FRAMES = (1001, 1002, 1003)


def write_lut(path: Path, *, invert: bool, size: int = 5) -> None:
    """A .cube 3D LUT that inverts each channel (1 - value) or leaves it, red fastest as the format orders it."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = 1 - np.linspace(0.0, 1.0, size) if invert else np.linspace(0.0, 1.0, size)
    rows = [f"{r:.6f} {g:.6f} {b:.6f}" for b in steps for g in steps for r in steps]
    path.write_text(f'TITLE "comfyfarm tier: {path.stem}"\nLUT_3D_SIZE {size}\n' + "\n".join(rows) + "\n")


def working(plate: str, pixels: np.ndarray) -> np.ndarray:
    """Pixels of a frame of this plate in the working space the workflow saw (sRGB), colour only."""
    return to_working(pixels, ColourPolicy.default_for(probe(plate.replace("####", "1001"))))[..., :3]


@pytest.fixture
def film_look(packs_comfyui: PacksComfyUI) -> PacksComfyUI:
    packs_comfyui.require("film_look_lut")
    luts = packs_comfyui.setup.comfyui_dir / "models" / "luts"
    write_lut(luts / INVERT_LUT, invert=True)
    write_lut(luts / IDENTITY_LUT, invert=False)
    return packs_comfyui


@pytest.mark.timeout(1800)
def test_film_look_grades_every_frame_through_the_lut_and_keeps_the_plate_alpha(
        film_look: PacksComfyUI, tmp_path: Path) -> None:
    plate = subject_plate(tmp_path / "plate")
    run = run_package(film_look, "film_look_lut", plate, tmp_path, f"lut={INVERT_LUT}")
    assert run.result.returncode == 0, run.result.stderr
    assert FULL_PRECISION in run.result.stderr.splitlines()
    assert run.files() == {"o": sequence("o", FRAMES)}
    for frame in FRAMES:
        source = read_pixels(plate.replace("####", str(frame)))
        graded = run.frame("o", frame)
        assert graded.shape == (HEIGHT, WIDTH, 4) and run.channels("o", frame) == ("R", "G", "B", "A")
        assert np.array_equal(graded[..., 3], source[..., 3])  # the plate's alpha, carried
        seen, result = working(plate, source), working(plate, graded)
        in_range = np.all((seen >= 0) & (seen <= 1), axis=-1)
        assert np.allclose(result[in_range], 1 - seen[in_range], atol=4e-3)  # the LUT, whole strength
        assert result.min() >= -1e-3 and result.max() <= 1 + 4e-3  # a display LUT gives display values


@pytest.mark.timeout(1800)
def test_film_look_at_half_strength_with_a_vignette_darkens_towards_the_corners(
        film_look: PacksComfyUI, tmp_path: Path) -> None:
    plate = subject_plate(tmp_path / "plate", frames=1)
    run = run_package(film_look, "film_look_lut", plate, tmp_path, f"lut={IDENTITY_LUT}", "strength=0.5",
                      "vignette=0.5")
    assert run.result.returncode == 0, run.result.stderr
    seen = working(plate, read_pixels(plate.replace("####", "1001")))
    assert seen.max() > 1  # the highlight: above the LUT's domain in the working space too
    result = working(plate, run.frame("o", 1001))
    graded = np.clip(seen, 0, 1)  # the identity LUT on what the LUT may see
    # the vignette: 1 - vignette x (the distance from the centre over the distance to a corner)
    centre = (HEIGHT // 2, WIDTH // 2)
    assert np.allclose(result[centre], graded[centre], atol=0.02)
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert np.allclose(result[corner], graded[corner] * 0.5, atol=0.02), corner


@pytest.mark.timeout(1800)
def test_chroma_key_matte_is_one_on_the_subject_and_zero_on_the_screen(
        packs_comfyui: PacksComfyUI, tmp_path: Path) -> None:
    packs_comfyui.require("advanced_chroma_key")
    plate, subject = green_screen_plate(tmp_path / "plate")
    run = run_package(packs_comfyui, "advanced_chroma_key", plate, tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    assert FULL_PRECISION in run.result.stderr.splitlines()
    assert run.files() == {"o": sequence("o", (1001, 1002))}
    inside = _shrunk(subject, 6)  # GeekyRemB's soft edge: about 5 pixels each side of the screen's border
    outside = _shrunk(~subject, 6)
    for frame in (1001, 1002):
        keyed = run.frame("o", frame)
        assert run.channels("o", frame) == ("R", "G", "B", "A") and keyed.shape == (HEIGHT, WIDTH, 4)
        source = read_pixels(plate.replace("####", str(frame)))
        assert np.allclose(keyed[..., :3], source[..., :3], atol=1e-3)  # the plate's colour, not premultiplied
        alpha = keyed[..., 3]
        assert alpha.min() >= 0 and alpha.max() <= 1
        assert alpha[inside].min() > 0.95, f"subject matte {alpha[inside].min():.3f}"
        assert alpha[outside].max() < 0.05, f"screen matte {alpha[outside].max():.3f}"


def _shrunk(region: np.ndarray, pixels: int) -> np.ndarray:
    """The region less a border of ``pixels`` (the matte's soft edge)."""
    inner = region.copy()
    for _ in range(pixels):
        inner[1:-1, 1:-1] &= inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
        inner[[0, -1], :] = False
        inner[:, [0, -1]] = False
    return inner
