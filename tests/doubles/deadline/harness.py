"""Start and stop the Deadline 10 Web Service double from tests.

    fake = start_fake_deadline(users={"artist": "secret"}, pools=("none", "gpu"), workers=("gpu01",))
    ...  # talk to fake.url with requests (or the product's client); look at fake.store, fake.submissions()
    fake.set_faults(status=500, body="boom", path_prefix="/api/jobs", method="POST", after=2)  # the 3rd POST on
    fake.stop()     # the port now refuses connections; fake.restart() brings the same store back
    fake.close()    # stop, and remove the copied auxiliary files

The double is a real HTTP server on 127.0.0.1 (a thread in the test process) over an in-process
:class:`~tests.doubles.deadline.store.JobStore`, built from shared/reference/deadline.md (sections 1 and 3).
It never imports product code.

What it does as Deadline does (deadline.md):

* ``GET /`` → the text ``This is the Deadline web service!``.
* HTTP Basic auth when ``users`` is given, on every route: missing or wrong credentials → 401, header
  ``WWW-Authenticate: Basic realm="Deadline"``, a short text body. Without users, no auth.
* GET answers JSON; every mutating call answers the text ``Success`` (200). Errors are text: 400 (no body,
  a body that is not a JSON object or not JSON, no ``Command``, non-integer ``TaskID``, missing ``JobID``),
  500 ``An exception occurred within the Deadline code: <why>`` (invalid command, unknown job or task,
  refused submission, bad command arguments), 501 (POST/DELETE on /api/tasks; any method a route does not
  take), 401 (auth), 404 (unknown path).
* ``/api/jobs``: GET all / ``IdOnly=true`` / ``States=Active,Suspended,...`` / ``JobID=a,b`` (always an
  array) / ``JobID=X&Details=true`` (object keyed by id; ``[X]["Job"]["Status"]`` is ``Queued``,
  ``Rendering (n)``, ``Suspended``, ``Completed``, ``Failed`` or ``Pending``) / ``Deleted=true``; POST one
  job (``{"JobInfo", "PluginInfo", "AuxFiles", "IdOnly"}`` → the job object, or ``{"_id"}``) or several
  (``{"Jobs": [...], "Dependent": "true"}``, entries with ``DependsOnPrevious``) → the text ``Success``, no
  ids: the Standalone API's ``SubmitJobs`` says "Returns: Success message.", and "dependent: True to make
  each Job submitted dependent on the previous (except for the first one)" (DR ``api/python/Deadline/
  Jobs.py``), so ``Dependent`` true chains every job of the batch to the one before it, whatever the
  entries' ``DependsOnPrevious`` say; PUT commands; DELETE ``?JobID=`` (``&Purge=true`` for deleted jobs).
* ``/api/tasks``: GET ``IdOnly=true`` (int ids), the wrapper ``{"ID", "PreTask": null, "Tasks", "PostTask":
  null}``, ``TaskID=n`` (one task); PUT task commands with an optional ``TaskList``; tasks of an unknown job
  → 500.
* ``/api/jobreports?JobID=&Data=`` and ``/api/taskreports?JobID=&TaskID=&Data=``; ``/api/pools``,
  ``/api/groups`` (names); ``/api/slaves?NamesOnly=true`` (names).
* Job JSON: ``_id`` (24 lowercase hex, MongoDB ObjectId-like), ``Plug``, ``Stat``, dates (unset:
  ``0001-01-01T00:00:00Z``), ``OutDir``/``OutFile`` (from OutputDirectoryN/OutputFilenameN), ``Aux`` (file
  names), chunk counters, ``SnglTskPrg``, ``Errs``, ``Props`` mapped from JobInfo. Task JSON as in the GO dump
  (``Frames`` ``"first-last"``, ``_id`` ``"<job>_<n>"``, ``Prog`` ``"42 %"``).

Where deadline.md is silent, the double guessed, strictly (it refuses what the real service might refuse):

* Unknown ids: ``GET ?JobID=<unknown>`` → ``[]`` (unknown ids are left out of the array and of the Details
  object); a command, DELETE, tasks or reports of an unknown job → 500.
* Submissions: no ``Plugin`` → 500; JobInfo/PluginInfo missing or not objects → 400; a JobInfo value that is
  null, an array or an object → 500; a JobInfo key the double does not know → 500 (real Deadline ignores
  unknown keys; refusing them catches typos: add real keys to store.py); a bad ``Frames`` → 500; integers
  must be integers (``"50"`` or ``50``; ``Priority`` 0-100, ``ConcurrentTasks`` 1-16, ``ChunkSize`` >= 1);
  flags are JSON booleans or "true"/"false" in any case; enum values (``OnJobComplete``, ``InitialStatus``,
  ``OnTaskTimeout``) are case-sensitive; a Pool, SecondaryPool or Group that is not configured → 500
  (``"none"`` always exists); both an allow list and a deny list → 500; ``OutputDirectoryN``-style numbered
  keys must run 0, 1, 2... without a gap; ``TaskTimeoutSeconds`` and ``TaskTimeoutMinutes`` together → 500;
  a ``JobDependencies`` id that does not exist → 500; a missing auxiliary file (or a folder) → 500; two
  auxiliary files with one name → 500. A batch is all-or-nothing.
* Values: PluginInfo values are kept as strings in ``Props.PlugInfo`` (JSON booleans as ``True``/``False``,
  .NET style). ``Props.Frames`` is the Frames text as sent (stripped). ``Props.Dep`` holds objects
  ``{"JobID", "Notes", "OverrideFrameOffsets", "StartOffset", "EndOffset", "IgnoreFrameOffsets"}``.
  ``Props.Timeout`` is the OnTaskTimeout enum (Error=1 by default, as in LS and GO) and ``Props.MaxTime`` the
  task timeout in seconds (TaskTimeoutSeconds, or TaskTimeoutMinutes x 60). ``Props.EventOI`` is a list.
  ``Props.User`` defaults to the OS account running the tests, ``Mach`` to this host's name.
* Job states: a job with dependencies (``JobDependencies``, a comma list of ids) starts Pending (tasks
  Pending) until every dependency has ended in a state its flags accept: Completed while
  ``ResumeOnCompleteDependencies`` (default true), Failed with ``ResumeOnFailedDependencies``, deleted with
  ``ResumeOnDeletedDependencies`` (both default false); then it is released. The keys and defaults are
  JobInfo's (DOC 10.1 manual-submission, as OP ``DeadlineJobInfo`` lists them; Thinkbox's
  ``scripts/Jobs/BatchResubmit.py`` in DR writes them back from a Job's ``JobResumeOn...Dependencies``); a
  dependency in any other state keeps the job Pending. Frame dependencies are treated as job dependencies.
  ``InitialStatus=Suspended`` wins over Pending.
  ``OnJobComplete=Delete|Archive`` deletes/archives the job as it completes (after OnJobFinished).
  A Worker's error puts the task back in the queue until it reaches the failure limit: by default ONE error
  fails the task and the job (``store.task_failure_limit``; a job can override it with
  OverrideTaskFailureDetection + FailureDetectionTaskErrors); 100 errors fail the job
  (``store.job_failure_limit``, or OverrideJobFailureDetection + FailureDetectionJobErrors).
* Commands are lowercase as deadline.md writes them (``Suspend`` is invalid). suspend: queued, pending and
  rendering tasks → suspended; suspendnonrendering leaves rendering ones; resume: suspended → queued (or
  pending); resumefailed: failed → queued; requeue: every task but pending ones → queued, job Active;
  fail: every unfinished task → failed; complete: every task → completed; pend: every unfinished task →
  pending, until releasepending; archive: the job leaves the listing; setjobframerange re-splits the job
  (every task queued again); appendjobframerange adds tasks for new frames; setjobmachinelimit sets MachLmt,
  ListedSlaves, White; save takes ``Job`` (the job object; JobID from its ``_id``) and copies the Props
  values it knows, type-checked, except Tasks/Frames/Chunk, plus OutDir/OutFile. Completed jobs ignore
  suspend/fail/pend.
* Reports: report objects carry the GO keys (and ``Title``: an error's or requeue's first line, "" for logs)
  but NOT their text, as in Deadline; the text comes from ``Data=allcontents|alllogcontents|
  allerrorcontents|allrequeuecontents`` (a JSON array of strings) or ``Data=logcontents|errorcontents|
  requeuecontents&ReportID=`` (a JSON string), and from ``store.reports()`` (``Report.text``). ``Data=history``
  → ``[]``. Any other Data → 400.
* Not emulated: ``Statistics=true`` → 501; POST/PUT/DELETE on pools, groups and slaves → 501;
  ``/api/slaves`` objects are minimal (``{"Name", "Stat"}`` info, ``{"Name", "Enable"}`` settings);
  limit groups are not enforced; Details holds only ``Job: {Name, Plugin, User, Status, Priority}``.
* Faults (``set_faults``) act before authentication; a delayed request is carried out after the delay even
  when the client gave up (the ambiguous-timeout case a client must survive).

For the farm emulator, ``store`` has the Worker side: ``dequeue_task`` → :class:`TaskLease`,
``report_progress``, ``complete_task``, ``fail_task``, ``requeue_task``, ``lease_is_current``,
``task_frames``, ``add_listener`` (``(event_name, job_id)``), ``wait_until`` (see store.py).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .server import DeadlineWebService, Faults
from .store import JobStore

log = logging.getLogger(__name__)


class FakeDeadline:
    """A running Deadline Web Service double (see the module docstring)."""

    def __init__(self, service: DeadlineWebService, repository_dir: Path, owns_repository_dir: bool) -> None:
        self._service = service
        self.store: JobStore = service.store
        self.port: int = service.port
        self.url: str = f"http://127.0.0.1:{self.port}"
        self.repository_dir = repository_dir
        self._owns_repository_dir = owns_repository_dir

    @property
    def running(self) -> bool:
        return self._service.running

    def set_faults(self, *, delay_s: float = 0.0, status: Optional[int] = None, body: str = "",
                   path_prefix: str = "", method: Optional[str] = None, drop_connection: bool = False,
                   after: int = 0) -> None:
        """Replace the fault set: requests under ``path_prefix`` (and of ``method``, when given), but the first
        ``after`` of them, wait ``delay_s``, then get ``status`` with the text ``body`` (when status is given)
        instead of an answer, or lose their connection (``drop_connection``)."""
        if delay_s < 0 or after < 0:
            raise ValueError("delay_s and after must be >= 0")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, not {status!r}")
        self._service.faults = Faults(delay_s=delay_s, status=status, body=body, path_prefix=path_prefix,
                                      method=method.upper() if method else None, drop_connection=drop_connection,
                                      after=after)

    def clear_faults(self) -> None:
        self._service.faults = Faults()

    def stop(self) -> None:
        """Stop serving: the port refuses connections (a Web Service that is down). The store is kept."""
        self._service.stop()

    def restart(self) -> None:
        """Serve again on the same port, with the same store (a Web Service that came back)."""
        self._service.start()

    def close(self) -> None:
        """Stop, and remove the repository folder when the harness made it."""
        self.stop()
        if self._owns_repository_dir:
            shutil.rmtree(self.repository_dir, ignore_errors=True)

    def submissions(self) -> List[Dict[str, Any]]:
        """Accepted submissions in order: ``{"job_id", "JobInfo", "PluginInfo", "AuxFiles"}`` as received."""
        return self.store.submissions()

    def render_submissions(self) -> List[Dict[str, Any]]:
        """The submissions that render: without comfyfarm's hand-back jobs (PluginInfo ``Mode=finish``)."""
        return [s for s in self.submissions() if s["PluginInfo"].get("Mode") != "finish"]

    def requests_seen(self) -> List[Tuple[str, str]]:
        """Every request received, in order: (method, path + query), refused ones included."""
        return self._service.requests_seen()

    def __repr__(self) -> str:
        return f"FakeDeadline(url={self.url!r}, running={self.running})"


def start_fake_deadline(*, users: Optional[Dict[str, str]] = None, pools: Sequence[str] = ("none",),
                        groups: Sequence[str] = ("none",), workers: Sequence[str] = (), port: Optional[int] = None,
                        repository_dir: Optional[Path] = None) -> FakeDeadline:
    """Start a double on 127.0.0.1 (``port`` None: a free one). ``users``: {name: Web Service password}
    enables Basic auth. ``repository_dir``: where auxiliary files are copied (``jobs/<id>/``); None makes a
    temporary folder that :meth:`FakeDeadline.close` removes."""
    owns = repository_dir is None
    root = Path(tempfile.mkdtemp(prefix="fake-deadline-")) if repository_dir is None else Path(repository_dir)
    store = JobStore(pools=pools, groups=groups, workers=workers, aux_root=root)
    service = DeadlineWebService(store, users=users, port=port or 0)
    try:
        service.start()
    except OSError:
        if owns:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return FakeDeadline(service, root, owns)
