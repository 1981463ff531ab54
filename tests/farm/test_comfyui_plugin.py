"""The real ComfyUI plugin on the emulated farm: `comfyfarm submit` → Workers → frames on disk.

The Workers run in a Worker's environment (Deadline's library folder in ``LD_LIBRARY_PATH``, a studio
``http_proxy`` where nothing listens: tests/farm_emulator/farm.py), and stop processes the way Deadline does
(at once, children only under ``UseProcessTree``)."""

from __future__ import annotations

import os
import signal
import time

from farm_plugin.frames.image_io import probe

from .conftest import Studio, done_frames, worker_lines

ALL = [f"invert.{frame}.exr" for frame in range(1001, 1097)]


def tasks(studio: Studio, job_id: str) -> list:
    return studio.farm.store.tasks_json(job_id)["Tasks"]


def wait_for(predicate, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_96_frames_on_4_workers_each_written_once_with_one_comfyui_per_worker(studio: Studio) -> None:
    job_id = studio.submit("--chunk-size", "8")
    workers = studio.farm.start_workers(4)
    assert studio.farm.wait_for_job(job_id, timeout_s=240) == "Completed"
    assert studio.outputs() == ALL
    assert probe(studio.root / "sh010" / "comfy" / "invert.1050.exr").timecode == "01:00:02:01"
    done = done_frames(studio.farm, workers)
    assert sorted(done) == list(range(1001, 1097))  # every frame once, none twice
    job_tasks = tasks(studio, job_id)
    assert len(job_tasks) == 12 and {t["Prog"] for t in job_tasks} == {"100 %"}
    starts = worker_lines(studio.farm, workers, "comfyfarm: ComfyUI is up at")
    rendered = {t["Slave"] for t in job_tasks}
    assert {name: len(lines) for name, lines in starts.items() if name in rendered} == {n: 1 for n in rendered}
    assert len(rendered) >= 2  # the work really was spread
    # comfyfarm's frame nodes, found beside the runtime's farm_plugin, are loaded: frames stay float
    nodes = worker_lines(studio.farm, workers, "comfyfarm: ComfyUI loads comfyfarm's frame nodes from ")
    assert {name: len(lines) for name, lines in nodes.items() if name in rendered} == {n: 1 for n in rendered}
    full = "full precision: float frames with alpha through comfyfarm's frame nodes"
    paths = worker_lines(studio.farm, workers, full)
    assert all(paths[name] for name in rendered)
    started = [line for name in workers for line in studio.farm.worker_log(name).splitlines()
               if "INFO: Process started: pid " in line]
    assert len(started) >= 2 * len(rendered)  # a ComfyUI per Worker, a runner per task
    assert all(line.endswith("(UseProcessTree True, TerminateOnExit True)") for line in started)
    studio.farm.stop_workers()
    assert studio.comfyui_processes() == []  # EndJob shut every ComfyUI down


def test_a_worker_killed_mid_task_loses_and_doubles_nothing(studio: Studio) -> None:
    studio.configure(faults='{"node_delay_s": 0.05}')
    job_id = studio.submit("--chunk-size", "8", frames="1001-1048")
    workers = studio.farm.start_workers(3)
    wait_for(lambda: any(t["Slave"] == workers[0] and t["Stat"] == 4 and t["Prog"] not in ("0 %", "")
                         for t in tasks(studio, job_id)))
    studio.farm.kill_worker(workers[0])
    assert studio.farm.wait_for_job(job_id, timeout_s=240) == "Completed"
    assert studio.outputs() == ALL[:48]  # nothing lost, no temporary file left
    done = done_frames(studio.farm, workers)
    assert len(done) == len(set(done))  # nothing written twice
    requeued = studio.farm.store.reports(job_id, report_type=2)
    assert any(workers[0] in report.text for report in requeued)


def test_a_comfyui_killed_mid_chunk_is_restarted_and_the_chunk_finishes(studio: Studio) -> None:
    studio.configure(faults='{"node_delay_s": 0.05}')
    job_id = studio.submit("--chunk-size", "16", frames="1001-1032")
    (worker,) = studio.farm.start_workers(1)
    wait_for(lambda: len(studio.outputs()) >= 3)
    (comfyui,) = studio.comfyui_processes()
    os.kill(comfyui, signal.SIGKILL)
    assert studio.farm.wait_for_job(job_id, timeout_s=240) == "Completed"
    assert studio.outputs() == ALL[:32]
    assert worker_lines(studio.farm, [worker], "ComfyUI stopped; restarting it (1/2)")[worker]
    assert studio.farm.store.reports(job_id, report_type=1) == []  # no task error: the restart was enough


def test_a_comfyui_that_cannot_start_fails_the_task_with_its_log(studio: Studio) -> None:
    studio.configure(faults='{"refuse_start": "RuntimeError: Found no NVIDIA driver on your system."}')
    job_id = studio.submit("--chunk-size", "48", frames="1001-1048")
    studio.farm.start_workers(1)
    assert studio.farm.wait_for_job(job_id, timeout_s=120) == "Failed"
    (error, *_rest) = studio.farm.store.reports(job_id, report_type=1)
    assert "ComfyUI exited while starting at http://127.0.0.1:" in error.text
    assert "last lines of ComfyUI's log:" in error.text
    assert "RuntimeError: Found no NVIDIA driver on your system." in error.text
    assert studio.outputs() == []


def test_a_worker_without_a_gpu_fails_the_task_and_never_falls_back_to_the_cpu(studio: Studio) -> None:
    studio.configure(faults='{"no_gpu": true}')
    job_id = studio.submit("--chunk-size", "48", frames="1001-1048")
    studio.farm.start_workers(1)
    assert studio.farm.wait_for_job(job_id, timeout_s=120) == "Failed"
    (error, *_rest) = studio.farm.store.reports(job_id, report_type=1)
    assert "AssertionError: Torch not compiled with CUDA enabled" in error.text
    assert studio.outputs() == []


def test_a_node_error_fails_the_task_naming_the_node(studio: Studio) -> None:
    studio.configure(faults='{"fail_node": {"class_type": "ImageInvert", "exception_type": "RuntimeError", '
                            '"message": "CUDA out of memory"}}')
    job_id = studio.submit("--chunk-size", "8", frames="1001-1008")
    studio.farm.start_workers(1)
    assert studio.farm.wait_for_job(job_id, timeout_s=120) == "Failed"
    (error, *_rest) = studio.farm.store.reports(job_id, report_type=1)
    assert "ComfyUI node 2 (ImageInvert) failed: RuntimeError: CUDA out of memory" in error.text
    assert studio.outputs() == []


def test_cancel_interrupts_comfyui_and_leaves_no_partial_file(studio: Studio) -> None:
    studio.configure(faults='{"node_delay_s": 0.1}')
    job_id = studio.submit("--chunk-size", "48", frames="1001-1048")
    studio.farm.start_workers(1)
    wait_for(lambda: len(studio.outputs()) >= 2)
    assert studio.cli("cancel", job_id).returncode == 0
    assert studio.farm.wait_for_job(job_id, timeout_s=60) == "Failed"
    time.sleep(1.0)  # let the Worker see the cancel and withdraw
    names = studio.outputs()
    assert 2 <= len(names) < 48 and not any(name.startswith(".") for name in names)
    studio.farm.stop_workers()
    assert studio.comfyui_processes() == []
