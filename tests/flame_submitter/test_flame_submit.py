"""Submit to Deadline from the Flame double: two clips become two jobs, and Flame never waits on the farm."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

import pytest

from farm_plugin.jobrecord import read_job_record
from farm_plugin.workflow.package import bundled_workflows_dir
from flame_submitter.config import load_config
from flame_submitter.dialog.model import SubmitChoice, SubmitResult
from flame_submitter.flame.media import describe
from flame_submitter.flame.submit import clip_summary, start_submission

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def studio(tmp_path: Path, flame_session):
    shared = tmp_path / "projects"
    (shared / "comfyfarm").mkdir(parents=True)
    lib = flame_session.workspace.create_library("Plates")
    on_disk = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1025), source_dir=shared / "plates",
                                     timecode="01:00:00:00")
    inside = flame_session.add_clip(lib, "sh020_plate", frames=range(1001, 1013), timecode="01:00:10:00")
    return flame_session, shared, (on_disk, inside)


def config_for(tmp_path: Path, shared: Path, url: str, **extra):
    path = tmp_path / "comfyfarm.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"deadline_url": url, "deadline_user": "ann", "deadline_timeout_s": 5,
                                    "jobs_root": str(shared / "comfyfarm"), "shared_roots": [str(shared)], **extra}))
    return load_config(path, environ={}, studio_path=path)


def choice(clips, **changes) -> SubmitChoice:
    values = dict(workflow="blur", workflow_path=str(bundled_workflows_dir() / "blur"),
                  parameters={"radius": 4, "sigma": 1.5}, template="default",
                  template_overrides={"priority": 70, "pool": "gpu", "chunk_size": 6}, frame_mode="all",
                  custom_frames="", output_format=None, local=False, clips=tuple(clips))
    values.update(changes)
    return SubmitChoice(**values)


def wait_for(session, results: List[SubmitResult], seconds: float = 30) -> SubmitResult:
    deadline = time.monotonic() + seconds
    while not results and time.monotonic() < deadline:
        session.pump_idle(seconds=1)
        time.sleep(0.05)
    assert results, "no answer from the submission"
    return results[0]


def test_two_clips_become_two_jobs_with_the_artists_settings(studio, fake_deadline, tmp_path: Path) -> None:
    session, shared, clips = studio
    config = config_for(tmp_path, shared, fake_deadline.url)
    sources = describe(clips, session.flame, use_marks=False)
    results: List[SubmitResult] = []
    started = time.monotonic()
    start_submission(session.flame, sources, choice([clip_summary(s) for s in sources]), config, results.append)
    assert time.monotonic() - started < 5  # the export is the only wait on the main thread
    result = wait_for(session, results)
    assert result.error == "" and len(result.job_ids) == 2
    sent = fake_deadline.render_submissions()
    assert [s["JobInfo"]["Name"] for s in sent] == ["sh010_plate - Gaussian blur", "sh020_plate - Gaussian blur"]
    assert {s["JobInfo"]["Pool"] for s in sent} == {"gpu"} and {s["JobInfo"]["Priority"] for s in sent} == {"70"}
    assert sent[0]["JobInfo"]["BatchName"] == sent[1]["JobInfo"]["BatchName"]
    first = read_job_record(sent[0]["PluginInfo"]["JobRecord"])
    assert first.source.pattern == str(shared / "plates" / "sh010_plate.####.exr")  # used as it is
    assert first.workflow.parameters == {"radius": 4, "sigma": 1.5}
    assert first.relink.project == "show_2026" and first.relink.clip_name == "sh010_plate"
    second = read_job_record(sent[1]["PluginInfo"]["JobRecord"])
    assert "/comfyfarm/input/" in second.source.pattern  # media inside Flame: exported to shared storage
    assert second.source.frames == tuple(range(1001, 1013))
    assert [e.foreground for e in session.exports] == [True]


def test_a_slow_farm_does_not_block_flame(studio, fake_deadline, tmp_path: Path) -> None:
    session, shared, clips = studio
    fake_deadline.set_faults(delay_s=1.5)
    config = config_for(tmp_path, shared, fake_deadline.url)
    sources = describe(clips[:1], session.flame, use_marks=False)
    results: List[SubmitResult] = []
    started = time.monotonic()
    start_submission(session.flame, sources, choice([clip_summary(s) for s in sources]), config, results.append)
    assert time.monotonic() - started < 1.0 and results == []
    assert wait_for(session, results, 60).job_ids


def test_a_farm_that_is_down_says_so_and_submits_nothing(studio, fake_deadline_factory, tmp_path: Path) -> None:
    session, shared, clips = studio
    fake = fake_deadline_factory()
    url = fake.url
    fake.stop()
    config = config_for(tmp_path, shared, url)
    sources = describe(clips[:1], session.flame, use_marks=False)
    results: List[SubmitResult] = []
    start_submission(session.flame, sources, choice([clip_summary(s) for s in sources]), config, results.append)
    result = wait_for(session, results)
    assert result.job_ids == ()
    assert result.error.startswith(f"Nothing was submitted: the Deadline Web Service is not reachable at {url}")
    assert list((shared / "comfyfarm").glob("2*")) == []  # no job folder left behind


def test_marks_and_custom_frames(studio, fake_deadline, tmp_path: Path) -> None:
    session, shared, clips = studio
    clips[0].in_mark = 5
    clips[0].out_mark = 11
    config = config_for(tmp_path, shared, fake_deadline.url)
    sources = describe(clips[:1], session.flame, use_marks=False)
    summary = clip_summary(sources[0])
    assert (summary.mark_in, summary.mark_out) == (1005, 1010)
    results: List[SubmitResult] = []
    start_submission(session.flame, sources, choice([summary], frame_mode="marks"), config, results.append)
    wait_for(session, results)
    assert fake_deadline.render_submissions()[0]["JobInfo"]["Frames"] == "1005-1010"


def test_run_locally_starts_one_comfyui_per_configured_gpu(monkeypatch, tmp_path: Path) -> None:
    """Run locally hands the configuration's GPUs to ``comfyfarm run-local --gpus``."""
    import subprocess
    import threading

    from flame_submitter.deadline.submit import ClipRequest
    from flame_submitter.flame import submit as flame_submit

    commands: List[List[str]] = []

    class Finished:
        stderr = iter(["[invert] 2/2 frames\n"])

        def __init__(self, command, **_kwargs) -> None:
            commands.append(list(command))

        def poll(self) -> int:
            return 0

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Finished)
    request = ClipRequest("sh010_plate", str(tmp_path / "sh010.####.exr"), [1001, 1002],
                          str(tmp_path / "out" / "sh010.####.exr"))
    result = flame_submit.run_locally([request], choice([], local=True), progress=lambda *_: None,
                                      stop=threading.Event(), gpus=("0", "1"), launcher=["/usr/local/bin/comfyfarm"])
    assert result.ok, result.error
    (command,) = commands
    assert command[:2] == ["/usr/local/bin/comfyfarm", "run-local"]
    assert command[command.index("--gpus") + 1] == "0,1"
    flame_submit.run_locally([request], choice([], local=True), progress=lambda *_: None, stop=threading.Event(),
                             launcher=["/usr/local/bin/comfyfarm"])
    assert "--gpus" not in commands[1]  # none configured: run-local's instances apply


def test_the_chosen_format_names_the_output_and_a_float_plate_is_refused_dpx(studio, fake_deadline,
                                                                             tmp_path: Path) -> None:
    session, shared, clips = studio
    config = config_for(tmp_path, shared, fake_deadline.url)
    sources = describe(clips[:1], session.flame, use_marks=False)
    results: List[SubmitResult] = []
    start_submission(session.flame, sources, choice([clip_summary(s) for s in sources], output_format="tiff"), config,
                     results.append)
    assert wait_for(session, results).error == ""
    record = read_job_record(fake_deadline.render_submissions()[0]["PluginInfo"]["JobRecord"])
    assert record.output.pattern.endswith("/sh010_plate_blur.####.tif")
    refused: List[SubmitResult] = []
    start_submission(session.flame, sources, choice([clip_summary(s) for s in sources], output_format="dpx"), config,
                     refused.append)
    error = wait_for(session, refused).error
    assert "DPX cannot hold the half-float pixels of the plate" in error and error.endswith("end it in .exr or .tif")
    assert len(fake_deadline.render_submissions()) == 1


def test_an_export_flame_refuses_answers_the_dialog_instead_of_raising(flame_session, fake_deadline,
                                                                       tmp_path: Path, monkeypatch) -> None:
    """``PyExporter.export`` and ``flame.duplicate`` raise RuntimeError when Flame refuses (a locked shared
    library, a file it will not overwrite): the answer still comes, so the dialog does not stay on Submitting…"""
    from flame_submitter.flame import submit as flame_submit

    shared = tmp_path / "projects"
    (shared / "comfyfarm").mkdir(parents=True)
    config = config_for(tmp_path, shared, fake_deadline.url)
    locked = flame_session.project.create_shared_library("Shared Plates")
    locked.acquire_exclusive_access()
    clip = flame_session.add_clip(locked, "sh020_plate", frames=range(1001, 1013), timecode="01:00:10:00")
    locked.release_exclusive_access()
    clip.in_mark = 2
    clip.out_mark = 6
    sources = describe((clip,), flame_session.flame, use_marks=False)
    results: List[SubmitResult] = []
    summary = clip_summary(sources[0])
    assert start_submission(flame_session.flame, sources, choice([summary], frame_mode="marks"), config,
                            results.append) is None
    (result,) = results
    assert result.error.startswith("Nothing was submitted: Flame could not export 'sh020_plate' for the farm "
                                   "(Shared library 'Shared Plates' is locked")
    assert [c.name.get_value() for c in locked.clips] == ["sh020_plate"]  # no duplicate left behind
    monkeypatch.setattr(flame_submit.time, "strftime", lambda *_: "20260101-120000")
    folder = shared / "comfyfarm" / "input" / "20260101-120000_sh020_plate"
    folder.mkdir(parents=True)
    (folder / "sh020_plate.1001.exr").write_bytes(b"an earlier export")  # Flame will not overwrite it unasked
    refused: List[SubmitResult] = []
    start_submission(flame_session.flame, sources, choice([summary]), config, refused.append)
    (result,) = refused
    assert result.error.startswith("Nothing was submitted: Flame could not export 'sh020_plate' for the farm (")
    assert fake_deadline.render_submissions() == []
