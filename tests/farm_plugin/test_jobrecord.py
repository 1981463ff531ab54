from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm_plugin import __version__
from farm_plugin.jobrecord import (
    OLDEST_READABLE_SCHEMA,
    SCHEMA_VERSION,
    JobRecord,
    JobRecordError,
    OutputSpec,
    RelinkIdentity,
    SourceSpec,
    WorkflowSpec,
    read_job_record,
)
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import apply_parameters, resolve_parameters

REPO = Path(__file__).resolve().parents[2]


def make_record() -> JobRecord:
    package = load_package(REPO / "workflows" / "sequence_invert")
    blur = load_package(REPO / "workflows" / "blur")
    values = resolve_parameters(blur, {"radius": "3"})
    return JobRecord(
        job_id="j1",
        name="plate blur",
        workflow=WorkflowSpec.from_package(blur, apply_parameters(blur, values), values),
        source=SourceSpec("/jobs/plate.####.exr", (1001, 1002, 1003), 1920, 1080, 24.0, "01:00:00:00", "ACEScg"),
        output=OutputSpec("/jobs/out/blur.####.exr", "exr"),
        relink=RelinkIdentity(project="p", library="ComfyUI Renders", clip_name="plate", clip_uid="u1", user="ann"),
    ), package


def test_round_trip_keeps_the_resolved_graph_and_parameters(tmp_path: Path) -> None:
    record, sequence_package = make_record()
    path = record.write(tmp_path / "jobs" / "j1" / "job.json")
    again = read_job_record(path)
    assert again == record
    assert again.workflow.graph["2"]["inputs"]["blur_radius"] == 3
    assert again.workflow.parameters == {"radius": 3, "sigma": 1.0}
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA_VERSION and data["created_by"] == __version__
    assert [p.name for p in path.parent.iterdir()] == ["job.json"]


def test_sequence_settings_survive_the_round_trip(tmp_path: Path) -> None:
    _record, package = make_record()
    record = JobRecord(job_id="s", name="s", workflow=WorkflowSpec.from_package(package, package.graph, {}),
                       source=SourceSpec("/p.####.exr", (1,)), output=OutputSpec("/o.####.exr"))
    again = read_job_record(record.write(tmp_path / "job.json"))
    assert again.workflow.sequence == package.sequence


def test_a_record_is_written_once(tmp_path: Path) -> None:
    record, _ = make_record()
    path = record.write(tmp_path / "job.json")
    record.write(path)  # the same record again: nothing to do
    other = JobRecord(**{**record.__dict__, "name": "other"})
    with pytest.raises(JobRecordError, match="a different job record is already there: use a new job folder"):
        other.write(path)
    assert read_job_record(path) == record


def test_workers_running_as_another_user_can_read_the_record(tmp_path: Path) -> None:
    # Deadline Workers usually run as a service account, not as the artist who submitted the job.
    record, _ = make_record()
    path = record.write(tmp_path / "job.json")
    assert path.stat().st_mode & 0o777 == 0o644


def test_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    record, _ = make_record()
    data = record.to_dict()
    data.update(schema=SCHEMA_VERSION + 1, created_by="9.0.0")
    path = tmp_path / "job.json"
    path.write_text(json.dumps(data))
    with pytest.raises(JobRecordError) as caught:
        read_job_record(path)
    assert str(caught.value) == (
        f"{path}: written by comfyfarm 9.0.0 (job record schema {SCHEMA_VERSION + 1}); this is comfyfarm "
        f"{__version__} (schema {SCHEMA_VERSION}): upgrade comfyfarm on this machine"
    )


def test_older_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    record, _ = make_record()
    data = record.to_dict()
    data.update(schema=OLDEST_READABLE_SCHEMA - 1, created_by="0.0.1")
    path = tmp_path / "job.json"
    path.write_text(json.dumps(data))
    with pytest.raises(JobRecordError) as caught:
        read_job_record(path)
    assert str(caught.value) == (
        f"{path}: written by comfyfarm 0.0.1 (job record schema {OLDEST_READABLE_SCHEMA - 1}), older than comfyfarm "
        f"{__version__} reads (schema {OLDEST_READABLE_SCHEMA} and later): resubmit the job"
    )


def test_missing_record_points_at_the_shared_storage(tmp_path: Path) -> None:
    with pytest.raises(JobRecordError, match="no job record there: is the shared storage mounted on this machine"):
        read_job_record(tmp_path / "nope" / "job.json")
