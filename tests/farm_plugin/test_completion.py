from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from farm_plugin.completion import build_completion, read_completion, write_completion
from farm_plugin.frames.image_io import write_frame
from farm_plugin.jobrecord import JobRecord, OutputSpec, RelinkIdentity, SourceSpec, WorkflowSpec
from farm_plugin.workflow.package import load_package

REPO = Path(__file__).resolve().parents[2]


def make(tmp_path: Path, frames=range(1001, 1006), written=range(1001, 1006)) -> JobRecord:
    out = tmp_path / "farm" / "out"
    out.mkdir(parents=True)
    for frame in written:
        write_frame(out / f"inv.{frame}.exr", np.zeros((4, 6, 3), np.float32), file_format="exr")
    package = load_package(REPO / "workflows" / "invert")
    return JobRecord(
        job_id="20261124-120000_sh010_invert_beef", name="sh010 - Invert",
        workflow=WorkflowSpec.from_package(package, package.graph, {}),
        source=SourceSpec(str(tmp_path / "farm" / "plate.####.exr"), tuple(frames), timecode="01:00:00:00", fps=24.0),
        output=OutputSpec(str(out / "inv.####.exr")),
        relink=RelinkIdentity(project="show", clip_name="sh010", clip_uid="u1", user="ann"),
        workstation_os="macos", farm_os="linux",
        path_mappings=({"linux": str(tmp_path / "farm"), "macos": "/Volumes/projects"},),
        inbox=str(tmp_path / "farm" / "inbox"),
    )


def test_a_complete_job_is_recorded_in_the_artists_paths_once(tmp_path: Path) -> None:
    record = make(tmp_path)
    completion = build_completion(record, deadline_job_id="64f0a1", job_failed=False)
    assert completion.complete and completion.frames == (1001, 1002, 1003, 1004, 1005)
    assert completion.output_pattern == "/Volumes/projects/out/inv.####.exr"
    assert completion.source_pattern == "/Volumes/projects/plate.####.exr"
    assert (completion.width, completion.height, completion.source_timecode) == (6, 4, "01:00:00:00")
    assert completion.relink["clip_uid"] == "u1"
    path = write_completion(completion, record.inbox)
    assert path == Path(record.inbox) / "64f0a1.json"
    assert read_completion(path) == completion
    assert write_completion(build_completion(record, deadline_job_id="64f0a1", job_failed=True), record.inbox) is None
    assert read_completion(path).status == "completed"  # the first record stands
    assert [p.name for p in Path(record.inbox).iterdir()] == ["64f0a1.json"]


def test_missing_frames_make_an_incomplete_record(tmp_path: Path) -> None:
    record = make(tmp_path, written=(1001, 1002, 1004))
    completion = build_completion(record, deadline_job_id="j2", job_failed=False)
    assert not completion.complete
    assert completion.missing_frames == (1003, 1005)
    assert completion.reason == "2 frame(s) missing or unreadable: 1003,1005"


def test_the_command_a_hand_back_job_runs(tmp_path: Path) -> None:
    record = make(tmp_path)
    job = record.write(tmp_path / "farm" / "jobs" / "job.json")
    command = [sys.executable, "-m", "farm_plugin.completion.cli", "--job", str(job), "--deadline-job-id", "j3",
               "--failed", "--reason", "the Deadline job j3 failed: see its error reports"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"comfyfarm relink: wrote {tmp_path}/farm/inbox/j3.json: failed")
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert again.stdout.strip() == "comfyfarm relink: the record for job j3 was already written: nothing new"
    data = json.loads((tmp_path / "farm" / "inbox" / "j3.json").read_text())
    assert data["status"] == "failed" and data["reason"] == "the Deadline job j3 failed: see its error reports"


def test_a_job_deleted_before_it_finished_is_failed_with_the_frames_there(tmp_path: Path) -> None:
    """A hand-back job whose job Deadline no longer has (``--failed-unless-complete``): failed with the missing
    frames, or completed when every frame is there (a job deleted as it completed)."""
    record = make(tmp_path, written=(1001, 1002))
    job = record.write(tmp_path / "farm" / "jobs" / "job.json")
    command = [sys.executable, "-m", "farm_plugin.completion.cli", "--job", str(job), "--deadline-job-id", "j4",
               "--failed-unless-complete", "--reason", "the Deadline job j4 was deleted"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "farm" / "inbox" / "j4.json").read_text())
    assert (data["status"], data["frames"], data["missing_frames"]) == ("failed", [1001, 1002], [1003, 1004, 1005])
    assert data["reason"] == "the Deadline job j4 was deleted; 3 frame(s) missing or unreadable: 1003-1005"
    for frame in (1003, 1004, 1005):
        write_frame(tmp_path / "farm" / "out" / f"inv.{frame}.exr", np.zeros((4, 6, 3), np.float32), file_format="exr")
    command[command.index("j4")] = "j5"
    assert subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO).returncode == 0
    data = json.loads((tmp_path / "farm" / "inbox" / "j5.json").read_text())
    assert (data["status"], data["missing_frames"], data["reason"]) == ("completed", [], "")
