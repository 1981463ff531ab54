"""The real ComfyUI plugin on one Worker thread of the strict runtime double, in this process: how it treats
the Worker it runs on and the processes it starts (issue 18, items 2-6, 8 and 9).

The Worker is what tests/doubles/deadline_runtime says a Deadline 10 Worker is (the evidence is in
tests/doubles/test_deadline_runtime_contract.py): its environment has Deadline's library folder first in
``LD_LIBRARY_PATH`` and a studio proxy where nothing listens; it kills what it stops at once, children too
only for a process that set ``UseProcessTree``; stderr reaches the plugin's handlers in no order with
stdout; a monitored process that exits on its own fails the task unless the plugin handles
``MonitoredManagedProcessExit``. The configured Python is a spy that records the arguments and environment
of every process the plugin starts through it (ComfyUI, the runner, the frame-nodes probe), then becomes the
real Python.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from tests.doubles.deadline_runtime import SITE_DIR
from tests.doubles.deadline_runtime.processes import pid_alive
from tests.doubles.deadline_runtime.repository import StoreBackend
from tests.doubles.deadline_runtime.runtime import PluginHost, TaskOutcome, TaskSpec, WorkerSettings
from tests.doubles.deadline_runtime.worker_environment import STUDIO_LIBRARY_FOLDER, worker_environment

from .conftest import Studio

WORKER = "gpu-node-01"
SPY = """#!{python}
import json, os, sys
with open({log!r}, "a") as stream:
    stream.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


@dataclass
class Node:
    """One Worker thread (GPU affinity 0) of the studio's farm, in this process."""

    studio: Studio
    host: PluginHost
    spy_log: Path
    lines: List[str] = field(default_factory=list)

    def run(self, cancel: Optional[threading.Event] = None) -> TaskOutcome:
        """Render the next task and report it to the store, as a Worker would."""
        store = self.studio.farm.store
        lease = store.dequeue_task(WORKER)
        assert lease is not None, "no task to render"
        outcome = self.host.render_task(TaskSpec(lease.job_id, lease.task_id, lease.frames),
                                        cancel=cancel or threading.Event())
        if outcome.state == "completed":
            store.complete_task(lease.job_id, lease.task_id, outcome.log, worker=WORKER)
        elif outcome.state == "failed":
            store.fail_task(lease.job_id, lease.task_id, outcome.error, outcome.log, worker=WORKER)
        elif store.lease_is_current(lease):
            store.requeue_task(lease.job_id, lease.task_id, "canceled", worker=WORKER)
        return outcome

    def run_and_cancel(self, when: Any, timeout_s: float = 60) -> tuple:
        """Render the next task, cancel it once ``when()`` is true; returns (outcome, seconds from the cancel
        to the outcome)."""
        cancel, canceled_at = threading.Event(), []

        def canceller() -> None:
            wait_for(when, timeout_s)
            canceled_at.append(time.monotonic())
            cancel.set()

        thread = threading.Thread(target=canceller, daemon=True)
        thread.start()
        outcome = self.run(cancel)
        thread.join()
        return outcome, time.monotonic() - canceled_at[0]

    def started(self, kind: str) -> List[Dict[str, Any]]:
        """What the spy recorded for each ``kind`` of process: "comfyui", "runner" or "probe"."""
        if not self.spy_log.is_file():
            return []
        runs = [json.loads(line) for line in self.spy_log.read_text(encoding="utf-8").splitlines()]
        first = {"comfyui": "main.py", "runner": "-m", "probe": "-c"}[kind]
        return [run for run in runs if run["argv"] and run["argv"][0] == first]

    def comfyui_url(self) -> str:
        (line,) = [line for line in self.lines if "comfyfarm: ComfyUI is up at " in line][-1:]
        return line.split("ComfyUI is up at ")[1].split()[0]


@pytest.fixture
def worker(studio: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``worker()``: this process becomes a Worker (its environment, Deadline's modules) and gets a Node.
    Submit first: ``comfyfarm submit`` must not run behind the Worker's proxy."""
    nodes: List[Node] = []
    spy_log = tmp_path / "spy.jsonl"
    spy = tmp_path / "bin" / "python"
    spy.parent.mkdir()
    spy.write_text(SPY.format(python=sys.executable, log=str(spy_log)), encoding="utf-8")
    spy.chmod(0o755)

    def become_worker(**settings: Any) -> Node:
        studio.configure(PythonExecutable=str(spy), **settings)
        farm = studio.farm
        for name, value in worker_environment(os.environ, farm.machine, farm.proxy_port).items():
            if os.environ.get(name) != value:
                monkeypatch.setenv(name, value)
        monkeypatch.syspath_prepend(str(SITE_DIR))
        lines: List[str] = []
        host = PluginHost(WorkerSettings(WORKER, tmp_path / "home", gpu_affinity=(0,)), farm.repository,
                          StoreBackend(farm.store), log_sink=lines.append)
        node = Node(studio, host, spy_log, lines)
        nodes.append(node)
        return node

    try:
        yield become_worker
    finally:
        for node in nodes:
            node.host.close()


def wait_for(predicate: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def get_json(url: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())


def test_behind_a_proxy_with_deadlines_libraries_comfyui_and_the_runner_get_a_clean_environment(
        studio: Studio, worker: Any) -> None:
    """Items 2, 6 and 9 (CUDA_DEVICE_ORDER): the plugin reaches its ComfyUI past the studio proxy; ComfyUI, the
    runner and the probe see loopback in no_proxy (the studio's entry kept, its proxy kept for the rest),
    no Deadline folder in LD_LIBRARY_PATH (the studio's kept), and ComfyUI counts GPUs in PCI bus order."""
    studio.submit("--chunk-size", "2", frames="1001-1002")
    node = worker(StartupTimeoutSeconds=10)
    outcome = node.run()

    assert outcome.state == "completed", outcome.error
    assert studio.outputs() == ["invert.1001.exr", "invert.1002.exr"]
    library_path = [e for e in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
                    if e and "Deadline" not in e]
    kinds = {kind: node.started(kind) for kind in ("comfyui", "runner", "probe")}
    assert {kind: len(runs) for kind, runs in kinds.items()} == {"comfyui": 1, "runner": 1, "probe": 1}
    for kind, (run,) in kinds.items():
        env = run["env"]
        assert env["no_proxy"] == env["NO_PROXY"] == ".studio.internal,127.0.0.1,localhost,::1", kind
        assert env["http_proxy"] == studio.farm.proxy_url, kind
        assert env["LD_LIBRARY_PATH"].split(os.pathsep) == library_path, kind
        assert STUDIO_LIBRARY_FOLDER in library_path
    comfyui_env = kinds["comfyui"][0]["env"]
    assert (comfyui_env["CUDA_VISIBLE_DEVICES"], comfyui_env["CUDA_DEVICE_ORDER"]) == ("0", "PCI_BUS_ID")


def test_a_cancel_while_comfyui_starts_ends_the_wait_and_stops_it(studio: Studio, worker: Any) -> None:
    """Item 3: the start-up wait checks IsCanceled(); the ComfyUI it started does not outlive the cancel."""
    studio.submit("--chunk-size", "2", frames="1001-1002")
    node = worker(faults='{"startup_delay_s": 60}', StartupTimeoutSeconds=30)

    outcome, after_cancel_s = node.run_and_cancel(lambda: studio.comfyui_processes() and node.started("comfyui"))

    assert outcome.state == "canceled"
    assert after_cancel_s < 10
    assert studio.comfyui_processes() == []
    assert studio.outputs() == []


def test_a_comfyui_that_never_answers_is_stopped_before_the_task_fails(studio: Studio, worker: Any) -> None:
    """Item 5: the plugin stops what it started before it fails the task (not later, in EndJob)."""
    studio.submit("--chunk-size", "2", frames="1001-1002")
    node = worker(faults='{"startup_delay_s": 60}', StartupTimeoutSeconds=5)

    outcome = node.run()

    assert outcome.state == "failed"
    assert outcome.error.startswith("ComfyUI did not answer at http://127.0.0.1:")
    log = outcome.log
    assert log.index('Shutting down monitored managed process "ComfyUI"') < log.index("ERROR: Error: ComfyUI did not")
    assert studio.comfyui_processes() == []


def test_what_comfyui_starts_dies_with_it(studio: Studio, worker: Any, tmp_path: Path) -> None:
    """Item 4: both processes run with UseProcessTree (and TerminateOnExit): a helper process a custom node
    starts does not outlive ComfyUI when the Worker leaves the job."""
    helper_pid = tmp_path / "helper.pid"
    main = studio.comfyui_dir / "main.py"
    main.write_text(f"""import subprocess, sys
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open({str(helper_pid)!r}, "w").write(str(helper.pid))
""" + main.read_text(encoding="utf-8"), encoding="utf-8")
    studio.submit("--chunk-size", "2", frames="1001-1002")
    node = worker()
    outcome = node.run()
    helper = int(helper_pid.read_text())
    try:
        assert outcome.state == "completed", outcome.error
        started = [line for line in node.lines if "INFO: Process started: pid " in line]
        assert len(started) == 2 and all(line.endswith("(UseProcessTree True, TerminateOnExit True)")
                                         for line in started)
        node.host.leave_job()
        assert studio.comfyui_processes() == []
        assert not pid_alive(helper)
    finally:
        if pid_alive(helper):
            os.kill(helper, signal.SIGKILL)


def test_a_cancel_mid_chunk_withdraws_the_prompts_and_leaves_no_partial_file(studio: Studio, worker: Any) -> None:
    """Item 9: Deadline kills the runner outright, so the plugin clears and interrupts ComfyUI's queue and
    removes what was half-written (here: a frame the killed runner was writing)."""
    studio.submit("--chunk-size", "8", frames="1001-1008")
    out = studio.root / "sh010" / "comfy"
    out.mkdir(parents=True)
    (out / ".invert.1007.exr.deadbeef.tmp.exr").write_bytes(b"half a frame")
    node = worker(faults='{"node_delay_s": 0.2}')

    outcome, _ = node.run_and_cancel(lambda: len([n for n in studio.outputs() if not n.startswith(".")]) >= 2)

    assert outcome.state == "canceled"
    names = studio.outputs()
    assert 2 <= len(names) < 8 and not any(name.startswith(".") for name in names)
    url = node.comfyui_url()
    wait_for(lambda: get_json(f"{url}/queue") == {"queue_running": [], "queue_pending": []}, 10)
    assert "removing " in outcome.log and ".invert.1007.exr.deadbeef.tmp.exr" in outcome.log


def test_a_comfyui_that_exits_between_tasks_is_restarted_for_the_next(studio: Studio, worker: Any) -> None:
    """Item 8: the plugin handles MonitoredManagedProcessExit (without it the Worker fails the task) and the
    next task restarts ComfyUI, within RestartLimit."""
    studio.submit("--chunk-size", "2", frames="1001-1004")
    node = worker()
    first = node.run()
    assert first.state == "completed", first.error + first.log[-3000:]
    (comfyui,) = studio.comfyui_processes()
    os.kill(comfyui, signal.SIGKILL)
    wait_for(lambda: not pid_alive(comfyui), 10)

    outcome = node.run()

    assert outcome.state == "completed", outcome.error
    assert "comfyfarm: ComfyUI exited on its own at http://127.0.0.1:" in outcome.log
    assert "comfyfarm: ComfyUI stopped; restarting it (1/2)" in outcome.log
    assert len(node.started("comfyui")) == 2
    assert studio.outputs() == [f"invert.{frame}.exr" for frame in range(1001, 1005)]


def test_a_node_error_is_reported_in_comfyuis_words_not_in_a_log_line_of_the_runner(studio: Studio,
                                                                                   worker: Any) -> None:
    """Item 9: the runner's stderr reaches the plugin's handlers, after its stdout; its log lines must not
    read as ``ERROR`` protocol lines."""
    studio.submit("--chunk-size", "1", frames="1001")
    node = worker(faults='{"fail_node": {"class_type": "ImageInvert", "exception_type": "RuntimeError", '
                         '"message": "expected 4 channels, got 3"}}')
    outcome = node.run()
    assert outcome.state == "failed"
    assert outcome.error == ("ComfyUI node 2 (ImageInvert) failed: RuntimeError: expected 4 channels, got 3 "
                             "(frames 1001)")
