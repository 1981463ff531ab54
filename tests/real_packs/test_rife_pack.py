"""rife_frame_interpolation through ComfyUI-Frame-Interpolation's RIFE VFI: frame counts and numbering across
chunk edges, sizes and ranges. With stand-in weights the in-betweens are not pictures of the motion; the
check that they lie between their neighbours runs with the real rife49.pth only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels
from tests.real_packs.plates import FULL_PRECISION, HEIGHT, WIDTH, Run, run_package, sequence, subject_plate
from tests.real_packs.plugin import PacksComfyUI

SOURCE = (1001, 1002, 1003, 1004)
OUTPUT = tuple(range(1001, 1008))  # source frame i -> 1001 + 2i, its in-between 1002 + 2i; none after the last


@pytest.fixture(scope="module")
def rife_run(packs_comfyui: PacksComfyUI, tmp_path_factory: pytest.TempPathFactory) -> Run:
    packs_comfyui.require("rife_frame_interpolation", models=["rife49.pth"])
    folder = tmp_path_factory.mktemp("rife")
    plate = subject_plate(folder / "plate", frames=len(SOURCE))
    run = run_package(packs_comfyui, "rife_frame_interpolation", plate, folder, options=["--chunk-size", "2"])
    assert run.result.returncode == 0, run.result.stderr
    assert FULL_PRECISION in run.result.stderr.splitlines()
    return run


def _working(plate: Path, pixels: np.ndarray) -> np.ndarray:
    return to_working(pixels, ColourPolicy.default_for(probe(plate)))[..., :3]


@pytest.mark.timeout(1800)
def test_rife_doubles_the_frames_across_chunk_edges_with_none_lost_or_made_twice(rife_run: Run) -> None:
    assert rife_run.files() == {"o": sequence("o", OUTPUT)}
    for frame in OUTPUT:
        assert rife_run.frame("o", frame).shape[:2] == (HEIGHT, WIDTH)


@pytest.mark.timeout(1800)
def test_rife_source_frames_come_back_as_the_plate_clipped_to_display_range(rife_run: Run) -> None:
    plate_folder = rife_run.output.parent / "plate"
    for index, source in enumerate(SOURCE):
        plate = read_pixels(plate_folder / f"plate.{source}.exr")
        seen = _working(plate_folder / f"plate.{source}.exr", plate)
        out = _working(plate_folder / f"plate.{source}.exr", rife_run.frame("o", 1001 + 2 * index))
        assert seen.max() > 1  # the plate's highlight
        assert np.allclose(out, np.clip(seen, 0, 1), atol=4e-3)


@pytest.mark.timeout(1800)
def test_rife_every_frame_is_in_display_range_so_highlights_do_not_flicker(rife_run: Run) -> None:
    plate = rife_run.output.parent / "plate" / "plate.1001.exr"
    for frame in OUTPUT:
        out = _working(plate, rife_run.frame("o", frame))
        assert out.min() >= -1e-3 and out.max() <= 1 + 4e-3, (frame, out.min(), out.max())


@pytest.mark.timeout(1800)
def test_rife_in_betweens_lie_between_their_neighbours(packs_comfyui: PacksComfyUI, rife_run: Run) -> None:
    if packs_comfyui.weights_used.get("rife49.pth") != "installed":
        pytest.skip("rife49.pth is a stand-in (random weights): its in-betweens are not pictures of the motion")
    for frame in OUTPUT[1::2]:
        before, middle, after = (rife_run.frame("o", f)[..., :3] for f in (frame - 1, frame, frame + 1))
        low, high = np.minimum(before, after), np.maximum(before, after)
        inside = (middle >= low - 0.05) & (middle <= high + 0.05)
        assert inside.mean() > 0.95, frame
