"""A preview rendered on the farm: one task at the top priority, which Flame never imports.

Where the workstation has no ComfyUI of its own (the configuration names neither ``comfyui_dir`` nor
``comfyui_urls``), the submit dialog's preview frames (:func:`flame_submitter.preview.request.preview_frames`)
are rendered as one Deadline job (:func:`submit_preview_job`):

* one task: its ``ChunkSize`` covers every frame (Deadline makes tasks of ``ChunkSize`` frames each, in the
  frame list's order: deadline.md §3), so one Worker renders the window of a sequence workflow as one;
* ``Priority`` 100, the top of JobInfo's 0-100 range (deadline.md §3; DOC 10.1 manual-submission): the artist
  waits for it; otherwise the job template's pool, group, Limits, timeouts and failure detection, as the job
  itself will get them; ``preview_every`` off;
* its frames and its job folder under ``<jobs root>/preview/``, named ``<stamp>_<clip>_<workflow>_<random>``;
* no hand-back job and no inbox in its job record (``plan(..., hand_back=False)``): nothing writes a completion
  record, so the relink never imports it into Flame's library.

The same checks as a submission run first (``plan``, ``preflight_farm``): bad input is refused before anything
reaches the farm, with one line that says what to change.

:func:`wait_for_job` follows the job until it completes, reporting progress; it raises, and takes the job off
the farm where it is not done::

    PreviewFarmError (ServiceError)   the farm did not render the preview
    ├── PreviewJobFailed              the job failed (or was deleted): Deadline's error report, trimmed
    └── PreviewTimedOut               not done in time: removed from the farm
    PreviewStopped (Cancelled)        the artist pressed Stop: removed from the farm
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from farm_plugin.errors import Cancelled, ServiceError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.runner.units import window_budget
from farm_plugin.workflow.package import WorkflowPackage
from flame_submitter.config import Config
from flame_submitter.deadline.client import JOB_STATES, TASK_STATES, DeadlineClient
from flame_submitter.deadline.errors import DeadlineError
from flame_submitter.deadline.submit import (
    ClipRequest,
    SubmitError,
    deadline_client,
    plan,
    preflight_farm,
    submit_jobs,
)
from flame_submitter.jobs.builder import PlannedJob
from flame_submitter.jobs.templates import JobTemplate
from flame_submitter.preview.request import PreviewError

logger = logging.getLogger(__name__)

PREVIEW_FOLDER = "preview"  # under the jobs root: the previews' frames and job folders
TOP_PRIORITY = 100  # JobInfo Priority runs 0-100 (deadline.md §3); the artist is waiting for this one
PREVIEW_POLL_SECONDS = 2.0
ERROR_LINES = 6  # of a Deadline error report, what an artist reads in the dialog
ERROR_CHARS = 600


class PreviewFarmError(ServiceError):
    """The farm did not render the preview: the message says why and what to do."""


class PreviewJobFailed(PreviewFarmError):
    """The preview job failed on the farm, or is gone: the message holds Deadline's error report."""


class PreviewTimedOut(PreviewFarmError):
    """The preview job was not done in time; it was taken off the farm."""


class PreviewStopped(Cancelled):
    """The artist stopped the preview; its job was taken off the farm."""


@dataclass(frozen=True)
class PreviewJob:
    """A preview submitted to Deadline: its job, the frames it renders and where they land on this machine
    (``output_pattern``, the first pass's; the others beside it, as for any job)."""

    job_id: str
    name: str
    frames: Tuple[int, ...]
    output_pattern: str
    record_path: Path


def submit_preview_job(request: ClipRequest, *, package: WorkflowPackage, parameters: Mapping[str, Any],
                       template: JobTemplate, config: Config, client: Optional[DeadlineClient] = None,
                       now: Optional[float] = None, token: Optional[str] = None) -> PreviewJob:
    """Check, then submit one job for ``request``'s frames (those :func:`preview_frames` chose) as one task at
    priority 100, its output under ``<jobs root>/preview/`` (the file name of ``request.output_pattern`` kept),
    with no hand-back job (module docstring). ``now`` and ``token``: the folder name's time and random part (two
    previews in one second get two folders), for tests. Raises BadInput for what
    to change (nothing was sent), DeadlineError when the Web Service failed (submit_jobs withdrew what it sent)."""
    frames = tuple(request.frames)
    if not frames:
        raise PreviewError(f"'{request.name}': no frame to preview: choose a frame of the clip")
    if not config.jobs_root:
        raise SubmitError("no jobs root configured: set jobs_root (COMFYFARM_JOBS_ROOT) to a folder on shared storage "
                          "that the farm can read: a preview on the farm renders there")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    root = Path(config.jobs_root).expanduser() / PREVIEW_FOLDER
    folder = f"{stamp}_{_safe(request.name)}_{package.name}_{token or secrets.token_hex(2)}"
    output = root / folder / Path(request.output_pattern).name
    preview = dataclasses.replace(request, output_pattern=str(output))
    one_task = template.with_overrides({"priority": TOP_PRIORITY, "chunk_size": one_task_chunk(package, len(frames)),
                                        "preview_every": 0}, origin=f"the preview of job template '{template.name}'")
    name = f"{request.name} - {package.title} [preview {format_frame_list(list(frames))}]"
    jobs = plan([preview], workflow=package, parameters=parameters, template=one_task,
                config=dataclasses.replace(config, jobs_root=str(root)), hand_back=False,
                comment=f"comfyfarm preview of {request.name}, frame(s) {format_frame_list(list(frames))}")
    jobs = [_named(job, name) for job in jobs]
    client = client or deadline_client(config)
    preflight_farm(client, one_task, jobs)
    (sent,) = submit_jobs(jobs, client)
    logger.info("preview of %s (%s) submitted as Deadline job %s", request.name, format_frame_list(list(frames)),
                sent.job_id)
    return PreviewJob(job_id=sent.job_id, name=name, frames=frames, output_pattern=str(output),
                      record_path=sent.planned.record_path)


def one_task_chunk(package: WorkflowPackage, frame_count: int) -> int:
    """A chunk size that makes ``frame_count`` frames one task. A sequence workflow's chunk is a whole number of
    windows (``builder.sequence_chunk_size`` rounds it to the nearest): here the next one up, never fewer frames."""
    if package.sequence is None:
        return frame_count
    keeps = window_budget(package.sequence)
    return keeps * -(-frame_count // keeps)


def _named(job: PlannedJob, name: str) -> PlannedJob:
    submission = dataclasses.replace(job.submission, job_info={**job.submission.job_info, "Name": name})
    return dataclasses.replace(job, submission=submission)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "clip"


def wait_for_job(client: DeadlineClient, job_id: str, *, stop: threading.Event, timeout_s: float,
                 progress: Callable[[float, str], None], poll_s: float = PREVIEW_POLL_SECONDS) -> None:
    """Follow the job ``job_id`` until it completes, calling ``progress(fraction, text)`` after each look (every
    ``poll_s``; each Web Service call within the client's own timeout). Raises PreviewJobFailed with Deadline's
    error report when it fails; takes it off the farm and raises PreviewStopped once ``stop`` is set, or
    PreviewTimedOut after ``timeout_s``; PreviewFarmError when the Web Service stops answering."""
    started = time.monotonic()
    while not stop.is_set():
        try:
            job = _job(client, job_id)
            state = JOB_STATES.get(job.get("Stat"), "Unknown")
            if state == "Completed":
                progress(1.0, "Rendered on the farm")
                return
            if state == "Failed":
                raise PreviewJobFailed(f"the preview failed on the farm (Deadline job {job_id}): "
                                       f"{error_report_text(client, job_id)}")
            fraction, text = preview_progress(job, client.get_job_tasks(job_id)["Tasks"])
        except DeadlineError as exc:
            raise PreviewFarmError(f"the Deadline Web Service stopped answering about the preview job {job_id} "
                                   f"({exc}); {_removed(client, job_id)}") from exc
        progress(fraction, text)
        left = timeout_s - (time.monotonic() - started)
        if left <= 0:
            raise PreviewTimedOut(f"the preview was not done within {timeout_s:g} s (last: {text}); "
                                  f"{_removed(client, job_id)}; {_timeout_advice(text)}")
        stop.wait(min(poll_s, left))
    raise PreviewStopped(f"Stopped: {_removed(client, job_id)}")


def _job(client: DeadlineClient, job_id: str) -> Mapping[str, Any]:
    """The job, or PreviewJobFailed when the farm no longer has it (a wrangler deleted it)."""
    jobs = client.get_jobs([job_id])  # an unknown id is left out of the answer (the double's reading, harness.py)
    if not jobs:
        raise PreviewJobFailed(f"the preview job {job_id} is no longer on the farm (deleted in Deadline Monitor?): "
                               "press Preview again")
    return jobs[0]


def preview_progress(job: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> Tuple[float, str]:
    """``(fraction done, what the artist reads)`` of an unfinished job: completed tasks, plus the rendering
    tasks' own progress (``Prog``, "42 %", set by the plugin's SetProgress: deadline.md §7), and where it is."""
    total = len(tasks) or 1
    done = sum(1 for task in tasks if task.get("Stat") == 5)
    rendering = [task for task in tasks if task.get("Stat") == 4]
    fraction = min(1.0, (done + sum(_percent(task) for task in rendering) / 100.0) / total)
    if rendering:
        task = rendering[0]
        status = str(task.get("RndStat") or "").strip()
        text = f"Rendering on {task.get('Slave') or 'a Worker'}: {_percent(task):.0f} %" + (
            f" ({status})" if status else "")
    else:
        states = {TASK_STATES.get(task.get("Stat")) for task in tasks}
        state = JOB_STATES.get(job.get("Stat"), "Unknown")
        if state == "Suspended" or "Suspended" in states:
            text = "Suspended on the farm: resume it in Deadline Monitor"
        elif state == "Pending" or "Pending" in states:
            text = "Pending on the farm"
        else:
            text = "Queued on the farm"
    errors = int(job.get("Errs", 0) or 0)
    if errors:
        text += f"; {errors} error(s) so far, Deadline tries again"
    return fraction, text


def _percent(task: Mapping[str, Any]) -> float:
    """A task's ``Prog`` ("42 %") as a number; 0 where it says nothing readable."""
    match = re.match(r"\s*([0-9.]+)", str(task.get("Prog") or ""))
    try:
        return min(100.0, float(match.group(1))) if match else 0.0
    except ValueError:
        return 0.0


def error_report_text(client: DeadlineClient, job_id: str) -> str:
    """The job's latest error report as an artist reads it: ``on <Worker> (task N): <message>``.

    The report objects (``Data=error``, what ``comfyfarm status`` lists) name the Worker and the task but hold no
    text; the text is in ``Data=allerrorcontents`` (the Standalone API's ``GetAllJobErrorReportsContents``, DR
    ``api/python/Deadline/JobReports.py``; deadline.md §1 Reports), in the same order [INFERRED]. Where it cannot
    be read, the report's ``Title`` (its first line) stands in."""
    try:
        reports = client.job_reports(job_id, "error")
    except DeadlineError as exc:
        return f"its error reports cannot be read ({exc}): see the job in Deadline Monitor"
    if not reports:
        return "Deadline has no error report for it: see the job in Deadline Monitor"
    latest = reports[-1]
    try:
        contents = [str(text) for text in client.job_reports(job_id, "allerrorcontents")]
    except DeadlineError:
        contents = []
    text = artist_text(contents[-1]) if contents else ""
    text = text or str(latest.get("ErrorMessage") or latest.get("Title") or "").strip() or "(no message)"
    return f"on {latest.get('Slave') or '?'} (task {latest.get('Task', '?')}): {text}"


_BANNER = re.compile(r"^=+$")  # the lines that frame a section of a Deadline report
_STACK_FRAME = re.compile(r"^\s+at \S")  # a .NET stack trace line: the end of the plugin's message


def artist_text(report: str, *, max_lines: int = ERROR_LINES, max_chars: int = ERROR_CHARS) -> str:
    """The message of an error report's text, at most ``max_lines`` lines and ``max_chars`` characters. A real
    Deadline report may frame the plugin's FailRender message between ``====`` banners, with an ``Error``
    heading and a .NET stack trace after it [INFERRED: deadline.md has no sample]: those are left out."""
    lines: List[str] = []
    for line in report.splitlines():
        if _STACK_FRAME.match(line):
            break
        stripped = line.strip()
        if not stripped or _BANNER.match(stripped) or (stripped == "Error" and not lines):
            continue
        lines.append(re.sub(r"^Error: (?:\w+Exception : )?", "", stripped) if not lines else stripped)
        if len(lines) == max_lines:
            break
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[:max_chars - 1].rstrip() + "…"


def remove_job(client: DeadlineClient, job_id: str) -> Optional[str]:
    """Take the job off the farm: delete it (``comfyfarm cancel --delete``; the Worker rendering it is canceled
    and the plugin withdraws its half-written frames), else fail it (``comfyfarm cancel``). None once done, else
    why it could not be."""
    try:
        client.delete_job(job_id)
        logger.info("preview job %s deleted from the farm", job_id)
        return None
    except DeadlineError as exc:
        logger.warning("could not delete the preview job %s (%s): failing it instead", job_id, exc)
        try:
            client.fail_job(job_id)
            return None
        except DeadlineError:
            return str(exc)


def _removed(client: DeadlineClient, job_id: str) -> str:
    why = remove_job(client, job_id)
    if why is None:
        return f"the preview job {job_id} was removed from the farm"
    return f"the preview job {job_id} could not be removed from the farm ({why}): delete it in Deadline Monitor"


def _timeout_advice(text: str) -> str:
    if text.startswith("Rendering"):
        return "the workflow takes longer than that on the farm: preview again and wait longer, or submit the job"
    return ("no Worker took it in time: the farm is busy, or no Worker serves the template's pool and group; "
            "try again later, or ask a wrangler")
