"""``comfyfarm status JOB --json``: what the text shows, as one JSON object, for the submit dialog that follows a job
through a subprocess: its state and tasks, the frames each pass has on disk with a thumbnail of the latest, and its
latest error report; and when the job cannot be read, an object that says why, with today's exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from tests.flame_submitter.test_status_passes import COLOURS, submit, write
from tests.flame_submitter.test_submit import comfyfarm, job_folders


def status_json(config: Path, job_id: str) -> Dict[str, Any]:
    result = comfyfarm(config, "status", job_id, "--json")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()  # one object, on one line
    return json.loads(line)


def test_a_rendering_jobs_passes_tasks_and_progress(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config, job_id, out = submit(fake_deadline, tmp_path, studio)
    out.mkdir(parents=True, exist_ok=True)
    write(str(out / "sh010_inverted.####.exr"), range(1001, 1011), COLOURS["inverted"])
    store = fake_deadline.store
    lease = store.dequeue_task("gpu-01")  # the first chunk of 10 done, the second rendering
    store.complete_task(lease.job_id, lease.task_id, worker="gpu-01")
    lease = store.dequeue_task("gpu-01")
    store.report_progress(lease.job_id, lease.task_id, 30.0, "frame 1013 (3/10)", worker="gpu-01")
    (folder,) = job_folders(studio)
    document = status_json(config, job_id)
    assert document == {
        "job": job_id, "name": "plate - Invert", "state": "Rendering", "tasks_done": 1, "tasks": 3,
        "progress": 33.3, "errors": 0,
        "passes": [{"name": "inverted", "done": 10, "total": 24, "latest": 1010,
                    "thumbnail": str(folder / "latest_inverted.jpg"), "thumbnail_error": None},
                   {"name": "original", "done": 0, "total": 24, "latest": None, "thumbnail": None,
                    "thumbnail_error": None}],
        "frames_error": None, "error": None}
    assert (folder / "latest_inverted.jpg").is_file()
    text = comfyfarm(config, "status", job_id).stdout.splitlines()  # the text says the same
    assert "  state: Rendering    tasks: 1/3 done    progress: 33 %    errors: 0" in text
    assert f"  inverted frames: 10/24 done, latest 1010 (thumbnail {folder}/latest_inverted.jpg)" in text
    assert "  original frames: 0/24 done" in text


def test_a_thumbnail_that_cannot_be_made_and_a_record_that_is_gone(fake_deadline, tmp_path: Path,
                                                                 studio: Path) -> None:
    config, job_id, out = submit(fake_deadline, tmp_path, studio)
    out.mkdir(parents=True, exist_ok=True)
    write(str(out / "sh010_original.####.exr"), [1001], COLOURS["original"])
    (folder,) = job_folders(studio)
    (folder / "latest_original.jpg").mkdir()  # the thumbnail's name is taken by a folder: it cannot be written
    (original,) = [p for p in status_json(config, job_id)["passes"] if p["name"] == "original"]
    assert (original["done"], original["latest"], original["thumbnail"]) == (1, 1001, None)
    assert original["thumbnail_error"].startswith(f"no thumbnail of {out}/sh010_original.1001.exr")
    text = comfyfarm(config, "status", job_id).stdout.splitlines()
    assert text[6].startswith(f"  original frames: 1/24 done, latest 1001 (no thumbnail: no thumbnail of {out}/")
    (folder / "job.json").unlink()
    document = status_json(config, job_id)
    assert document["passes"] == [] and document["state"] == "Queued"
    assert document["frames_error"] == (f"{folder}/job.json: no job record there: is the shared storage mounted on "
                                        "this machine?")


def test_a_failed_job_brings_its_latest_error_report(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config, job_id, _out = submit(fake_deadline, tmp_path, studio)
    store = fake_deadline.store
    for attempt in (1, 2, 3):  # the default template's failure_detection: 3 errors fail the task
        lease = store.dequeue_task(f"gpu-0{attempt}")
        store.fail_task(lease.job_id, lease.task_id, f"ComfyUI node 2 (ImageInvert) failed: attempt {attempt}\n"
                        "last lines of ComfyUI's log:\n...", worker=f"gpu-0{attempt}")
    document = status_json(config, job_id)
    assert (document["state"], document["errors"], document["tasks_done"], document["progress"]) == (
        "Failed", 3, 0, 0.0)
    assert document["error"] == "on gpu-03 (task 0): ComfyUI node 2 (ImageInvert) failed: attempt 3"
    text = comfyfarm(config, "status", job_id).stdout.splitlines()
    assert text[-3:] == [f"  error on gpu-0{n} (task 0): ComfyUI node 2 (ImageInvert) failed: attempt {n}"
                         for n in (1, 2, 3)]


def test_a_job_that_cannot_be_read_is_an_object_with_the_error_and_todays_exit_status(
        fake_deadline, tmp_path: Path, studio: Path) -> None:
    config, _job_id, _out = submit(fake_deadline, tmp_path, studio)
    unknown = "0123456789abcdef01234567"
    text = comfyfarm(config, "status", unknown)
    result = comfyfarm(config, "status", unknown, "--json")
    assert result.returncode == text.returncode == 1
    assert result.stderr == text.stderr and result.stderr.startswith("comfyfarm: ")
    document = json.loads(result.stdout)
    assert document == {"job": unknown, "name": None, "state": None, "tasks_done": 0, "tasks": 0, "progress": 0.0,
                        "errors": 0, "passes": [], "frames_error": None,
                        "error": result.stderr.strip()[len("comfyfarm: "):]}
