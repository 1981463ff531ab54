"""Workers that stay warm across jobs: comfyfarm's service (farm_plugin.service) on the emulated farm.

The service runs as a Worker machine's init system would run it (``python -m farm_plugin.service serve``, one
ComfyUI double per GPU); two Workers (GPU 0 and GPU 1, Worker GPU affinity) run the real plugin, which attaches
to the service's ComfyUI of its GPU after ``python -m farm_plugin.service prepare`` checked it. A plugin with
no service answering starts its own ComfyUI, as before (every other farm test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import pytest

from farm_plugin.frames.image_io import read_pixels
from tests.farm_plugin.runner.conftest import expected_invert_float

from .conftest import PYTHON, REPO, Studio, done_frames, quiet_base_port, worker_lines

ATTACHED = "comfyfarm: using the warm ComfyUI of comfyfarm's service on GPU "
OWN_START = "comfyfarm: starting ComfyUI on GPU"


class Service:
    """A running ``python -m farm_plugin.service serve`` for GPUs 0 and 1."""

    def __init__(self, studio: Studio, state_dir: Path, faults: str = "", *extra: str) -> None:
        self.state_dir = state_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYFARM_", "COMFYUI_"))}
        if faults:
            env["COMFYFARM_FAKE_FAULTS"] = faults
        self.log = state_dir.parent / "service.log"
        self.popen = subprocess.Popen(
            [PYTHON, "-m", "farm_plugin.service", "--state-dir", str(state_dir), "serve", "--comfyui-dir",
             str(studio.comfyui_dir), "--gpus", "0,1", "--python", PYTHON, "--base-port", str(quiet_base_port()),
             "--startup-timeout-s", "30", *extra],
            cwd=REPO, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not all((state_dir / f"gpu-{gpu}.json").is_file() for gpu in ("0", "1")):
            assert self.popen.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"the service did not start:\n{self.log.read_text()}"
            time.sleep(0.1)

    def starts(self) -> Dict[str, int]:
        """How many times the service started each GPU's ComfyUI."""
        return {gpu: json.loads((self.state_dir / f"gpu-{gpu}.json").read_text())["starts"] for gpu in ("0", "1")}

    def stop(self) -> str:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(timeout=60)
        return self.log.read_text()


@pytest.fixture
def service(studio: Studio) -> Iterator:
    started: List[Service] = []
    state_dir = studio.root.parent / "service-state"

    def start(faults: str = "", *extra: str) -> Service:
        started.append(Service(studio, state_dir, faults, *extra))
        return started[-1]

    yield start
    for running in started:
        running.stop()
    assert studio.comfyui_processes() == []  # the service stopped its ComfyUIs


def expected_inverted(studio: Studio, frame: int) -> np.ndarray:
    """invert on the full-precision path: 1 - value in the sRGB working space, back to the plate's linear."""
    return expected_invert_float(read_pixels(studio.plate.replace("####", str(frame)))[..., :3])


def test_three_jobs_on_two_workers_start_comfyui_twice_not_six_times(studio: Studio, service) -> None:
    warm = service('{"node_delay_s": 0.01}')
    workers = studio.farm.start_workers(2)
    ranges = ("1001-1016", "1017-1032", "1033-1048")
    for frames in ranges:  # one after another, as a studio sends shot after shot
        job_id = studio.submit("--chunk-size", "4", frames=frames)
        assert studio.farm.wait_for_job(job_id, timeout_s=120) == "Completed", studio.farm.describe(job_id)
    assert warm.starts() == {"0": 1, "1": 1}  # one ComfyUI per Worker for the three jobs
    assert worker_lines(studio.farm, workers, OWN_START) == {name: [] for name in workers}
    attached = worker_lines(studio.farm, workers, ATTACHED)
    assert sum(len(lines) for lines in attached.values()) >= len(ranges)  # each job's StartJob attached
    assert sorted(done_frames(studio.farm, workers)) == list(range(1001, 1049))  # every frame once
    assert studio.outputs() == [f"invert.{frame}.exr" for frame in range(1001, 1049)]
    ready = worker_lines(studio.farm, workers, "is ready for the task")
    assert sum(len(lines) for lines in ready.values()) >= 12  # checked before each of the 12 tasks


def test_a_job_of_another_workflow_in_between_does_not_touch_the_next(studio: Studio, service) -> None:
    service()
    studio.farm.start_workers(2)
    first = studio.submit("--chunk-size", "4", frames="1001-1008")
    assert studio.farm.wait_for_job(first, timeout_s=120) == "Completed"
    other = studio.submit("--chunk-size", "4", "--set", "radius=4", frames="1001-1008", workflow="blur")
    assert studio.farm.wait_for_job(other, timeout_s=120) == "Completed"
    last = studio.submit("--chunk-size", "4", frames="1009-1016")
    assert studio.farm.wait_for_job(last, timeout_s=120) == "Completed"
    folder = studio.root / "sh010" / "comfy"
    for frame in range(1001, 1017):
        inverted = read_pixels(folder / f"invert.{frame}.exr")[..., :3]
        assert np.abs(inverted - expected_inverted(studio, frame)).max() < 2e-3, frame  # not blurred, not mixed
    blurred = read_pixels(folder / "blur.1004.exr")[..., :3]
    assert np.abs(blurred - read_pixels(studio.plate.replace("####", "1004"))[..., :3]).max() > 0.01


def test_a_comfyui_that_grows_past_the_limit_is_restarted_between_tasks(studio: Studio, service) -> None:
    warm = service('{"leak_mb_per_prompt": 40}', "--max-rss-gb", "0.2")
    workers = studio.farm.start_workers(1)
    job_id = studio.submit("--chunk-size", "4", frames="1001-1024")
    assert studio.farm.wait_for_job(job_id, timeout_s=180) == "Completed", studio.farm.describe(job_id)
    assert sorted(done_frames(studio.farm, workers)) == list(range(1001, 1025))  # every frame once
    assert warm.starts()["0"] >= 2
    restarts = worker_lines(studio.farm, workers, "over max_rss_gb 0.2")
    assert restarts[workers[0]], studio.farm.worker_log(workers[0])
    line = restarts[workers[0]][0]
    assert "ComfyUI's resident memory is " in line and "restarting ComfyUI between tasks" in line
    assert "restarting ComfyUI (ComfyUI's resident memory is" in warm.stop()  # the service says why


def test_the_service_gone_the_plugin_starts_its_own(studio: Studio, service) -> None:
    warm = service()
    warm.stop()  # its state files go with it
    workers = studio.farm.start_workers(1)
    job_id = studio.submit("--chunk-size", "8", frames="1001-1008")
    assert studio.farm.wait_for_job(job_id, timeout_s=120) == "Completed"
    log = studio.farm.worker_log(workers[0])
    assert (f"comfyfarm: no comfyfarm service for GPU 0 on this Worker (no {warm.state_dir / 'gpu-0.json'}): "
            "starting ComfyUI for this job") in log
    assert "farm_plugin.service" not in log  # nothing to ask: no process started for it
    assert OWN_START in log
    studio.farm.stop_workers()  # EndJob stops the ComfyUI the plugin started


def test_a_service_killed_outright_is_found_gone_and_the_plugin_starts_its_own(studio: Studio, service) -> None:
    warm = service()
    warm.popen.send_signal(signal.SIGKILL)  # its state files stay behind, its ComfyUIs with them
    warm.popen.wait(timeout=30)
    for pid in studio.comfyui_processes():
        os.kill(pid, signal.SIGKILL)
    workers = studio.farm.start_workers(1)
    job_id = studio.submit("--chunk-size", "8", frames="1001-1008")
    assert studio.farm.wait_for_job(job_id, timeout_s=120) == "Completed"
    log = studio.farm.worker_log(workers[0])
    assert "comfyfarm: the comfyfarm service of GPU 0 does not answer at " in log
    assert ": starting ComfyUI for this job" in log and OWN_START in log
    studio.farm.stop_workers()


def test_out_of_memory_on_the_farm_names_the_cause_and_the_fix(studio: Studio) -> None:
    studio.configure(faults='{"fail_node": {"class_type": "ImageInvert", "exception_type": '
                            '"torch.OutOfMemoryError", "message": "CUDA out of memory. Tried to allocate 2.00 GiB."}}')
    workers = studio.farm.start_workers(1)
    job_id = studio.submit("--chunk-size", "8", frames="1001-1008")
    studio.farm.wait_for_job(job_id, timeout_s=120)
    errors = [line for line in studio.farm.worker_log(workers[0]).splitlines() if "GPU out of memory: " in line]
    assert errors, studio.farm.worker_log(workers[0])
    assert ("GPU out of memory: ComfyUI node 2 (ImageInvert) failed: torch.OutOfMemoryError: CUDA out of memory. "
            "Tried to allocate 2.00 GiB. (frames 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008): give the "
            "workflow less to hold at once") in errors[0]


@pytest.mark.parametrize(("faults", "headline"), [
    ('{"fail_node": {"class_type": "ImageInvert", "exception_type": "torch.AcceleratorError", "message": '
     '"CUDA error: an illegal memory access was encountered"}}',
     "GPU failure: ComfyUI node 2 (ImageInvert) failed: torch.AcceleratorError: CUDA error: an illegal memory access "
     "was encountered (frames 1001, 1002, 1003, 1004): the GPU or its driver failed under load: restart this Worker"),
    ('{"refuse_start": "RuntimeError: Found no NVIDIA driver on your system."}',
     "no usable GPU driver: ComfyUI exited while starting at http://127.0.0.1:"),
])
def test_a_lost_gpu_and_a_missing_driver_on_the_farm_name_the_cause_and_the_fix(studio: Studio, faults: str,
                                                                               headline: str) -> None:
    studio.configure(faults=faults)
    workers = studio.farm.start_workers(1)
    job_id = studio.submit("--chunk-size", "4", frames="1001-1004")
    studio.farm.wait_for_job(job_id, timeout_s=120)
    log = studio.farm.worker_log(workers[0])
    assert headline in log, log


def test_a_comfyui_killed_by_the_system_on_the_farm_is_named_with_its_fix(studio: Studio) -> None:
    studio.configure(faults='{"kill_on_prompt": 2}', RestartLimit="0")
    workers = studio.farm.start_workers(1)
    job_id = studio.submit("--chunk-size", "4", frames="1001-1004")
    studio.farm.wait_for_job(job_id, timeout_s=120)
    log = studio.farm.worker_log(workers[0])
    assert "ComfyUI was killed (SIGKILL): ComfyUI stopped during frames " in log, log
    assert "the kernel's out-of-memory killer" in log
