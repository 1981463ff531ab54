"""Bundles run for real by the OpenJD runtime (``openjd run``), against the ComfyUI test double: one ComfyUI
start for the step, chunked tasks, the same verified frames as ``comfyfarm run-local``, a clean cancel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from farm_plugin.frames.image_io import probe, read_pixels
from farm_plugin.service.state import Limits
from farm_plugin.service.supervisor import ComfyUIService, ServiceConfig
from tests.doubles.comfyui.harness import free_port
from tests.farm_plugin.runner.temporal import make_mean_package
from tests.flame_submitter.test_run_local import fake_processes
from tests.real_comfyui import REAL_SKIP_REASON

from .conftest import BundleStudio, comfyui_starts, make_bundle_studio, messages_of, needs_openjd, openjd_run_command

FRAMES = list(range(1001, 1025))


@pytest.fixture(autouse=True)
def _openjd() -> None:
    needs_openjd()


def frame_names(folder: Path, name: str) -> list:
    return sorted(p.name for p in folder.glob(f"{name}.*.exr"))


def run_local(studio: BundleStudio, workflow: str, output: Path, *args: str) -> None:
    result = studio.cli("run-local", "--quiet", "--workflow", workflow, "--input", studio.plate, "--frames",
                        "1001-1024", "--output", str(output), "--comfyui-dir", str(studio.comfyui_dir),
                        "--comfyui-python", sys.executable, *args)
    assert result.returncode == 0, result.stderr


def test_a_24_frame_bundle_runs_in_4_chunks_on_one_comfyui_and_matches_run_local(bundle_studio: BundleStudio,
                                                                                  tmp_path: Path) -> None:
    bundle = bundle_studio.export(tmp_path / "bundle", "--chunk-size", "6")
    run = bundle_studio.openjd_run(bundle)
    assert run.returncode == 0, run.text()
    assert "Session ended successfully" in run.messages
    assert run.chunks == ["1001-1006", "1007-1012", "1013-1018", "1019-1024"]
    assert run.chunks_run == 5  # and the Finish step's one task
    assert comfyui_starts(bundle_studio.comfyui_dir) == 1
    assert "ComfyUI stopped" in run.text() and not fake_processes(bundle_studio.comfyui_dir)
    assert "openjd_progress: 100.0" in run.messages and run.lines("openjd_status: frame 1001")

    out = bundle_studio.root / "sh010" / "comfy"
    assert frame_names(out, "invert") == [f"invert.{f}.exr" for f in FRAMES]
    assert probe(out / "invert.1024.exr").timecode == "01:00:00:23"  # the source frame's timecode
    completion = json.loads((out / "invert.comfyfarm.json").read_text())
    assert completion["status"] == "completed" and completion["frames"] == FRAMES
    assert completion["missing_frames"] == [] and completion["output_pattern"] == str(out / "invert.####.exr")

    local = tmp_path / "local"
    run_local(bundle_studio, "invert", local / "invert.####.exr", "--chunk-size", "6")
    for frame in FRAMES:
        assert np.array_equal(read_pixels(out / f"invert.{frame}.exr"), read_pixels(local / f"invert.{frame}.exr"))


def test_a_crossfaded_sequence_is_joined_by_the_finish_step_as_in_local_mode(tmp_path: Path) -> None:
    studio = make_bundle_studio(tmp_path, frame_count=24)
    package = make_mean_package(tmp_path / "running_mean", context=12, overlap=3, radius=2)
    bundle = studio.export(tmp_path / "bundle", "--chunk-size", "6", workflow=str(package))
    run = studio.openjd_run(bundle)
    assert run.returncode == 0, run.text()
    assert run.chunks == ["1001-1006", "1007-1012", "1013-1018", "1019-1024"]  # a 12-frame window keeps 6
    assert comfyui_starts(studio.comfyui_dir) == 1
    out = studio.root / "sh010" / "comfy"
    assert frame_names(out, "running_mean") == [f"running_mean.{f}.exr" for f in FRAMES]

    local = tmp_path / "local"
    run_local(studio, str(package), local / "running_mean.####.exr", "--chunk-size", "6", "--instances", "2")
    for frame in FRAMES:
        assert np.array_equal(read_pixels(out / f"running_mean.{frame}.exr"),
                              read_pixels(local / f"running_mean.{frame}.exr")), frame


def test_a_comfyui_that_dies_is_restarted_and_the_job_completes(bundle_studio: BundleStudio, tmp_path: Path) -> None:
    bundle = bundle_studio.export(tmp_path / "bundle", "--chunk-size", "6")
    faults = json.dumps({"die_on_prompt": 20})  # in the last chunk; a restarted double counts from 0 again
    run = bundle_studio.openjd_run(bundle, env=bundle_studio.environment(COMFYFARM_FAKE_FAULTS=faults))
    assert run.returncode == 0, run.text()
    assert "openjd_status: ComfyUI stopped: restarting it (1/2)" in run.messages
    assert comfyui_starts(bundle_studio.comfyui_dir) == 2
    out = bundle_studio.root / "sh010" / "comfy"
    assert frame_names(out, "invert") == [f"invert.{f}.exr" for f in FRAMES]
    assert not fake_processes(bundle_studio.comfyui_dir)


def test_cancel_interrupts_comfyui_stops_it_and_leaves_no_partial_file(bundle_studio: BundleStudio,
                                                                       tmp_path: Path) -> None:
    bundle = bundle_studio.export(tmp_path / "bundle", "--chunk-size", "12")
    out = bundle_studio.root / "sh010" / "comfy"
    env = bundle_studio.environment(COMFYFARM_FAKE_FAULTS=json.dumps({"node_delay_s": 0.15}))
    process = subprocess.Popen(openjd_run_command(bundle, bundle_studio), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=bundle)
    try:
        deadline = time.monotonic() + 60
        while len(frame_names(out, "invert")) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)  # Ctrl-C: openjd cancels the running action (NOTIFY_THEN_TERMINATE)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    messages = messages_of(stdout)
    assert process.returncode != 0
    assert any(m.startswith("openjd_status: cancelled: ComfyUI interrupted") for m in messages), messages
    assert any("Exiting Environment: ComfyUI" in m for m in messages)
    written = frame_names(out, "invert")
    assert 2 <= len(written) < 24
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no partial (temporary) file
    for name in written:
        assert read_pixels(out / name).shape == (16, 16, 3)  # every frame left is whole
    assert not fake_processes(bundle_studio.comfyui_dir)
    assert not (out / "invert.comfyfarm.json").exists()  # Finish did not run


def test_a_real_comfyui_runs_a_bundle(tmp_path: Path) -> None:
    comfyui_dir, url = os.environ.get("COMFYUI_DIR"), os.environ.get("COMFYUI_URL")
    if not (comfyui_dir or url):
        pytest.skip(REAL_SKIP_REASON)
    studio = make_bundle_studio(tmp_path, frame_count=8)
    bundle = studio.export(tmp_path / "bundle", "--chunk-size", "4", "--cpu", frames="1001-1008")
    if url:
        params = [f"ComfyUIURL={url}"]
    else:
        params = [f"ComfyUIDir={comfyui_dir}", f"ComfyUIPython={os.environ.get('COMFYUI_PYTHON', '')}",
                  f"ComfyUIArgs={os.environ.get('COMFYUI_ARGS', '--cpu')}", "StartupTimeoutSeconds=300"]
    run = studio.openjd_run(bundle, *params, timeout_s=600)  # PYTHONPATH (e.g. ComfyUI's shims) passes through
    assert run.returncode == 0, run.text()
    assert run.chunks == ["1001-1004", "1005-1008"]
    out = studio.root / "sh010" / "comfy"
    assert frame_names(out, "invert") == [f"invert.{f}.exr" for f in range(1001, 1009)]
    assert json.loads((out / "invert.comfyfarm.json").read_text())["missing_frames"] == []


def test_a_worker_without_comfyui_fails_the_step_saying_how_to_set_it(bundle_studio: BundleStudio,
                                                                      tmp_path: Path) -> None:
    bundle = bundle_studio.export(tmp_path / "bundle", "--chunk-size", "6")
    run = bundle_studio.openjd_run(bundle, "ComfyUIDir=")  # and no COMFYUI_DIR on this worker
    assert run.returncode != 0
    assert ("openjd_fail: ComfyUI did not start: no ComfyUI folder: set the job parameter ComfyUIDir, or COMFYUI_DIR "
            "in the worker's environment (or ComfyUIURL to use a running ComfyUI)") in run.messages
    assert run.chunks == [] and comfyui_starts(bundle_studio.comfyui_dir) == 0
    assert not (bundle_studio.root / "sh010" / "comfy" / "invert.comfyfarm.json").exists()


def test_a_bundle_uses_the_workers_warm_comfyui_and_leaves_it_warm(bundle_studio: BundleStudio,
                                                                   tmp_path: Path) -> None:
    """comfyfarm's Worker service (farm_plugin.service) runs a warm ComfyUI for GPU 0: the step environment
    attaches to it instead of starting one, each task is prepared against it, and it stays up after."""
    state = tmp_path / "service-state"
    service = ComfyUIService(ServiceConfig(comfyui_dir=bundle_studio.comfyui_dir, gpus=("0",), state_dir=state,
                                           base_port=free_port(), python=sys.executable, startup_timeout_s=30,
                                           limits=Limits()))
    service.start()
    try:
        starts_before = comfyui_starts(bundle_studio.comfyui_dir)
        bundle = bundle_studio.export(tmp_path / "bundle", "--chunk-size", "12")
        run = bundle_studio.openjd_run(bundle, env={**bundle_studio.environment(), "COMFYFARM_SERVICE_DIR": str(state),
                                                    "CUDA_VISIBLE_DEVICES": "0"})
        assert run.returncode == 0, run.text()
        url = service.servers["0"].url
        assert f"openjd_status: ComfyUI is up at {url} (the warm ComfyUI of comfyfarm's service on GPU 0)" \
            in run.messages
        assert comfyui_starts(bundle_studio.comfyui_dir) == starts_before  # none started for the session
        assert service.servers["0"].is_running() and service.servers["0"].starts == 1  # left warm
        assert len([line for line in run.text().splitlines() if "is ready for the task" in line]) >= 2
        out = bundle_studio.root / "sh010" / "comfy"
        assert frame_names(out, "invert") == [f"invert.{f}.exr" for f in FRAMES]
    finally:
        service.stop()
