"""Results as they arrive, for the submit dialog's farm view: each submitted job's state and frames per pass.

The dialog, inside Flame, asks ``comfyfarm status JOB --json`` in a subprocess (the command reads the frames' headers
and writes the latest frame's thumbnail with OpenImageIO, which Flame's Python does not load), every
``POLL_SECONDS`` while the dialog is open and a job is not finished, each call with a time limit.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

POLL_SECONDS = 10.0
STATUS_TIMEOUT_S = 60.0
FINISHED_STATES = ("Completed", "Failed", "Suspended", "Deleted")


@dataclass(frozen=True)
class PassFrames:
    """One pass of a job: frames on disk and whole (``done``) of ``total``, the frame written last and its
    thumbnail (a JPEG path, or why there is none). ``status --json`` writes it as :meth:`to_mapping` gives it."""

    name: str
    done: int
    total: int
    latest: Optional[int] = None
    thumbnail: Optional[str] = None
    thumbnail_error: Optional[str] = None

    def to_mapping(self) -> Dict[str, Any]:
        return {"name": self.name, "done": self.done, "total": self.total, "latest": self.latest,
                "thumbnail": self.thumbnail, "thumbnail_error": self.thumbnail_error}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PassFrames:
        latest = data.get("latest")
        return cls(name=str(data.get("name") or "frames"), done=int(data.get("done") or 0),
                   total=int(data.get("total") or 0), latest=None if latest is None else int(latest),
                   thumbnail=str(data["thumbnail"]) if data.get("thumbnail") else None,
                   thumbnail_error=str(data["thumbnail_error"]) if data.get("thumbnail_error") else None)


@dataclass(frozen=True)
class JobProgress:
    """What ``comfyfarm status JOB --json`` said of a job, or why it could not say (``error``)."""

    job: str
    name: str = ""
    state: str = ""
    tasks_done: int = 0
    tasks: int = 0
    progress: float = 0.0
    errors: int = 0
    passes: Tuple[PassFrames, ...] = ()
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def thumbnail(self) -> Optional[PassFrames]:
        """The pass whose latest frame to show: the first that has one."""
        return next((p for p in self.passes if p.thumbnail), None)

    def describe(self) -> str:
        """``Rendering: 3/10 tasks (42 %)``, then a line per pass: ``inverted: 12/24 frames, latest 1012``."""
        if self.error and not self.state:
            return f"Progress unknown: {self.error}"
        lines = [f"{self.state or 'Unknown'}: {self.tasks_done}/{self.tasks} tasks ({self.progress:.0f} %)"
                 + (f", {self.errors} error(s)" if self.errors else "")]
        for item in self.passes:
            line = f"{item.name}: {item.done}/{item.total} frames"
            lines.append(line + (f", latest {item.latest}" if item.latest is not None else ""))
        return "\n".join(lines)

    @classmethod
    def from_mapping(cls, job: str, data: Mapping[str, Any]) -> JobProgress:
        passes = tuple(PassFrames.from_mapping(item) for item in data.get("passes") or ())
        return cls(job=str(data.get("job") or job), name=str(data.get("name") or ""),
                   state=str(data.get("state") or ""),
                   tasks_done=int(data.get("tasks_done") or 0), tasks=int(data.get("tasks") or 0),
                   progress=float(data.get("progress") or 0.0), errors=int(data.get("errors") or 0), passes=passes,
                   error=str(data.get("error") or ""))


def job_progress(launcher: Sequence[str], job: str, *, env: Optional[Mapping[str, str]] = None,
                 timeout_s: float = STATUS_TIMEOUT_S) -> JobProgress:
    """Ask ``comfyfarm status JOB --json``; never raises (what went wrong is the result's ``error``)."""
    try:
        done = subprocess.run([*launcher, "status", job, "--json"], capture_output=True, text=True, timeout=timeout_s,
                              env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL, close_fds=True)
    except subprocess.TimeoutExpired:
        return JobProgress(job=job, error=f"comfyfarm status did not answer within {timeout_s:g} s")
    except OSError as exc:
        return JobProgress(job=job, error=f"comfyfarm could not be started ({launcher[0]}): {exc}")
    line = next((text for text in reversed(done.stdout.splitlines()) if text.startswith("{")), "")
    try:
        return JobProgress.from_mapping(job, json.loads(line))
    except (ValueError, TypeError, AttributeError):
        reason = next((text for text in reversed(done.stderr.splitlines()) if text.strip()), "") or done.stdout[-200:]
        return JobProgress(job=job, error=reason.removeprefix("comfyfarm: ") or f"exit status {done.returncode}")


class FarmWatcher:
    """Polls the jobs of one submission off the main thread until they finish or ``stop`` is set; each round's
    answers go to ``report`` (from the watcher's thread)."""

    def __init__(self, jobs: Sequence[str], ask: Callable[[str], JobProgress],
                 report: Callable[[List[JobProgress]], None], *, poll_s: Optional[float] = None) -> None:
        self.jobs = list(jobs)
        self.ask = ask
        self.report = report
        self.poll_s = POLL_SECONDS if poll_s is None else poll_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="comfyfarm-farm-view", daemon=True)

    def start(self) -> FarmWatcher:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            answers = [self.ask(job) for job in self.jobs]
            if self.stop.is_set():
                return
            self.report(answers)
            if all(answer.finished for answer in answers):
                return
            self.stop.wait(self.poll_s)
