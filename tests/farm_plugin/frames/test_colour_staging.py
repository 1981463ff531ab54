from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from farm_plugin.frames.colour import (
    SCENE_LINEAR_REC709,
    SRGB_ENCODED_REC709,
    ColourPolicy,
    from_working,
    to_working,
)
from farm_plugin.frames.errors import ColourSpaceError, MixedResolutionError
from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from farm_plugin.frames.staging import stage_frame, stage_window, unstage_result

from .test_image_io import EDITORIAL, ONE_HOUR_BCD, gradient, header, write_plate

EIGHT_BIT_STEP = 1.0 / 255


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding, written out independently of OCIO."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def eight_bit(path: Path) -> np.ndarray:
    image_input = oiio.ImageInput.open(str(path))
    pixels = image_input.read_image("uint8")
    image_input.close()
    return pixels


def comfyui_result(staged_png: Path, result_png: Path) -> Path:
    """What an identity workflow returns: ComfyUI's SaveImage writes the 8-bit RGB it was given."""
    result_png.write_bytes(staged_png.read_bytes())
    return result_png


# Policies


@pytest.mark.parametrize(
    ("name", "pixel_type", "bits", "plate_space"),
    [
        ("plate.exr", "half", None, SCENE_LINEAR_REC709),
        ("plate_float.exr", "float", None, SCENE_LINEAR_REC709),
        ("plate.dpx", "uint16", 10, SRGB_ENCODED_REC709),
        ("plate.tif", "uint16", 16, SRGB_ENCODED_REC709),
        ("plate.tif", "uint8", 8, SRGB_ENCODED_REC709),
        ("plate.png", "uint8", None, "srgb_rec709_scene"),  # OpenImageIO labels every PNG sRGB
        ("plate.jpg", "uint8", None, "srgb_rec709_scene"),
    ],
)
def test_default_policy(tmp_path: Path, name: str, pixel_type: str, bits: int, plate_space: str) -> None:
    info = probe(write_plate(tmp_path / name, gradient(), pixel_type, bits=bits))
    policy = ColourPolicy.default_for(info)
    assert policy == ColourPolicy(plate_space=plate_space, working_space=SRGB_ENCODED_REC709, config="ocio://default")
    assert policy.converts == info.is_float


def test_default_policy_follows_declared_colour_space(tmp_path: Path) -> None:
    attributes = [("oiio:ColorSpace", None, "ACEScg")]
    info = probe(write_plate(tmp_path / "plate.exr", gradient(), "half", attributes=attributes))
    assert info.metadata["oiio:ColorSpace"] == "lin_ap1_scene"  # OpenImageIO stores the interop id
    assert ColourPolicy.default_for(info).plate_space == "lin_ap1_scene"


def test_to_working_is_srgb_encoding_and_from_working_inverts_it() -> None:
    linear = gradient()
    policy = ColourPolicy(plate_space=SCENE_LINEAR_REC709)
    working = to_working(linear, policy)
    assert np.abs(working - srgb_encode(linear)).max() < 1e-4
    assert np.abs(from_working(working, policy) - linear).max() < 1e-4


def test_acescg_to_srgb_changes_primaries() -> None:
    grey = np.full((1, 1, 3), 0.18, dtype=np.float32)
    red = np.array([[[0.18, 0.0, 0.0]]], dtype=np.float32)
    policy = ColourPolicy(plate_space="ACEScg")
    assert np.abs(to_working(grey, policy) - srgb_encode(grey)).max() < 1e-3  # same white point
    converted = to_working(red, policy)
    assert converted[0, 0, 1] < 0.0  # ACEScg red lies outside Rec.709: negative green


def test_same_space_is_not_converted() -> None:
    pixels = gradient()
    policy = ColourPolicy(plate_space="sRGB", working_space=SRGB_ENCODED_REC709)
    assert not policy.converts
    assert np.array_equal(to_working(pixels, policy), pixels)


def test_unknown_colour_space_lists_valid_names() -> None:
    with pytest.raises(ColourSpaceError) as caught:
        to_working(gradient(), ColourPolicy(plate_space="Linear Rec709"))
    assert str(caught.value) == (
        "plate colour space 'Linear Rec709' is not in OCIO config 'ocio://default': use one of "
        "'Linear Rec.2020', 'Linear Rec.709 (sRGB)', 'Linear AdobeRGB', 'Linear P3-D65', "
        "'sRGB Encoded Rec.709 (sRGB)' (27 in all)"
    )
    with pytest.raises(ColourSpaceError) as caught:
        from_working(gradient(), ColourPolicy(plate_space="ACEScg", working_space="Display"))
    assert str(caught.value).startswith(
        "working colour space 'Display' is not in OCIO config 'ocio://default': use one of "
    )


def test_missing_config(tmp_path: Path) -> None:
    config = str(tmp_path / "config.ocio")
    with pytest.raises(ColourSpaceError) as caught:
        to_working(gradient(), ColourPolicy(plate_space="ACEScg", config=config))
    assert str(caught.value) == (
        f"OCIO config '{config}' cannot be loaded (Requested non-existent OCIO config \"{config}\"): name an "
        f"existing config.ocio file, or ocio://default for the built-in ACES config"
    )


def test_conversion_needs_rgb() -> None:
    with pytest.raises(ColourSpaceError) as caught:
        to_working(np.zeros((2, 2, 2), dtype=np.float32), ColourPolicy(plate_space="ACEScg"))
    assert str(caught.value) == (
        "cannot convert pixels of shape (2, 2, 2) from 'ACEScg' to 'sRGB Encoded Rec.709 (sRGB)': colour "
        "conversion needs (height, width, 3) RGB or (height, width, 4) RGBA"
    )


# Staging


def test_stage_frame_writes_8_bit_rgb_png_in_working_space(tmp_path: Path) -> None:
    linear = gradient(channels=4)  # RGBA: alpha is dropped
    linear[0, 0, :3] = (4.0, -0.5, 0.5)  # out of range: clipped
    source = write_plate(tmp_path / "plate.1001.exr", linear, "half")
    staged = tmp_path / "stage" / "1001.png"
    staged.parent.mkdir()
    info = stage_frame(source, staged)
    assert info == probe(source)
    spec = header(staged)
    assert (spec.width, spec.height, spec.nchannels, str(spec.format)) == (64, 36, 3, "uint8")
    expected = np.round(srgb_encode(linear[:, :, :3].astype(np.float16).astype(np.float32)) * 255)
    assert np.abs(eight_bit(staged).astype(np.float32) - expected).max() <= 1
    assert tuple(eight_bit(staged)[0, 0]) == (255, 0, 188)
    assert os.listdir(staged.parent) == ["1001.png"]


def test_round_trip_linear_exr(tmp_path: Path) -> None:
    """Linear EXR → 8-bit sRGB PNG → linear EXR returns the plate within the PNG's quantisation.

    Tolerance, in the working (sRGB-encoded) domain: half an 8-bit step from staging, plus the half
    float of source and result and OCIO's arithmetic, all within one 8-bit step (1/255).
    """
    linear = gradient(72, 128)
    source_path = write_plate(tmp_path / "plate.1001.exr", linear, "half", attributes=EDITORIAL)
    staged = tmp_path / "staged.png"
    source = stage_frame(source_path, staged)
    result = comfyui_result(staged, tmp_path / "ComfyUI_00001_.png")
    out = tmp_path / "out.1001.exr"
    written = unstage_result(result, out, source=source)
    assert (written.format, written.pixel_type, written.width, written.height) == ("openexr", "half", 128, 72)
    difference = np.abs(srgb_encode(read_pixels(out)) - srgb_encode(read_pixels(source_path)))
    assert difference.max() <= EIGHT_BIT_STEP
    assert difference.mean() <= EIGHT_BIT_STEP / 4


def test_round_trip_srgb_png_is_exact(tmp_path: Path) -> None:
    """An 8-bit sRGB PNG passes unconverted: the round trip is exact (tolerance 0)."""
    pixels = np.round(gradient() * 255) / 255
    source_path = write_plate(tmp_path / "plate.1001.png", pixels, "uint8")
    staged = tmp_path / "staged.png"
    source = stage_frame(source_path, staged)
    assert np.array_equal(eight_bit(staged), eight_bit(source_path))
    out = tmp_path / "out.1001.png"
    written = unstage_result(comfyui_result(staged, tmp_path / "result.png"), out, source=source)
    assert (written.format, written.pixel_type) == ("png", "uint8")
    assert np.array_equal(eight_bit(out), eight_bit(source_path))


def test_round_trip_16_bit_png_within_8_bit_step(tmp_path: Path) -> None:
    """A 16-bit PNG is staged at 8 bits: back within half an 8-bit step, written at 16 bits again."""
    source_path = write_plate(tmp_path / "plate.png", gradient(), "uint16")
    staged = tmp_path / "staged.png"
    source = stage_frame(source_path, staged)
    written = unstage_result(comfyui_result(staged, tmp_path / "result.png"), tmp_path / "out.png", source=source)
    assert written.pixel_type == "uint16"
    assert np.abs(read_pixels(written.path) - read_pixels(source_path)).max() <= 0.5 * EIGHT_BIT_STEP + 1e-4


def test_unstage_carries_exr_timecode(tmp_path: Path) -> None:
    source_path = write_plate(tmp_path / "plate.1001.exr", gradient(), "half", attributes=EDITORIAL)
    staged = tmp_path / "staged.png"
    source = stage_frame(source_path, staged)
    out = tmp_path / "out.1001.exr"
    unstage_result(comfyui_result(staged, tmp_path / "result.png"), out, source=source)
    spec = header(out)
    assert spec.getattribute("smpte:TimeCode") == (ONE_HOUR_BCD, 0)  # 01:00:00:00
    assert spec.getattribute("framesPerSecond") == (24, 1)
    assert spec.get_string_attribute("Artist") == "comp artist"
    assert spec.get_string_attribute("oiio:ColorSpace") == "lin_rec709_scene"
    assert probe(out).timecode == "01:00:00:00"


def test_unstage_dpx_stays_10_bit_dpx(tmp_path: Path) -> None:
    attributes = [("smpte:TimeCode", "timecode", (ONE_HOUR_BCD, 0)), ("dpx:FrameRate", None, 24.0)]
    source_path = write_plate(tmp_path / "plate.1001.dpx", gradient(), "uint16", bits=10, attributes=attributes)
    staged = tmp_path / "staged.png"
    source = stage_frame(source_path, staged)
    out = tmp_path / "out.1001.dpx"
    written = unstage_result(comfyui_result(staged, tmp_path / "result.png"), out, source=source)
    assert (written.format, written.bit_depth) == ("dpx", "uint10")
    spec = header(out)
    assert spec.get_int_attribute("oiio:BitsPerSample") == 10
    assert spec.get_string_attribute("dpx:TimeCode") == "01:00:00:00"
    assert spec.get_float_attribute("dpx:FrameRate") == 24.0
    # 8-bit staging (half a step) plus the DPX writer's 10-bit packing (one 10-bit step).
    difference = np.abs(read_pixels(out) - read_pixels(source_path))
    assert difference.max() <= 0.5 * EIGHT_BIT_STEP + 1.0 / 1023


def test_unstage_png_as_exr_gives_half_float(tmp_path: Path) -> None:
    source_path = write_plate(tmp_path / "plate.png", gradient(), "uint8")
    staged = tmp_path / "staged.png"
    source = stage_frame(source_path, staged)
    out = tmp_path / "out.exr"
    written = unstage_result(comfyui_result(staged, tmp_path / "result.png"), out, source=source, file_format="exr")
    assert (written.format, written.pixel_type) == ("openexr", "half")
    assert str(header(out).format) == "half"
    assert np.abs(read_pixels(out) - read_pixels(source_path)).max() <= 1e-3  # sRGB values, unconverted


def test_unstage_keeps_result_resolution(tmp_path: Path) -> None:
    source = probe(write_plate(tmp_path / "plate.exr", gradient(36, 64), "half", attributes=EDITORIAL))
    upscaled = tmp_path / "upscaled.png"
    write_frame(upscaled, gradient(72, 128), bit_depth="uint8")
    written = unstage_result(upscaled, tmp_path / "out.exr", source=source)
    assert (written.width, written.height, written.timecode) == (128, 72, "01:00:00:00")


def test_stage_window_writes_one_page_per_frame_in_order(tmp_path: Path) -> None:
    sources = []
    for index in range(3):
        grey = np.full((36, 64, 3), index / 2, dtype=np.float32)
        sources.append(write_plate(tmp_path / f"plate.{1001 + index}.png", grey, "uint8"))
    window = tmp_path / "window.tif"
    infos = stage_window(sources, window)
    assert [info.path for info in infos] == [str(path) for path in sources]
    image_input = oiio.ImageInput.open(str(window))
    pages = []
    while True:
        spec = image_input.spec()
        assert (spec.width, spec.height, spec.nchannels, str(spec.format)) == (64, 36, 3, "uint8")
        pages.append(int(image_input.read_image("uint8")[0, 0, 0]))
        if not image_input.seek_subimage(len(pages), 0):
            break
    image_input.close()
    assert pages == [0, 128, 255]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_stage_window_refuses_mixed_resolutions(tmp_path: Path) -> None:
    first = write_plate(tmp_path / "plate.1001.exr", gradient(36, 64), "half")
    second = write_plate(tmp_path / "plate.1002.exr", gradient(72, 128), "half")
    window = tmp_path / "window.tif"
    with pytest.raises(MixedResolutionError) as caught:
        stage_window([first, second], window)
    assert str(caught.value) == (
        f"frame '{second}' is 128x72 but '{first}' is 64x36: a window's frames must share one resolution; "
        f"conform the plates to one size"
    )
    assert not window.exists()
