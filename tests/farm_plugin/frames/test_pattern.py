from __future__ import annotations

from pathlib import Path

import pytest

from farm_plugin.frames.errors import FramePatternError, MissingFramesError
from farm_plugin.frames.pattern import FramePattern


@pytest.mark.parametrize(
    ("text", "padding", "hashes", "printf"),
    [
        ("/shots/plate.####.exr", 4, "/shots/plate.####.exr", "/shots/plate.%04d.exr"),
        ("/shots/plate.%04d.exr", 4, "/shots/plate.####.exr", "/shots/plate.%04d.exr"),
        ("/shots/plate.%d.exr", 1, "/shots/plate.#.exr", "/shots/plate.%d.exr"),
        ("/shots/plate.$F4.exr", 4, "/shots/plate.####.exr", "/shots/plate.%04d.exr"),
        ("/shots/plate.$F.exr", 1, "/shots/plate.#.exr", "/shots/plate.%d.exr"),
        ("/shots/plate.@@@@.exr", 4, "/shots/plate.####.exr", "/shots/plate.%04d.exr"),
        ("/shots/plate_######.dpx", 6, "/shots/plate_######.dpx", "/shots/plate_%06d.dpx"),
    ],
)
def test_parse_every_token_form(text: str, padding: int, hashes: str, printf: str) -> None:
    pattern = FramePattern.parse(text)
    assert pattern.padding == padding
    assert pattern.directory == "/shots"
    assert pattern.to_hashes() == hashes
    assert pattern.to_printf() == printf
    assert str(pattern) == hashes


def test_parts_and_extension() -> None:
    pattern = FramePattern.parse("/jobs/42/output/shot010_comp_v003.####.EXR")
    assert pattern == FramePattern(directory="/jobs/42/output", head="shot010_comp_v003.", padding=4, tail=".EXR")
    assert pattern.extension == "EXR"
    assert FramePattern.parse("frames/####").extension == ""
    assert FramePattern.parse("####.png").directory == ""
    assert FramePattern.parse("/####.png").path(7) == "/0007.png"


@pytest.mark.parametrize(
    ("frame", "path"),
    [
        (1001, "/o/plate.1001.exr"),
        (7, "/o/plate.0007.exr"),
        (0, "/o/plate.0000.exr"),
        (123456, "/o/plate.123456.exr"),
        (-1, "/o/plate.-001.exr"),
        (-12, "/o/plate.-012.exr"),
        (-1234, "/o/plate.-1234.exr"),
    ],
)
def test_path_pads_like_deadline_and_nuke(frame: int, path: str) -> None:
    assert FramePattern.parse("/o/plate.####.exr").path(frame) == path


def test_path_without_padding() -> None:
    pattern = FramePattern.parse("/o/plate.%d.exr")
    assert pattern.path(7) == "/o/plate.7.exr"
    assert pattern.path(-7) == "/o/plate.-7.exr"


@pytest.mark.parametrize(
    ("text", "role", "message"),
    [
        (
            "x.exr",
            "output",
            "output pattern 'x.exr' has no frame number token: add #### (or %04d, $F4), e.g. x.####.exr",
        ),
        (
            "/plates/shot010.dpx",
            "source",
            "source pattern '/plates/shot010.dpx' has no frame number token: add #### (or %04d, $F4), "
            "e.g. /plates/shot010.####.dpx",
        ),
        (
            "/out/result",
            "output",
            "output pattern '/out/result' has no frame number token: add #### (or %04d, $F4), e.g. /out/result.####",
        ),
        (
            "a.####.%04d.exr",
            "output",
            "output pattern 'a.####.%04d.exr' has 2 frame number tokens (####, %04d): keep exactly one",
        ),
        (
            "/shots/####/plate.exr",
            "output",
            "output pattern '/shots/####/plate.exr' has its frame number token #### in the directory: "
            "put it in the file name, e.g. plate.####.exr",
        ),
    ],
)
def test_parse_errors(text: str, role: str, message: str) -> None:
    with pytest.raises(FramePatternError) as caught:
        FramePattern.parse(text, role=role)
    assert str(caught.value) == message


def _touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"x")


def test_existing_frames_match_exactly(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "plate.1001.exr",
        "plate.1003.exr",
        "plate.-001.exr",
        "plate.12345.exr",
        "plate.001.exr",  # padding 3, not 4
        "plate.00001.exr",  # padding 5
        "plate.1002.exr.tmp",
        ".plate.1004.exr.1a2b3c4d.tmp.exr",  # write_frame's temporary file
        "plate.1005.dpx",
        "other.1006.exr",
        "plate.10x7.exr",
    )
    (tmp_path / "plate.1008.exr").mkdir()
    pattern = FramePattern.parse(f"{tmp_path}/plate.####.exr")
    assert pattern.existing_frames() == [-1, 1001, 1003, 12345]


def test_missing_frames(tmp_path: Path) -> None:
    _touch(tmp_path, "plate.0001.exr", "plate.0003.exr")
    pattern = FramePattern.parse(f"{tmp_path}/plate.####.exr")
    assert pattern.missing_frames([4, 1, 2, 3, 2]) == [2, 4]
    assert pattern.missing_frames([1, 3]) == []


def test_missing_directory_has_no_frames(tmp_path: Path) -> None:
    pattern = FramePattern.parse(f"{tmp_path}/absent/plate.####.exr")
    assert pattern.existing_frames() == []
    assert pattern.missing_frames([1, 2]) == [1, 2]


def test_require_frames_names_the_missing_ones(tmp_path: Path) -> None:
    _touch(tmp_path, *(f"plate.{frame:04d}.exr" for frame in (1001, 1002, 1006)))
    pattern = FramePattern.parse(f"{tmp_path}/plate.####.exr")
    pattern.require_frames([1001, 1002])
    with pytest.raises(MissingFramesError) as caught:
        pattern.require_frames(range(1001, 1008))
    assert caught.value.frames == [1003, 1004, 1005, 1007]
    assert str(caught.value) == (
        f"{tmp_path}/plate.####.exr is missing 4 of 7 frames: 1003-1005,1007; "
        f"render or export them, or leave them out of the frame list"
    )
