"""Half floats read as stored and written as OpenImageIO would round them: the full-precision path reads a
half plate without converting it and rounds its results to half in NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from farm_plugin.frames.image_io import read_pixels, write_frame


def write_with_oiio(path: Path, pixels: np.ndarray, channel_formats: list) -> None:
    uniform = all(channel_format == channel_formats[0] for channel_format in channel_formats)
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], channel_formats[0])
    if not uniform:
        spec.channelformats = channel_formats
    output = oiio.ImageOutput.create(str(path))
    assert output.open(str(path), spec) and output.write_image(pixels) and output.close()


def tricky_values() -> np.ndarray:
    """float32 values at and around half's limits: rounding ties, denormals, overflow, inf, NaN."""
    rng = np.random.default_rng(7)
    values = rng.standard_normal(64 * 64 * 4).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 6, 64 * 64 * 4)
    values[:14] = [65504, 65519, 65520, 1e9, -1e9, 6e-8, 3e-8, 2.98e-8, np.nan, np.inf, -np.inf, 0.0, -0.0,
                   1.0 + 2.0 ** -11]
    return values.reshape(64, 64, 4)


def test_a_half_plate_is_read_as_stored(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).uniform(-0.5, 4.0, (32, 48, 4)).astype(np.float16)
    plate = tmp_path / "plate.1001.exr"
    write_with_oiio(plate, pixels.astype(np.float32), [oiio.HALF] * 4)
    read = read_pixels(plate, keep_half=True)
    assert read.dtype == np.float16
    np.testing.assert_array_equal(read.view(np.uint16), pixels.view(np.uint16))
    np.testing.assert_array_equal(read_pixels(plate), pixels.astype(np.float32))  # as float32 by default


def test_float_and_mixed_plates_are_read_as_float32(tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).uniform(-0.5, 4.0, (16, 16, 4)).astype(np.float32)
    for name, formats in (("float", [oiio.FLOAT] * 4), ("mixed", [oiio.HALF] * 3 + [oiio.FLOAT])):
        plate = tmp_path / f"{name}.exr"
        write_with_oiio(plate, pixels, formats)
        read = read_pixels(plate, keep_half=True)
        assert read.dtype == np.float32, name
        if name == "float":
            np.testing.assert_array_equal(read, pixels)
        else:  # the half channels hold half values, the float one its own
            np.testing.assert_array_equal(read[..., 3], pixels[..., 3])
            np.testing.assert_array_equal(read[..., :3], pixels[..., :3].astype(np.float16).astype(np.float32))


def test_a_half_frame_holds_the_values_openimageio_would_have_written(tmp_path: Path) -> None:
    values = tricky_values()
    ours, theirs = tmp_path / "ours.exr", tmp_path / "theirs.exr"
    write_frame(ours, values, bit_depth="half")
    write_with_oiio(theirs, values, [oiio.HALF] * 4)  # OpenImageIO converts the float32 itself
    ours_half, theirs_half = read_pixels(ours, keep_half=True), read_pixels(theirs, keep_half=True)
    assert ours_half.dtype == theirs_half.dtype == np.float16
    np.testing.assert_array_equal(ours_half.view(np.uint16), theirs_half.view(np.uint16))
