"""One emulated Deadline Worker: a separate process that takes tasks from the farm bridge and runs the job's
real plugin file through the Deadline plugin runtime double.

    python -m tests.farm_emulator.worker --bridge URL --name NAME --repository DIR [--gpus 0,1]
        [--pools a,b] [--groups a,b] [--exit-when-idle-s S] [--home DIR] [--heartbeat-s S]
        [--poll-s S] [--progress-interval-s S]

What it does, in Deadline's order:

* registers, then heart-beats every ``--heartbeat-s`` in a thread; the heartbeat also asks whether the
  current task's lease is still current: once it is not (the job was failed, suspended, deleted or requeued,
  or the task was requeued: Deadline's cancel), ``IsCanceled()`` turns True and managed processes are killed;
* loops: dequeue a task (pools/groups: the Worker's, in order; none given: any); when the task's job differs
  from the current one, EndJob + CleanupDeadlinePlugin for the old plugin, then the new one is loaded from
  ``<repository>/custom/plugins/<Plugin>/`` (InitializeProcess, StartJob) and RenderTasks runs for the task;
* SetProgress / SetStatusMessage go to the bridge at most every ``--progress-interval-s`` (the last value is
  always sent before the task is reported);
* RenderTasks returned → the task completes with its log; FailRender or an exception → the task fails with
  the message as the error report (traceback in the log) and the plugin is unloaded (EndJob first);
* the Worker that completes a job's last task runs the event plugins for OnJobFinished (OnJobFailed when its
  error failed the job; OnJobStarted when it started the job);
* idle (no task): EndJob + Cleanup of the current plugin; with ``--exit-when-idle-s`` it exits after that
  long without a task;
* SIGTERM / SIGINT: the current task is canceled and given back (a requeue report naming the Worker),
  EndJob + Cleanup run, monitored processes are shut down, and the process exits 0;
* it exits by itself when its parent process dies or the bridge stays unreachable for 30 s.

GPU affinity: ``--gpus 0,1`` → ``OverrideGpuAffinity()`` True and ``GpuAffinity()`` [0, 1]; thread number 0;
``GetSlaveName()`` is NAME. The log is ``<repository>/logs/<NAME>.log``. Child processes do not inherit the
``PYTHONPATH`` entry that let this module be found (``FARM_EMULATOR_PYTHONPATH`` holds the original).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from tests.doubles.deadline_runtime import SITE_DIR
from tests.doubles.deadline_runtime.runtime import EventHost, PluginHost, TaskOutcome, TaskSpec, WorkerSettings

from .bridge import BridgeBackend, BridgeClient, BridgeError, BridgeUnavailable

log = logging.getLogger("tests.farm_emulator.worker")

ORIGINAL_PYTHONPATH_ENV = "FARM_EMULATOR_PYTHONPATH"
WORKER_EVENTS = ("OnJobStarted", "OnJobFinished", "OnJobFailed")
BRIDGE_LOST_SECONDS = 30.0


class ProgressReporter:
    """Sends a task's progress and status to the bridge from its own thread, throttled; :meth:`flush` sends
    the last values at once. A 409 (the task is not ours any more) cancels the task."""

    def __init__(self, client: BridgeClient, interval_s: float) -> None:
        self.client = client
        self.interval_s = interval_s
        self._cond = threading.Condition()
        self._lease: Optional[Dict[str, Any]] = None
        self._cancel: Optional[threading.Event] = None
        self._percent = 0.0
        self._status: Optional[str] = None
        self._dirty = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def begin(self, lease: Dict[str, Any], cancel: threading.Event) -> None:
        with self._cond:
            self._lease, self._cancel = lease, cancel
            self._percent, self._status, self._dirty = 0.0, None, False

    def progress(self, percent: float) -> None:
        with self._cond:
            self._percent, self._dirty = percent, True
            self._cond.notify_all()

    def status(self, message: str) -> None:
        with self._cond:
            self._status, self._dirty = message, True
            self._cond.notify_all()

    def _take(self) -> Optional[Dict[str, Any]]:
        if not self._dirty or self._lease is None:
            return None
        self._dirty = False
        return {"lease": self._lease, "percent": self._percent, "status": self._status}

    def _send(self, body: Dict[str, Any], cancel: Optional[threading.Event]) -> None:
        try:
            self.client.call("progress", body)
        except BridgeError as exc:
            if exc.status == 409 and cancel is not None:
                cancel.set()
            log.debug("progress not recorded: %s", exc)
        except BridgeUnavailable as exc:
            log.warning("progress not recorded: %s", exc)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                body, cancel = self._take(), self._cancel
            if body is not None:
                self._send(body, cancel)
            time.sleep(self.interval_s)

    def flush(self) -> None:
        with self._cond:
            body, cancel = self._take(), self._cancel
        if body is not None:
            self._send(body, cancel)

    def end(self) -> None:
        self.flush()
        with self._cond:
            self._lease, self._cancel = None, None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)


class EmulatedWorker:
    """The Worker loop (see the module docstring)."""

    def __init__(self, client: BridgeClient, settings: WorkerSettings, repository: Path, *,
                 pools: Optional[List[str]], groups: Optional[List[str]], exit_when_idle_s: Optional[float],
                 heartbeat_s: float, poll_s: float, progress_interval_s: float) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.name
        self.repository = repository
        self.pools = pools
        self.groups = groups
        self.exit_when_idle_s = exit_when_idle_s
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._stop_reason = ""
        self._lock = threading.Lock()
        self._lease: Optional[Dict[str, Any]] = None
        self._cancel: Optional[threading.Event] = None
        self._parent = os.getppid()
        self._bridge_lost_since: Optional[float] = None
        self.reporter = ProgressReporter(client, progress_interval_s)
        backend = BridgeBackend(client)
        self.host = PluginHost(settings, repository, backend, log_sink=self._plugin_line)
        self.events = EventHost(repository, backend, log_sink=self._plugin_line)

    @staticmethod
    def _plugin_line(line: str) -> None:
        log.info("%s", line)

    # -- stopping ------------------------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._stop_reason = reason
            self._stop.set()
            if self._cancel is not None:
                self._cancel.set()

    # -- heartbeat -----------------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            if os.getppid() != self._parent:
                self.request_stop("the process that started this Worker is gone")
                return
            with self._lock:
                lease, cancel = self._lease, self._cancel
            try:
                answer = self.client.call("heartbeat", {"name": self.name, "lease": lease})
                self._bridge_lost_since = None
            except (BridgeError, BridgeUnavailable) as exc:
                log.warning("heartbeat failed: %s", exc)
                self._bridge_lost_since = self._bridge_lost_since or time.monotonic()
                if time.monotonic() - self._bridge_lost_since > BRIDGE_LOST_SECONDS:
                    self.request_stop("the farm bridge is gone")
            else:
                if lease is not None and answer.get("lease_current") is False and cancel is not None:
                    if not cancel.is_set():
                        log.info("task %s of job %s is no longer ours: canceling it", lease["task_id"],
                                 lease["job_id"])
                    cancel.set()
            self._stop.wait(self.heartbeat_s)

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self) -> int:
        self.client.call("register", {"name": self.name, "pools": self.pools, "groups": self.groups,
                                      "pid": os.getpid()})
        log.info("Worker %s started (pid %d, GPU affinity %s, pools %s, groups %s)", self.name, os.getpid(),
                 self.settings.gpu_affinity, self.pools, self.groups)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    answer = self.client.call("dequeue", {"name": self.name, "pools": self.pools,
                                                          "groups": self.groups})
                except (BridgeError, BridgeUnavailable) as exc:
                    log.warning("dequeue failed: %s", exc)
                    self._stop.wait(self.poll_s)
                    continue
                lease = answer.get("lease")
                self._fire(answer.get("events", []))
                if lease is None:
                    if self.host.current_job_id is not None:
                        self.host.leave_job("the Worker is idle")
                    if self.exit_when_idle_s is not None and time.monotonic() - idle_since >= self.exit_when_idle_s:
                        self._stop_reason = f"idle for {self.exit_when_idle_s:g} s"
                        break
                    self._stop.wait(self.poll_s)
                    continue
                try:
                    self._render(lease)
                except (BridgeError, BridgeUnavailable) as exc:
                    log.error("task %s of job %s: lost the farm bridge: %s", lease["task_id"], lease["job_id"], exc)
                idle_since = time.monotonic()
        finally:
            self._shutdown(heartbeat)
        return 0

    def _render(self, lease: Dict[str, Any]) -> None:
        cancel = threading.Event()
        with self._lock:
            self._lease, self._cancel = lease, cancel
            if self._stop.is_set():
                cancel.set()
        frames = tuple(int(f) for f in lease["frames"])
        log.info("rendering task %s of job %s (frames %s-%s)", lease["task_id"], lease["job_id"], frames[0],
                 frames[-1])
        self.reporter.begin(lease, cancel)
        outcome = self.host.render_task(TaskSpec(lease["job_id"], int(lease["task_id"]), frames), cancel=cancel,
                                        progress=self.reporter.progress, status=self.reporter.status)
        self.reporter.end()
        with self._lock:
            self._lease, self._cancel = None, None
        self._report(lease, outcome, cancel)

    def _report(self, lease: Dict[str, Any], outcome: TaskOutcome, cancel: threading.Event) -> None:
        header = f"Worker: {self.name}\nTask: {lease['task_id']} (frames {lease['frames'][0]}-{lease['frames'][-1]})\n"
        try:
            if outcome.state == "canceled" or cancel.is_set():
                if self._stop.is_set() and self.client.call("lease_is_current", {"lease": lease})["current"]:
                    self.client.call("requeue", {"lease": lease, "reason": f"Worker {self.name} was shut down while "
                                                                           f"rendering the task ({self._stop_reason})"})
                    log.info("task %s of job %s given back (shutdown)", lease["task_id"], lease["job_id"])
                else:
                    log.info("task %s of job %s canceled", lease["task_id"], lease["job_id"])
                return
            if outcome.completed:
                answer = self.client.call("complete", {"lease": lease, "log": header + outcome.log})
                log.info("task %s of job %s completed", lease["task_id"], lease["job_id"])
            else:
                answer = self.client.call("fail", {"lease": lease, "error": outcome.error,
                                                   "log": header + outcome.log})
                log.info("task %s of job %s failed: %s", lease["task_id"], lease["job_id"],
                         outcome.error.splitlines()[0] if outcome.error else "")
        except BridgeError as exc:
            log.warning("task %s of job %s could not be reported: %s", lease["task_id"], lease["job_id"], exc)
            return
        except BridgeUnavailable as exc:
            log.error("task %s of job %s could not be reported: %s", lease["task_id"], lease["job_id"], exc)
            return
        self._fire(answer.get("events", []))

    def _fire(self, events: Sequence[Sequence[str]]) -> None:
        for name, job_id in events:
            if name in WORKER_EVENTS:
                ran = self.events.fire(name, job_id)
                if ran:
                    log.info("%s for job %s ran event plugin(s) %s", name, job_id, ", ".join(ran))

    def _shutdown(self, heartbeat: threading.Thread) -> None:
        log.info("Worker %s stopping: %s", self.name, self._stop_reason or "asked to")
        try:
            self.host.close()
        finally:
            self.events.close()
            self._stop.set()
            heartbeat.join(timeout=5)
            self.reporter.close()
            try:
                self.client.call("unregister", {"name": self.name})
            except (BridgeError, BridgeUnavailable) as exc:
                log.warning("could not unregister: %s", exc)
            log.info("Worker %s stopped", self.name)


# ---------------------------------------------------------------------------------------------------------
# entry point


def _list(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _gpus(text: Optional[str]) -> Optional[tuple]:
    if text is None or not text.strip():
        return None
    try:
        return tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpus takes GPU indices like 0,1, not {text!r}") from None


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.farm_emulator.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--bridge", required=True, help="the farm bridge URL")
    parser.add_argument("--name", required=True, help="the Worker's name")
    parser.add_argument("--repository", required=True, type=Path, help="the emulated repository folder")
    parser.add_argument("--gpus", default=None, help="GPU affinity, e.g. 0,1 (none: not overridden)")
    parser.add_argument("--pools", default=None, help="pools in order, e.g. gpu,none (none: any)")
    parser.add_argument("--groups", default=None, help="groups (none: any)")
    parser.add_argument("--exit-when-idle-s", type=float, default=None)
    parser.add_argument("--home", type=Path, default=None, help="the Worker's local folder")
    parser.add_argument("--heartbeat-s", type=float, default=0.3)
    parser.add_argument("--poll-s", type=float, default=0.2)
    parser.add_argument("--progress-interval-s", type=float, default=0.25)
    return parser.parse_args(argv)


def _scrub_pythonpath() -> None:
    original = os.environ.pop(ORIGINAL_PYTHONPATH_ENV, None)
    if original is None:
        return
    if original:
        os.environ["PYTHONPATH"] = original
    else:
        os.environ.pop("PYTHONPATH", None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    repository: Path = args.repository.resolve()
    (repository / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(repository / "logs" / f"{args.name}.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    _scrub_pythonpath()
    if str(SITE_DIR) not in sys.path:
        sys.path.insert(0, str(SITE_DIR))
    home = args.home.resolve() if args.home else Path(tempfile.mkdtemp(prefix=f"farm-worker-{args.name}-"))
    home.mkdir(parents=True, exist_ok=True)
    settings = WorkerSettings(name=args.name, home=home, gpu_affinity=_gpus(args.gpus))
    worker = EmulatedWorker(BridgeClient(args.bridge), settings, repository, pools=_list(args.pools),
                            groups=_list(args.groups), exit_when_idle_s=args.exit_when_idle_s,
                            heartbeat_s=args.heartbeat_s, poll_s=args.poll_s,
                            progress_interval_s=args.progress_interval_s)

    def on_signal(signum: int, frame: Any) -> None:
        worker.request_stop(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return worker.run()
    except Exception:
        log.exception("Worker %s crashed", args.name)
        raise


if __name__ == "__main__":
    sys.exit(main())
