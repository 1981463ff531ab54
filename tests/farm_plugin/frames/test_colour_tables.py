"""The colour tables (farm_plugin/frames/curves.py) against OpenColorIO's own conversion, which they replace
for speed: bit-identical for half plates, within ``TOLERANCE`` for float frames, never used for a transform
that is not one curve per channel, and alpha untouched."""

from __future__ import annotations

import numpy as np
import pytest

from farm_plugin.frames import colour
from farm_plugin.frames.colour import (
    SCENE_LINEAR_REC709,
    SRGB_ENCODED_REC709,
    TABLE_MIN_PIXELS,
    ColourPolicy,
    from_working,
    to_working,
)
from farm_plugin.frames.curves import TOLERANCE

DEFAULT = ColourPolicy(plate_space=SCENE_LINEAR_REC709)
SIDE = 512  # a 512x512 frame is converted by table (TABLE_MIN_PIXELS)


def exact(pixels: np.ndarray, source: str, target: str) -> np.ndarray:
    """OpenColorIO's conversion of the RGB, through OpenImageIO, with no table."""
    rgb = np.ascontiguousarray(pixels[..., :3], dtype=np.float32)
    return colour._convert_exact(rgb, colour.DEFAULT_CONFIG, source, target)


def every_half(rng: np.random.Generator) -> np.ndarray:
    """Each of the 65536 half values in each channel, in another order per channel, as a 512x512 frame."""
    values = np.arange(1 << 16, dtype=np.uint16)
    channels = [np.resize(rng.permutation(values), SIDE * SIDE) for _ in range(3)]
    return np.stack(channels, axis=-1).view(np.float16).reshape(SIDE, SIDE, 3)


def wide_floats(rng: np.random.Generator) -> np.ndarray:
    """float32 values over every binade, negative and positive, with 0, denormals, inf and NaN."""
    magnitude = np.float32(10.0) ** rng.uniform(-42, 38, SIDE * SIDE * 3).astype(np.float32)
    values = magnitude * rng.choice(np.array([-1.0, 1.0], np.float32), magnitude.size)
    values[:12] = [0.0, -0.0, 1e-45, -1e-45, 1.0, 0.04045, 0.0031308, np.inf, -np.inf, np.nan, 3.4e38, -3.4e38]
    return values.reshape(SIDE, SIDE, 3)


def test_frames_this_size_are_converted_by_table() -> None:
    assert SIDE * SIDE >= TABLE_MIN_PIXELS
    assert colour._curve(DEFAULT.config, SCENE_LINEAR_REC709, SRGB_ENCODED_REC709) is not None
    assert colour._curve(DEFAULT.config, SRGB_ENCODED_REC709, SCENE_LINEAR_REC709) is not None


@pytest.mark.parametrize("source,target", [(SCENE_LINEAR_REC709, SRGB_ENCODED_REC709),
                                           (SRGB_ENCODED_REC709, SCENE_LINEAR_REC709)])
def test_every_half_value_converts_bit_for_bit_as_opencolorio_does(source: str, target: str) -> None:
    pixels = every_half(np.random.default_rng(1))
    policy = ColourPolicy(plate_space=source, working_space=target)
    tabled = to_working(pixels, policy)
    assert tabled.dtype == np.float32
    np.testing.assert_array_equal(tabled, exact(pixels, source, target))  # NaN where NaN


@pytest.mark.parametrize("source,target", [(SCENE_LINEAR_REC709, SRGB_ENCODED_REC709),
                                           (SRGB_ENCODED_REC709, SCENE_LINEAR_REC709)])
def test_float_values_agree_with_opencolorio_to_the_tolerance(source: str, target: str) -> None:
    pixels = wide_floats(np.random.default_rng(2))
    tabled = to_working(pixels, ColourPolicy(plate_space=source, working_space=target))
    reference = exact(pixels, source, target)
    finite = np.isfinite(reference)
    np.testing.assert_array_equal(np.isfinite(tabled), finite)
    np.testing.assert_array_equal(tabled[~finite], reference[~finite])  # inf, NaN: converted exactly
    error = np.abs(tabled[finite] - reference[finite]) / np.maximum(np.abs(reference[finite]), 2.0 ** -24)
    assert error.max() <= TOLERANCE
    assert TOLERANCE <= 2.0 ** -10 / 40  # well inside one step of a half float


def test_a_half_plate_comes_back_unchanged_through_the_working_space() -> None:
    """Every finite half value, to sRGB and back, rounds to itself: a graph that changes nothing changes no
    pixel of a half plate."""
    pixels = every_half(np.random.default_rng(3))
    back = from_working(to_working(pixels, DEFAULT), DEFAULT).astype(np.float16)
    finite = np.isfinite(pixels)
    np.testing.assert_array_equal(back.view(np.uint16)[finite], pixels.view(np.uint16)[finite])


def test_alpha_is_not_converted() -> None:
    rng = np.random.default_rng(4)
    pixels = rng.uniform(-0.5, 4.0, (SIDE, SIDE, 4)).astype(np.float32)
    for source in (pixels, pixels.astype(np.float16)):
        converted = to_working(source, DEFAULT)
        np.testing.assert_array_equal(converted[..., 3], source[..., 3].astype(np.float32))
        assert np.abs(converted[..., :3] - source[..., :3]).max() > 0.1


def test_the_input_is_left_as_it_was() -> None:
    pixels = np.random.default_rng(5).uniform(-0.5, 4.0, (SIDE, SIDE, 3)).astype(np.float32)
    before = pixels.copy()
    from_working(pixels, DEFAULT)
    np.testing.assert_array_equal(pixels, before)


@pytest.mark.parametrize("source,target,why", [
    ("ACEScg", SRGB_ENCODED_REC709, "a matrix mixes the channels"),
    ("ACEScct", "ACEScg", "a curve too steep to interpolate within the tolerance"),
])
def test_a_transform_that_is_not_a_tabled_curve_goes_through_opencolorio(source: str, target: str,
                                                                        why: str) -> None:
    assert colour._curve(DEFAULT.config, source, target) is None, why
    pixels = np.random.default_rng(6).uniform(0.0, 1.0, (SIDE, SIDE, 3)).astype(np.float32)
    converted = to_working(pixels, ColourPolicy(plate_space=source, working_space=target))
    np.testing.assert_array_equal(converted, exact(pixels, source, target))
