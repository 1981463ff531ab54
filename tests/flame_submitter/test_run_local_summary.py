"""``comfyfarm run-local``'s last lines for a several-pass workflow: where each pass went, and what is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from farm_plugin.errors import EXIT_FAILED
from farm_plugin.jobrecord import pass_patterns
from farm_plugin.runner.local import LocalRunReport
from farm_plugin.workflow.package import load_package
from flame_submitter.cli.demo_plate import write_demo_plate
from flame_submitter.cli.run_local import summarise
from tests.flame_submitter.test_run_local import run_local, write_config

from .two_passes import job_record, two_pass_package, write_frames


def test_the_summary_names_every_pass_with_its_pattern_and_frames(tmp_path: Path) -> None:
    plate = write_demo_plate(tmp_path / "plate", frame_count=3, width=48, height=27)
    out = tmp_path / "o"
    result = run_local(write_config(tmp_path), "--quiet", "--workflow", str(two_pass_package(tmp_path / "invert")),
                       "--input", plate, "--output", str(out / "sh010.####.exr"))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"comfyfarm: 3 frame\(s\) written, 0 already there, in [\d.]+ s \([\d.]+ frames/s\); "
                        r"2 passes:", lines[-3]), lines[-3]
    assert lines[-2:] == [f"  inverted: {out}/sh010_inverted.####.exr (3 frames)",
                          f"  original: {out}/sh010_original.####.exr (3 frames)"]


@pytest.mark.parametrize("cancelled", [False, True])
def test_a_frame_missing_from_one_pass_is_named_with_its_pass(tmp_path: Path, capsys, cancelled: bool) -> None:
    record = job_record(load_package(two_pass_package(tmp_path / "invert")), str(tmp_path / "o" / "sh010.####.exr"),
                        frames=(1001, 1002, 1003))
    patterns = pass_patterns(record)
    write_frames(patterns["inverted"].to_hashes(), (1001, 1002, 1003))
    write_frames(patterns["original"].to_hashes(), (1001, 1003))
    code = summarise(record, LocalRunReport(written=[1001, 1003], processing_seconds=1.0, cancelled=cancelled))
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2] == f"  original: {tmp_path}/o/sh010_original.####.exr (2 frames)"
    if cancelled:
        assert lines[-1] == ("comfyfarm run-local: interrupted; 1 frame(s) not written (original: 1002): run the same "
                             "command again to finish them")
    else:
        assert code == EXIT_FAILED
        assert lines[-1] == ("comfyfarm run-local: 1 frame(s) not written (original: 1002): run the same command "
                             "again to finish only those")
