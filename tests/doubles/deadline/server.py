"""The Deadline double's HTTP server: the Web Service's routes, manners and faults over a :class:`JobStore`.

A real socket server (``http.server.ThreadingHTTPServer`` in a background thread) on 127.0.0.1. GET answers
JSON; every mutating call answers the text ``Success``; errors are text bodies with 400, 401, 404, 500 or
501 (see :mod:`tests.doubles.deadline.harness` for the whole contract and the double's guesses).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

from .store import (
    JOB_STATES,
    BadRequestError,
    DeadlineDoubleError,
    JobStore,
    NotSupportedError,
    parse_flag,
)

log = logging.getLogger(__name__)

BANNER = "This is the Deadline web service!"
AUTH_FAILED_TEXT = "Authentication failed: the user name or the Web Service password is missing or wrong."
SUCCESS = "Success"


@dataclass(frozen=True)
class Faults:
    """What the server does wrong, for requests whose path starts with ``path_prefix`` and (when given)
    whose method is ``method``, once ``after`` of them went through: wait ``delay_s`` before answering (then
    answer normally: a request that a client gave up on is still carried out), answer ``status`` with the
    text ``body`` instead of doing anything, or close the connection without an answer
    (``drop_connection``)."""

    delay_s: float = 0.0
    status: Optional[int] = None
    body: str = ""
    path_prefix: str = ""
    method: Optional[str] = None
    drop_connection: bool = False
    after: int = 0  # the first ``after`` requests it applies to pass untouched (a failure part-way)

    def applies_to(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and (self.method is None or self.method.upper() == method)


class _Text(str):
    """An answer sent as text/plain (the banner, ``Success``); every other answer is JSON."""


class _Reply(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _DropConnection(Exception):
    """Close the connection without answering."""


class DeadlineWebService:
    """The HTTP server of the double: ``start()`` binds 127.0.0.1:``port`` (0: a free port) and serves in a
    daemon thread; ``stop()`` closes the listening socket and every open connection, so that the port
    refuses connections, as a Web Service that is down does."""

    def __init__(self, store: JobStore, *, users: Optional[Dict[str, str]] = None, port: int = 0) -> None:
        self.store = store
        self.users = dict(users or {})
        self.port = port
        self._faults = Faults()
        self._fault_passes = 0
        self._lock = threading.Lock()
        self._requests: List[Tuple[str, str]] = []
        self._connections: Set[socket.socket] = set()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> None:
        if self._httpd is not None:
            return
        service = self

        class Handler(_Handler):
            pass

        Handler.service = service
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-deadline-{self.port}", daemon=True)
        self._thread.start()
        log.debug("Deadline double listening on 127.0.0.1:%d", self.port)

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.debug("Deadline double on port %d stopped", self.port)

    # -- faults and records --------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._fault_passes = 0

    def _fault_for(self, method: str, path: str) -> Optional[Faults]:
        """The faults to act on for this request, counting it against ``after``; None when it goes through."""
        with self._lock:
            faults = self._faults
            if not faults.applies_to(method, path):
                return None
            if self._fault_passes < faults.after:
                self._fault_passes += 1
                return None
            return faults

    def requests_seen(self) -> List[Tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self._requests.append((method, target))

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _authorized(self, header: Optional[str]) -> bool:
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and user in self.users and self.users[user] == password

    # -- routes --------------------------------------------------------------------------------------------

    def route(self, method: str, path: str, query: Dict[str, str], body: Optional[Any]) -> Tuple[int, Any]:
        """Answer one request: (status, a JSON-able value, or a _Text answer). Raises DeadlineDoubleError."""
        routes = {
            "/": {"GET": lambda: _Text(BANNER)},
            "/api/jobs": {"GET": lambda: self._get_jobs(query), "POST": lambda: self._post_jobs(body),
                          "PUT": lambda: self._put_jobs(body), "DELETE": lambda: self._delete_jobs(query)},
            "/api/tasks": {"GET": lambda: self._get_tasks(query), "PUT": lambda: self._put_tasks(body)},
            "/api/jobreports": {"GET": lambda: self._get_reports(query, with_task=False)},
            "/api/taskreports": {"GET": lambda: self._get_reports(query, with_task=True)},
            "/api/pools": {"GET": lambda: list(self.store.pools)},
            "/api/groups": {"GET": lambda: list(self.store.groups)},
            "/api/slaves": {"GET": lambda: self._get_slaves(query)},
        }
        if path not in routes:
            raise _Reply(404, f"The resource {path} does not exist.")
        handler = routes[path].get(method)
        if handler is None:
            raise NotSupportedError(f"{method} is not supported on {path}.")
        return 200, handler()

    def _get_jobs(self, query: Dict[str, str]) -> Any:
        store = self.store
        id_only = _query_flag(query, "IdOnly")
        states = None
        if "States" in query:
            names = [name.strip() for name in query["States"].split(",") if name.strip()]
            unknown = [name for name in names if name not in JOB_STATES]
            if not names or unknown:
                raise BadRequestError(f"Invalid state(s) {', '.join(unknown) or repr(query['States'])}; "
                                      f"use {', '.join(JOB_STATES)}")
            states = [JOB_STATES[name] for name in names]
        job_ids = _id_list(query["JobID"]) if "JobID" in query else None
        if _query_flag(query, "Details"):
            if job_ids is None:
                raise BadRequestError("Details=true needs JobID")
            return store.job_details(job_ids)
        if _query_flag(query, "Statistics"):
            raise NotSupportedError("Statistics=true is not emulated by the Deadline test double")
        jobs = store.jobs_json(states=states, job_ids=job_ids, deleted=_query_flag(query, "Deleted"))
        return [job["_id"] for job in jobs] if id_only else jobs

    def _post_jobs(self, body: Any) -> Any:
        """One job: the job object, or ``{"_id"}`` with IdOnly. Several (``{"Jobs": [...]}``): the text
        ``Success`` and no ids, as the Standalone API's ``SubmitJobs`` documents ("Returns: Success message.",
        ``Deadline/Jobs.py``; every other ``SubmitJob``-style call there says "Returns: The new Job.")."""
        body = _json_object(body)
        if "Jobs" in body:
            self.store.submit_jobs(body)
            return _Text(SUCCESS)
        return self.store.submit_job(body)

    def _put_jobs(self, body: Any) -> _Text:
        body = _command_body(body)
        self.store.job_command(body)
        return _Text(SUCCESS)

    def _delete_jobs(self, query: Dict[str, str]) -> _Text:
        if not query.get("JobID"):
            raise BadRequestError("DELETE /api/jobs needs JobID")
        self.store.delete_jobs(_id_list(query["JobID"]), purge=_query_flag(query, "Purge"))
        return _Text(SUCCESS)

    def _get_tasks(self, query: Dict[str, str]) -> Any:
        job_id = query.get("JobID")
        if not job_id:
            raise BadRequestError("GET /api/tasks needs JobID")
        if "TaskID" in query:
            return self.store.task_json(job_id, _task_id(query["TaskID"]))
        if _query_flag(query, "IdOnly"):
            return self.store.task_ids(job_id)
        return self.store.tasks_json(job_id)

    def _put_tasks(self, body: Any) -> _Text:
        body = _command_body(body)
        self.store.task_command(body)
        return _Text(SUCCESS)

    def _get_reports(self, query: Dict[str, str], *, with_task: bool) -> Any:
        job_id = query.get("JobID")
        if not job_id:
            raise BadRequestError("report queries need JobID")
        task_id = None
        if with_task:
            if "TaskID" not in query:
                raise BadRequestError("task report queries need TaskID")
            task_id = _task_id(query["TaskID"])
        return self.store.report_data(job_id, query.get("Data"), task_id=task_id, report_id=query.get("ReportID"))

    def _get_slaves(self, query: Dict[str, str]) -> Any:
        names = self.store.worker_names()
        if _query_flag(query, "NamesOnly"):
            return names
        if "Name" in query:
            wanted = {name.lower() for name in _id_list(query["Name"])}
            names = [name for name in names if name.lower() in wanted]
        data = query.get("Data", "infosettings")
        if data in ("reports", "history"):
            return []
        if data not in ("info", "settings", "infosettings"):
            raise BadRequestError(f"Invalid Data value {data!r}")
        result = []
        for name in names:
            info = {"Name": name, "Stat": 1 if self.store.worker_is_rendering(name) else 2}
            settings = {"Name": name, "Enable": True}
            if data == "info":
                result.append(info)
            elif data == "settings":
                result.append(settings)
            else:
                result.append({"Info": info, "Settings": settings})
        return result


def _query_flag(query: Dict[str, str], name: str) -> bool:
    if name not in query:
        return False
    return parse_flag(query[name], name, BadRequestError)


def _id_list(text: str) -> List[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _task_id(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise BadRequestError(f"TaskID must be an integer, not {text!r}") from None


def _json_object(body: Any) -> Dict[str, Any]:
    if body is None:
        raise BadRequestError("The request has no body.")
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.")
    return body


def _command_body(body: Any) -> Dict[str, Any]:
    body = _json_object(body)
    if "Command" not in body:
        raise BadRequestError("The request body has no Command.")
    return body


class _Handler(BaseHTTPRequestHandler):
    service: DeadlineWebService
    protocol_version = "HTTP/1.1"
    server_version = "DeadlineWebServiceDouble/10"
    timeout = 120

    def setup(self) -> None:
        super().setup()
        self.service._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.service._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log.debug("Deadline double %s: %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        service = self.service
        raw = self._read_body()
        service._record(method, self.path)
        split = urlsplit(self.path)
        path = split.path
        try:
            faults = service._fault_for(method, path)
            if faults is not None:
                if faults.delay_s > 0 and service._stopping.wait(faults.delay_s):
                    raise _DropConnection()
                if faults.drop_connection:
                    raise _DropConnection()
                if faults.status is not None:
                    raise _Reply(faults.status, faults.body)
            if not service._authorized(self.headers.get("Authorization")):
                self._send(401, AUTH_FAILED_TEXT, extra={"WWW-Authenticate": 'Basic realm="Deadline"'})
                return
            query = {name: values[0] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
            body: Optional[Any] = None
            if raw.strip():
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise BadRequestError(f"The request body is not valid JSON: {exc}") from None
            status, value = service.route(method, path, query, body)
        except _DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except _Reply as reply:
            self._send(reply.status, reply.text)
            return
        except DeadlineDoubleError as exc:
            self._send(exc.http_status, exc.response_text())
            return
        except Exception as exc:  # a bug in the double: answer like Deadline does, and say so in the log
            log.exception("Deadline double: %s %s failed", method, self.path)
            self._send(500, f"An exception occurred within the Deadline code: {type(exc).__name__}: {exc}")
            return
        if isinstance(value, _Text):
            self._send(status, str(value))
        else:
            self._send(status, json.dumps(value, separators=(",", ":")), content_type="application/json")

    def _send(self, status: int, text: str, *, content_type: str = "text/plain",
              extra: Optional[Dict[str, str]] = None) -> None:
        data = text.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
