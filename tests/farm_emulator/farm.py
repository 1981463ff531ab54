"""The farm emulator's harness: a Web Service double, its repository folder, a bridge, and Worker processes.

    farm = start_farm(tmp_path)                       # Web Service double at farm.url, store at farm.store
    farm.install_plugin(Path("farm_plugin/ComfyUI"), "ComfyUI")
    farm.configure_plugin("ComfyUI", ComfyUIDirectory=str(comfy_dir))      # Monitor > Configure Plugins
    names = farm.start_workers(2, gpus_per_worker=1)  # worker-01 (GPU 0), worker-02 (GPU 1)
    job_id = ...                                      # submit through farm.url (the product's client)
    assert farm.wait_for_job(job_id, timeout_s=60) == "Completed"
    farm.kill_worker("worker-01")                     # the machine dies: its task is requeued once stalled
    farm.close()                                      # stop Workers (SIGTERM, then SIGKILL), bridge, Web Service

Folders under ``tmp_path``: ``repository/`` (the emulated repository: ``custom/plugins``, ``custom/events``,
``settings/``, ``jobs/<id>/`` auxiliary files, ``logs/<worker>.log``), ``workers/<name>/`` (each Worker's
local folder) and ``machine/`` (the Workers' machine: Deadline's install folder). Each Worker is its own
session and process group (``start_new_session``); its managed processes get their own groups inside that
session, so :meth:`Farm.kill_worker` and :meth:`Farm.close` kill every process of the session and nothing is
left behind (see tests/doubles/deadline_runtime/processes.py). What the runtime stops it kills at once, with
the process's children only when it set ``UseProcessTree``: a plugin that forgets it leaves processes that
the farm fixture's teardown reports.

Workers take tasks of Active jobs only: a job with ``JobDependencies`` stays Pending until each dependency
ended in a state its ``ResumeOn{Complete,Failed,Deleted}Dependencies`` flags accept (the store's rules and
their sources: tests/doubles/deadline/harness.py), and a Worker's ``RepositoryUtils.GetJob`` of a deleted job
is None (bridge.py).

Each Worker runs in a Worker's environment (tests/doubles/deadline_runtime/worker_environment.py): Deadline's
library folder first in ``LD_LIBRARY_PATH`` and a studio proxy (``http_proxy``, ``https_proxy``) at
:attr:`Farm.proxy_url`, where nothing listens, with a ``no_proxy`` that does not name loopback. The emulator's
own calls to the bridge (Deadline's database connection) bypass it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from tests.doubles.deadline.harness import FakeDeadline, start_fake_deadline
from tests.doubles.deadline.store import JOB_COMPLETED, JOB_FAILED, JobStore
from tests.doubles.deadline_runtime.params import check_config_value, read_param_file
from tests.doubles.deadline_runtime.processes import kill_session, live_pids_in_session, pid_alive
from tests.doubles.deadline_runtime.repository import EVENT_STATES, parse_path_mappings
from tests.doubles.deadline_runtime.worker_environment import ClosedPort, worker_environment

from .bridge import DEFAULT_STALL_TIMEOUT_SECONDS, FarmBridge
from .worker import ORIGINAL_PYTHONPATH_ENV

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the Workers' Python, taken before a Flame double makes sys.executable its Flame
REGISTER_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0
LOG_TAIL_LINES = 40


class FarmError(RuntimeError):
    """The farm could not do what a test asked (a Worker that did not start, a bad configuration...)."""


class FarmTimeoutError(FarmError):
    """A wait ran out; the message carries the job's tasks and each Worker's last log lines."""


@dataclass
class WorkerProcess:
    name: str
    popen: subprocess.Popen
    home: Path
    gpus: Optional[List[int]]
    console: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


class Farm:
    """A running emulated farm (see the module docstring)."""

    def __init__(self, fake: FakeDeadline, bridge: FarmBridge, root: Path, repository: Path) -> None:
        self.fake = fake
        self.bridge = bridge
        self.root = root
        self.repository = repository
        self.machine = root / "machine"
        self._proxy = ClosedPort()
        self.proxy_port = self._proxy.port
        self.proxy_url = self._proxy.url
        self.url: str = fake.url
        self.store: JobStore = fake.store
        self.workers: Dict[str, WorkerProcess] = {}
        self.leaked_processes: List[int] = []
        self._next_index = 1
        self._closed = False

    # -- the repository ------------------------------------------------------------------------------------

    def install_plugin(self, source_dir: Path, name: str) -> None:
        """Copy a plugin folder into ``custom/plugins/<name>`` (replacing an older copy)."""
        self._install(Path(source_dir), "plugins", name)

    def install_event(self, source_dir: Path, name: str, state: Optional[str] = None) -> None:
        """Copy an event plugin folder into ``custom/events/<name>``; ``state`` (Global Enabled, Opt-In or
        Disabled) is set as Configure Events would, else its .param's [State] Default applies."""
        self._install(Path(source_dir), "events", name)
        if state is not None:
            self.configure_event(name, State=state)

    def _install(self, source: Path, kind: str, name: str) -> None:
        if not (source / f"{name}.py").is_file():
            raise FarmError(f"{source} is not a Deadline {kind[:-1]} folder: it has no {name}.py")
        target = self.repository / "custom" / kind / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for suffix in (".param", ".options"):
            if (target / f"{name}{suffix}").is_file():
                read_param_file(target / f"{name}{suffix}")  # refused now rather than on the Worker

    def configure_plugin(self, name: str, **values: Any) -> None:
        """Monitor's Configure Plugins: each key must be in the installed plugin's .param and its value must
        fit the entry's Type (integer bounds, boolean, enum items); lists become ``;``-joined lines."""
        folder = self.repository / "custom" / "plugins" / name
        self._configure(folder / f"{name}.param", self.repository / "settings" / "plugins" / f"{name}.json",
                        name, values, allow=())

    def configure_event(self, name: str, **values: Any) -> None:
        """Monitor's Configure Events (``State`` plus the keys of the event's .param)."""
        state = values.get("State")
        if state is not None and state not in EVENT_STATES:
            raise FarmError(f"State must be one of {', '.join(EVENT_STATES)}, not {state!r}")
        folder = self.repository / "custom" / "events" / name
        self._configure(folder / f"{name}.param", self.repository / "settings" / "events" / f"{name}.json",
                        name, values, allow=("State",))

    def _configure(self, param_path: Path, settings_path: Path, name: str, values: Dict[str, Any],
                   allow: Sequence[str]) -> None:
        if not param_path.parent.is_dir():
            raise FarmError(f"{name} is not installed in the repository: install it first")
        params = read_param_file(param_path)
        settings: Dict[str, Any] = {}
        if settings_path.is_file():
            settings = json.loads(settings_path.read_text(encoding="utf-8"))
        for key, value in values.items():
            entry = params.entries.get(key)
            if entry is None:
                if key not in allow:
                    raise FarmError(f"{name}.param has no entry {key!r}: Configure Plugins only shows the .param's "
                                    f"keys ({', '.join(params.entries) or 'none'})")
                settings[key] = value
                continue
            try:
                settings[key] = check_config_value(entry, value, f"{name} {key}")
            except ValueError as exc:
                raise FarmError(str(exc)) from None
        settings_path.parent.mkdir(parents=True, exist_ok=True)
        settings_path.write_text(json.dumps(settings, indent=2), encoding="utf-8")

    def set_path_mappings(self, mappings: List[Dict[str, Any]]) -> None:
        """Repository Options > Mapped Paths: ``[{"Path", "LinuxPath", "WindowsPath", "MacPath",
        "CaseSensitive"}]`` (see tests/doubles/deadline_runtime/repository.py)."""
        parse_path_mappings(mappings, "set_path_mappings")
        path = self.repository / "settings" / "pathmapping.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mappings, indent=2), encoding="utf-8")

    # -- Workers -------------------------------------------------------------------------------------------

    def start_workers(self, count: int, *, gpus_per_worker: int = 1, first_gpu: int = 0,
                      pools: Optional[Sequence[str]] = None, groups: Optional[Sequence[str]] = None,
                      exit_when_idle_s: Optional[float] = None) -> List[str]:
        """Start ``count`` Worker processes named ``worker-NN`` (numbering goes on across calls). The k-th of
        this call gets GPUs ``first_gpu + k*gpus_per_worker ...`` as its affinity (``gpus_per_worker=0``: no
        affinity override). Returns once every one has registered with the bridge."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if gpus_per_worker < 0 or first_gpu < 0:
            raise ValueError("gpus_per_worker and first_gpu must be >= 0")
        started: List[WorkerProcess] = []
        for k in range(count):
            name = f"worker-{self._next_index:02d}"
            self._next_index += 1
            gpus = (list(range(first_gpu + k * gpus_per_worker, first_gpu + (k + 1) * gpus_per_worker))
                    if gpus_per_worker else None)
            started.append(self._spawn(name, gpus, pools, groups, exit_when_idle_s))
        deadline = time.monotonic() + REGISTER_TIMEOUT_SECONDS
        for worker in started:
            while worker.name not in self.bridge.workers:
                if worker.popen.poll() is not None:
                    raise FarmError(f"Worker {worker.name} exited with {worker.popen.returncode} before registering:\n"
                                    f"{self._tail(worker.console)}\n{self.worker_log(worker.name)}")
                if time.monotonic() > deadline:
                    raise FarmTimeoutError(f"Worker {worker.name} did not register within "
                                           f"{REGISTER_TIMEOUT_SECONDS:g} s:\n{self._tail(worker.console)}")
                time.sleep(0.02)
        return [worker.name for worker in started]

    def _spawn(self, name: str, gpus: Optional[List[int]], pools: Optional[Sequence[str]],
               groups: Optional[Sequence[str]], exit_when_idle_s: Optional[float]) -> WorkerProcess:
        home = self.root / "workers" / name
        home.mkdir(parents=True, exist_ok=True)
        command = [PYTHON, "-m", "tests.farm_emulator.worker", "--bridge", self.bridge.url, "--name", name,
                   "--repository", str(self.repository), "--home", str(home)]
        if gpus:
            command += ["--gpus", ",".join(str(g) for g in gpus)]
        if pools is not None:
            command += ["--pools", ",".join(pools)]
        if groups is not None:
            command += ["--groups", ",".join(groups)]
        if exit_when_idle_s is not None:
            command += ["--exit-when-idle-s", str(exit_when_idle_s)]
        env = worker_environment(os.environ, self.machine, self.proxy_port)
        env[ORIGINAL_PYTHONPATH_ENV] = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        console = self.repository / "logs" / f"{name}.console.log"
        console.parent.mkdir(parents=True, exist_ok=True)
        with open(console, "ab") as output:
            popen = subprocess.Popen(command, cwd=str(home), env=env, stdin=subprocess.DEVNULL, stdout=output,  # noqa: S603
                                     stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(name, popen, home, gpus, console)
        self.workers[name] = worker
        log.info("farm: started %s (pid %d, GPUs %s)", name, popen.pid, gpus)
        return worker

    def worker_pid(self, name: str) -> int:
        return self._worker(name).pid

    def _worker(self, name: str) -> WorkerProcess:
        worker = self.workers.get(name)
        if worker is None:
            raise FarmError(f"no Worker named {name!r} (Workers: {', '.join(self.workers) or 'none'})")
        return worker

    def kill_worker(self, name: str) -> None:
        """SIGKILL every process of the Worker's session (its process group and its managed processes'
        groups): the machine dies. Its tasks are requeued by house cleaning once it counts as stalled."""
        worker = self._worker(name)
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.popen.wait(timeout=10)
        survivors = kill_session(worker.pid)
        if survivors:
            raise FarmError(f"processes {survivors} of Worker {name} survived SIGKILL")
        log.info("farm: killed %s", name)

    def stop_workers(self, timeout_s: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM every running Worker (each gives its task back, runs EndJob and stops its processes), wait
        up to ``timeout_s``, SIGKILL the stragglers; then kill anything left in their sessions (recorded in
        :attr:`leaked_processes` when a Worker had exited cleanly but left processes behind)."""
        running = [w for w in self.workers.values() if w.popen.poll() is None]
        for worker in running:
            try:
                os.kill(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        for worker in running:
            try:
                worker.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("farm: %s did not stop within %g s: killing it", worker.name, timeout_s)
                try:
                    os.killpg(worker.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                worker.popen.wait(timeout=10)
        for worker in self.workers.values():
            left = [pid for pid in live_pids_in_session(worker.pid) if pid != os.getpid()]
            if left:
                log.warning("farm: %s left processes %s behind: killing them", worker.name, left)
                self.leaked_processes.extend(left)
                kill_session(worker.pid)

    def leftover_processes(self) -> List[int]:
        """Processes still alive in any Worker's session (empty once the farm is closed)."""
        pids: List[int] = []
        for worker in self.workers.values():
            pids.extend(pid for pid in live_pids_in_session(worker.pid) if pid != os.getpid() and pid_alive(pid))
        return pids

    # -- waiting and looking -------------------------------------------------------------------------------

    def wait_for_job(self, job_id: str, timeout_s: float) -> str:
        """Wait until the job is Completed or Failed; returns that status text. On timeout raises
        :class:`FarmTimeoutError` with the tasks' states and every Worker's log tail."""
        finished = self.store.wait_until(lambda: self.store.job_stat(job_id) in (JOB_COMPLETED, JOB_FAILED),
                                         timeout_s)
        if not finished:
            raise FarmTimeoutError(f"job {job_id} is {self.store.job_status_text(job_id)} after {timeout_s:g} s\n"
                                   f"{self.describe(job_id)}")
        return self.store.job_status_text(job_id)

    def describe(self, job_id: Optional[str] = None) -> str:
        """The job's tasks and each Worker's state and log tail (for failure messages)."""
        lines: List[str] = []
        if job_id is not None:
            for task in self.store.tasks_json(job_id)["Tasks"]:
                lines.append(f"  task {task['TaskID']} frames {task['Frames']} Stat {task['Stat']} on "
                             f"{task['Slave'] or '-'} errors {task['Errs']} {task['Prog']} {task['RndStat']}")
            for report in self.store.reports(job_id):
                if report.report_type != 0:
                    lines.append(f"  report type {report.report_type} task {report.task_id} {report.worker}: "
                                 f"{report.title}")
        for name, worker in self.workers.items():
            state = "running" if worker.popen.poll() is None else f"exited {worker.popen.returncode}"
            lines.append(f"--- {name} ({state}; GPUs {worker.gpus}) log tail:")
            lines.append(self._tail(self.repository / "logs" / f"{name}.log"))
            console = self._tail(worker.console)
            if console.strip():
                lines.append(f"--- {name} console:\n{console}")
        return "\n".join(lines)

    def worker_log(self, name: str) -> str:
        path = self.repository / "logs" / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    @staticmethod
    def _tail(path: Path) -> str:
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:])

    # -- closing -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every Worker (nothing left behind), the bridge and the Web Service double."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop_workers()
        finally:
            for worker in self.workers.values():
                kill_session(worker.pid)
            self.bridge.stop()
            self.fake.close()
            self._proxy.close()

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start_farm(tmp_path: Path, *, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_SECONDS,
               **fake_deadline_kwargs: Any) -> Farm:
    """A farm rooted in ``tmp_path`` (see the module docstring). ``stall_timeout_s``: silence after which a
    Worker counts as stalled; the other keywords go to ``start_fake_deadline`` (users, pools, groups...;
    ``repository_dir`` defaults to ``tmp_path/"repository"``)."""
    root = Path(tmp_path)
    repository = Path(fake_deadline_kwargs.pop("repository_dir", root / "repository"))
    for folder in ("custom/plugins", "custom/events", "settings/plugins", "settings/events", "jobs", "logs"):
        (repository / folder).mkdir(parents=True, exist_ok=True)
    fake = start_fake_deadline(repository_dir=repository, **fake_deadline_kwargs)
    bridge = FarmBridge(fake.store, stall_timeout_s=stall_timeout_s)
    try:
        bridge.start()
    except OSError:
        fake.close()
        raise
    return Farm(fake, bridge, root, repository)
