"""A client for the Deadline 10 Web Service REST API (shared/reference/deadline.md §1).

The surface follows Deadline's Standalone API (jobs, tasks, reports, pools, groups, Limits), but errors are
typed (errors.py) instead of strings. Every call has a timeout; only idempotent reads are retried, with
exponential backoff. Credentials go in the ``Authorization`` header and nowhere else: not in URLs, logs
or error messages.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence

import requests
import urllib3

from flame_submitter.deadline.errors import (
    DeadlineAuthError,
    DeadlineRejected,
    DeadlineTimeout,
    DeadlineUnexpected,
    DeadlineUnreachable,
)
from flame_submitter.jobs.submission import JobSubmission

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_READ_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 0.5
RETRYABLE_STATUSES = (502, 503, 504)

# The names of the Web Service's ``Stat`` numbers, looked up with ``job.get("Stat")`` (None where it sent none).
JOB_STATES: Mapping[Optional[int], str] = {0: "Unknown", 1: "Active", 2: "Suspended", 3: "Completed", 4: "Failed",
                                           6: "Pending"}
TASK_STATES: Mapping[Optional[int], str] = {1: "Unknown", 2: "Queued", 3: "Suspended", 4: "Rendering", 5: "Completed",
                                            6: "Failed", 8: "Pending"}
REPORT_KINDS = ("log", "error", "requeue", "history", "allcontents", "alllogcontents", "allerrorcontents",
                "allrequeuecontents")


class DeadlineClient:
    def __init__(
        self,
        url: str,
        *,
        user: Optional[str] = None,
        password: Optional[str] = None,
        ca_file: Optional[str] = None,
        insecure: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
        read_retries: int = DEFAULT_READ_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_SECONDS,
        http: Optional[requests.Session] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self.insecure = insecure
        self.timeout_s = timeout_s
        self.read_retries = read_retries
        self.backoff_s = backoff_s
        self._http = http or requests.Session()
        self._http.trust_env = False  # the farm's Web Service is on the studio network, not behind a proxy
        if user:
            self._http.auth = (user, password or "")
        if insecure:
            self._http.verify = False
            logger.warning("TLS certificate checks are off for %s (deadline_insecure)", self.url)
        elif ca_file:
            self._http.verify = ca_file

    def __repr__(self) -> str:
        return f"DeadlineClient({self.url!r}, user={self.user!r})"

    # -- plumbing ---------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
              body: Any = None) -> requests.Response:
        attempts = 1 + (self.read_retries if method == "GET" else 0)
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else None
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                with warnings.catch_warnings():
                    if self.insecure:  # said once at construction, not on every call
                        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                    response = self._http.request(method, f"{self.url}{path}", params=params, data=data,
                                                  headers=headers, timeout=self.timeout_s)
            except requests.Timeout as exc:
                error: Exception = DeadlineTimeout(self.url, f"{method} {path}", self.timeout_s)
                cause: Exception = exc
            except requests.exceptions.SSLError as exc:
                error, cause = DeadlineUnreachable(self.url, f"TLS: {_first_line(exc)}; set deadline_ca_file"), exc
            except requests.ConnectionError as exc:
                error, cause = DeadlineUnreachable(self.url, _reason(exc)), exc
            else:
                logger.debug("%s %s -> %s (%.2f s)", method, path, response.status_code, time.monotonic() - started)
                if response.status_code not in RETRYABLE_STATUSES or attempt == attempts:
                    return self._check(method, path, response)
                error = DeadlineRejected(method, path, response.status_code, response.text)
                cause = error
            if attempt == attempts:
                raise error from cause
            delay = self.backoff_s * 2 ** (attempt - 1)
            logger.info("%s %s failed (%s): retrying in %.1f s", method, path, error, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, method: str, path: str, response: requests.Response) -> requests.Response:
        if response.status_code == 401:
            raise DeadlineAuthError(self.url, self.user)
        if response.status_code >= 400:
            raise DeadlineRejected(method, path, response.status_code, response.text)
        return response

    def _get(self, path: str, **params: Any) -> Any:
        response = self._send("GET", path, params={k: v for k, v in params.items() if v is not None})
        try:
            return response.json()
        except ValueError:
            raise DeadlineUnexpected("GET", path, f"not JSON: {response.text[:200]!r}") from None

    def _command(self, method: str, path: str, body: Mapping[str, Any], params: Optional[Mapping] = None) -> None:
        """Mutating calls answer the text ``Success``; anything else is a failure."""
        response = self._send(method, path, body=dict(body) if method != "DELETE" else None, params=params)
        text = response.text.strip().strip('"')
        if text != "Success":
            raise DeadlineUnexpected(method, path, f"expected 'Success', got {response.text[:300]!r}")

    # -- the service ------------------------------------------------------------------------------

    def ping(self) -> str:
        """The Web Service's banner (``GET /``): proves it answers, not that the credentials work."""
        return self._send("GET", "/").text

    def check_credentials(self) -> None:
        """An authenticated read; raises DeadlineAuthError when the credentials do not work."""
        self.pool_names()

    # -- jobs -------------------------------------------------------------------------------------

    def submit_job(self, submission: JobSubmission) -> str:
        """Submit one job (``IdOnly``); returns its Deadline job id. There is no batch call: the Web Service
        answers a batch (``{"Jobs": [...]}``) with a success message and no ids, and its ``Dependent`` flag
        chains every job of the batch to the one before it (the Standalone API's ``SubmitJobs``), so each job
        goes on its own, its dependencies in its JobInfo (``JobDependencies``)."""
        body = {"JobInfo": dict(submission.job_info), "PluginInfo": dict(submission.plugin_info),
                "AuxFiles": list(submission.aux_files), "IdOnly": True}
        answer = self._post_json("/api/jobs", body)
        return _job_id(answer, "/api/jobs")

    def _post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        response = self._send("POST", path, body=body)
        try:
            return response.json()
        except ValueError:
            raise DeadlineUnexpected("POST", path, f"not JSON: {response.text[:200]!r}") from None

    def get_job_ids(self) -> List[str]:
        return list(self._get("/api/jobs", IdOnly="true"))

    def get_jobs(self, job_ids: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        if job_ids is not None and not job_ids:
            return []
        answer = self._get("/api/jobs", JobID=",".join(job_ids) if job_ids else None)
        if not isinstance(answer, list):
            raise DeadlineUnexpected("GET", "/api/jobs", f"expected an array of jobs, got {type(answer).__name__}")
        return answer

    def get_job(self, job_id: str) -> Dict[str, Any]:
        """One job; DeadlineRejected (404-like) when the Web Service does not know it."""
        jobs = self.get_jobs([job_id])
        if not jobs:
            raise DeadlineRejected("GET", f"/api/jobs?JobID={job_id}", 404,
                                   f"no job {job_id}: check the id (deleted jobs are not listed)")
        return jobs[0]

    def get_jobs_in_states(self, states: Sequence[str]) -> List[Dict[str, Any]]:
        return list(self._get("/api/jobs", States=",".join(states)))

    def get_job_details(self, job_id: str) -> Dict[str, Any]:
        answer = self._get("/api/jobs", JobID=job_id, Details="true")
        if not isinstance(answer, dict) or job_id not in answer:
            raise DeadlineUnexpected("GET", "/api/jobs?Details=true", f"no details for {job_id}")
        return answer[job_id]

    def _job_command(self, command: str, job_id: str, **extra: Any) -> None:
        self._command("PUT", "/api/jobs", {"Command": command, "JobID": job_id, **extra})

    def suspend_job(self, job_id: str) -> None:
        self._job_command("suspend", job_id)

    def resume_job(self, job_id: str) -> None:
        self._job_command("resume", job_id)

    def requeue_job(self, job_id: str) -> None:
        self._job_command("requeue", job_id)

    def fail_job(self, job_id: str) -> None:
        self._job_command("fail", job_id)

    def complete_job(self, job_id: str) -> None:
        self._job_command("complete", job_id)

    def delete_job(self, job_id: str) -> None:
        self._command("DELETE", "/api/jobs", {}, params={"JobID": job_id})

    # -- tasks ------------------------------------------------------------------------------------

    def get_job_tasks(self, job_id: str) -> Dict[str, Any]:
        """The task wrapper: ``{"ID", "PreTask", "Tasks": [...], "PostTask"}``."""
        answer = self._get("/api/tasks", JobID=job_id)
        if not isinstance(answer, dict) or not isinstance(answer.get("Tasks"), list):
            raise DeadlineUnexpected("GET", "/api/tasks", f"expected the task wrapper, got {answer!r:.200}")
        return answer

    def get_job_task_ids(self, job_id: str) -> List[int]:
        return [int(t) for t in self._get("/api/tasks", JobID=job_id, IdOnly="true")]

    def get_job_task(self, job_id: str, task_id: int) -> Dict[str, Any]:
        return self._get("/api/tasks", JobID=job_id, TaskID=task_id)

    def _task_command(self, command: str, job_id: str, task_ids: Optional[Sequence[int]]) -> None:
        body: Dict[str, Any] = {"Command": command, "JobID": job_id}
        if task_ids is not None:
            body["TaskList"] = [int(t) for t in task_ids]
        self._command("PUT", "/api/tasks", body)

    def requeue_tasks(self, job_id: str, task_ids: Optional[Sequence[int]] = None) -> None:
        self._task_command("requeue", job_id, task_ids)

    def fail_tasks(self, job_id: str, task_ids: Optional[Sequence[int]] = None) -> None:
        self._task_command("fail", job_id, task_ids)

    def suspend_tasks(self, job_id: str, task_ids: Optional[Sequence[int]] = None) -> None:
        self._task_command("suspend", job_id, task_ids)

    # -- reports, pools, groups -------------------------------------------------------------------

    def job_reports(self, job_id: str, kind: str = "error") -> List[Dict[str, Any]]:
        _check_kind(kind)
        return list(self._get("/api/jobreports", JobID=job_id, Data=kind))

    def task_reports(self, job_id: str, task_id: int, kind: str = "error") -> List[Dict[str, Any]]:
        _check_kind(kind)
        return list(self._get("/api/taskreports", JobID=job_id, TaskID=task_id, Data=kind))

    def pool_names(self) -> List[str]:
        return [str(p) for p in self._get("/api/pools")]

    def group_names(self) -> List[str]:
        return [str(g) for g in self._get("/api/groups")]

    def limit_names(self) -> List[str]:
        """The names of the farm's Limits (``GET /api/limitgroups?NamesOnly=true``, Thinkbox's REST docs,
        rest-limits; the Standalone API's ``LimitGroups.GetLimitGroupNames``)."""
        answer = self._get("/api/limitgroups", NamesOnly="true")
        if not isinstance(answer, list):
            raise DeadlineUnexpected("GET", "/api/limitgroups", f"expected an array of names, got {answer!r:.200}")
        return [str(name) for name in answer]


def _check_kind(kind: str) -> None:
    if kind not in REPORT_KINDS:
        raise ValueError(f"report kind '{kind}' is not one of {', '.join(REPORT_KINDS)}")


def _job_id(answer: Any, path: str) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("_id"), str):
        return answer["_id"]
    raise DeadlineUnexpected("POST", path, f"no job id (_id) in the answer: {answer!r:.200}")


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "Errno -2" in text:
        return "unknown host"
    return _first_line(exc)
