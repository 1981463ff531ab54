"""What each output format keeps of a float plate and of an alpha: the bit depth a float plate's result gets in
another format, and RGBA through DPX, TIFF, PNG and EXR, written and read back with OpenImageIO."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from tests.farm_plugin.frames.foreign_exr import write_exr

SCENE_LINEAR = np.linspace(-0.5, 4.0, 9 * 48 * 3, dtype=np.float32).reshape(9, 48, 3)


def premultiplied_rgba(width: int = 48) -> np.ndarray:
    """RGBA in 0..1 with colour no brighter than its alpha (as EXR, TIFF and OpenImageIO keep it)."""
    rng = np.random.default_rng(5)
    alpha = rng.random((9, width, 1), dtype=np.float32)
    return np.concatenate([rng.random((9, width, 3), dtype=np.float32) * alpha, alpha], axis=2)


@pytest.mark.parametrize(("plate_name", "plate_depth", "out_name", "pixel_type"), [
    ("plate.exr", "half", "out.tif", "float"),  # OpenImageIO writes no half TIFF: float holds every half exactly
    ("plate.exr", "float", "out.tif", "float"),
    ("plate.tif", "float", "out.exr", "float"),
    ("plate.exr", "half", "out.exr", "half"),
    ("plate.tif", "float", "out.tif", "float"),
])
def test_a_float_plates_result_stays_float_in_a_format_that_holds_float(tmp_path: Path, plate_name: str,
                                                                        plate_depth: str, out_name: str,
                                                                        pixel_type: str) -> None:
    plate = write_frame(tmp_path / plate_name, SCENE_LINEAR, bit_depth=plate_depth)
    written = write_frame(tmp_path / out_name, read_pixels(plate.path), like=plate)
    assert written.pixel_type == pixel_type
    assert np.array_equal(read_pixels(written.path), read_pixels(plate.path))  # -0.5 and 4.0 included


def test_a_foreign_half_exrs_result_in_tiff_is_float_and_equal(tmp_path: Path) -> None:
    plate = probe(write_exr(tmp_path / "plate.exr", SCENE_LINEAR))
    written = write_frame(tmp_path / "out.tif", read_pixels(plate.path), like=plate)
    assert (written.format, written.pixel_type) == ("tiff", "float")
    assert np.array_equal(read_pixels(written.path), read_pixels(plate.path))


@pytest.mark.parametrize(("plate_name", "plate_depth", "out_name", "bit_depth"), [
    ("plate.dpx", "uint10", "out.tif", "uint16"),
    ("plate.png", "uint8", "out.tif", "uint16"),
    ("plate.tif", "uint16", "out.exr", "half"),
    ("plate.exr", "half", "out.dpx", "uint10"),  # the image layer writes what it is told; preflight refuses it
    ("plate.exr", "half", "out.png", "uint16"),
])
def test_other_results_keep_the_formats_default_depth(tmp_path: Path, plate_name: str, plate_depth: str,
                                                      out_name: str, bit_depth: str) -> None:
    plate = write_frame(tmp_path / plate_name, np.clip(SCENE_LINEAR, 0, 1), bit_depth=plate_depth)
    assert write_frame(tmp_path / out_name, np.clip(SCENE_LINEAR, 0, 1), like=plate).bit_depth == bit_depth


@pytest.mark.parametrize(("name", "bit_depth", "tolerance"), [
    ("out.exr", None, 1e-3),
    ("out.exr", "float", 0.0),
    ("out.tif", None, 0.5 / 65535 + 1e-6),
    ("out.tif", "float", 0.0),
    ("out.png", None, 1.5 / 65535),  # stored as straight colour, given back premultiplied
    ("out.png", "uint8", 1.5 / 255),
    ("out.dpx", None, 1.0 / 1023 + 1e-6),  # shifted from 16 bits, not rounded: one code off
    ("out.dpx", "uint12", 1.0 / 4095 + 1e-6),
    ("out.dpx", "uint16", 0.5 / 65535 + 1e-6),
])
def test_rgba_is_written_and_read_back_with_its_alpha(tmp_path: Path, name: str, bit_depth: Optional[str],
                                                      tolerance: float) -> None:
    pixels = premultiplied_rgba()
    written = write_frame(tmp_path / name, pixels, bit_depth=bit_depth)
    assert (written.channels, written.channel_names) == (4, ("R", "G", "B", "A"))
    back = read_pixels(written.path)
    assert back.shape == (9, 48, 4)
    assert np.abs(back - pixels).max() <= tolerance


def test_a_10_bit_rgba_dpx_is_right_on_disk_where_openimageios_reader_misreads_its_last_alpha(tmp_path: Path) -> None:
    """16 pixels a row are 64 samples: 21 words of three and one word with the last alpha alone. The file
    holds it (SMPTE 268 filled method A: three 10-bit samples a 32-bit word, the first in the high bits),
    but OpenImageIO 3.2's reader gives a wrong value for it (as in GafferHQ/gaffer#2125), so the test reads
    the file itself. Flame and Nuke read the file with their own readers; widths where 4 × width is not 1
    past a multiple of 3 (1920, 2048, 3840, 48 above) read back whole in OpenImageIO too."""
    pixels = premultiplied_rgba(width=16)
    written = write_frame(tmp_path / "out.dpx", pixels)
    data = Path(written.path).read_bytes()
    order = ">" if data[:4] == b"SDPX" else "<"
    (offset,) = struct.unpack(order + "I", data[4:8])
    words = np.frombuffer(data, dtype=np.dtype(order + "u4"), offset=offset)
    words_per_row = -(-16 * 4 // 3)
    rows = words[:9 * words_per_row].reshape(9, words_per_row)
    samples = np.stack([(rows >> shift) & 0x3FF for shift in (22, 12, 2)], axis=2).reshape(9, -1)[:, :16 * 4]
    assert np.abs(samples.reshape(9, 16, 4) - pixels * 1023).max() <= 1.0  # the last alpha of each row too
