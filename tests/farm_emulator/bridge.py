"""The emulated Workers' private line to the repository: a small HTTP API over the Web Service double's store.

Real Deadline Workers talk to the database, not to the Web Service; the emulated Workers are separate
processes, so the test process runs this bridge (a thread, 127.0.0.1, its own port) over the same
:class:`~tests.doubles.deadline.store.JobStore` the Web Service double serves. Every route is ``POST
/__farm__/<operation>`` with a JSON object, answered with a JSON object:

==================  ==================================================  ===========================================
operation           body                                                answer
==================  ==================================================  ===========================================
register            name, pools, groups, pid                            {}
unregister          name (a Worker that exits cleanly)                  {}
heartbeat           name, lease (or null)                               {"lease_current": bool or null}
dequeue             name, pools, groups (null: any)                     {"lease": lease or null, "events": [...]}
job                 job_id                                              {"job": job object or null}
jobs                (nothing)                                           {"jobs": [...]}
tasks               job_id                                              the /api/tasks wrapper
task_frames         job_id, task_id                                     {"frames": [...]}
progress            lease, percent, status (or null)                    {}
complete            lease, log                                          {"events": [...]}
fail                lease, error, log                                   {"task_stat": n, "events": [...]}
requeue             lease, reason                                       {}
lease_is_current    lease                                               {"current": bool}
job_command         body (a Web Service job command)                    {"events": [...]}
task_command        body (a Web Service task command)                   {"events": [...]}
==================  ==================================================  ===========================================

``job`` answers null for a job that was deleted or archived: a Worker's ``RepositoryUtils.GetJob`` reads the
queue, which such a job has left (the Web Service lists deleted jobs only with ``Deleted=true``, DOC
rest-jobs; scripts test ``RepositoryUtils.JobExists`` on the ids of dependencies that may have been deleted:
[INFERRED] that GetJob returns None for them).

A lease is ``{"job_id", "task_id", "worker", "frames", "plugin", "serial"}`` (a TaskLease). ``events`` are the
job events (``[name, job_id]``) the operation caused, so that the Worker that caused them can run the event
plugins (OnJobStarted on dequeue, OnJobFinished on the last complete, OnJobFailed...). Errors answer
``{"error": kind, "message": text}`` with 409 (the task is not rendering on this Worker any more), 404 (no
such job or task), 400 (a bad request) or the store error's own status.

Stalled Workers (Deadline's house cleaning): a registered Worker whose last heartbeat is older than
``stall_timeout_s`` is marked stalled and every task it was rendering is requeued with a requeue report
``Worker <name> stalled: no heartbeat for N s ...``. A stalled Worker that heart-beats again is live again
(its old leases are no longer current, so it cancels them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tests.doubles.deadline.store import (
    TASK_RENDERING,
    BadRequestError,
    DeadlineDoubleError,
    JobStore,
    TaskLease,
    TaskNotRenderingError,
    UnknownJobError,
    UnknownTaskError,
)

log = logging.getLogger(__name__)

PREFIX = "/__farm__/"
DEFAULT_STALL_TIMEOUT_SECONDS = 3.0
REQUEST_TIMEOUT_SECONDS = 15.0


def lease_to_json(lease: TaskLease) -> Dict[str, Any]:
    data = asdict(lease)
    data["frames"] = list(lease.frames)
    return data


def lease_from_json(data: Any) -> TaskLease:
    if not isinstance(data, dict):
        raise BadRequestError("lease must be an object")
    try:
        return TaskLease(job_id=str(data["job_id"]), task_id=int(data["task_id"]), worker=str(data["worker"]),
                         frames=tuple(int(f) for f in data["frames"]), plugin=str(data["plugin"]),
                         serial=int(data["serial"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError(f"lease is malformed: {exc}") from None


@dataclass
class WorkerRecord:
    name: str
    pools: Optional[List[str]]
    groups: Optional[List[str]]
    pid: int
    last_heartbeat: float
    stalled: bool = False
    registered: bool = True


@dataclass(frozen=True)
class StallRecord:
    worker: str
    job_id: str
    task_id: int
    silence_s: float


@dataclass
class _Capture:
    events: List[Tuple[str, str]] = field(default_factory=list)


class FarmBridge:
    """The bridge server (see the module docstring). ``start()`` binds 127.0.0.1 on a free port."""

    def __init__(self, store: JobStore, *, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_SECONDS,
                 check_interval_s: float = 0.1) -> None:
        if stall_timeout_s <= 0:
            raise ValueError("stall_timeout_s must be > 0")
        self.store = store
        self.stall_timeout_s = stall_timeout_s
        self.check_interval_s = check_interval_s
        self.workers: Dict[str, WorkerRecord] = {}
        self.stalls: List[StallRecord] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._threads: List[threading.Thread] = []
        self._stop = threading.Event()
        self.port = 0
        store.add_listener(self._on_event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        bridge = self

        class Handler(_Handler):
            pass

        Handler.bridge = bridge
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                             name=f"farm-bridge-{self.port}", daemon=True),
            threading.Thread(target=self._house_cleaning, name="farm-house-cleaning", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.debug("farm bridge listening on %s", self.url)

    def stop(self) -> None:
        self._stop.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        try:
            self.store.remove_listener(self._on_event)
        except ValueError:
            pass

    # -- events --------------------------------------------------------------------------------------------

    def _on_event(self, name: str, job_id: str) -> None:
        capture = getattr(self._local, "capture", None)
        if capture is not None:
            capture.events.append((name, job_id))

    def call(self, operation: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """Carry out one operation (the HTTP handler calls this; tests may too)."""
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise _NotFound(f"no farm operation {operation!r}")
        capture = _Capture()
        self._local.capture = capture
        try:
            answer = handler(body)
        finally:
            self._local.capture = None
        if "events" in answer:
            answer["events"] = [list(event) for event in capture.events]
        return answer

    # -- operations ----------------------------------------------------------------------------------------

    def _record(self, name: Any) -> WorkerRecord:
        if not isinstance(name, str) or not name:
            raise BadRequestError("name must be the Worker's name")
        with self._lock:
            record = self.workers.get(name)
        if record is None:
            raise BadRequestError(f"the Worker {name!r} did not register")
        return record

    def _op_register(self, body: Dict[str, Any]) -> Dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequestError("name must be the Worker's name")
        self.store.register_worker(name)
        with self._lock:
            self.workers[name] = WorkerRecord(name, _names(body.get("pools"), "pools"),
                                              _names(body.get("groups"), "groups"), int(body.get("pid") or 0),
                                              time.monotonic())
        log.info("farm bridge: Worker %s registered", name)
        return {}

    def _op_unregister(self, body: Dict[str, Any]) -> Dict[str, Any]:
        record = self._record(body.get("name"))
        with self._lock:
            record.registered = False
        return {}

    def _op_heartbeat(self, body: Dict[str, Any]) -> Dict[str, Any]:
        record = self._record(body.get("name"))
        with self._lock:
            record.last_heartbeat = time.monotonic()
            if record.stalled:
                log.info("farm bridge: stalled Worker %s is back", record.name)
            record.stalled = False
            record.registered = True
        lease = body.get("lease")
        if lease is None:
            return {"lease_current": None}
        return {"lease_current": self.store.lease_is_current(lease_from_json(lease))}

    def _op_dequeue(self, body: Dict[str, Any]) -> Dict[str, Any]:
        record = self._record(body.get("name"))
        with self._lock:
            record.last_heartbeat = time.monotonic()
            stalled = record.stalled
        if stalled:
            return {"lease": None, "events": []}
        lease = self.store.dequeue_task(record.name, _names(body.get("pools"), "pools"),
                                        _names(body.get("groups"), "groups"))
        return {"lease": None if lease is None else lease_to_json(lease), "events": []}

    def _op_job(self, body: Dict[str, Any]) -> Dict[str, Any]:
        job_id = _text(body.get("job_id"), "job_id")
        if not self.store.has_job(job_id):  # deleted or archived: no longer in the queue
            return {"job": None}
        try:
            return {"job": self.store.job_json(job_id)}
        except UnknownJobError:
            return {"job": None}

    def _op_jobs(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return {"jobs": self.store.jobs_json()}

    def _op_tasks(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.store.tasks_json(_text(body.get("job_id"), "job_id"))

    def _op_task_frames(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return {"frames": self.store.task_frames(_text(body.get("job_id"), "job_id"), int(body.get("task_id", -1)))}

    def _op_progress(self, body: Dict[str, Any]) -> Dict[str, Any]:
        lease = lease_from_json(body.get("lease"))
        status = body.get("status")
        self.store.report_progress(lease.job_id, lease.task_id, body.get("percent"),
                                   status if isinstance(status, str) else None, worker=lease.worker)
        return {}

    def _current(self, lease: TaskLease) -> None:
        if not self.store.lease_is_current(lease):
            raise TaskNotRenderingError(f"task {lease.task_id} of job {lease.job_id} is no longer rendering on "
                                        f"{lease.worker}")

    def _op_complete(self, body: Dict[str, Any]) -> Dict[str, Any]:
        lease = lease_from_json(body.get("lease"))
        self._current(lease)
        self.store.complete_task(lease.job_id, lease.task_id, _text(body.get("log", ""), "log"), worker=lease.worker)
        return {"events": []}

    def _op_fail(self, body: Dict[str, Any]) -> Dict[str, Any]:
        lease = lease_from_json(body.get("lease"))
        self._current(lease)
        stat = self.store.fail_task(lease.job_id, lease.task_id, _text(body.get("error"), "error"),
                                    _text(body.get("log", ""), "log"), worker=lease.worker)
        return {"task_stat": stat, "events": []}

    def _op_requeue(self, body: Dict[str, Any]) -> Dict[str, Any]:
        lease = lease_from_json(body.get("lease"))
        self._current(lease)
        self.store.requeue_task(lease.job_id, lease.task_id, _text(body.get("reason", ""), "reason"),
                                worker=lease.worker)
        return {}

    def _op_lease_is_current(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return {"current": self.store.lease_is_current(lease_from_json(body.get("lease")))}

    def _op_job_command(self, body: Dict[str, Any]) -> Dict[str, Any]:
        command = body.get("body")
        if not isinstance(command, dict):
            raise BadRequestError("body must be a job command object")
        self.store.job_command(command)
        return {"events": []}

    def _op_task_command(self, body: Dict[str, Any]) -> Dict[str, Any]:
        command = body.get("body")
        if not isinstance(command, dict):
            raise BadRequestError("body must be a task command object")
        self.store.task_command(command)
        return {"events": []}

    # -- house cleaning ------------------------------------------------------------------------------------

    def _house_cleaning(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            try:
                self.requeue_stalled()
            except Exception:  # the loop must go on; the failure is logged
                log.exception("farm bridge: house cleaning failed")

    def requeue_stalled(self) -> List[StallRecord]:
        """Mark Workers silent for longer than the stall timeout as stalled and requeue their tasks."""
        now = time.monotonic()
        newly: List[Tuple[str, float]] = []
        with self._lock:
            for record in self.workers.values():
                silence = now - record.last_heartbeat
                if record.registered and not record.stalled and silence > self.stall_timeout_s:
                    record.stalled = True
                    newly.append((record.name, silence))
        found: List[StallRecord] = []
        for name, silence in newly:
            log.warning("farm bridge: Worker %s stalled (no heartbeat for %.1f s)", name, silence)
            for job_id in self.store.job_ids():
                for task in self.store.tasks_json(job_id)["Tasks"]:
                    if task["Stat"] != TASK_RENDERING or task["Slave"].lower() != name.lower():
                        continue
                    reason = (f"Worker {name} stalled: no heartbeat for {silence:.1f} s (stall timeout "
                              f"{self.stall_timeout_s:g} s); house cleaning requeued the task")
                    try:
                        self.store.requeue_task(job_id, int(task["TaskID"]), reason, worker=name)
                    except TaskNotRenderingError:
                        continue
                    found.append(StallRecord(name, job_id, int(task["TaskID"]), silence))
        with self._lock:
            self.stalls.extend(found)
        return found

    def worker_is_stalled(self, name: str) -> bool:
        with self._lock:
            record = self.workers.get(name)
            return bool(record and record.stalled)


class _NotFound(Exception):
    pass


def _names(value: Any, what: str) -> Optional[List[str]]:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadRequestError(f"{what} must be a list of names or null")
    return list(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequestError(f"{what} must be a string")
    return value


class _Handler(BaseHTTPRequestHandler):
    bridge: FarmBridge
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log.debug("farm bridge: %s", format % args)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.path.startswith(PREFIX):
            self._send(404, {"error": "NotFound", "message": f"{self.path} is not a farm route"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._send(400, {"error": "BadRequest", "message": str(exc)})
            return
        try:
            answer = self.bridge.call(self.path[len(PREFIX):], body)
        except _NotFound as exc:
            self._send(404, {"error": "NotFound", "message": str(exc)})
        except TaskNotRenderingError as exc:
            self._send(409, {"error": "TaskNotRendering", "message": str(exc)})
        except (UnknownJobError, UnknownTaskError) as exc:
            self._send(404, {"error": type(exc).__name__, "message": str(exc)})
        except DeadlineDoubleError as exc:
            self._send(exc.http_status, {"error": type(exc).__name__, "message": str(exc)})
        except (TypeError, ValueError) as exc:
            self._send(400, {"error": "BadRequest", "message": f"{type(exc).__name__}: {exc}"})
        else:
            self._send(200, answer)

    def _send(self, status: int, payload: Dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# ---------------------------------------------------------------------------------------------------------
# the Worker's side


class BridgeError(RuntimeError):
    """The bridge refused an operation (``status``, ``kind`` as in the module docstring)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{kind} ({status}): {message}")
        self.status = status
        self.kind = kind
        self.message = message


class BridgeUnavailable(RuntimeError):
    """The bridge did not answer (the farm is gone or overloaded)."""


class BridgeClient:
    """Calls the bridge from a Worker process (urllib; one connection per call). It stands for Deadline's own
    connection to its database, which no studio HTTP proxy is in the way of: it never uses one (the Worker's
    environment names a proxy, see tests/doubles/deadline_runtime/worker_environment.py)."""

    def __init__(self, url: str, *, timeout_s: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, operation: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        data = json.dumps(body or {}).encode("utf-8")
        request = urllib.request.Request(f"{self.url}{PREFIX}{operation}", data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            raise BridgeError(exc.code, str(payload.get("error", "Error")), str(payload.get("message", ""))) from None
        except (urllib.error.URLError, OSError) as exc:
            raise BridgeUnavailable(f"the farm bridge at {self.url} did not answer {operation}: {exc}") from None


class BridgeBackend:
    """The runtime double's :class:`~tests.doubles.deadline_runtime.repository.RepositoryBackend` over the
    bridge (what ``RepositoryUtils`` uses inside an emulated Worker)."""

    def __init__(self, client: BridgeClient, on_events: Optional[Callable[[Sequence[Sequence[str]]], None]] = None):
        self.client = client
        self.on_events = on_events

    def job_json(self, job_id: str) -> Optional[Dict[str, Any]]:
        return self.client.call("job", {"job_id": job_id})["job"]

    def jobs_json(self) -> List[Dict[str, Any]]:
        return self.client.call("jobs")["jobs"]

    def tasks_json(self, job_id: str) -> Dict[str, Any]:
        return self.client.call("tasks", {"job_id": job_id})

    def job_command(self, body: Dict[str, Any]) -> None:
        self._command("job_command", body)

    def task_command(self, body: Dict[str, Any]) -> None:
        self._command("task_command", body)

    def _command(self, operation: str, body: Dict[str, Any]) -> None:
        try:
            answer = self.client.call(operation, {"body": body})
        except BridgeError as exc:
            raise RuntimeError(f"Deadline refused {body.get('Command')!r}: {exc.message}") from None
        if self.on_events is not None:
            self.on_events(answer.get("events", []))
