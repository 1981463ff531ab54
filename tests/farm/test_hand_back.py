"""Hand-back jobs on the emulated farm (issue 18, items 1 and 7): every render job is submitted on its own
with a hand-back job that waits for it (``JobDependencies``, resuming on a completed, failed or deleted
dependency) and runs on a Worker, however the job ends: it checks the frames on disk and writes the completion
record that the Flame double imports. Nothing of it runs where a job's state changes (the Web Service for
``comfyfarm cancel``): the ComfyUIRelink event that did is gone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

from flame_submitter.flame.relink import RelinkWatcher
from flame_submitter.jobs.builder import FINISHED_FRAMES_KEY, FINISHED_JOB_KEY, HAND_BACK_MODE
from tests.doubles.deadline_runtime import plugin_module

from .conftest import REPO, Studio, make_studio

FRAMES = list(range(1001, 1025))
RECORD = {"output": {"pattern": "/farm/out/sh010.####.exr"}, "inbox": "/farm/inbox"}


@pytest.fixture(scope="module")
def plugin():
    with plugin_module(REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.py") as module:
        yield module


def test_the_plugin_and_the_builder_agree_on_a_hand_back_job(plugin) -> None:
    assert plugin.FINISH_MODE == HAND_BACK_MODE
    options = (REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.options").read_text()
    assert all(f"[{key}]" in options for key in ("Mode", FINISHED_JOB_KEY, FINISHED_FRAMES_KEY))  # Job Properties


@pytest.mark.parametrize(("state", "outcome"), [
    ("Completed", []),
    ("Failed", ["--failed", "--reason", "the Deadline job j1 failed or was cancelled: see its error reports in "
                                        "Deadline Monitor"]),
    (None, ["--failed-unless-complete", "--reason", "the Deadline job j1 was deleted"]),
    ("Active", ["--failed-unless-complete", "--reason", "the Deadline job j1 is Active, not finished"]),
])
def test_a_hand_back_job_hands_its_job_back_as_deadline_says_it_ended(plugin, state: Optional[str],
                                                                     outcome: List[str]) -> None:
    def mapped(path: str) -> str:
        return path.replace("/farm", "/mnt/farm")

    arguments = plugin.hand_back_arguments(RECORD, "/mnt/farm/jobs/j/job.json", "j1", "main", state, "", mapped)
    assert arguments == ["-m", "farm_plugin.completion.cli", "--job", "/mnt/farm/jobs/j/job.json",
                         "--deadline-job-id", "j1", "--part", "main",
                         "--output-pattern", "/mnt/farm/out/sh010.####.exr", "--inbox", "/mnt/farm/inbox", *outcome]


def test_a_previews_hand_back_checks_the_previews_frames(plugin) -> None:
    arguments = plugin.hand_back_arguments({"output": RECORD["output"]}, "/j.json", "p1", "preview", "Completed",
                                           "1001-1021x10", str)
    assert arguments[arguments.index("--frames") + 1] == "1001-1021x10" and "--inbox" not in arguments


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def written(studio: Studio) -> List[int]:
    return sorted(int(name.split(".")[1]) for name in studio.outputs())


def import_into_flame(flame_session, inbox: Path) -> None:
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)


def clips_in_flame(flame_session) -> List[str]:
    library = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    return [clip.name.get_value() for folder in library.folders for clip in folder.clips]


def messages(flame_session, needle: str) -> List[str]:
    return [m.message for m in flame_session.console_messages if needle in m.message]


def test_a_completed_job_comes_back_into_flame_through_its_hand_back_job(farm, flame_session,
                                                                        tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    inbox = studio.hand_back()
    job_id = studio.submit("--chunk-size", "8", "--project", "show_2026", frames="1001-1024")
    hand_back = studio.hand_back_job(job_id)
    assert len(studio.submitted()) == 2 and farm.store.job_status_text(hand_back) == "Pending"
    farm.start_workers(2)
    assert farm.wait_for_job(job_id, timeout_s=180) == "Completed"
    record = studio.record(inbox, job_id)
    assert (record["status"], record["part"], record["frames"], record["missing_frames"]) == (
        "completed", "main", FRAMES, [])
    job, finisher = farm.store.job_json(job_id), farm.store.job_json(hand_back)
    assert finisher["DateStart"] >= job["DateComp"]  # after the job, on a Worker
    (log,) = [r.text for r in farm.store.reports(hand_back, report_type=0)]
    assert f"comfyfarm 0.1.0: handing back job {job_id} (main), Completed: checking its frames" in log
    assert "starting ComfyUI" not in log
    import_into_flame(flame_session, inbox)
    assert clips_in_flame(flame_session) == ["plate_invert_v001"]
    assert (inbox / "imported" / f"{job_id}.json").is_file()


def test_a_preview_renders_first_and_each_part_is_handed_back(farm, flame_session, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    inbox = studio.hand_back()
    main_id = studio.submit("--template", "preview", "--project", "show_2026", frames="1001-1024")
    preview_id = str(studio.submitted()[0]["job_id"])
    assert [s["JobInfo"].get("JobDependencies") for s in studio.submitted()] == [
        None, preview_id, preview_id, main_id]
    assert farm.store.job_status_text(main_id) == "Pending"
    farm.start_workers(2)
    assert farm.wait_for_job(main_id, timeout_s=180) == "Completed"
    preview, main = farm.store.job_json(preview_id), farm.store.job_json(main_id)
    assert min(t["Start"] for t in farm.store.tasks_json(main_id)["Tasks"]) >= preview["DateComp"]
    assert main["Stat"] == 3 and written(studio) == FRAMES
    first = studio.record(inbox, preview_id)
    assert (first["status"], first["part"], first["frames"]) == ("completed", "preview", [1001, 1011, 1021])
    whole = studio.record(inbox, main_id)
    assert (whole["status"], whole["part"], whole["frames"]) == ("completed", "main", FRAMES)
    import_into_flame(flame_session, inbox)
    flame_session.pump_idle(seconds=1)
    assert messages(flame_session, "the preview of plate · Invert is ready (3 frames in")
    assert clips_in_flame(flame_session) == ["plate_invert_v001"]


def test_a_cancelled_job_gives_flame_a_failed_record_with_the_frames_that_exist(farm, flame_session,
                                                                               tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    studio.configure(faults='{"node_delay_s": 0.1}')
    inbox = studio.hand_back()
    job_id = studio.submit("--chunk-size", "24", "--project", "show_2026", frames="1001-1024")
    farm.start_workers(1)
    wait_for(lambda: len(studio.outputs()) >= 2)
    cancel = studio.cli("cancel", job_id)  # fails the job through the Web Service, not on a Worker
    assert cancel.returncode == 0, cancel.stderr
    record = studio.record(inbox, job_id)
    there = written(studio)
    assert 2 <= len(there) < 24
    assert (record["status"], record["frames"], record["missing_frames"]) == (
        "failed", there, [f for f in FRAMES if f not in there])
    assert record["reason"] == (f"the Deadline job {job_id} failed or was cancelled: see its error reports in "
                                "Deadline Monitor")
    import_into_flame(flame_session, inbox)
    assert messages(flame_session, "failed on the farm") == [
        f"comfyfarm: plate · Invert failed on the farm (job {job_id}): {record['reason']}"]
    assert flame_session.imports == []


def test_a_deleted_job_is_handed_back_as_failed_unless_every_frame_is_there(farm, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    studio.configure(faults='{"node_delay_s": 0.1}')
    inbox = studio.hand_back()
    job_id = studio.submit("--chunk-size", "24", frames="1001-1024")
    farm.start_workers(1)
    wait_for(lambda: len(studio.outputs()) >= 2)
    assert studio.cli("cancel", "--delete", job_id).returncode == 0
    record = studio.record(inbox, job_id)
    there = written(studio)
    missing = [f for f in FRAMES if f not in there]
    assert (record["status"], record["frames"], record["missing_frames"]) == ("failed", there, missing)
    assert record["reason"].startswith(f"the Deadline job {job_id} was deleted; {len(missing)} frame(s) missing or "
                                       "unreadable: ")


def test_a_failed_job_is_handed_back_as_failed(farm, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=8)
    studio.configure(faults='{"fail_node": {"class_type": "ImageInvert", "exception_type": "RuntimeError", '
                            '"message": "CUDA out of memory"}}')
    inbox = studio.hand_back()
    job_id = studio.submit("--chunk-size", "8", frames="1001-1008")
    farm.start_workers(1)
    assert farm.wait_for_job(job_id, timeout_s=120) == "Failed"
    record = studio.record(inbox, job_id)
    assert (record["status"], record["frames"], record["missing_frames"]) == ("failed", [], list(range(1001, 1009)))
