"""The job builder: what Deadline receives, pinned by golden files (UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from farm_plugin.jobrecord import RelinkIdentity, read_job_record
from farm_plugin.paths import PathMapping
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import resolve_parameters
from flame_submitter.deadline.submit import dry_run_document
from flame_submitter.jobs.builder import FarmPaths, JobFolders, SourceClip, hand_back_of, plan_jobs
from flame_submitter.jobs.templates import load_template

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
NOON = 1795521600.0  # 2026-11-24 12:00:00 UTC
MAPPINGS = (PathMapping.from_dict({"linux": "/mnt/projects", "macos": "/Volumes/projects"}),)


@pytest.fixture(autouse=True)
def utc(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def clip(name: str = "sh010_plate", frames=tuple(range(1001, 1049))) -> SourceClip:
    return SourceClip(
        name=name, pattern=f"/Volumes/projects/show/{name}/{name}.####.exr", frames=frames,
        output_pattern=f"/Volumes/projects/show/{name}/comfy/{name}_blur.####.exr", width=1920, height=1080,
        fps=24.0, timecode="01:00:00:00",
        relink=RelinkIdentity(project="show_2026", library="ComfyUI Renders", clip_name=name, clip_uid="uid-42",
                              user="ann", host="flame01"),
    )


def plan(template: str = "default", clips=None, **overrides):
    blur = load_package(REPO / "workflows" / "blur")
    return plan_jobs(
        clips or [clip()], workflow=blur, parameters=resolve_parameters(blur, {"radius": "4"}),
        template=load_template(template).with_overrides(overrides),
        paths=FarmPaths(Path("/Volumes/projects/comfyfarm/jobs"), MAPPINGS, workstation_os="macos", farm_os="linux"),
        user="ann", now=NOON, token="beef",
    )


def assert_golden(name: str, document: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs: rerun with UPDATE_GOLDEN=1 if the change is intended"


def test_default_job_matches_its_golden_file() -> None:
    (job,) = plan()
    assert_golden("default_job", dry_run_document([job]))
    info = job.submission.job_info
    assert info["Plugin"] == "ComfyUI" and info["Frames"] == "1001-1048" and info["ChunkSize"] == "10"
    assert info["OutputDirectory0"] == "/mnt/projects/show/sh010_plate/comfy"  # the farm's path
    assert info["OutputFilename0"] == "sh010_plate_blur.####.exr"
    assert "EventOptIns" not in info  # no event plugin: the hand-back job brings the result back
    assert info["BatchName"] == "Gaussian blur - 1 clip(s) - ann - 20261124-120000"  # with its hand-back job
    assert job.submission.plugin_info["JobRecord"] == (
        "/mnt/projects/comfyfarm/jobs/20261124-120000_sh010_plate_blur_beef/job.json")
    assert job.record.source.pattern == "/mnt/projects/show/sh010_plate/sh010_plate.####.exr"
    assert job.record.workflow.graph["2"]["inputs"]["blur_radius"] == 4


def test_preview_template_makes_a_quick_look_job_then_the_rest() -> None:
    preview, main = plan("preview")
    assert_golden("preview_jobs", dry_run_document([preview, main]))
    assert preview.submission.job_info["Frames"] == "1001-1041x10"
    assert main.submission.job_info["Frames"] == "1002-1010,1012-1020,1022-1030,1032-1040,1042-1048"
    assert (preview.waits_for, main.waits_for) == (None, "preview")
    assert "JobDependencies" not in main.submission.job_info  # the preview's id comes at submission
    assert preview.hand_back is not None and main.hand_back is not None
    assert preview.hand_back.plugin_info["FinishesFrames"] == "1001-1041x10"  # a preview's record: its frames
    assert "FinishesFrames" not in main.hand_back.plugin_info  # the main job's: the whole clip
    assert preview.hand_back.job_info["Priority"] == "80" and main.hand_back.job_info["Priority"] == "70"
    assert preview.submission.job_info["ChunkSize"] == "1"
    assert int(preview.submission.job_info["Priority"]) == int(main.submission.job_info["Priority"]) + 10
    assert preview.record == main.record and preview.folder == main.folder
    assert preview.submission.job_info["BatchName"] == main.submission.job_info["BatchName"]


def test_each_job_has_a_hand_back_job_that_waits_for_it_however_it_ends() -> None:
    (job,) = plan()
    assert job.hand_back is not None
    info, plugin = job.hand_back.job_info, job.hand_back.plugin_info
    assert (info["Plugin"], info["Frames"], info["ChunkSize"], info["Name"]) == (
        "ComfyUI", "0", "1", "sh010_plate - Gaussian blur [hand back]")
    assert (info["Pool"], info["Group"], info["Priority"]) == ("none", "none", "60")  # the job's pool: promptly
    assert (info["ResumeOnCompleteDependencies"], info["ResumeOnFailedDependencies"],
            info["ResumeOnDeletedDependencies"]) == ("true", "true", "true")
    assert (info["TaskTimeoutMinutes"], info["BatchName"]) == ("15", job.submission.job_info["BatchName"])
    assert not {"LimitGroups", "MachineLimit", "OutputDirectory0", "EventOptIns"} & set(info)
    assert plugin == {"JobRecord": job.submission.plugin_info["JobRecord"], "Mode": "finish", "Part": "main",
                      "ComfyFarmVersion": job.submission.plugin_info["ComfyFarmVersion"]}
    sent = hand_back_of(job, "64f0a1b2c3d4e5f601234567")
    assert sent.job_info["JobDependencies"] == "64f0a1b2c3d4e5f601234567"
    assert sent.plugin_info["FinishesJob"] == "64f0a1b2c3d4e5f601234567"
    assert "JobDependencies" not in job.hand_back.job_info  # the plan itself is unchanged


def test_the_template_may_send_hand_back_jobs_to_a_group_of_their_own() -> None:
    (job,) = plan(group="gpu_48gb", finish_group="comfyfarm_runtime", limit_groups="gpu_licence")
    assert job.submission.job_info["Group"] == "gpu_48gb" and job.submission.job_info["LimitGroups"] == "gpu_licence"
    assert job.hand_back is not None and job.hand_back.job_info["Group"] == "comfyfarm_runtime"


def test_several_clips_share_a_batch_and_each_gets_its_folder() -> None:
    jobs = plan(clips=[clip("sh010_plate"), clip("sh020_plate", tuple(range(1, 25)))], chunk_size=5, pool="gpu")
    assert len(jobs) == 2 and jobs[0].folder != jobs[1].folder
    assert jobs[0].submission.job_info["BatchName"] == jobs[1].submission.job_info["BatchName"]
    assert jobs[1].submission.job_info["Frames"] == "1-24"
    assert {j.submission.job_info["Pool"] for j in jobs} == {"gpu"}
    assert not any(j.waits_for for j in jobs)
    assert [j.hand_back.job_info["Name"] for j in jobs if j.hand_back] == [
        "sh010_plate - Gaussian blur [hand back]", "sh020_plate - Gaussian blur [hand back]"]


def test_job_folders_are_written_all_or_nothing(tmp_path: Path) -> None:
    blur = load_package(REPO / "workflows" / "blur")
    paths = FarmPaths(tmp_path / "jobs")
    jobs = plan_jobs([clip("a"), clip("b")], workflow=blur, parameters={}, template=load_template("default"),
                     paths=paths, user="ann", now=NOON, token="beef")
    (tmp_path / "jobs" / jobs[1].key).mkdir(parents=True)  # something already there: the second write fails
    (tmp_path / "jobs" / f".{jobs[1].key}.tmp").mkdir()
    with pytest.raises(FileExistsError):
        JobFolders(jobs).write()
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == [jobs[1].key]  # only what was there before
    (tmp_path / "jobs" / jobs[1].key).rmdir()
    folders = JobFolders(jobs)
    folders.write()
    assert read_job_record(jobs[0].record_path) == jobs[0].record
    folders.remove()
    assert list((tmp_path / "jobs").iterdir()) == []


def test_a_sequence_workflow_gets_chunks_of_a_whole_window(tmp_path: Path) -> None:
    toon = load_package(REPO / "workflows" / "toonyou_style")
    keeps = toon.sequence.context_frames - 2 * toon.sequence.overlap_frames
    (job,) = plan_jobs([clip()], workflow=toon, parameters=resolve_parameters(toon, {}),
                       template=load_template("heavy"), paths=FarmPaths(tmp_path / "jobs"), user="ann",
                       now=NOON, token="beef")
    assert load_template("heavy").chunk_size == 1
    assert job.submission.job_info["ChunkSize"] == str(keeps) == "16"


def plan_sequence(tmp_path: Path, workflow: str, frames=tuple(range(1001, 1049)), **overrides):
    package = load_package(REPO / "workflows" / workflow)
    return plan_jobs([clip(frames=frames)], workflow=package, parameters=resolve_parameters(package, {}),
                     template=load_template(package.template).with_overrides(overrides),
                     paths=FarmPaths(tmp_path / "jobs"), user="ann", now=NOON, token="beef")


@pytest.mark.parametrize(("asked", "given"), [(1, 16), (20, 16), (24, 32), (40, 48), (48, 48)])
def test_a_sequence_chunk_is_rounded_to_whole_windows(tmp_path: Path, caplog, asked: int, given: int) -> None:
    (job,) = plan_sequence(tmp_path, "temporal_coherence_animatediff", chunk_size=asked)
    assert job.submission.job_info["ChunkSize"] == str(given)
    changed = [r.getMessage() for r in caplog.records if "chunk size" in r.getMessage()]
    assert changed == ([] if asked == given else [
        f"chunk size {asked} changed to {given} for 'temporal_coherence_animatediff': each 24-frame window keeps "
        "16 frame(s), so a chunk is a whole number of windows"])


def test_a_last_chunk_shorter_than_the_crossfade_is_warned_about(tmp_path: Path, caplog) -> None:
    plan_sequence(tmp_path, "toonyou_style", frames=tuple(range(1001, 1035)), chunk_size=16)  # 16 + 16 + 2
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "sh010_plate: the last chunk holds 2 frame(s) (1033-1034), fewer than the 4-frame cross-fade of "
        "'toonyou_style': they are all cross-faded, from the chunk before's look toward their own"]


def test_an_interpolation_job_promises_its_output_frames_to_deadline(tmp_path: Path) -> None:
    (job,) = plan_sequence(tmp_path, "rife_frame_interpolation", frames=tuple(range(1001, 1101)))
    info = job.submission.job_info
    assert info["Frames"] == "1001-1100" and info["ChunkSize"] == "23"
    extra = dict(v.split("=", 1) for k, v in info.items() if k.startswith("ExtraInfoKeyValue"))
    assert extra["comfyfarm_output_frames"] == "1001-1199"
    assert info["OutputFilename0"] == "sh010_plate_blur.####.exr"
