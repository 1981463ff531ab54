from __future__ import annotations

import io

import pytest

from farm_plugin.runner.progress import LineProgress, parse_progress_line


def test_lines_round_trip_through_the_parser() -> None:
    stream = io.StringIO()
    sink = LineProgress(stream)
    sink.status("frame 1012 (3/10) · KSampler 14/20")
    sink.progress(42.51)
    sink.frame_done(1012)
    sink.frame_done(1013, skipped=True)
    sink.error("ComfyUI node 7 (KSampler) failed:\nRuntimeError: boom")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "STATUS frame 1012 (3/10) · KSampler 14/20",
        "PROGRESS 42.5",
        "FRAME 1012 done",
        "FRAME 1013 skipped",
        "ERROR ComfyUI node 7 (KSampler) failed: RuntimeError: boom",
    ]
    parsed = [parse_progress_line(line) for line in lines]
    assert parsed[1].percent == 42.5
    assert (parsed[2].frame, parsed[2].skipped) == (1012, False)
    assert (parsed[3].frame, parsed[3].skipped) == (1013, True)
    assert parsed[4].kind == "error"


@pytest.mark.parametrize("line", ["INFO something", "PROGRESS nan", "PROGRESS abc", "FRAME x done", "FRAME 3 lost"])
def test_other_output_is_not_a_protocol_line(line: str) -> None:
    assert parse_progress_line(line) is None


def test_non_finite_progress_is_refused() -> None:
    with pytest.raises(ValueError, match="progress must be a finite number"):
        LineProgress(io.StringIO()).progress(float("inf"))
