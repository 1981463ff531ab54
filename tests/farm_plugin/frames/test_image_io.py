from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Tuple

import numpy as np
import OpenImageIO as oiio
import pytest

from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import (
    probe,
    read_pixels,
    timecode_bcd,
    timecode_text,
    verify_frame,
    write_frame,
)

ONE_HOUR_BCD = 0x01000000  # 01:00:00:00
Attribute = Tuple[str, Optional[str], Any]


def gradient(height: int = 36, width: int = 64, channels: int = 3) -> np.ndarray:
    """Deterministic pixels covering 0..1 in every channel."""
    ramp = np.linspace(0.0, 1.0, height * width * channels, dtype=np.float32)
    return np.random.default_rng(7).permutation(ramp).reshape(height, width, channels)


def write_plate(
    path: Path,
    pixels: np.ndarray,
    pixel_type: str,
    *,
    bits: Optional[int] = None,
    attributes: Sequence[Attribute] = (),
) -> Path:
    """Write a plate with OpenImageIO directly, the way another application would."""
    height, width, channels = pixels.shape
    spec = oiio.ImageSpec(width, height, channels, pixel_type)
    if bits is not None:
        spec.attribute("oiio:BitsPerSample", bits)
    for name, type_name, value in attributes:
        if type_name is None:
            spec.attribute(name, value)
        else:
            spec.attribute(name, oiio.TypeDesc(type_name), value)
    output = oiio.ImageOutput.create(str(path))
    assert output.open(str(path), spec), output.geterror()
    assert output.write_image(np.ascontiguousarray(pixels, dtype=np.float32)), output.geterror()
    assert output.close()
    return path


def header(path: Path) -> oiio.ImageSpec:
    """The header as OpenImageIO reads it, independently of the code under test."""
    image_input = oiio.ImageInput.open(str(path))
    assert image_input is not None, oiio.geterror()
    spec = image_input.spec()
    image_input.close()
    return spec


EDITORIAL = [
    ("smpte:TimeCode", "timecode", (ONE_HOUR_BCD, 0)),
    ("FramesPerSecond", "rational", (24, 1)),
    ("Artist", None, "comp artist"),
    ("Copyright", None, "Studio 2024"),
    ("ImageDescription", None, "shot010 plate"),
]

PLATES = [
    # file name, pixel type, bits per sample written, format, pixel type read, bits read, bit depth
    ("plate.exr", "half", None, "openexr", "half", 16, "half"),
    ("plate_float.exr", "float", None, "openexr", "float", 32, "float"),
    ("plate.dpx", "uint16", 10, "dpx", "uint16", 10, "uint10"),
    ("plate.tif", "uint16", 16, "tiff", "uint16", 16, "uint16"),
    ("plate8.png", "uint8", None, "png", "uint8", 8, "uint8"),
    ("plate16.png", "uint16", None, "png", "uint16", 16, "uint16"),
    ("plate.jpg", "uint8", None, "jpeg", "uint8", 8, "uint8"),
]


@pytest.mark.parametrize(("name", "written", "bits", "file_format", "pixel_type", "read_bits", "depth"), PLATES)
def test_probe_reads_each_plate_format(
    tmp_path: Path,
    name: str,
    written: str,
    bits: Optional[int],
    file_format: str,
    pixel_type: str,
    read_bits: int,
    depth: str,
) -> None:
    path = write_plate(tmp_path / name, gradient(), written, bits=bits)
    info = probe(path)
    assert (info.path, info.width, info.height, info.channels) == (str(path), 64, 36, 3)
    assert info.channel_names == ("R", "G", "B")
    assert (info.format, info.pixel_type, info.bits_per_sample, info.bit_depth) == (
        file_format,
        pixel_type,
        read_bits,
        depth,
    )


def test_probe_carries_exr_editorial_metadata(tmp_path: Path) -> None:
    path = write_plate(tmp_path / "plate.exr", gradient(), "half", attributes=EDITORIAL)
    info = probe(path)
    assert info.timecode == "01:00:00:00"
    assert info.fps == 24.0
    assert info.metadata["smpte:TimeCode"] == (ONE_HOUR_BCD, 0)
    assert info.metadata["FramesPerSecond"] == (24, 1)
    assert info.metadata["Artist"] == "comp artist"
    assert info.metadata["Copyright"] == "Studio 2024"  # EXR's "owner"
    assert info.metadata["ImageDescription"] == "shot010 plate"  # EXR's "comments"
    assert info.metadata["PixelAspectRatio"] == 1.0


def test_probe_reads_openexr_frame_rate_name(tmp_path: Path) -> None:
    # Nuke and Flame write OpenEXR's standard framesPerSecond.
    attributes = [("framesPerSecond", "rational", (24000, 1001))]
    info = probe(write_plate(tmp_path / "plate.exr", gradient(), "half", attributes=attributes))
    assert info.metadata["FramesPerSecond"] == (24000, 1001)


@pytest.mark.parametrize(("rate", "rational"), [(24.0, (24, 1)), (23.976, (24000, 1001)), (29.97, (30000, 1001))])
def test_probe_reads_dpx_timecode_and_frame_rate(tmp_path: Path, rate: float, rational: Tuple[int, int]) -> None:
    attributes = [("smpte:TimeCode", "timecode", (ONE_HOUR_BCD, 0)), ("dpx:FrameRate", None, rate)]
    info = probe(write_plate(tmp_path / "plate.dpx", gradient(), "uint16", bits=10, attributes=attributes))
    assert info.timecode == "01:00:00:00"
    assert info.metadata["FramesPerSecond"] == rational


def test_probe_reads_timecode_written_as_text(tmp_path: Path) -> None:
    attributes = [("timecode", None, "10:20:30:12")]
    info = probe(write_plate(tmp_path / "plate.exr", gradient(), "half", attributes=attributes))
    assert info.timecode == "10:20:30:12"


def test_probe_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.0001.exr"
    with pytest.raises(PlateError) as caught:
        probe(path)
    assert str(caught.value) == (f"plate '{path}' does not exist: check the path and that its storage is mounted here")
    assert caught.value.path == str(path)


def test_probe_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.0001.exr"
    path.write_text("not an image")
    with pytest.raises(PlateError) as caught:
        probe(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read plate '{path}': ")
    assert message.endswith(
        ": check that it is an image file OpenImageIO reads (EXR, DPX, TIFF, PNG, JPEG) and that it is complete"
    )


@pytest.mark.parametrize(
    ("name", "written", "bits", "tolerance"),
    [
        ("plate.exr", "half", None, 1e-3),
        ("plate_float.exr", "float", None, 0.0),
        # OpenImageIO's DPX writer packs 10 bits by shifting the 16-bit value (x * 65535 >> 6), not by
        # rounding x * 1023: up to one code value off, near white.
        ("plate.dpx", "uint16", 10, 1.0 / 1023 + 1e-6),
        ("plate.tif", "uint16", 16, 0.5 / 65535 + 1e-6),
        ("plate8.png", "uint8", None, 0.5 / 255 + 1e-6),
        ("plate16.png", "uint16", None, 0.5 / 65535 + 1e-6),
    ],
)
def test_read_pixels_returns_float_height_width_channels(
    tmp_path: Path, name: str, written: str, bits: Optional[int], tolerance: float
) -> None:
    pixels = gradient()
    path = write_plate(tmp_path / name, pixels, written, bits=bits)
    read = read_pixels(path)
    assert read.dtype == np.float32
    assert read.shape == (36, 64, 3)
    assert np.abs(read - pixels).max() <= tolerance


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("name", "written", "bits"),
    [
        ("plate.exr", "half", None),
        ("plate_float.exr", "float", None),
        ("plate.png", "uint8", None),
        ("plate.dpx", "uint16", 10),
        ("plate.tif", "uint16", 16),
        ("plate.jpg", "uint8", None),
    ],
)
def test_truncated_plate_raises_plate_error(tmp_path: Path, name: str, written: str, bits: Optional[int]) -> None:
    noise = np.random.default_rng(3).random((256, 256, 3), dtype=np.float32)  # incompressible
    path = _truncate(write_plate(tmp_path / name, noise, written, bits=bits))
    # The header survives: only decoding the pixels finds the damage.
    assert probe(path).width == 256
    with pytest.raises(PlateError) as caught:
        read_pixels(path)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"cannot read the pixels of plate '{path}': ")
    assert str(caught.value).endswith(": the file is incomplete or damaged; export or render it again")
    with pytest.raises(PlateError):
        verify_frame(path, width=256, height=256, channels=3)


def test_write_exr_like_exr_keeps_timecode_rate_and_header(tmp_path: Path) -> None:
    source = probe(write_plate(tmp_path / "plate.1001.exr", gradient(), "half", attributes=EDITORIAL))
    out = tmp_path / "out.1001.exr"
    written = write_frame(out, gradient(), like=source)
    assert written.timecode == "01:00:00:00"
    spec = header(out)
    assert str(spec.format) == "half"
    assert spec.get_string_attribute("compression") == "zip"
    assert spec.getattribute("smpte:TimeCode") == (ONE_HOUR_BCD, 0)
    assert spec.getattribute("framesPerSecond") == (24, 1)  # OpenEXR's standard attribute name
    assert spec.get_string_attribute("Artist") == "comp artist"
    assert spec.get_string_attribute("Copyright") == "Studio 2024"
    assert spec.get_string_attribute("ImageDescription") == "shot010 plate"


def test_write_dpx_like_dpx_stays_10_bit_with_timecode(tmp_path: Path) -> None:
    attributes = [("smpte:TimeCode", "timecode", (ONE_HOUR_BCD, 0)), ("dpx:FrameRate", None, 24.0)]
    source = probe(write_plate(tmp_path / "plate.1001.dpx", gradient(), "uint16", bits=10, attributes=attributes))
    out = tmp_path / "out.1001.dpx"
    write_frame(out, gradient(), like=source)
    spec = header(out)
    assert str(spec.format) == "uint16"
    assert spec.get_int_attribute("oiio:BitsPerSample") == 10
    assert spec.getattribute("smpte:TimeCode") == (ONE_HOUR_BCD, 0)
    assert spec.get_string_attribute("dpx:TimeCode") == "01:00:00:00"
    assert spec.get_float_attribute("dpx:FrameRate") == 24.0
    assert np.abs(read_pixels(out) - gradient()).max() <= 1.0 / 1023 + 1e-6  # see the 10-bit packing above


def test_write_exr_timecode_into_dpx(tmp_path: Path) -> None:
    source = probe(write_plate(tmp_path / "plate.exr", gradient(), "half", attributes=EDITORIAL))
    written = write_frame(tmp_path / "out.dpx", gradient(), like=source)
    assert (written.format, written.bit_depth, written.timecode, written.fps) == ("dpx", "uint10", "01:00:00:00", 24.0)


@pytest.mark.parametrize(
    ("name", "bit_depth", "pixel_type", "bits"),
    [
        ("out.exr", None, "half", 16),
        ("out.exr", "float", "float", 32),
        ("out.dpx", None, "uint16", 10),
        ("out.dpx", "uint12", "uint16", 12),
        ("out.dpx", "uint16", "uint16", 16),
        ("out.tif", None, "uint16", 16),
        ("out.tif", "uint8", "uint8", 8),
        ("out.png", None, "uint16", 16),
        ("out.png", "uint8", "uint8", 8),
        ("out.jpg", None, "uint8", 8),
    ],
)
def test_write_bit_depths(tmp_path: Path, name: str, bit_depth: Optional[str], pixel_type: str, bits: int) -> None:
    written = write_frame(tmp_path / name, gradient(), bit_depth=bit_depth)
    assert (written.pixel_type, written.bits_per_sample) == (pixel_type, bits)


def test_write_keeps_like_channel_names_and_accepts_grey(tmp_path: Path) -> None:
    rgba = gradient(channels=4)
    source = probe(write_plate(tmp_path / "plate.exr", rgba, "half"))
    assert write_frame(tmp_path / "out.exr", rgba, like=source).channel_names == ("R", "G", "B", "A")
    grey = write_frame(tmp_path / "grey.png", gradient(channels=1)[:, :, 0], bit_depth="uint8")
    assert (grey.width, grey.height, grey.channels) == (64, 36, 1)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "out.png",
            {"file_format": "exr"},
            "cannot write '{dir}/out.png' as exr: its extension says png; name it out.exr",
        ),
        (
            "out.exr",
            {"file_format": "cineon"},
            "cannot write '{dir}/out.exr': file format 'cineon' is not one of exr, dpx, tiff, png, jpeg",
        ),
        (
            "out.raw",
            {},
            "cannot write '{dir}/out.raw': '.raw' is not a plate format; name it .exr, .dpx, .tif, .png or .jpg",
        ),
        (
            "out",
            {},
            "cannot write '{dir}/out': 'no extension' is not a plate format; name it .exr, .dpx, .tif, .png or .jpg",
        ),
        (
            "out.png",
            {"bit_depth": "half"},
            "cannot write '{dir}/out.png': bit depth 'half' is not available for png; use uint8 or uint16",
        ),
        (
            "out.jpg",
            {"bit_depth": "uint16"},
            "cannot write '{dir}/out.jpg': bit depth 'uint16' is not available for jpg; use uint8",
        ),
    ],
)
def test_write_refuses_bad_formats(tmp_path: Path, name: str, options: dict, message: str) -> None:
    with pytest.raises(PlateError) as caught:
        write_frame(tmp_path / name, gradient(), **options)
    assert str(caught.value) == message.format(dir=tmp_path)
    assert os.listdir(tmp_path) == []


def test_write_refuses_bad_pixel_shape(tmp_path: Path) -> None:
    with pytest.raises(PlateError) as caught:
        write_frame(tmp_path / "out.exr", np.zeros(10, dtype=np.float32))
    assert str(caught.value) == (
        f"cannot write '{tmp_path}/out.exr': pixels have shape (10,), expected (height, width, channels)"
    )


def test_write_is_atomic_and_replaces_the_frame(tmp_path: Path) -> None:
    out = tmp_path / "out.1001.exr"
    out.write_bytes(b"previous attempt")
    write_frame(out, gradient())
    assert os.listdir(tmp_path) == ["out.1001.exr"]
    assert np.abs(read_pixels(out) - gradient()).max() <= 1e-3


def test_failed_write_leaves_no_temp_file_and_keeps_existing_frame(tmp_path: Path) -> None:
    out = tmp_path / "out.1001.png"
    out.write_bytes(b"existing frame")
    # OpenImageIO creates the temporary file's writer, then refuses five channels for PNG.
    with pytest.raises(PlateError) as caught:
        write_frame(out, gradient(channels=5))
    assert str(caught.value) == (
        f"cannot write '{out}': png does not support 5-channel images: check that the directory is writable "
        f"and has free space, and that the format takes these pixels"
    )
    assert os.listdir(tmp_path) == ["out.1001.png"]
    assert out.read_bytes() == b"existing frame"


def test_write_into_missing_directory(tmp_path: Path) -> None:
    out = tmp_path / "absent" / "out.1001.exr"
    with pytest.raises(PlateError) as caught:
        write_frame(out, gradient())
    assert str(caught.value) == (
        f"cannot write '{out}': directory '{tmp_path / 'absent'}' does not exist: create it first"
    )


@contextmanager
def read_only_directory(path: Path) -> Iterator[None]:
    """``path`` made unwritable: by its mode, or for root (who ignores modes) by the immutable flag."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root, and this file system cannot make a directory immutable")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_write_into_read_only_directory(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    out = directory / "out.1001.exr"
    out.write_bytes(b"existing frame")
    with read_only_directory(directory), pytest.raises(PlateError) as caught:
        write_frame(out, gradient())
    message = str(caught.value)
    assert message.startswith(f"cannot write '{out}': Could not open ")
    assert message.endswith(
        ": check that the directory is writable and has free space, and that the format takes these pixels"
    )
    assert os.listdir(directory) == ["out.1001.exr"]
    assert out.read_bytes() == b"existing frame"


def test_verify_frame(tmp_path: Path) -> None:
    path = write_plate(tmp_path / "out.exr", gradient(), "half")
    verify_frame(path, width=64, height=36, channels=3)
    with pytest.raises(PlateError) as caught:
        verify_frame(path, width=128, height=72, channels=4)
    assert str(caught.value) == (
        f"frame '{path}' is not what was rendered: it is 64x36, expected 128x72; it has 3 channels, "
        f"expected 4: delete it so that its task renders it again"
    )
    with pytest.raises(PlateError) as caught:
        verify_frame(path, width=64, height=36, channels=4)
    assert str(caught.value) == (
        f"frame '{path}' is not what was rendered: it has 3 channels, expected 4: delete it so that its task "
        f"renders it again"
    )


@pytest.mark.parametrize(
    ("text", "bcd"),
    [("01:00:00:00", 0x01000000), ("23:59:59:29", 0x23595929), ("10:20:30;12", 0x10203052)],
)
def test_timecode_conversions(text: str, bcd: int) -> None:
    assert timecode_bcd(text) == bcd
    assert timecode_text(bcd) == text


def test_timecode_bcd_rejects_text() -> None:
    with pytest.raises(ValueError) as caught:
        timecode_bcd("noon")
    assert str(caught.value) == "timecode 'noon' is not HH:MM:SS:FF"
    with pytest.raises(ValueError) as caught:
        timecode_bcd("24:00:00:00")
    assert str(caught.value) == ("timecode '24:00:00:00' is out of range: HH below 24, MM and SS below 60, FF below 40")
