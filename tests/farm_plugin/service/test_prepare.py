"""``prepare``: the checks and the hygiene before a task uses the service's ComfyUI, each decision with its
figures. A real service (ComfyUIService, comfyfarm's own lifecycle code) runs the ComfyUI double."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pytest
import requests

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.frames.image_io import write_frame
from farm_plugin.installation.manifest import Manifest
from farm_plugin.service.__main__ import EXIT_NO_SERVICE, main
from farm_plugin.service.prepare import NotReady, prepare, resident_memory_bytes
from farm_plugin.service.state import Limits, ServiceUnavailable, read_state, state_path
from farm_plugin.service.supervisor import ComfyUIService, ServiceConfig
from flame_submitter.doctor.worker import service_checks
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator:
    started = []

    def start(limits: Optional[Limits] = None, faults: Optional[dict] = None) -> ComfyUIService:
        comfyui = make_fake_comfyui_dir(tmp_path / f"ComfyUI-{len(started)}")
        service = ComfyUIService(ServiceConfig(comfyui_dir=comfyui, gpus=("0",), state_dir=tmp_path / "state",
                                               base_port=free_port(), python=sys.executable, startup_timeout_s=30,
                                               limits=limits or Limits()))
        service.start()
        started.append(service)
        write_frame(service.servers["0"].scratch_dir / "input" / "x.png", np.full((8, 8, 3), 0.5, np.float32))
        if faults:
            requests.post(f"{service.servers['0'].url}/__fake__/faults", json=faults, timeout=5).raise_for_status()
        return service

    yield start
    for service in started:
        service.stop()


GRAPH = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
         "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def client_of(service: ComfyUIService) -> ComfyUIClient:
    return ComfyUIClient(service.servers["0"].url)


def test_no_service_is_said_with_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        prepare("0", state_dir=tmp_path / "state")
    assert str(raised.value) == (f"no comfyfarm service runs a ComfyUI for GPU 0 on this machine (no "
                                 f"{tmp_path / 'state' / 'gpu-0.json'})")
    assert main(["--state-dir", str(tmp_path / "state"), "prepare", "--gpu", "0"]) == EXIT_NO_SERVICE


def test_a_ready_comfyui_is_used_as_it_is(start_service, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    service = start_service()
    assert main(["--state-dir", str(tmp_path / "state"), "prepare", "--gpu", "0", "--job", "j1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"URL {service.servers['0'].url}"
    assert service.servers["0"].starts == 1


def test_a_stale_state_file_of_a_stopped_service_is_no_service(start_service, tmp_path: Path) -> None:
    service = start_service()
    state = read_state(tmp_path / "state", "0")
    service.stop()
    state_path(tmp_path / "state", "0").write_text(state.to_json())  # as a service killed with -9 leaves it
    with pytest.raises(ServiceUnavailable, match="the comfyfarm service of GPU 0 does not answer at "):
        prepare("0", state_dir=tmp_path / "state")


def test_prompts_left_by_a_killed_task_are_cleared(start_service, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    service = start_service(faults={"node_delay_s": 2.0})
    client = client_of(service)
    for _ in range(3):
        requests.post(f"{client.base_url}/prompt", json={"prompt": GRAPH}, timeout=5).raise_for_status()
    with caplog.at_level(logging.INFO):
        prepared = prepare("0", state_dir=tmp_path / "state")
    assert any(action.startswith("cleared 1 running and 2 queued prompt(s) left by an earlier task")
               for action in prepared.actions), prepared.actions
    queue = client.queue()
    assert queue["queue_pending"] == []


def test_after_max_prompts_comfyui_is_restarted_before_the_task(start_service, tmp_path: Path) -> None:
    service = start_service(limits=Limits(max_prompts=2))
    client = client_of(service)
    for _ in range(2):
        client.run(GRAPH, idle_timeout_s=30)
    old_pid = service.servers["0"].process.pid
    prepared = prepare("0", state_dir=tmp_path / "state")
    assert prepared.actions == ["GPU 0: ComfyUI has run 2 prompt(s), max_prompts is 2: restarting ComfyUI between "
                                "tasks"]
    assert service.servers["0"].starts == 2 and service.servers["0"].process.pid != old_pid
    assert read_state(tmp_path / "state", "0").pid == service.servers["0"].process.pid


def test_too_little_gpu_memory_frees_then_restarts_then_names_the_figures(start_service, tmp_path: Path) -> None:
    service = start_service()  # the double's GPU has 24 GiB, 23.5 free
    with pytest.raises(NotReady) as raised:
        prepare("0", state_dir=tmp_path / "state", vram_gb=40)
    assert str(raised.value) == ("GPU 0 has 23.5 GB free with a fresh ComfyUI and the workflow needs 40 GB: another "
                                 "process holds the GPU (see nvidia-smi), or send the job to Workers with more GPU "
                                 "memory")
    assert service.servers["0"].starts == 2  # freed, then restarted, before giving up
    assert prepare("0", state_dir=tmp_path / "state", vram_gb=16).actions == []  # enough: nothing to do


def test_resident_memory_is_read_from_the_system() -> None:
    import os
    own = resident_memory_bytes(os.getpid())
    if not sys.platform.startswith("linux"):
        assert own is None
        return
    assert own is not None and own > 10 * 1024 * 1024
    assert resident_memory_bytes(2 ** 22 + 12345) is None  # no such process


def test_doctor_reports_each_gpus_warm_comfyui_and_a_service_that_is_gone(start_service, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    none = service_checks(None, state_dir)
    assert [(c.status, c.what) for c in none] == [("OK", "comfyfarm service")]
    assert "the plugin starts ComfyUI for each job" in none[0].detail
    service = start_service()
    (check,) = service_checks(None, state_dir)
    assert (check.status, check.what) == ("OK", "comfyfarm service, GPU 0")
    assert check.detail.startswith(f"warm ComfyUI at {service.servers['0'].url} (pid "
                                   f"{service.servers['0'].process.pid}, started 1 time(s)")
    state = read_state(state_dir, "0")
    service.stop()
    state_path(state_dir, "0").write_text(state.to_json())  # a service killed outright leaves its state behind
    (gone,) = service_checks(None, state_dir)
    assert gone.status == "FAIL" and gone.detail.startswith("the comfyfarm service of GPU 0 does not answer at ")
    state_path(state_dir, "0").unlink()
    installed = Manifest(role="worker", version="0.1.0", details={"service": True})
    (missing,) = service_checks(installed, state_dir)
    assert (missing.status, missing.detail) == ("FAIL", f"installed, but not running: no state in {state_dir}")
    assert missing.fix.startswith("start it (systemctl --user start comfyfarm-comfyui")
