"""The submit dialog's preview on the farm (issue 21): one task at priority 100 that Flame never imports, and the
wait for it: progress, Deadline's error report, Stop and a time limit both taking the job off the farm.

What the Web Service receives is read from the Deadline double (tests/doubles/deadline); the rendering, by the real
ComfyUI plugin on emulated Workers with the ComfyUI double (tests/farm_emulator, tests/farm/conftest.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from farm_plugin.errors import BadInput, Cancelled
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.jobrecord import RelinkIdentity, read_job_record
from farm_plugin.workflow.package import WorkflowPackage, load_package
from flame_submitter.config import Config, load_config
from flame_submitter.deadline.client import DeadlineClient
from flame_submitter.deadline.submit import ClipRequest
from flame_submitter.jobs.templates import JobTemplate, load_template
from flame_submitter.preview.farm import (
    PreviewFarmError,
    PreviewJob,
    PreviewJobFailed,
    PreviewStopped,
    PreviewTimedOut,
    artist_text,
    preview_progress,
    submit_preview_job,
    wait_for_job,
)
from flame_submitter.preview.request import PreviewError, preview_frames
from tests.farm.conftest import make_studio
from tests.flame_submitter.test_submit import REPO, write_config

NOW = time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1))
STAMP = "20240506-070809"


def package(name: str) -> WorkflowPackage:
    return load_package(REPO / "workflows" / name)


def clip_request(root: Path, frames: Tuple[int, ...], workflow: str = "blur") -> ClipRequest:
    """As ``frames_on_disk`` makes it for the clip sh010: its plate, and an output under the jobs root."""
    output = root / "comfyfarm" / "jobs" / "output" / f"{STAMP}_sh010_{workflow}" / f"sh010_{workflow}.####.exr"
    return ClipRequest("sh010", str(root / "sh010" / "plate" / "plate.####.exr"), frames, str(output),
                       RelinkIdentity(project="show", clip_name="sh010", user="ann"))


def submit(url: str, config: Config, request: ClipRequest, workflow: WorkflowPackage,
           template: Optional[JobTemplate] = None, parameters: Optional[Dict[str, Any]] = None) -> PreviewJob:
    return submit_preview_job(request, package=workflow, parameters=parameters or {},
                              template=template or load_template("default"), config=config,
                              client=DeadlineClient(url, timeout_s=5), now=NOW, token="beef")


@pytest.fixture
def config(fake_deadline, tmp_path: Path, studio: Path, inbox: Path) -> Config:
    """The studio's configuration, with the inbox the relink imports from."""
    return load_config(write_config(tmp_path, studio, fake_deadline.url, inbox_root=str(inbox)), environ={})


def test_a_preview_is_one_job_of_one_task_at_priority_100_with_no_hand_back(fake_deadline, config: Config,
                                                                            studio: Path, inbox: Path) -> None:
    blur = package("blur")
    frames = preview_frames(blur, 1012, 1001, 1024)
    template = load_template("default").with_overrides({"pool": "gpu", "group": "gpu_24gb", "chunk_size": 5,
                                                        "limit_groups": "nuke", "preview_every": 3})
    preview = submit(fake_deadline.url, config, clip_request(studio, frames), blur, template, {"radius": 3})

    (sent,) = fake_deadline.submissions()  # the render job alone: no hand-back job to import it into Flame
    info, plugin = sent["JobInfo"], sent["PluginInfo"]
    assert sent["job_id"] == preview.job_id
    assert info["Name"] == preview.name == "sh010 - Gaussian blur [preview 1012]"
    assert (info["Frames"], info["ChunkSize"], info["Priority"]) == ("1012", "1", "100")
    assert (info["Pool"], info["Group"], info["LimitGroups"]) == ("gpu", "gpu_24gb", "nuke")  # the template's
    assert (info["TaskTimeoutMinutes"], info["FailureDetectionTaskErrors"]) == ("60", "3")
    assert "JobDependencies" not in info and "Mode" not in plugin and plugin["Part"] == "main"
    folder = studio / "comfyfarm" / "jobs" / "preview" / f"{STAMP}_sh010_blur_beef"
    assert (info["OutputDirectory0"], info["OutputFilename0"]) == (str(folder), "sh010_blur.####.exr")
    assert preview.output_pattern == str(folder / "sh010_blur.####.exr") and preview.frames == (1012,)
    tasks = fake_deadline.store.tasks_json(preview.job_id)["Tasks"]
    assert [task["Frames"] for task in tasks] == ["1012-1012"]
    # its job record: under the previews' folder, with no inbox, so no completion record can reach Flame
    assert preview.record_path.parent.parent == studio / "comfyfarm" / "jobs" / "preview"
    assert plugin["JobRecord"] == str(preview.record_path)
    record = read_job_record(preview.record_path)
    assert record.inbox is None and record.workflow.parameters == {"radius": 3}
    assert list(inbox.iterdir()) == []


def test_a_sequence_previews_window_is_one_task_whatever_the_window_rounding(fake_deadline, config: Config,
                                                                            studio: Path) -> None:
    rife = package("rife_frame_interpolation")  # a chunk is whole 23-frame windows: 24 frames would make two tasks
    frames = preview_frames(rife, 1012, 1001, 1024)
    assert len(frames) == 24
    preview = submit(fake_deadline.url, config, clip_request(studio, frames, "rife_frame_interpolation"), rife)
    (sent,) = fake_deadline.submissions()
    assert sent["JobInfo"]["Frames"] == "1001-1024" and int(sent["JobInfo"]["ChunkSize"]) >= 24
    assert [task["Frames"] for task in fake_deadline.store.tasks_json(preview.job_id)["Tasks"]] == ["1001-1024"]
    assert preview.name == "sh010 - RIFE 2x frame interpolation [preview 1001-1024]"


@pytest.mark.parametrize(("change", "words"), [
    ("missing frame", "1030"),
    ("unknown pool", "pool 'render' does not exist on the farm"),
])
def test_bad_input_is_refused_before_the_farm_in_one_line(fake_deadline, config: Config, studio: Path,
                                                          change: str, words: str) -> None:
    frames: Tuple[int, ...] = (1030,) if change == "missing frame" else (1012,)
    template = load_template("default").with_overrides({"pool": "render"} if change == "unknown pool" else {})
    with pytest.raises(BadInput) as raised:
        submit(fake_deadline.url, config, clip_request(studio, frames), package("blur"), template)
    assert words in str(raised.value) and "\n" not in str(raised.value)
    assert fake_deadline.submissions() == []
    preview_root = studio / "comfyfarm" / "jobs" / "preview"
    assert not preview_root.exists() or not any(preview_root.iterdir())  # no job folder left behind


def test_no_frame_or_no_jobs_root_is_refused(fake_deadline, config: Config, studio: Path) -> None:
    with pytest.raises(PreviewError, match="no frame to preview"):
        submit(fake_deadline.url, config, clip_request(studio, ()), package("blur"))
    with pytest.raises(BadInput, match=r"^no jobs root configured: set jobs_root \(COMFYFARM_JOBS_ROOT\)"):
        submit(fake_deadline.url, dataclasses.replace(config, jobs_root=None), clip_request(studio, (1012,)),
               package("blur"))
    assert fake_deadline.submissions() == []


class Waiting:
    """``wait_for_job`` in a thread, as the dialog runs it: what it reported, and how it ended."""

    def __init__(self, url: str, job_id: str, *, timeout_s: float = 60, poll_s: float = 0.05) -> None:
        self.stop = threading.Event()
        self.reports: List[Tuple[float, str]] = []
        self.error: Optional[BaseException] = None
        self.finished = threading.Event()
        client = DeadlineClient(url, timeout_s=5)

        def run() -> None:
            try:
                wait_for_job(client, job_id, stop=self.stop, timeout_s=timeout_s, progress=self._report, poll_s=poll_s)
            except BaseException as exc:  # noqa: BLE001 - the test reads it
                self.error = exc
            finally:
                self.finished.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def _report(self, fraction: float, text: str) -> None:
        self.reports.append((fraction, text))

    def until(self, predicate: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; reports so far: {self.reports[-5:]}"
            time.sleep(0.02)

    def end(self, timeout_s: float = 120) -> Optional[BaseException]:
        assert self.finished.wait(timeout_s), f"wait_for_job did not return; reports: {self.reports[-5:]}"
        return self.error

    def texts(self) -> List[str]:
        return list(dict.fromkeys(text for _fraction, text in self.reports))


def test_progress_says_where_the_task_is_and_a_failure_brings_deadlines_error_report(fake_deadline, config: Config,
                                                                                       studio: Path) -> None:
    """A Worker of the double's store plays the farm: it takes the task, reports progress, fails it twice."""
    preview = submit(fake_deadline.url, config, clip_request(studio, (1012,)), package("blur"))
    store = fake_deadline.store
    waiting = Waiting(fake_deadline.url, preview.job_id)
    waiting.until(lambda: bool(waiting.reports))
    lease = store.dequeue_task("gpu-07")
    assert lease is not None and lease.job_id == preview.job_id
    store.report_progress(lease.job_id, lease.task_id, 40.0, "frame 1012: ComfyUI node 2", worker="gpu-07")
    waiting.until(lambda: waiting.reports[-1][1].startswith("Rendering"))
    report = ("=======================================================\nError\n"
              "=======================================================\n"
              "Error: FailRenderException : ComfyUI node 2 (ImageBlur) failed: RuntimeError: CUDA out of memory\n"
              "Tried to allocate 2.00 GiB\n"
              "   at Deadline.Plugins.DeadlinePlugin.FailRender(String message)\n"
              "   at Python.Runtime.Dispatcher.Dispatch(ArrayList args)\n")
    store.fail_task(lease.job_id, lease.task_id, report, worker="gpu-07")  # 1 of the template's 3 errors
    waiting.until(lambda: "error(s) so far" in waiting.reports[-1][1])
    for _attempt in range(2):
        lease = store.dequeue_task("gpu-07")
        assert lease is not None
        store.fail_task(lease.job_id, lease.task_id, report, worker="gpu-07")
    error = waiting.end()
    assert isinstance(error, PreviewJobFailed)
    assert str(error) == (
        f"the preview failed on the farm (Deadline job {preview.job_id}): on gpu-07 (task 0): ComfyUI node 2 "
        "(ImageBlur) failed: RuntimeError: CUDA out of memory\nTried to allocate 2.00 GiB")
    texts = waiting.texts()
    assert texts[:3] == ["Queued on the farm", "Rendering on gpu-07: 40 % (frame 1012: ComfyUI node 2)",
                         "Queued on the farm; 1 error(s) so far, Deadline tries again"]
    assert (0.4, texts[1]) in waiting.reports
    assert store.has_job(preview.job_id)  # a failed preview stays in Deadline Monitor, for its reports


def test_stop_takes_the_job_off_the_farm(fake_deadline, config: Config, studio: Path) -> None:
    preview = submit(fake_deadline.url, config, clip_request(studio, (1012,)), package("blur"))
    waiting = Waiting(fake_deadline.url, preview.job_id)
    waiting.until(lambda: bool(waiting.reports))
    waiting.stop.set()
    error = waiting.end(10)
    assert isinstance(error, PreviewStopped) and isinstance(error, Cancelled)
    assert str(error) == f"Stopped: the preview job {preview.job_id} was removed from the farm"
    assert not fake_deadline.store.has_job(preview.job_id)  # deleted, as `comfyfarm cancel --delete`


def test_a_job_that_cannot_be_deleted_is_failed_instead(fake_deadline, config: Config, studio: Path) -> None:
    preview = submit(fake_deadline.url, config, clip_request(studio, (1012,)), package("blur"))
    fake_deadline.set_faults(status=500, body="An exception occurred within the Deadline code: locked",
                             path_prefix="/api/jobs", method="DELETE")
    waiting = Waiting(fake_deadline.url, preview.job_id)
    waiting.until(lambda: bool(waiting.reports))
    waiting.stop.set()
    assert isinstance(waiting.end(10), PreviewStopped)
    assert fake_deadline.store.job_status_text(preview.job_id) == "Failed"  # as `comfyfarm cancel`


def test_a_preview_not_done_in_time_is_taken_off_the_farm(fake_deadline, config: Config, studio: Path) -> None:
    preview = submit(fake_deadline.url, config, clip_request(studio, (1012,)), package("blur"))
    error = Waiting(fake_deadline.url, preview.job_id, timeout_s=0.3).end(10)
    assert isinstance(error, PreviewTimedOut)
    assert str(error) == (
        f"the preview was not done within 0.3 s (last: Queued on the farm); the preview job {preview.job_id} was "
        "removed from the farm; no Worker took it in time: the farm is busy, or no Worker serves the template's "
        "pool and group; try again later, or ask a wrangler")
    assert not fake_deadline.store.has_job(preview.job_id)


def test_a_preview_deleted_by_a_wrangler_or_a_web_service_gone(fake_deadline, config: Config, studio: Path) -> None:
    preview = submit(fake_deadline.url, config, clip_request(studio, (1012,)), package("blur"))
    fake_deadline.store.delete_jobs([preview.job_id])
    error = Waiting(fake_deadline.url, preview.job_id).end(10)
    assert isinstance(error, PreviewJobFailed)
    assert str(error) == (f"the preview job {preview.job_id} is no longer on the farm (deleted in Deadline "
                          "Monitor?): press Preview again")
    second = submit(fake_deadline.url, config, clip_request(studio, (1013,)), package("blur"))
    fake_deadline.stop()
    error = Waiting(fake_deadline.url, second.job_id).end(60)
    assert isinstance(error, PreviewFarmError) and not isinstance(error, PreviewJobFailed)
    assert f"stopped answering about the preview job {second.job_id}" in str(error)
    assert "could not be removed from the farm" in str(error)
    assert str(error).endswith("delete it in Deadline Monitor")


def test_an_error_report_is_trimmed_to_what_an_artist_reads() -> None:
    report = "\n".join(["Error: a plain message"] + [f"line {n}" for n in range(2, 20)])
    assert artist_text(report) == "a plain message\nline 2\nline 3\nline 4\nline 5\nline 6"
    assert artist_text("x" * 700).endswith("…") and len(artist_text("x" * 700)) == 600
    assert artist_text("") == ""


def test_job_progress_adds_up_the_tasks() -> None:
    job = {"Stat": 1, "Errs": 0}
    tasks = [{"Stat": 5, "Prog": "100 %"}, {"Stat": 4, "Prog": "50 %", "Slave": "w1", "RndStat": ""}]
    assert preview_progress(job, tasks) == (0.75, "Rendering on w1: 50 %")
    assert preview_progress({"Stat": 2}, [{"Stat": 3}]) == (0.0, "Suspended on the farm: resume it in Deadline Monitor")


# -- on the emulated farm: the real plugin on a Worker, the ComfyUI double behind it ---------------------------------


def farm_preview(farm, tmp_path: Path, *, frame: int = 1012):
    """A studio on the emulated farm (with an inbox) and a preview of the invert workflow submitted to it."""
    studio = make_studio(farm, tmp_path, frame_count=24)
    inbox = studio.hand_back()
    config = load_config(studio.config, environ={})
    invert = package("invert")
    request = clip_request(studio.root, preview_frames(invert, frame, 1001, 1024), "invert")
    return studio, inbox, submit(farm.url, config, request, invert)


def test_the_emulated_farm_renders_the_preview_and_nothing_reaches_flame(farm, tmp_path: Path) -> None:
    studio, inbox, preview = farm_preview(farm, tmp_path)
    waiting = Waiting(farm.url, preview.job_id, poll_s=0.05)
    waiting.until(lambda: bool(waiting.reports))  # queued before a Worker exists
    (worker,) = farm.start_workers(1)
    assert waiting.end() is None
    texts = waiting.texts()
    assert texts[0] == "Queued on the farm" and texts[-1] == "Rendered on the farm"
    assert any(text.startswith(f"Rendering on {worker}: ") for text in texts)
    assert waiting.reports[-1][0] == 1.0
    folder = Path(preview.output_pattern).parent
    assert sorted(p.name for p in folder.iterdir()) == ["sh010_invert.1012.exr"]
    assert [s["job_id"] for s in studio.submitted()] == [preview.job_id]  # no hand-back job
    time.sleep(0.5)  # anything an event or a job would write after the job
    assert list(inbox.iterdir()) == []


def test_a_failing_preview_on_the_emulated_farm_raises_the_plugins_error(farm, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    studio.configure(faults='{"fail_node": {"class_type": "ImageInvert", "exception_type": "RuntimeError", '
                            '"message": "CUDA out of memory"}}')
    config = load_config(studio.config, environ={})
    template = load_template("default").with_overrides({"failure_detection": {"task_errors": 1, "job_errors": 1}})
    preview = submit(farm.url, config, clip_request(studio.root, (1012,), "invert"), package("invert"), template)
    (worker,) = farm.start_workers(1)
    error = Waiting(farm.url, preview.job_id).end()
    assert isinstance(error, PreviewJobFailed)
    assert str(error).startswith(f"the preview failed on the farm (Deadline job {preview.job_id}): on {worker} "
                                 "(task 0): ")
    assert "ComfyUI node 2 (ImageInvert) failed: RuntimeError: CUDA out of memory" in str(error)
    assert len(str(error).splitlines()) <= 6


def test_stop_while_a_worker_renders_cancels_it_and_leaves_no_frame(farm, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    studio.configure(faults='{"node_delay_s": 3}')
    config = load_config(studio.config, environ={})
    preview = submit(farm.url, config, clip_request(studio.root, (1012,), "invert"), package("invert"))
    (worker,) = farm.start_workers(1)
    waiting = Waiting(farm.url, preview.job_id)
    rendering = f"Rendering on {worker}: 0 % (frame 1012 (1/1))"  # the runner has the frame in ComfyUI
    waiting.until(lambda: bool(waiting.reports) and waiting.reports[-1][1] == rendering)
    waiting.stop.set()
    assert isinstance(waiting.end(30), PreviewStopped)
    assert not farm.store.has_job(preview.job_id)
    waiting.until(lambda: "the task was canceled by Deadline" in farm.worker_log(worker), timeout_s=30)
    farm.stop_workers()
    folder = Path(preview.output_pattern).parent
    assert not folder.exists() or list(folder.iterdir()) == []  # the plugin withdrew its half-written frame
    assert studio.comfyui_processes() == []


def test_the_preview_frame_list_matches_the_request(fake_deadline, config: Config, studio: Path) -> None:
    frames = (1010, 1011, 1013)
    preview = submit(fake_deadline.url, config, clip_request(studio, frames), package("blur"))
    (sent,) = fake_deadline.submissions()
    assert sent["JobInfo"]["Frames"] == format_frame_list(list(frames)) and sent["JobInfo"]["ChunkSize"] == "3"
    assert len(fake_deadline.store.tasks_json(preview.job_id)["Tasks"]) == 1
