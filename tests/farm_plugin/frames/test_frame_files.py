"""The full-precision staging: plates as float32 frame files for comfyfarm's nodes, and results back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm_plugin.frames.errors import MixedResolutionError, PlateError
from farm_plugin.frames.image_io import read_pixels, write_frame
from farm_plugin.frames.staging import read_frame_file, stage_frame_files, unstage_pixels
from tests.farm_plugin.frames.foreign_exr import write_exr


def rgba_plate(height: int = 6, width: int = 8) -> np.ndarray:
    """Scene-linear RGBA with values from -0.5 to 4.0, and an alpha ramp from 0 to 1."""
    pixels = np.linspace(-0.5, 4.0, height * width * 4, dtype=np.float32).reshape(height, width, 4)
    pixels[..., 3] = np.linspace(0.0, 1.0, height * width, dtype=np.float32).reshape(height, width)
    return pixels


@pytest.mark.parametrize("suffix", [".exr", ".tif"])
def test_an_rgba_plate_goes_through_unclamped_with_its_alpha(tmp_path: Path, suffix: str) -> None:
    plate = tmp_path / f"plate.1001{suffix}"
    write_frame(plate, rgba_plate(), bit_depth="float",
                metadata={"smpte:TimeCode": (0x01000000, 0), "FramesPerSecond": (24, 1)})
    (staged,), (info,) = stage_frame_files([plate], tmp_path / "stage", "1001")
    assert staged == tmp_path / "stage" / "1001.00000.npy"
    frame = np.load(staged)
    assert frame.dtype == np.dtype("<f4") and frame.shape == (6, 8, 4)
    assert frame[..., :3].max() > 1.0 and frame[..., :3].min() < 0.0  # nothing clamped in the working space
    result = unstage_pixels(read_frame_file(staged), tmp_path / f"out.1001{suffix}", source=info)
    assert result.channel_names == ("R", "G", "B", "A")
    if suffix == ".exr":  # TIFF has no timecode field
        assert (result.timecode, result.fps) == ("01:00:00:00", 24.0)
    # float32 OCIO maths to the working space and back: within 5e-5 of the value (2e-4 at 4.0)
    assert np.allclose(read_pixels(result.path), read_pixels(plate), rtol=5e-5, atol=1e-6)


def test_a_foreign_half_exr_comes_back_equal_within_half_precision(tmp_path: Path) -> None:
    plate = write_exr(tmp_path / "plate.1001.exr", rgba_plate(), [("timeCode", "string", "10:00:00:00")])
    (staged,), (info,) = stage_frame_files([plate], tmp_path, "u")
    result = unstage_pixels(read_frame_file(staged), tmp_path / "out.1001.exr", source=info)
    assert (result.pixel_type, result.timecode) == ("half", "10:00:00:00")
    assert np.array_equal(read_pixels(result.path), read_pixels(plate))


def test_an_rgb_plate_stays_rgb_and_a_window_keeps_its_order(tmp_path: Path) -> None:
    plates = []
    for index in range(3):
        plates.append(tmp_path / f"plate.{1001 + index}.exr")
        write_frame(plates[-1], np.full((4, 5, 3), float(index), np.float32))
    files, infos = stage_frame_files(plates, tmp_path / "stage", "w")
    assert [f.name for f in files] == ["w.00000.npy", "w.00001.npy", "w.00002.npy"]
    assert [np.load(f).shape for f in files] == [(4, 5, 3)] * 3
    assert [info.path for info in infos] == [str(p) for p in plates]
    assert [float(np.load(f).mean()) for f in files] == sorted(float(np.load(f).mean()) for f in files)


def test_frames_of_different_sizes_are_refused(tmp_path: Path) -> None:
    write_frame(tmp_path / "a.1001.exr", np.zeros((4, 5, 3), np.float32))
    write_frame(tmp_path / "a.1002.exr", np.zeros((4, 6, 3), np.float32))
    with pytest.raises(MixedResolutionError, match="a window's frames must share one resolution"):
        stage_frame_files([tmp_path / "a.1001.exr", tmp_path / "a.1002.exr"], tmp_path, "w")


def test_a_result_that_is_not_a_frame_file_is_named(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(PlateError) as caught:
        read_frame_file(tmp_path / "bad.npy")
    assert str(caught.value) == (f"ComfyUI's result '{tmp_path / 'bad.npy'}' holds float32 pixels of shape (4, 5), "
                                 "not float32 (height, width, 3 or 4): run the frame again")
    with pytest.raises(PlateError, match="the file is missing or damaged; run the frame again"):
        read_frame_file(tmp_path / "absent.npy")
