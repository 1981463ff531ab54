"""The Deadline double's repository: jobs, tasks, reports, raw submissions, and the emulated Workers' API.

Everything here is in-process and thread-safe (one re-entrant lock). The HTTP server
(:mod:`tests.doubles.deadline.server`) is a thin layer over :class:`JobStore`; the farm emulator calls
the Worker methods (:meth:`JobStore.dequeue_task`, :meth:`JobStore.report_progress`,
:meth:`JobStore.complete_task`, :meth:`JobStore.fail_task`, :meth:`JobStore.requeue_task`) directly.

Listeners (:meth:`JobStore.add_listener`) are called as ``listener(event_name, job_id)`` after the change
that caused the event, outside the store lock, in the thread that made the change (an HTTP handler thread
for Web Service commands, the caller's thread for Worker methods). Events, named like Deadline's event
plugin callbacks: OnJobSubmitted, OnJobStarted, OnJobFinished, OnJobFailed, OnJobError, OnJobSuspended,
OnJobResumed, OnJobRequeued, OnJobPended, OnJobReleased, OnJobDeleted. A job submitted with
``SuppressEvents=true`` raises none. A listener that raises is logged and its exception kept in
:attr:`JobStore.listener_errors`; the change stands (as in Deadline, where a failing event plugin does not
undo the job's transition).
"""

from __future__ import annotations

import contextlib
import copy
import getpass
import logging
import math
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .framelist import FrameListError, chunk_frames, parse_frame_list, task_frames_text

log = logging.getLogger(__name__)

# Job Stat (Deadline.Jobs.JobStatus)
JOB_UNKNOWN = 0
JOB_ACTIVE = 1
JOB_SUSPENDED = 2
JOB_COMPLETED = 3
JOB_FAILED = 4
JOB_PENDING = 6
JOB_STATES = {"Active": JOB_ACTIVE, "Suspended": JOB_SUSPENDED, "Completed": JOB_COMPLETED,
              "Failed": JOB_FAILED, "Pending": JOB_PENDING}

# Task Stat
TASK_UNKNOWN = 1
TASK_QUEUED = 2
TASK_SUSPENDED = 3
TASK_RENDERING = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
TASK_PENDING = 8

# Report Type
REPORT_LOG = 0
REPORT_ERROR = 1
REPORT_REQUEUE = 2

# Props.OnComp
ON_COMPLETE = {"Archive": 0, "Delete": 1, "Nothing": 2}
# Props.Timeout (what happens when a task times out)
ON_TASK_TIMEOUT = {"ErrorAndNotify": 0, "Error": 1, "Notify": 2, "Complete": 3, "RequeueAndNotify": 4,
                   "Requeue": 5, "FailAndNotify": 6, "Fail": 7}
CLEANUP_TYPES = {"DeleteJobs": 0, "ArchiveJobs": 1}

UNSET_DATE = "0001-01-01T00:00:00Z"
UNSET_TIMESPAN = "-10675199.02:48:05.4775808"
MAX_PRIORITY = 100
MAX_CONCURRENT_TASKS = 16

JOB_COMMANDS = ("suspend", "suspendnonrendering", "resume", "resumefailed", "requeue", "archive", "pend",
                "releasepending", "complete", "fail", "updatesubmissiondate", "undelete", "save",
                "setjobframerange", "appendjobframerange", "setjobmachinelimit")
TASK_COMMANDS = ("requeue", "complete", "suspend", "resume", "fail", "resumefailed", "pend", "releasepending")

_JOB_ID = re.compile(r"^[0-9a-f]{24}$")


# ---------------------------------------------------------------------------------------------------------
# errors


class DeadlineDoubleError(Exception):
    """An error the Web Service answers with a text body; ``http_status`` is the status it uses."""

    http_status = 500

    def response_text(self) -> str:
        if self.http_status == 500:
            return f"An exception occurred within the Deadline code: {self}"
        return str(self)


class BadRequestError(DeadlineDoubleError):
    """No body, no Command, a body that is not a JSON object, a non-integer TaskID (400)."""

    http_status = 400


class NotSupportedError(DeadlineDoubleError):
    """A method the resource does not take, or a query the double does not emulate (501)."""

    http_status = 501


class UnknownJobError(DeadlineDoubleError):
    """No job with that id (500, like every exception inside Deadline)."""


class UnknownTaskError(DeadlineDoubleError):
    """No task with that id in the job (500)."""


class SubmissionError(DeadlineDoubleError):
    """The submission is refused: missing Plugin, bad Frames, missing auxiliary file, unknown key... (500)."""


class CommandError(DeadlineDoubleError):
    """An invalid command, or a command with missing or bad arguments (500)."""


class TaskNotRenderingError(DeadlineDoubleError):
    """A Worker reported on a task it no longer holds (requeued, suspended, deleted, or another Worker's)."""


# ---------------------------------------------------------------------------------------------------------
# time


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_date(value: Optional[datetime]) -> str:
    """Deadline's JSON dates: ISO 8601 UTC with milliseconds, or the unset sentinel."""
    if value is None:
        return UNSET_DATE
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_timespan(seconds: float) -> str:
    """.NET TimeSpan text: ``[d.]hh:mm:ss.fffffff``."""
    ticks = int(round(max(seconds, 0.0) * 10_000_000))
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}.{fraction:07d}"
    return f"{days}.{text}" if days else text


# ---------------------------------------------------------------------------------------------------------
# records


@dataclass
class _Task:
    task_id: int
    frames: List[int]
    stat: int
    slave: str = ""
    progress: float = 0.0
    status_message: str = ""
    errors: int = 0
    start: Optional[datetime] = None
    start_render: Optional[datetime] = None
    completed: Optional[datetime] = None
    serial: int = 0


@dataclass
class _Job:
    job_id: str
    plugin: str
    props: Dict[str, Any]
    stat: int
    date: datetime
    sequence: int
    machine: str
    out_dirs: List[str]
    out_files: List[str]
    aux_names: List[str]
    tasks: List[_Task]
    date_start: Optional[datetime] = None
    date_completed: Optional[datetime] = None
    errors: int = 0
    held: bool = False  # pended by a command (not by dependencies): only releasepending frees it


@dataclass(frozen=True)
class TaskLease:
    """What a Worker gets from :meth:`JobStore.dequeue_task`: one task to render.

    ``frames`` is the task's own frame list (a stepped or reverse list keeps its frames, in list order);
    ``start_frame``/``end_frame`` are its first and last frames, as in the task's ``Frames`` text.
    ``serial`` identifies this hand-out: the lease is stale once the task is requeued, suspended, deleted...
    (see :meth:`JobStore.lease_is_current`)."""

    job_id: str
    task_id: int
    worker: str
    frames: Tuple[int, ...]
    plugin: str
    serial: int

    @property
    def start_frame(self) -> int:
        return self.frames[0]

    @property
    def end_frame(self) -> int:
        return self.frames[-1]


@dataclass(frozen=True)
class Report:
    """A job or task report. ``text`` is the report's contents (served by the ``Data=*contents`` queries,
    never inside the report objects, as in Deadline)."""

    report_id: str
    job_id: str
    task_id: int
    report_type: int
    date: datetime
    worker: str
    title: str
    text: str
    frames: str
    job_name: str
    job_user: str
    plugin: str
    task_start: Optional[datetime]
    task_seconds: float

    def to_json(self) -> Dict[str, Any]:
        return {"_id": self.report_id, "Job": self.job_id, "Type": self.report_type, "Date": format_date(self.date),
                "Slave": self.worker, "Task": self.task_id, "Title": self.title, "JobName": self.job_name,
                "JobUser": self.job_user, "Plugin": self.plugin, "Frames": self.frames,
                "TaskStartTime": format_date(self.task_start), "TaskTime": format_timespan(self.task_seconds),
                "PeakRam": 0, "AverageRam": 0, "PeakCpu": 0, "AverageCpu": 0, "UsedClock": 0, "TotalClock": 0}


# ---------------------------------------------------------------------------------------------------------
# JobInfo -> Props

# Keys the double accepts but does not map into Props (kept in the raw submission only).
_ACCEPTED_UNMAPPED_KEYS = frozenset({
    "IncludeEnvironment", "ScheduledType", "ScheduledStartDateTime", "ScheduledDays", "JobDelay",
    "RequiredAssets", "ScriptDependencies", "MaintenanceJob", "MaintenanceJobStartFrame", "MaintenanceJobEndFrame",
    "TileJob", "TileJobFrame", "TileJobTilesInX", "TileJobTilesInY", "TileJobTileCount", "NetworkRoot",
})


def _props_defaults(user: str) -> Dict[str, Any]:
    props: Dict[str, Any] = {
        "Name": "Untitled", "Batch": "", "User": user, "Region": "", "Cmmt": "", "Dept": "", "Frames": "0",
        "Chunk": 1, "Tasks": 1, "Grp": "none", "Pool": "none", "SecPool": "", "Pri": 50, "ReqAss": [],
        "ScrDep": [], "Conc": 1, "ConcLimt": True, "AuxSync": False, "Int": False, "IntPer": 100, "RemTmT": 0,
        "Seq": False, "Reload": False, "NoEvnt": False, "OnComp": ON_COMPLETE["Nothing"], "Protect": False,
        "PathMap": [], "AutoTime": False, "TimeScrpt": False, "MinTime": 0, "MaxTime": 0,
        "Timeout": ON_TASK_TIMEOUT["Error"], "FrameTimeout": False, "StartTime": 0, "InitializePluginTime": 0,
        "Dep": [], "DepFrame": False, "DepFrameStart": 0, "DepFrameEnd": 0, "DepComp": True, "DepDel": False,
        "DepFail": False, "DepPer": -1.0, "NoBad": False, "OverAutoClean": False, "OverClean": False,
        "OverCleanDays": 0, "OverCleanType": CLEANUP_TYPES["DeleteJobs"], "JobFailOvr": False,
        "TskFailOvr": False, "JobFailErr": 0, "TskFailErr": 0, "SndWarn": True, "NotOvr": False,
        "SndEmail": False, "SndPopup": False, "NotEmail": [], "NotUser": [], "NotNote": "", "Limits": [],
        "ListedSlaves": [], "White": False, "MachLmt": 0, "MachLmtProg": -1.0, "PrJobScrp": "",
        "PoJobScrp": "", "PrTskScrp": "", "PoTskScrp": "", "Schd": 0, "SchdDays": 1, "SchdDate": UNSET_DATE,
        "SchdStop": UNSET_DATE, "PlugInfo": {}, "Env": {}, "EnvOnly": False, "PlugDir": "", "EventDir": "",
        "OptIns": {}, "EventOI": [], "AWSPortalAssets": [], "AWSPortalAssetFileWhitelist": [],
    }
    for index in range(10):
        props[f"Ex{index}"] = ""
    props["OvrTaskEINames"] = False
    for index in range(10):
        props[f"TaskEx{index}"] = ""
    props["ExDic"] = {}
    return props


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # .NET's Boolean.ToString()
    return str(value)


class _JobInfoReader:
    """Reads JobInfo values the way the double insists on: strings or numbers (JSON booleans for flags),
    parsed strictly; every key read is marked used so that unknown keys can be refused."""

    def __init__(self, info: Dict[str, Any]) -> None:
        for key, value in info.items():
            if value is None or not isinstance(value, (str, int, float, bool)):
                raise SubmissionError(f"JobInfo value of {key!r} must be a string or a number, "
                                      f"not {type(value).__name__}")
        self.info = info
        self.used: Set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.info

    def text(self, key: str, default: str = "") -> str:
        self.used.add(key)
        if key not in self.info:
            return default
        return _scalar_text(self.info[key])

    def integer(self, key: str, default: int, minimum: Optional[int] = None,
                maximum: Optional[int] = None) -> int:
        self.used.add(key)
        if key not in self.info:
            return default
        value = self.info[key]
        if isinstance(value, bool):
            raise SubmissionError(f"JobInfo {key} must be an integer, not a boolean")
        if isinstance(value, float):
            if not value.is_integer():
                raise SubmissionError(f"JobInfo {key} must be an integer, not {value!r}")
            number = int(value)
        elif isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"[+-]?\d+", text):
                raise SubmissionError(f"JobInfo {key} must be an integer, not {value!r}")
            number = int(text)
        if minimum is not None and number < minimum:
            raise SubmissionError(f"JobInfo {key} must be at least {minimum}, not {number}")
        if maximum is not None and number > maximum:
            raise SubmissionError(f"JobInfo {key} must be at most {maximum}, not {number}")
        return number

    def number(self, key: str, default: float) -> float:
        self.used.add(key)
        if key not in self.info:
            return default
        value = self.info[key]
        if isinstance(value, bool):
            raise SubmissionError(f"JobInfo {key} must be a number, not a boolean")
        try:
            number = float(value)
        except ValueError:
            raise SubmissionError(f"JobInfo {key} must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise SubmissionError(f"JobInfo {key} must be a finite number, not {value!r}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        self.used.add(key)
        if key not in self.info:
            return default
        return parse_flag(self.info[key], f"JobInfo {key}", SubmissionError)

    def choice(self, key: str, default: int, choices: Dict[str, int]) -> int:
        self.used.add(key)
        if key not in self.info:
            return default
        value = _scalar_text(self.info[key]).strip()
        if value not in choices:
            raise SubmissionError(f"JobInfo {key} must be one of {', '.join(choices)}, not {value!r}")
        return choices[value]

    def names(self, key: str) -> List[str]:
        return [name.strip() for name in self.text(key).split(",") if name.strip()]

    def numbered(self, prefix: str) -> List[str]:
        """Values of ``<prefix>0``, ``<prefix>1``...; the numbers must run from 0 without a gap."""
        pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
        found: Dict[int, str] = {}
        for key in self.info:
            match = pattern.match(key)
            if match:
                digits = match.group(1)
                if str(int(digits)) != digits:
                    raise SubmissionError(f"JobInfo key {key!r}: write the number without leading zeros")
                found[int(digits)] = self.text(key)
        if sorted(found) != list(range(len(found))):
            raise SubmissionError(f"JobInfo {prefix}N keys must be numbered 0, 1, 2... without a gap; "
                                  f"got {', '.join(prefix + str(n) for n in sorted(found))}")
        return [found[n] for n in range(len(found))]

    def key_values(self, prefix: str) -> Dict[str, str]:
        result: Dict[str, str] = {}
        for index, item in enumerate(self.numbered(prefix)):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise SubmissionError(f"JobInfo {prefix}{index} must be 'key=value', not {item!r}")
            result[name.strip()] = value
        return result

    def seconds(self, key_seconds: str, key_minutes: str) -> int:
        if self.has(key_seconds) and self.has(key_minutes):
            raise SubmissionError(f"JobInfo has both {key_seconds} and {key_minutes}: give one")
        if self.has(key_minutes):
            return self.integer(key_minutes, 0, minimum=0) * 60
        return self.integer(key_seconds, 0, minimum=0)

    def unused(self) -> List[str]:
        return sorted(set(self.info) - self.used - _ACCEPTED_UNMAPPED_KEYS)


def parse_flag(value: Any, what: str, error: type = SubmissionError) -> bool:
    """JSON booleans, or the strings true/false in any case (like .NET's Boolean.Parse); nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise error(f"{what} must be true or false, not {value!r}")


# ---------------------------------------------------------------------------------------------------------
# the store


class JobStore:
    """Jobs, tasks and reports of one emulated Deadline repository.

    ``pools``/``groups``: the names the Web Service lists ("none" is always there, first) and the only ones
    a job may use. ``workers``: names listed by /api/slaves (Workers that dequeue are added).
    ``aux_root``: where auxiliary files are copied at submission (``<aux_root>/jobs/<job id>/``), as Deadline
    copies them into the repository; None copies nothing. ``task_failure_limit``: errors after which a task
    is Failed (and so its job), unless the job overrides it with OverrideTaskFailureDetection +
    FailureDetectionTaskErrors; ``job_failure_limit``: the same for the job's total errors."""

    def __init__(self, *, pools: Sequence[str] = ("none",), groups: Sequence[str] = ("none",),
                 workers: Sequence[str] = (), aux_root: Optional[Path] = None, service_user: Optional[str] = None,
                 service_machine: Optional[str] = None, task_failure_limit: int = 1,
                 job_failure_limit: int = 100) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.pools: List[str] = _with_none(pools)
        self.groups: List[str] = _with_none(groups)
        self._workers: List[str] = []
        for name in workers:
            self.register_worker(name)
        self.aux_root = Path(aux_root) if aux_root is not None else None
        self.service_user = service_user or _default_user()
        self.service_machine = service_machine or socket.gethostname()
        self.task_failure_limit = task_failure_limit
        self.job_failure_limit = job_failure_limit
        self._jobs: Dict[str, _Job] = {}
        self._deleted: Dict[str, _Job] = {}
        self._archived: Dict[str, _Job] = {}
        self._submissions: List[Dict[str, Any]] = []
        self._reports: List[Report] = []
        self._listeners: List[Callable[[str, str], None]] = []
        self.listener_errors: List[BaseException] = []
        self._sequence = 0
        self._serial = 0
        self._oid_machine = os.urandom(5).hex()
        self._oid_counter = int.from_bytes(os.urandom(3), "big")
        self._version = 0

    # -- plumbing ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mutate(self) -> Iterator[List[Tuple[str, str]]]:
        events: List[Tuple[str, str]] = []
        with self._lock:
            yield events
            self._version += 1
            self._changed.notify_all()
        self._dispatch(events)

    def _dispatch(self, events: List[Tuple[str, str]]) -> None:
        for name, job_id in events:
            for listener in list(self._listeners):
                try:
                    listener(name, job_id)
                except Exception as exc:  # an event plugin's failure does not undo the transition
                    log.exception("Deadline double: listener %r failed on %s for job %s", listener, name, job_id)
                    self.listener_errors.append(exc)

    def _emit(self, events: List[Tuple[str, str]], job: _Job, name: str) -> None:
        if not job.props.get("NoEvnt"):
            events.append((name, job.job_id))

    def _object_id(self) -> str:
        self._oid_counter = (self._oid_counter + 1) & 0xFFFFFF
        return f"{int(time.time()) & 0xFFFFFFFF:08x}{self._oid_machine}{self._oid_counter:06x}"

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(event_name, job_id)`` on every job event (see the module docstring)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str, str], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` (called under the store lock after each change) is true; False if
        ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def register_worker(self, name: str) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a Worker needs a name")
        with self._lock:
            if name.lower() not in (w.lower() for w in self._workers):
                self._workers.append(name)

    def worker_names(self) -> List[str]:
        with self._lock:
            return list(self._workers)

    def worker_is_rendering(self, name: str) -> bool:
        with self._lock:
            return any(t.stat == TASK_RENDERING and t.slave.lower() == name.lower()
                       for job in self._jobs.values() for t in job.tasks)

    # -- lookups -------------------------------------------------------------------------------------------

    def _job(self, job_id: Any) -> _Job:
        if not isinstance(job_id, str) or job_id not in self._jobs:
            raise UnknownJobError(f"the job {job_id!r} does not exist")
        return self._jobs[job_id]

    def _any_job(self, job_id: str) -> Optional[_Job]:
        return self._jobs.get(job_id) or self._archived.get(job_id) or self._deleted.get(job_id)

    def _task(self, job: _Job, task_id: Any) -> _Task:
        if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id < len(job.tasks):
            raise UnknownTaskError(f"the task {task_id!r} does not exist in job {job.job_id}")
        return job.tasks[task_id]

    def has_job(self, job_id: str) -> bool:
        """True for a job the Web Service lists (not deleted, not archived)."""
        with self._lock:
            return job_id in self._jobs

    def job_ids(self, states: Optional[Sequence[int]] = None) -> List[str]:
        with self._lock:
            return [job.job_id for job in self._jobs.values() if states is None or job.stat in states]

    def jobs_json(self, states: Optional[Sequence[int]] = None, job_ids: Optional[Sequence[str]] = None,
                  deleted: bool = False) -> List[Dict[str, Any]]:
        """Job objects in submission order; ``job_ids`` keeps only those (unknown ids are left out)."""
        with self._lock:
            source = self._deleted if deleted else self._jobs
            if job_ids is not None:
                jobs = [source[i] for i in dict.fromkeys(job_ids) if i in source]
            else:
                jobs = list(source.values())
            return [self._job_json(job) for job in jobs if states is None or job.stat in states]

    def job_json(self, job_id: str) -> Dict[str, Any]:
        """The job object; unlike the Web Service this also finds deleted and archived jobs."""
        with self._lock:
            job = self._any_job(job_id)
            if job is None:
                raise UnknownJobError(f"the job {job_id!r} does not exist")
            return self._job_json(job)

    def job_stat(self, job_id: str) -> int:
        return int(self.job_json(job_id)["Stat"])

    def job_status_text(self, job_id: str) -> str:
        """What Monitor's Status column (and Details' ``Job.Status``) says: Queued, Rendering (n), ..."""
        with self._lock:
            job = self._any_job(job_id)
            if job is None:
                raise UnknownJobError(f"the job {job_id!r} does not exist")
            return self._status_text(job)

    def job_details(self, job_ids: Sequence[str]) -> Dict[str, Any]:
        """``GET /api/jobs?JobID=..&Details=true``: an object keyed by job id (unknown ids are left out)."""
        with self._lock:
            result: Dict[str, Any] = {}
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is None:
                    continue
                props = job.props
                result[job_id] = {"Job": {"Name": props["Name"], "Plugin": job.plugin, "User": props["User"],
                                          "Status": self._status_text(job), "Priority": props["Pri"]}}
            return result

    def task_ids(self, job_id: str) -> List[int]:
        with self._lock:
            return [task.task_id for task in self._job(job_id).tasks]

    def tasks_json(self, job_id: str) -> Dict[str, Any]:
        """``GET /api/tasks?JobID=X``: the wrapper object (the double has no pre/post job script tasks)."""
        with self._lock:
            job = self._job(job_id)
            return {"ID": job.job_id, "PreTask": None, "Tasks": [self._task_json(job, t) for t in job.tasks],
                    "PostTask": None}

    def task_json(self, job_id: str, task_id: int) -> Dict[str, Any]:
        with self._lock:
            job = self._job(job_id)
            return self._task_json(job, self._task(job, task_id))

    def task_frames(self, job_id: str, task_id: int) -> List[int]:
        """The task's own frames, in list order (what a stepped or reverse chunk really renders)."""
        with self._lock:
            job = self._any_job(job_id)
            if job is None:
                raise UnknownJobError(f"the job {job_id!r} does not exist")
            return list(self._task(job, task_id).frames)

    def job_frames(self, job_id: str) -> List[int]:
        """The job's whole frame list (Deadline's ``JobFramesList``)."""
        with self._lock:
            job = self._any_job(job_id)
            if job is None:
                raise UnknownJobError(f"the job {job_id!r} does not exist")
            return [frame for task in job.tasks for frame in task.frames]

    def submissions(self) -> List[Dict[str, Any]]:
        """Every accepted submission, in order: ``{"job_id", "JobInfo", "PluginInfo", "AuxFiles"}`` as received."""
        with self._lock:
            return copy.deepcopy(self._submissions)

    def submission(self, job_id: str) -> Dict[str, Any]:
        with self._lock:
            for entry in self._submissions:
                if entry["job_id"] == job_id:
                    return copy.deepcopy(entry)
        raise UnknownJobError(f"no submission made the job {job_id!r}")

    def aux_dir(self, job_id: str) -> Optional[Path]:
        """Where the job's auxiliary files were copied (None when the store copies none)."""
        return None if self.aux_root is None else self.aux_root / "jobs" / job_id

    def reports(self, job_id: str, task_id: Optional[int] = None,
                report_type: Optional[int] = None) -> List[Report]:
        with self._lock:
            return [r for r in self._reports if r.job_id == job_id
                    and (task_id is None or r.task_id == task_id)
                    and (report_type is None or r.report_type == report_type)]

    def report_data(self, job_id: str, data: Optional[str], task_id: Optional[int] = None,
                    report_id: Optional[str] = None) -> Any:
        """``/api/jobreports`` and ``/api/taskreports``: report objects, or report contents."""
        with self._lock:
            job = self._any_job(job_id)
            if job is None or job_id in self._deleted:
                raise UnknownJobError(f"the job {job_id!r} does not exist")
            if task_id is not None:
                self._task(job, task_id)
        kinds = {"log": REPORT_LOG, "error": REPORT_ERROR, "requeue": REPORT_REQUEUE}
        if data is None or data == "":
            return [r.to_json() for r in self.reports(job_id, task_id)]
        if data in kinds:
            return [r.to_json() for r in self.reports(job_id, task_id, kinds[data])]
        if data == "history":
            return []
        if data == "allcontents":
            return [r.text for r in self.reports(job_id, task_id)]
        if data.startswith("all") and data.endswith("contents") and data[3:-8] in kinds:
            return [r.text for r in self.reports(job_id, task_id, kinds[data[3:-8]])]
        if data.endswith("contents") and data[:-8] in kinds:
            if not report_id:
                raise BadRequestError(f"Data={data} needs a ReportID")
            for report in self.reports(job_id, task_id, kinds[data[:-8]]):
                if report.report_id == report_id:
                    return report.text
            raise DeadlineDoubleError(f"the report {report_id!r} does not exist in job {job_id}")
        raise BadRequestError(f"Invalid Data value {data!r}")

    # -- JSON ----------------------------------------------------------------------------------------------

    def _status_text(self, job: _Job) -> str:
        if job.stat == JOB_ACTIVE:
            rendering = sum(1 for t in job.tasks if t.stat == TASK_RENDERING)
            return f"Rendering ({rendering})" if rendering else "Queued"
        return {JOB_SUSPENDED: "Suspended", JOB_COMPLETED: "Completed", JOB_FAILED: "Failed",
                JOB_PENDING: "Pending"}.get(job.stat, "Unknown")

    def _job_json(self, job: _Job) -> Dict[str, Any]:
        counts = {stat: 0 for stat in (TASK_QUEUED, TASK_SUSPENDED, TASK_RENDERING, TASK_COMPLETED,
                                       TASK_FAILED, TASK_PENDING)}
        for task in job.tasks:
            counts[task.stat] = counts.get(task.stat, 0) + 1
        props = copy.deepcopy(job.props)
        props["Tasks"] = len(job.tasks)
        single = _progress_text(job.tasks[0].progress) if len(job.tasks) == 1 else "0 %"
        return {
            "Props": props,
            "ComFra": sum(len(t.frames) for t in job.tasks if t.stat == TASK_COMPLETED),
            "IsSub": True, "Purged": False, "Mach": job.machine,
            "Date": format_date(job.date), "DateStart": format_date(job.date_start),
            "DateComp": format_date(job.date_completed), "Plug": job.plugin,
            "OutDir": list(job.out_dirs), "OutFile": list(job.out_files), "TileFile": [],
            "Main": False, "MainStart": 0, "MainEnd": 0, "Tile": False, "TileFrame": 0, "TileCount": 1,
            "TileX": 1, "TileY": 1, "Stat": job.stat, "Aux": list(job.aux_names), "Bad": [],
            "CompletedChunks": counts[TASK_COMPLETED], "QueuedChunks": counts[TASK_QUEUED],
            "SuspendedChunks": counts[TASK_SUSPENDED], "RenderingChunks": counts[TASK_RENDERING],
            "FailedChunks": counts[TASK_FAILED], "PendingChunks": counts[TASK_PENDING],
            "SnglTskPrg": single, "Errs": job.errors, "DataSize": -1, "_id": job.job_id,
        }

    @staticmethod
    def _task_json(job: _Job, task: _Task) -> Dict[str, Any]:
        extra: Dict[str, Any] = {f"Ex{index}": "" for index in range(10)}
        extra["ExDic"] = {}
        return {"_id": f"{job.job_id}_{task.task_id}", "JobID": job.job_id, "TaskID": task.task_id,
                "Frames": task_frames_text(task.frames), "Slave": task.slave, "Stat": task.stat,
                "Prog": _progress_text(task.progress), "RndStat": task.status_message, "Errs": task.errors,
                "Start": format_date(task.start), "StartRen": format_date(task.start_render),
                "Comp": format_date(task.completed), "WtgStrt": False, "Cpu": 0, "RamPeak": 0, "RamAvg": 0,
                "UsedClock": 0, "TotalClock": 0, "Props": extra}

    # -- submission ----------------------------------------------------------------------------------------

    def submit_job(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """``POST /api/jobs`` with one job. Returns the new job object, or ``{"_id": ...}`` with IdOnly."""
        _check_submission_shape(body, "the request")
        id_only = parse_flag(body.get("IdOnly", False), "IdOnly", SubmissionError)
        with self._mutate() as events:
            job = self._build_job(body["JobInfo"], body["PluginInfo"], body.get("AuxFiles", []), (), set())
            self._insert([(job, body)], events)
            return {"_id": job.job_id} if id_only else self._job_json(job)

    def submit_jobs(self, body: Dict[str, Any]) -> List[str]:
        """``POST /api/jobs`` with ``{"Jobs": [...], "Dependent": ...}``: all jobs are accepted or none. Returns the
        new ids in order (the Web Service answers only ``Success``: see :mod:`.server`).

        As the Standalone API documents it (``Deadline/Jobs.py`` ``SubmitJobs``): ``Dependent`` true makes each
        job depend on the one before it (except the first), whatever its entry says; an entry's
        ``DependsOnPrevious`` true makes that job depend on the one before it."""
        entries = body.get("Jobs")
        if not isinstance(entries, list) or not entries:
            raise BadRequestError("Jobs must be a non-empty array of {JobInfo, PluginInfo, AuxFiles} objects")
        dependent = parse_flag(body.get("Dependent", False), "Dependent", SubmissionError)
        for index, entry in enumerate(entries):
            _check_submission_shape(entry, f"Jobs[{index}]")
        on_previous = [dependent or parse_flag(entry.get("DependsOnPrevious", False),
                                               f"Jobs[{index}].DependsOnPrevious", SubmissionError)
                       for index, entry in enumerate(entries)]
        with self._mutate() as events:
            built: List[Tuple[_Job, Dict[str, Any]]] = []
            new_ids: Set[str] = set()
            for index, entry in enumerate(entries):
                extra: List[str] = []
                if on_previous[index] and built:
                    extra.append(built[-1][0].job_id)
                try:
                    job = self._build_job(entry["JobInfo"], entry["PluginInfo"], entry.get("AuxFiles", []),
                                          extra, new_ids)
                except SubmissionError as exc:
                    raise SubmissionError(f"Jobs[{index}]: {exc}") from None
                new_ids.add(job.job_id)
                built.append((job, entry))
            self._insert(built, events)
            return [job.job_id for job, _ in built]

    def _build_job(self, job_info: Dict[str, Any], plugin_info: Dict[str, Any], aux_files: Any,
                   extra_dependencies: Sequence[str], new_ids: Set[str]) -> _Job:
        reader = _JobInfoReader(job_info)
        plugin = reader.text("Plugin").strip()
        if not plugin:
            raise SubmissionError("JobInfo has no Plugin; every job needs one")
        props = _props_defaults(self.service_user)
        props["Name"] = reader.text("Name", "Untitled")
        props["Batch"] = reader.text("BatchName")
        props["User"] = reader.text("UserName", self.service_user)
        machine = reader.text("MachineName", self.service_machine)
        props["Cmmt"] = reader.text("Comment")
        props["Dept"] = reader.text("Department")
        props["Region"] = reader.text("Region")

        frames_text = reader.text("Frames", "0").strip()
        chunk = reader.integer("ChunkSize", 1, minimum=1)
        try:
            frames = parse_frame_list(frames_text)
        except FrameListError as exc:
            raise SubmissionError(f"JobInfo Frames {frames_text!r} is not a valid frame list: {exc}") from None
        props["Frames"] = frames_text
        props["Chunk"] = chunk

        props["Pool"] = reader.text("Pool", "none")
        props["SecPool"] = reader.text("SecondaryPool")
        props["Grp"] = reader.text("Group", "none")
        self._check_pool_group(props)
        props["Pri"] = reader.integer("Priority", 50, minimum=0, maximum=MAX_PRIORITY)
        props["Conc"] = reader.integer("ConcurrentTasks", 1, minimum=1, maximum=MAX_CONCURRENT_TASKS)
        props["ConcLimt"] = reader.boolean("LimitConcurrentTasksToNumberOfCpus", True)
        props["Limits"] = reader.names("LimitGroups")
        props["MachLmt"] = reader.integer("MachineLimit", 0, minimum=0)
        props["MachLmtProg"] = reader.number("MachineLimitProgress", -1.0)
        listed = [key for key in ("Whitelist", "Allowlist", "Blacklist", "Denylist") if reader.has(key)]
        if len(listed) > 1:
            raise SubmissionError(f"JobInfo has {' and '.join(listed)}: a job has one machine list")
        if listed:
            props["ListedSlaves"] = reader.names(listed[0])
            props["White"] = listed[0] in ("Whitelist", "Allowlist")

        props["OnComp"] = reader.choice("OnJobComplete", ON_COMPLETE["Nothing"], ON_COMPLETE)
        initial = reader.choice("InitialStatus", JOB_ACTIVE, {"Active": JOB_ACTIVE, "Suspended": JOB_SUSPENDED})
        props["MaxTime"] = reader.seconds("TaskTimeoutSeconds", "TaskTimeoutMinutes")
        props["MinTime"] = reader.seconds("MinRenderTimeSeconds", "MinRenderTimeMinutes")
        props["StartTime"] = reader.seconds("StartJobTimeoutSeconds", "StartJobTimeoutMinutes")
        props["InitializePluginTime"] = reader.integer("InitializePluginTimeoutSeconds", 0, minimum=0)
        props["Timeout"] = reader.choice("OnTaskTimeout", ON_TASK_TIMEOUT["Error"], ON_TASK_TIMEOUT)
        props["AutoTime"] = reader.boolean("EnableAutoTimeout", False)
        props["TimeScrpt"] = reader.boolean("EnableTimeoutsForScriptTasks", False)
        props["FrameTimeout"] = reader.boolean("EnableFrameTimeouts", False)
        props["Reload"] = reader.boolean("ForceReloadPlugin", False)
        props["Seq"] = reader.boolean("Sequential", False)
        props["NoEvnt"] = reader.boolean("SuppressEvents", False)
        props["Protect"] = reader.boolean("Protected", False)
        props["TskFailOvr"] = reader.boolean("OverrideTaskFailureDetection", False)
        props["TskFailErr"] = reader.integer("FailureDetectionTaskErrors", 0, minimum=0)
        props["JobFailOvr"] = reader.boolean("OverrideJobFailureDetection", False)
        props["JobFailErr"] = reader.integer("FailureDetectionJobErrors", 0, minimum=0)
        props["SndWarn"] = reader.boolean("SendJobErrorWarning", True)
        props["NoBad"] = reader.boolean("IgnoreBadJobDetection", False)
        props["Int"] = reader.boolean("Interruptible", False)
        props["IntPer"] = reader.integer("InterruptiblePercentage", 100, minimum=1, maximum=100)
        props["RemTmT"] = reader.integer("RemTimeThreshold", 0, minimum=0)
        props["PrJobScrp"] = reader.text("PreJobScript")
        props["PoJobScrp"] = reader.text("PostJobScript")
        props["PrTskScrp"] = reader.text("PreTaskScript")
        props["PoTskScrp"] = reader.text("PostTaskScript")
        props["EventOI"] = reader.names("EventOptIns")
        props["Env"] = reader.key_values("EnvironmentKeyValue")
        props["EnvOnly"] = reader.boolean("UseJobEnvironmentOnly", False)
        props["PlugDir"] = reader.text("CustomPluginDirectory")
        props["AuxSync"] = reader.boolean("SynchronizeAllAuxiliaryFiles", False)
        for index in range(10):
            props[f"Ex{index}"] = reader.text(f"ExtraInfo{index}")
            props[f"TaskEx{index}"] = reader.text(f"TaskExtraInfoName{index}")
        props["OvrTaskEINames"] = reader.boolean("OverrideTaskExtraInfoNames", False)
        props["ExDic"] = reader.key_values("ExtraInfoKeyValue")
        props["NotUser"] = reader.names("NotificationTargets")
        props["NotEmail"] = reader.names("NotificationEmails")
        props["NotNote"] = reader.text("NotificationNote")
        props["NotOvr"] = reader.boolean("OverrideNotificationMethod", False)
        props["SndEmail"] = reader.boolean("EmailNotification", False)
        props["SndPopup"] = reader.boolean("PopupNotification", False)
        props["OverAutoClean"] = reader.boolean("OverrideAutoJobCleanup", False)
        props["OverCleanType"] = reader.choice("OverrideJobCleanupType", CLEANUP_TYPES["DeleteJobs"], CLEANUP_TYPES)
        props["OverClean"] = reader.boolean("OverrideJobCleanup", False)
        props["OverCleanDays"] = reader.integer("JobCleanupDays", 0, minimum=0)
        props["DepFrame"] = reader.boolean("IsFrameDependent", False)
        props["DepFrameStart"] = reader.integer("FrameDependencyOffsetStart", 0)
        props["DepFrameEnd"] = reader.integer("FrameDependencyOffsetEnd", 0)
        props["DepComp"] = reader.boolean("ResumeOnCompleteDependencies", True)
        props["DepDel"] = reader.boolean("ResumeOnDeletedDependencies", False)
        props["DepFail"] = reader.boolean("ResumeOnFailedDependencies", False)
        props["DepPer"] = reader.number("JobDependencyPercentage", -1.0)

        dependencies: List[str] = []
        for dep_id in reader.names("JobDependencies") + list(extra_dependencies):
            if not _JOB_ID.match(dep_id):
                raise SubmissionError(f"JobDependencies: {dep_id!r} is not a job id")
            if self._any_job(dep_id) is None and dep_id not in new_ids:
                raise SubmissionError(f"JobDependencies: the job {dep_id} does not exist")
            if dep_id not in dependencies:
                dependencies.append(dep_id)
        props["Dep"] = [{"JobID": dep_id, "Notes": "", "OverrideFrameOffsets": False, "StartOffset": 0,
                         "EndOffset": 0, "IgnoreFrameOffsets": False} for dep_id in dependencies]

        out_dirs = reader.numbered("OutputDirectory")
        out_files = reader.numbered("OutputFilename")

        unknown = reader.unused()
        if unknown:
            raise SubmissionError(f"unknown JobInfo key(s): {', '.join(unknown)} (the test double refuses keys it "
                                  "does not know; add real Deadline keys to tests/doubles/deadline/store.py)")

        if not isinstance(plugin_info, dict):
            raise SubmissionError("PluginInfo must be a JSON object")
        plug_info: Dict[str, str] = {}
        for key, value in plugin_info.items():
            if value is None or not isinstance(value, (str, int, float, bool)):
                raise SubmissionError(f"PluginInfo value of {key!r} must be a string or a number, "
                                      f"not {type(value).__name__}")
            plug_info[key] = _scalar_text(value)
        props["PlugInfo"] = plug_info

        aux_names = self._check_aux_files(aux_files)

        job_id = self._object_id()
        while job_id in new_ids or self._any_job(job_id) is not None:
            job_id = self._object_id()
        job = _Job(job_id=job_id, plugin=plugin, props=props, stat=JOB_ACTIVE, date=_utc_now(), sequence=0,
                   machine=machine, out_dirs=out_dirs, out_files=out_files, aux_names=aux_names, tasks=[])
        if initial == JOB_SUSPENDED:
            job.stat = JOB_SUSPENDED
        elif dependencies and not self._dependencies_met(job, new_ids):
            job.stat = JOB_PENDING
        job.tasks = self._make_tasks(frames, chunk, _idle_task_stat(job.stat))
        return job

    def _check_pool_group(self, props: Dict[str, Any]) -> None:
        if props["Pool"] not in self.pools:
            raise SubmissionError(f"the pool {props['Pool']!r} does not exist (pools: {', '.join(self.pools)})")
        if props["SecPool"] and props["SecPool"] not in self.pools:
            raise SubmissionError(f"the secondary pool {props['SecPool']!r} does not exist "
                                  f"(pools: {', '.join(self.pools)})")
        if props["Grp"] not in self.groups:
            raise SubmissionError(f"the group {props['Grp']!r} does not exist (groups: {', '.join(self.groups)})")

    @staticmethod
    def _check_aux_files(aux_files: Any) -> List[str]:
        if aux_files is None:
            aux_files = []
        if not isinstance(aux_files, list):
            raise SubmissionError("AuxFiles must be an array of paths")
        names: List[str] = []
        for path in aux_files:
            if not isinstance(path, str) or not path:
                raise SubmissionError(f"AuxFiles entries must be paths, not {path!r}")
            if not os.path.isfile(path):
                raise SubmissionError(f"the auxiliary file {path!r} does not exist on the Web Service machine "
                                      "(AuxFiles are not uploaded: each path must already exist where the Web "
                                      "Service runs)")
            name = os.path.basename(path)
            if name in names:
                raise SubmissionError(f"two auxiliary files are named {name!r}")
            names.append(name)
        return names

    @staticmethod
    def _make_tasks(frames: Sequence[int], chunk: int, stat: int) -> List[_Task]:
        return [_Task(task_id=index, frames=list(part), stat=stat)
                for index, part in enumerate(chunk_frames(frames, chunk))]

    def _insert(self, built: List[Tuple[_Job, Dict[str, Any]]], events: List[Tuple[str, str]]) -> None:
        copied: List[Path] = []
        try:
            for job, entry in built:
                copied.extend(self._copy_aux_files(job, entry.get("AuxFiles") or []))
        except OSError as exc:
            for path in copied:
                shutil.rmtree(path, ignore_errors=True)
            raise SubmissionError(f"could not copy the auxiliary files: {exc}") from None
        for job, entry in built:
            self._sequence += 1
            job.sequence = self._sequence
            self._jobs[job.job_id] = job
            self._submissions.append({"job_id": job.job_id, "JobInfo": copy.deepcopy(entry["JobInfo"]),
                                      "PluginInfo": copy.deepcopy(entry["PluginInfo"]),
                                      "AuxFiles": copy.deepcopy(entry.get("AuxFiles", []))})
            log.debug("Deadline double: job %s submitted (%s, %d tasks)", job.job_id, job.plugin, len(job.tasks))
            self._emit(events, job, "OnJobSubmitted")

    def _copy_aux_files(self, job: _Job, paths: Sequence[str]) -> List[Path]:
        target = self.aux_dir(job.job_id)
        if target is None or not paths:
            return []
        target.mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, target / os.path.basename(path))
        return [target]

    # -- state machine -------------------------------------------------------------------------------------

    def _dependencies_met(self, job: _Job, new_ids: Optional[Set[str]] = None) -> bool:
        for dep in job.props["Dep"]:
            dep_id = dep["JobID"]
            if new_ids is not None and dep_id in new_ids:
                return False
            if dep_id in self._deleted:
                if not job.props["DepDel"]:
                    return False
                continue
            other = self._any_job(dep_id)
            if other is None:
                return False
            if other.stat == JOB_COMPLETED and job.props["DepComp"]:
                continue
            if other.stat == JOB_FAILED and job.props["DepFail"]:
                continue
            return False
        return True

    def _waiting_stat(self, job: _Job) -> int:
        """Where an idle task of an active job goes: Queued, or Pending while the job waits."""
        return TASK_PENDING if job.held or not self._dependencies_met(job) else TASK_QUEUED

    def _set_job_stat(self, job: _Job, stat: int, events: List[Tuple[str, str]]) -> None:
        old = job.stat
        if old == stat:
            return
        job.stat = stat
        if old == JOB_COMPLETED:
            job.date_completed = None
        if stat == JOB_COMPLETED:
            job.date_completed = _utc_now()
            self._emit(events, job, "OnJobFinished")
        elif stat == JOB_FAILED:
            self._emit(events, job, "OnJobFailed")
        elif stat == JOB_SUSPENDED:
            self._emit(events, job, "OnJobSuspended")
        elif stat == JOB_PENDING:
            self._emit(events, job, "OnJobPended")
        elif stat == JOB_ACTIVE and old == JOB_SUSPENDED:
            self._emit(events, job, "OnJobResumed")
        elif stat == JOB_ACTIVE and old == JOB_PENDING:
            self._emit(events, job, "OnJobReleased")
        if stat in (JOB_COMPLETED, JOB_FAILED):
            self._release_dependents(events)
        if stat == JOB_COMPLETED and job.job_id in self._jobs:
            if job.props["OnComp"] == ON_COMPLETE["Delete"]:
                self._delete(job, events)
            elif job.props["OnComp"] == ON_COMPLETE["Archive"]:
                self._jobs.pop(job.job_id)
                self._archived[job.job_id] = job

    def _derive_job_stat(self, job: _Job, events: List[Tuple[str, str]]) -> None:
        stats = [task.stat for task in job.tasks]
        if all(s == TASK_COMPLETED for s in stats):
            new = JOB_COMPLETED
        elif TASK_FAILED in stats:
            new = JOB_FAILED
        elif TASK_QUEUED in stats or TASK_RENDERING in stats:
            new = JOB_ACTIVE
        elif TASK_PENDING in stats:
            new = JOB_PENDING
        elif TASK_SUSPENDED in stats:
            new = JOB_SUSPENDED
        else:
            new = job.stat
        self._set_job_stat(job, new, events)

    def _release_dependents(self, events: List[Tuple[str, str]]) -> None:
        for job in list(self._jobs.values()):
            if job.stat == JOB_PENDING and job.props["Dep"] and not job.held and self._dependencies_met(job):
                for task in job.tasks:
                    if task.stat == TASK_PENDING:
                        _reset_task(task, TASK_QUEUED)
                self._set_job_stat(job, JOB_ACTIVE, events)

    def _delete(self, job: _Job, events: List[Tuple[str, str]]) -> None:
        self._jobs.pop(job.job_id, None)
        self._archived.pop(job.job_id, None)
        self._deleted[job.job_id] = job
        self._emit(events, job, "OnJobDeleted")
        self._release_dependents(events)

    # -- Web Service commands ------------------------------------------------------------------------------

    def job_command(self, body: Dict[str, Any]) -> None:
        """``PUT /api/jobs`` (body already checked to hold a ``Command``). Raises on an invalid command."""
        command = body.get("Command")
        if command not in JOB_COMMANDS:
            raise CommandError(f"{command!r} is not a valid command")
        with self._mutate() as events:
            if command == "save":
                self._save(body, events)
                return
            job_id = body.get("JobID")
            if command == "undelete":
                if not isinstance(job_id, str) or job_id not in self._deleted:
                    raise UnknownJobError(f"the deleted job {job_id!r} does not exist")
                job = self._deleted.pop(job_id)
                self._jobs[job_id] = job
                return
            job = self._job(job_id)
            getattr(self, "_cmd_" + command)(job, body, events)

    def _cmd_suspend(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        self._suspend(job, events, rendering_too=True)

    def _cmd_suspendnonrendering(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        self._suspend(job, events, rendering_too=False)

    def _suspend(self, job: _Job, events: List[Tuple[str, str]], *, rendering_too: bool) -> None:
        if job.stat == JOB_COMPLETED:
            return
        movable = (TASK_QUEUED, TASK_PENDING, TASK_RENDERING) if rendering_too else (TASK_QUEUED, TASK_PENDING)
        for task in job.tasks:
            if task.stat in movable:
                _reset_task(task, TASK_SUSPENDED)
        self._set_job_stat(job, JOB_SUSPENDED, events)

    def _cmd_resume(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        waiting = self._waiting_stat(job)
        for task in job.tasks:
            if task.stat == TASK_SUSPENDED:
                _reset_task(task, waiting)
        self._derive_job_stat(job, events)

    def _cmd_resumefailed(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        waiting = self._waiting_stat(job)
        for task in job.tasks:
            if task.stat == TASK_FAILED:
                _reset_task(task, waiting)
        self._derive_job_stat(job, events)

    def _cmd_requeue(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        waiting = self._waiting_stat(job)
        for task in job.tasks:
            if task.stat != TASK_PENDING:
                _reset_task(task, waiting)
        self._emit(events, job, "OnJobRequeued")
        self._derive_job_stat(job, events)

    def _cmd_fail(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        if job.stat == JOB_COMPLETED:
            return
        for task in job.tasks:
            if task.stat != TASK_COMPLETED:
                _reset_task(task, TASK_FAILED)
        self._set_job_stat(job, JOB_FAILED, events)

    def _cmd_complete(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        now = _utc_now()
        for task in job.tasks:
            if task.stat != TASK_COMPLETED:
                _reset_task(task, TASK_COMPLETED)
                task.progress = 100.0
                task.completed = now
        self._set_job_stat(job, JOB_COMPLETED, events)

    def _cmd_pend(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        if job.stat == JOB_COMPLETED:
            return
        job.held = True
        for task in job.tasks:
            if task.stat != TASK_COMPLETED:
                _reset_task(task, TASK_PENDING)
        self._set_job_stat(job, JOB_PENDING, events)

    def _cmd_releasepending(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        job.held = False
        for task in job.tasks:
            if task.stat == TASK_PENDING:
                _reset_task(task, TASK_QUEUED)
        self._derive_job_stat(job, events)

    def _cmd_archive(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        for task in job.tasks:
            if task.stat == TASK_RENDERING:
                _reset_task(task, TASK_QUEUED)
        self._jobs.pop(job.job_id)
        self._archived[job.job_id] = job

    def _cmd_updatesubmissiondate(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        job.date = _utc_now()

    def _cmd_setjobframerange(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        frames_text, frames = _command_frames(body)
        if "ChunkSize" not in body:
            raise CommandError("setjobframerange needs ChunkSize")
        chunk = _command_int(body["ChunkSize"], "ChunkSize", minimum=1)
        stat = TASK_SUSPENDED if job.stat == JOB_SUSPENDED else self._waiting_stat(job)
        job.tasks = self._make_tasks(frames, chunk, stat)
        job.props["Frames"] = frames_text
        job.props["Chunk"] = chunk
        self._derive_job_stat(job, events)

    def _cmd_appendjobframerange(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        frames_text, frames = _command_frames(body)
        present = {frame for task in job.tasks for frame in task.frames}
        added = [frame for frame in frames if frame not in present]
        if not added:
            return
        stat = TASK_SUSPENDED if job.stat == JOB_SUSPENDED else self._waiting_stat(job)
        first = len(job.tasks)
        for offset, part in enumerate(chunk_frames(added, int(job.props["Chunk"]))):
            job.tasks.append(_Task(task_id=first + offset, frames=list(part), stat=stat))
        job.props["Frames"] = f"{job.props['Frames']},{frames_text}"
        self._derive_job_stat(job, events)

    def _cmd_setjobmachinelimit(self, job: _Job, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        if "Limit" not in body:
            raise CommandError("setjobmachinelimit needs Limit")
        limit = _command_int(body["Limit"], "Limit", minimum=0)
        slaves = body.get("SlaveList", [])
        if isinstance(slaves, str):
            slaves = [name.strip() for name in slaves.split(",") if name.strip()]
        if not isinstance(slaves, list) or not all(isinstance(name, str) for name in slaves):
            raise CommandError("SlaveList must be an array of Worker names")
        white = parse_flag(body.get("WhiteListFlag", False), "WhiteListFlag", CommandError)
        job.props["MachLmt"] = limit
        job.props["ListedSlaves"] = list(slaves)
        job.props["White"] = white

    _SAVE_READ_ONLY = frozenset({"Tasks", "Frames", "Chunk"})

    def _save(self, body: Dict[str, Any], events: List[Tuple[str, str]]) -> None:
        data = body.get("Job")
        if not isinstance(data, dict):
            raise CommandError("save needs Job, the full job object")
        job = self._job(data.get("_id", body.get("JobID")))
        new_props = data.get("Props", {})
        if not isinstance(new_props, dict):
            raise CommandError("Job.Props must be an object")
        props = copy.deepcopy(job.props)
        for key, value in new_props.items():
            if key not in props or key in self._SAVE_READ_ONLY:
                continue
            current = props[key]
            same_kind = (isinstance(value, bool) == isinstance(current, bool)
                         and (isinstance(value, type(current))
                              or (isinstance(value, (int, float)) and isinstance(current, (int, float)))))
            if not same_kind:
                raise CommandError(f"Job.Props.{key} must be a {type(current).__name__}, not {value!r}")
            props[key] = copy.deepcopy(value)
        if not isinstance(props["PlugInfo"], dict):
            raise CommandError("Job.Props.PlugInfo must be an object")
        props["PlugInfo"] = {str(k): _scalar_text(v) for k, v in props["PlugInfo"].items()}
        self._check_pool_group(props)
        for key in ("OutDir", "OutFile"):
            if key in data and (not isinstance(data[key], list)
                                or not all(isinstance(v, str) for v in data[key])):
                raise CommandError(f"Job.{key} must be an array of strings")
        job.props = props
        job.out_dirs = list(data.get("OutDir", job.out_dirs))
        job.out_files = list(data.get("OutFile", job.out_files))
        self._release_dependents(events)

    def task_command(self, body: Dict[str, Any]) -> None:
        """``PUT /api/tasks``: the command on the tasks of ``TaskList`` (every task when it is absent)."""
        command = body.get("Command")
        if command not in TASK_COMMANDS:
            raise CommandError(f"{command!r} is not a valid task command")
        task_list = body.get("TaskList")
        if task_list is not None and not isinstance(task_list, list):
            task_list = [task_list]
        if task_list is not None and any(isinstance(t, bool) or not isinstance(t, int) for t in task_list):
            raise BadRequestError(f"TaskList must hold integer task ids, not {body.get('TaskList')!r}")
        with self._mutate() as events:
            job = self._job(body.get("JobID"))
            tasks = job.tasks if task_list is None else [self._task(job, t) for t in task_list]
            now = _utc_now()
            waiting = self._waiting_stat(job)
            for task in tasks:
                if command == "requeue" and task.stat != TASK_PENDING:
                    _reset_task(task, waiting)
                elif command == "complete" and task.stat != TASK_COMPLETED:
                    _reset_task(task, TASK_COMPLETED)
                    task.progress = 100.0
                    task.completed = now
                elif command == "suspend" and task.stat in (TASK_QUEUED, TASK_RENDERING, TASK_PENDING):
                    _reset_task(task, TASK_SUSPENDED)
                elif command == "resume" and task.stat == TASK_SUSPENDED:
                    _reset_task(task, waiting)
                elif command == "fail" and task.stat != TASK_COMPLETED:
                    _reset_task(task, TASK_FAILED)
                elif command == "resumefailed" and task.stat == TASK_FAILED:
                    _reset_task(task, waiting)
                elif command == "pend" and task.stat in (TASK_QUEUED, TASK_SUSPENDED, TASK_RENDERING):
                    _reset_task(task, TASK_PENDING)
                elif command == "releasepending" and task.stat == TASK_PENDING:
                    _reset_task(task, TASK_QUEUED)
            self._derive_job_stat(job, events)

    def delete_jobs(self, job_ids: Sequence[str], *, purge: bool = False) -> None:
        """``DELETE /api/jobs?JobID=...`` (``Purge=true``: forget deleted jobs). All ids must exist."""
        with self._mutate() as events:
            source = self._deleted if purge else self._jobs
            missing = [job_id for job_id in job_ids if job_id not in source]
            if missing:
                raise UnknownJobError(f"the {'deleted ' if purge else ''}job {missing[0]!r} does not exist")
            for job_id in dict.fromkeys(job_ids):
                if purge:
                    self._deleted.pop(job_id)
                else:
                    self._delete(self._jobs[job_id], events)

    # -- emulated Workers ----------------------------------------------------------------------------------

    def dequeue_task(self, worker: str, pools: Optional[Sequence[str]] = None,
                     groups: Optional[Sequence[str]] = None) -> Optional[TaskLease]:
        """Hand ``worker`` its next task, as Deadline's scheduler would, or None.

        Only Active jobs; a job qualifies when its Pool (or SecondaryPool, ranked after every primary pool,
        or "none", ranked last) is in ``pools`` (None: any pool), its Group is in ``groups`` or is "none"
        (None: any group), the Worker is allowed by the job's allow/deny list, the job's MachineLimit
        leaves room for this Worker, and the Worker renders fewer than ``Conc`` of its tasks. Order: pool
        rank, then higher Priority, then earlier submission. The job's lowest-numbered Queued task is taken."""
        self.register_worker(worker)
        with self._mutate() as events:
            best: Optional[Tuple[Tuple[int, int, datetime, int], _Job, _Task]] = None
            for job in self._jobs.values():
                if job.stat != JOB_ACTIVE:
                    continue
                rank = _pool_rank(job, pools)
                if rank is None or not _group_ok(job, groups) or not _worker_listed_ok(job, worker):
                    continue
                rendering = [t for t in job.tasks if t.stat == TASK_RENDERING]
                machines = {t.slave.lower() for t in rendering}
                limit = int(job.props["MachLmt"])
                if limit > 0 and worker.lower() not in machines and len(machines) >= limit:
                    continue
                if sum(1 for t in rendering if t.slave.lower() == worker.lower()) >= int(job.props["Conc"]):
                    continue
                task = next((t for t in job.tasks if t.stat == TASK_QUEUED), None)
                if task is None:
                    continue
                key = (rank, -int(job.props["Pri"]), job.date, job.sequence)
                if best is None or key < best[0]:
                    best = (key, job, task)
            if best is None:
                return None
            _, job, task = best
            now = _utc_now()
            task.stat = TASK_RENDERING
            task.slave = worker
            task.progress = 0.0
            task.status_message = ""
            task.start = task.start_render = now
            task.completed = None
            task.serial = self._next_serial()
            if job.date_start is None:
                job.date_start = now
                self._emit(events, job, "OnJobStarted")
            return TaskLease(job_id=job.job_id, task_id=task.task_id, worker=worker, frames=tuple(task.frames),
                             plugin=job.plugin, serial=task.serial)

    def lease_is_current(self, lease: TaskLease) -> bool:
        """False once the task was taken from the Worker (requeued, suspended, completed by a command,
        its job deleted/archived/re-ranged): the Worker should stop rendering it (Deadline's cancel)."""
        with self._lock:
            job = self._jobs.get(lease.job_id)
            if job is None or lease.task_id >= len(job.tasks):
                return False
            task = job.tasks[lease.task_id]
            return task.stat == TASK_RENDERING and task.serial == lease.serial and task.slave == lease.worker

    def _rendering_task(self, job_id: str, task_id: int, worker: Optional[str]) -> Tuple[_Job, _Task]:
        job = self._jobs.get(job_id)
        if job is None:
            raise TaskNotRenderingError(f"the job {job_id!r} is not in the queue any more")
        task = self._task(job, task_id)
        if task.stat != TASK_RENDERING:
            raise TaskNotRenderingError(f"task {task_id} of job {job_id} is not rendering (Stat {task.stat})")
        if worker is not None and task.slave.lower() != worker.lower():
            raise TaskNotRenderingError(f"task {task_id} of job {job_id} is rendering on {task.slave}, not {worker}")
        return job, task

    def report_progress(self, job_id: str, task_id: int, percent: float, status_message: Optional[str] = None,
                        *, worker: Optional[str] = None) -> None:
        """A rendering task's progress (``Prog``, 0-100) and status message (``RndStat``)."""
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not math.isfinite(percent):
            raise ValueError(f"progress must be a finite number, not {percent!r}")
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"progress must be between 0 and 100, not {percent!r}")
        with self._mutate():
            _, task = self._rendering_task(job_id, task_id, worker)
            task.progress = float(percent)
            if status_message is not None:
                task.status_message = status_message

    def complete_task(self, job_id: str, task_id: int, log_text: str = "", *, worker: Optional[str] = None) -> None:
        """The task rendered: Completed, with a log report; the job completes with its last task."""
        with self._mutate() as events:
            job, task = self._rendering_task(job_id, task_id, worker)
            now = _utc_now()
            self._add_report(job, task, REPORT_LOG, log_text, now)
            task.stat = TASK_COMPLETED
            task.progress = 100.0
            task.completed = now
            if all(t.stat == TASK_COMPLETED for t in job.tasks):
                self._set_job_stat(job, JOB_COMPLETED, events)

    def fail_task(self, job_id: str, task_id: int, error_text: str, log_text: str = "", *,
                  worker: Optional[str] = None) -> int:
        """The task's render raised an error: an error report (and a log report when ``log_text``), one more
        error on the task and the job. The task goes back to the queue until it reaches its failure limit,
        then it is Failed and so is the job. Returns the task's new Stat."""
        with self._mutate() as events:
            job, task = self._rendering_task(job_id, task_id, worker)
            now = _utc_now()
            if log_text:
                self._add_report(job, task, REPORT_LOG, log_text, now)
            self._add_report(job, task, REPORT_ERROR, error_text, now)
            task.errors += 1
            job.errors += 1
            self._emit(events, job, "OnJobError")
            task_limit = (int(job.props["TskFailErr"]) if job.props["TskFailOvr"] and job.props["TskFailErr"] > 0
                          else self.task_failure_limit)
            job_limit = (int(job.props["JobFailErr"]) if job.props["JobFailOvr"] and job.props["JobFailErr"] > 0
                         else self.job_failure_limit)
            if task.errors >= task_limit:
                _reset_task(task, TASK_FAILED)
                self._set_job_stat(job, JOB_FAILED, events)
            else:
                _reset_task(task, _idle_task_stat(job.stat))
                if job.errors >= job_limit:
                    self._set_job_stat(job, JOB_FAILED, events)
            return task.stat

    def requeue_task(self, job_id: str, task_id: int, reason: str = "", *, worker: Optional[str] = None) -> None:
        """The Worker gives the task back without an error (it is shutting down...): a requeue report."""
        with self._mutate():
            job, task = self._rendering_task(job_id, task_id, worker)
            self._add_report(job, task, REPORT_REQUEUE, reason, _utc_now())
            _reset_task(task, _idle_task_stat(job.stat))

    def _add_report(self, job: _Job, task: _Task, report_type: int, text: str, now: datetime) -> None:
        title = ""
        if report_type != REPORT_LOG:
            title = next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]
        started = task.start_render
        seconds = (now - started).total_seconds() if started is not None else 0.0
        self._reports.append(Report(report_id=self._object_id(), job_id=job.job_id, task_id=task.task_id,
                                    report_type=report_type, date=now, worker=task.slave, title=title, text=text,
                                    frames=task_frames_text(task.frames), job_name=job.props["Name"],
                                    job_user=job.props["User"], plugin=job.plugin, task_start=started,
                                    task_seconds=seconds))


# ---------------------------------------------------------------------------------------------------------
# helpers


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "deadline"


def _with_none(names: Sequence[str]) -> List[str]:
    result = ["none"]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"pool and group names must be non-empty strings, not {name!r}")
        if name not in result:
            result.append(name)
    return result


def _progress_text(percent: float) -> str:
    return f"{int(percent)} %"


def _idle_task_stat(job_stat: int) -> int:
    return {JOB_SUSPENDED: TASK_SUSPENDED, JOB_PENDING: TASK_PENDING}.get(job_stat, TASK_QUEUED)


def _reset_task(task: _Task, stat: int) -> None:
    """Move a task to ``stat``. A task put back to Queued, Pending or Suspended loses its render (Worker,
    progress, times); its lease, if it was rendering, is no longer current (the Stat check sees to that)."""
    if stat == task.stat:
        return
    if stat in (TASK_QUEUED, TASK_PENDING, TASK_SUSPENDED):
        task.slave = ""
        task.progress = 0.0
        task.status_message = ""
        task.start = task.start_render = None
        task.completed = None
    task.stat = stat


def _pool_rank(job: _Job, pools: Optional[Sequence[str]]) -> Optional[int]:
    if pools is None:
        return 0
    pools = list(pools)
    pool, secondary = job.props["Pool"], job.props["SecPool"]
    if pool in pools:
        return pools.index(pool)
    if secondary and secondary in pools:
        return len(pools) + pools.index(secondary)
    if pool == "none":
        return 2 * len(pools) + 1
    return None


def _group_ok(job: _Job, groups: Optional[Sequence[str]]) -> bool:
    return groups is None or job.props["Grp"] == "none" or job.props["Grp"] in groups


def _worker_listed_ok(job: _Job, worker: str) -> bool:
    listed = {name.lower() for name in job.props["ListedSlaves"]}
    if job.props["White"]:
        return worker.lower() in listed
    return worker.lower() not in listed


def _check_submission_shape(body: Any, what: str) -> None:
    if not isinstance(body, dict):
        raise BadRequestError(f"{what} must be a JSON object")
    if not isinstance(body.get("JobInfo"), dict):
        raise BadRequestError(f"{what} has no JobInfo object")
    if not isinstance(body.get("PluginInfo"), dict):
        raise BadRequestError(f"{what} has no PluginInfo object")


def _command_frames(body: Dict[str, Any]) -> Tuple[str, List[int]]:
    value = body.get("FrameList")
    if value is None or isinstance(value, (bool, dict, list)):
        raise CommandError(f"{body.get('Command')} needs FrameList, a frame list string")
    text = str(value).strip()
    try:
        return text, parse_frame_list(text)
    except FrameListError as exc:
        raise CommandError(f"FrameList {text!r} is not a valid frame list: {exc}") from None


def _command_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise CommandError(f"{name} must be an integer, not {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        raise CommandError(f"{name} must be an integer, not {value!r}")
    if number < minimum:
        raise CommandError(f"{name} must be at least {minimum}, not {number}")
    return number
