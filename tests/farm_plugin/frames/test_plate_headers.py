"""Frame rate and timecode from plate headers in every form real writers leave them.

EXRs come from ``foreign_exr`` (byte for byte, any attribute name and type, as Nuke, Resolve or a studio
tool may write them) or from OpenImageIO with a raw attribute (what OpenImageIO-based tools write, e.g.
``FramesPerSecond`` as the text ``"24/1"``); DPXs from OpenImageIO's DPX writer, which fills the TV
header's frame rate and timecode fields.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import pytest

from farm_plugin.frames.image_io import parse_frame_rate, parse_timecode, probe, write_frame
from tests.farm_plugin.frames.foreign_exr import Attribute, write_exr
from tests.farm_plugin.frames.test_image_io import write_plate

PIXELS = np.linspace(-0.5, 4.0, 6 * 8 * 4, dtype=np.float32).reshape(6, 8, 4)
ONE_HOUR = 0x01000000


def oiio_plate(path: Path, attributes: Sequence[Tuple[str, Optional[str], Any]]) -> Path:
    """A plate from OpenImageIO's own writer (10-bit for DPX), with these raw header attributes."""
    dpx = path.suffix == ".dpx"
    return write_plate(path, np.clip(PIXELS[..., :3], 0, 1), "uint16" if dpx else "half", bits=10 if dpx else None,
                       attributes=attributes)


FOREIGN_EXRS = [
    # header attributes, fps, timecode
    ([("framesPerSecond", "rational", (24000, 1001)), ("timeCode", "timecode", (ONE_HOUR, 0))],
     24000 / 1001, "01:00:00:00"),
    ([("FramesPerSecond", "string", "24/1"), ("timeCode", "string", "01:00:00:00")], 24.0, "01:00:00:00"),
    ([("FramesPerSecond", "string", "23.976"), ("smpte:TimeCode", "string", "10:20:30:12")],
     24000 / 1001, "10:20:30:12"),
    ([("FramesPerSecond", "string", "24000/1001"), ("timecode", "string", "00:59:59;28")],
     24000 / 1001, "00:59:59;28"),
    ([("FramesPerSecond", "string", "25 fps"), ("TimeCode", "string", "01:02:03:04")], 25.0, "01:02:03:04"),
    ([("FramesPerSecond", "float", 29.97), ("nuke/input/timecode", "string", "01:00:00:00")],
     30000 / 1001, "01:00:00:00"),
    ([("FramesPerSecond", "int", 48)], 48.0, None),
    ([("FramesPerSecond", "double", 50.0), ("FramesPerSecond2", "string", "junk")], 50.0, None),
    ([("FramesPerSecond", "v2i", (30, 1))], 30.0, None),
    ([("nuke/input/frame_rate", "string", "23.976")], 24000 / 1001, None),
    ([], None, None),
]


@pytest.mark.parametrize(("attributes", "fps", "timecode"), FOREIGN_EXRS)
def test_exr_headers_from_other_writers(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                        attributes: Sequence[Attribute], fps: Optional[float],
                                        timecode: Optional[str]) -> None:
    plate = write_exr(tmp_path / "plate.1001.exr", PIXELS, attributes)
    with caplog.at_level(logging.WARNING):
        info = probe(plate)
    assert info.fps == pytest.approx(fps) if fps is not None else info.fps is None
    assert info.timecode == timecode
    assert caplog.records == []


def test_the_text_frame_rate_that_stopped_run_local(tmp_path: Path) -> None:
    # An OpenImageIO-based writer given "24/1" stores FramesPerSecond as a string attribute.
    plate = oiio_plate(tmp_path / "plate.1001.exr", [("FramesPerSecond", None, "24/1")])
    info = probe(plate)
    assert info.fps == 24.0 and info.metadata["FramesPerSecond"] == (24, 1)


@pytest.mark.parametrize(("attributes", "fps", "timecode"), [
    ([("dpx:FrameRate", None, 23.976), ("dpx:TimeCode", None, "01:00:00:12")], 24000 / 1001, "01:00:00:12"),
    ([("dpx:FrameRate", None, 25.0), ("smpte:TimeCode", "timecode", (0x10203012, 0))], 25.0, "10:20:30:12"),
    ([("dpx:TemporalFrameRate", None, 24.0)], 24.0, None),
    # The drop-frame flag (bit 6 of the frames byte) as DPX writers set it in the BCD field.
    ([("smpte:TimeCode", "timecode", (0x00595969, 0)), ("dpx:FrameRate", None, 29.97)], 30000 / 1001, "00:59:59;29"),
    ([], None, None),
])
def test_dpx_headers(tmp_path: Path, attributes: Sequence[Tuple[str, Optional[str], Any]], fps: Optional[float],
                     timecode: Optional[str]) -> None:
    info = probe(oiio_plate(tmp_path / "plate.1001.dpx", attributes))
    assert info.fps == pytest.approx(fps) if fps is not None else info.fps is None
    assert info.timecode == timecode


@pytest.mark.parametrize(("attributes", "warning"), [
    ([("FramesPerSecond", "string", "abc")], "FramesPerSecond holds 'abc', which is not a frame rate"),
    ([("FramesPerSecond", "rational", (24, 0))], "FramesPerSecond holds (24, 0), which is not a frame rate"),
    ([("FramesPerSecond", "float", -24.0)], "FramesPerSecond holds -24.0, which is not a frame rate"),
    ([("timecode", "string", "junk")], "timecode holds 'junk', which is not a timecode"),
    ([("timeCode", "string", "25:00:00:00")], "timeCode holds '25:00:00:00', which is not a timecode"),
    ([("smpte:TimeCode", "timecode", (0xFFFFFFFF, 0))],
     "smpte:TimeCode holds (4294967295, 0), which is not a timecode"),
])
def test_a_value_that_is_not_understood_is_named_and_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                              attributes: Sequence[Attribute],
                                                              warning: str) -> None:
    plate = write_exr(tmp_path / "plate.1001.exr", PIXELS, attributes)
    with caplog.at_level(logging.WARNING):
        info = probe(plate)
    assert info.fps is None and info.timecode is None
    assert [record.getMessage() for record in caplog.records] == [
        f"plate '{plate}': header attribute {warning}: going on without it"]


def test_a_bad_value_is_said_once_per_folder_and_a_good_one_later_in_the_list_is_used(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    attributes = [("FramesPerSecond", "string", "n/a"), ("dpx:FrameRate", "float", 25.0)]
    plates = [write_exr(tmp_path / f"plate.{frame}.exr", PIXELS, attributes) for frame in (1001, 1002, 1003)]
    with caplog.at_level(logging.WARNING):
        infos = [probe(plate) for plate in plates]
    assert [info.fps for info in infos] == [25.0] * 3
    assert [record.getMessage() for record in caplog.records] == [
        f"plate '{plates[0]}': header attribute FramesPerSecond holds 'n/a', which is not a frame rate: going on "
        "without it"]


@pytest.mark.parametrize("suffix", [".exr", ".dpx"])
def test_a_text_header_is_written_back_as_the_typed_timecode_and_rate(tmp_path: Path, suffix: str) -> None:
    source = write_exr(tmp_path / "plate.1001.exr", PIXELS,
                       [("FramesPerSecond", "string", "24000/1001"), ("timeCode", "string", "01:00:10;02")])
    result = write_frame(tmp_path / f"out.1001{suffix}", PIXELS[..., :3], like=probe(source))
    assert result.timecode == "01:00:10;02"
    assert result.fps == pytest.approx(24000 / 1001)


@pytest.mark.parametrize(("value", "rate"), [
    ((24, 1), (24, 1)), ((48, 2), (24, 1)), ("24/1", (24, 1)), (" 24000/1001 ", (24000, 1001)),
    ("23.976", (24000, 1001)), (23.976, (24000, 1001)), (59.94, (60000, 1001)), (25, (25, 1)), ("30", (30, 1)),
    ("", None), ("24/0", None), ("0", None), (True, None), (None, None), ("nan", None), (float("inf"), None),
    ((1, 2, 3), None), ("1e9", None),
])
def test_parse_frame_rate(value: Any, rate: Optional[Tuple[int, int]]) -> None:
    assert parse_frame_rate(value) == rate


@pytest.mark.parametrize(("value", "timecode"), [
    ((ONE_HOUR, 7), (ONE_HOUR, 7)), (ONE_HOUR, (ONE_HOUR, 0)), ("01:00:00:00", (ONE_HOUR, 0)),
    ("01:00:00;02", (ONE_HOUR | 0x40 | 0x02, 0)), ("01:00:00.02", (ONE_HOUR | 0x40 | 0x02, 0)),
    ("1:00:00", None), ("", None), ((0x0100000A, 0), None), ((0xFFFFFFFF, 0xFFFFFFFF), None), (None, None),
])
def test_parse_timecode(value: Any, timecode: Optional[Tuple[int, int]]) -> None:
    assert parse_timecode(value) == timecode
