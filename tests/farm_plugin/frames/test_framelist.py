from __future__ import annotations

import random

import pytest

from farm_plugin.frames.errors import FrameListError
from farm_plugin.frames.framelist import MAX_FRAMES, chunk_frames, format_frame_list, parse_frame_list


@pytest.mark.parametrize(
    ("text", "frames"),
    [
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("5", [5]),
        ("1-10x2", [1, 3, 5, 7, 9]),
        ("1-10X3", [1, 4, 7, 10]),
        ("1,5,10-12", [1, 5, 10, 11, 12]),
        ("1 5 10", [1, 5, 10]),
        (" 1001 - 1003 , 7 ", [7, 1001, 1002, 1003]),
        ("1-10 x 4", [1, 5, 9]),
        ("1:4", [1, 2, 3, 4]),
        ("1:10:4", [1, 5, 9]),
        ("1-10step4,20-30by5,40-42every2", [1, 5, 9, 20, 25, 30, 40, 42]),
        ("-5--1", [-5, -4, -3, -2, -1]),
        ("-2-2", [-2, -1, 0, 1, 2]),
        ("-3", [-3]),
        ("5,1-3,2,5", [1, 2, 3, 5]),
        ("7-7", [7]),
    ],
)
def test_parse_frame_list(text: str, frames: list) -> None:
    assert parse_frame_list(text) == frames


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "frame list is empty: write frames like 1001-1100, 1-100x2 or 1,5,10-20"),
        ("   ", "frame list is empty: write frames like 1001-1100, 1-100x2 or 1,5,10-20"),
        (
            "1-10,abc",
            "frame list '1-10,abc' has a bad entry 'abc': write frames like 1001-1100, 1-100x2 or 1,5,10-20",
        ),
        ("1-1O", "frame list '1-1O' has a bad entry '1-1O': write frames like 1001-1100, 1-100x2 or 1,5,10-20"),
        ("5x2", "frame list '5x2' has a bad entry '5x2': write frames like 1001-1100, 1-100x2 or 1,5,10-20"),
        ("100-1", "frame range '100-1' runs backwards: write it as 1-100"),
        ("100-1x5", "frame range '100-1x5' runs backwards: write it as 1-100x5"),
        ("-1--5", "frame range '-1--5' runs backwards: write it as -5--1"),
        ("1-10x0", "frame range '1-10x0' has step 0: the step must be 1 or more, e.g. 1-100x2"),
        ("1-10x-2", "frame range '1-10x-2' has step -2: the step must be 1 or more, e.g. 1-100x2"),
        ("1,,5", "frame list '1,,5' has an empty entry between commas: remove the extra comma"),
        (",1", "frame list ',1' has an empty entry between commas: remove the extra comma"),
        ("1,5,", "frame list '1,5,' ends with a comma: remove it"),
        (
            "1-10000000",
            f"frame range '1-10000000' names more than {MAX_FRAMES} frames: check the range for a typo",
        ),
    ],
)
def test_parse_frame_list_errors(text: str, message: str) -> None:
    with pytest.raises(FrameListError) as caught:
        parse_frame_list(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        ([1, 2, 3, 5, 7, 9, 10], "1-3,5-9x2,10"),
        ([1001], "1001"),
        ([], ""),
        ([1, 2], "1-2"),
        ([1, 3], "1,3"),
        ([1, 3, 5], "1-5x2"),
        ([10, 1, 2, 2, 3], "1-3,10"),
        ([-5, -4, -3, -1], "-5--3,-1"),
        ([-9, -7, -5], "-9--5x2"),
        (list(range(1001, 1101)), "1001-1100"),
    ],
)
def test_format_frame_list(frames: list, text: str) -> None:
    assert format_frame_list(frames) == text


def test_format_frame_list_round_trips_with_parse() -> None:
    generator = random.Random(1234)
    for _ in range(500):
        frames = sorted({generator.randint(-20, 60) for _ in range(generator.randint(1, 40))})
        assert parse_frame_list(format_frame_list(frames)) == frames


def test_chunk_frames_groups_in_list_order() -> None:
    assert chunk_frames([1, 2, 3, 4, 5, 6, 7], 3) == [[1, 2, 3], [4, 5, 6], [7]]
    assert chunk_frames([1, 3, 5, 7], 2) == [[1, 3], [5, 7]]
    assert chunk_frames([5], 10) == [[5]]
    assert chunk_frames([], 4) == []


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_chunk_frames_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(FrameListError) as caught:
        chunk_frames([1, 2], size)  # type: ignore[arg-type]
    assert str(caught.value) == f"chunk size {size!r} is not valid: use 1 or more frames per task"
