"""The chunk runner: a job record + a list of frames → verified, frame-numbered results on disk.

For a chunk it skips frames already written and verified (a rerun resumes), stages the rest for
ComfyUI's loaders, binds each into the workflow, queues every prompt of the chunk at once, follows the
WebSocket, and writes each result under the *source* frame number, atomically, then verifies it. If
ComfyUI dies it is restarted (a bounded number of times) and the unfinished frames are queued again.
On cancel it interrupts ComfyUI, removes its temporary files and leaves finished frames in place.
"""

from __future__ import annotations

import copy
import logging
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Sequence

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import (
    ComfyUIError,
    ComfyUITimeout,
    ComfyUIUnreachable,
    ConnectionLost,
    PromptExecutionError,
)
from farm_plugin.comfyui.events import PromptEvent, PromptResult, PromptSession
from farm_plugin.frames.colour import ColourPolicy
from farm_plugin.frames.errors import FrameError, PlateError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.image_io import PlateInfo, probe, verify_frame
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.frames.staging import stage_frame, stage_window, unstage_result
from farm_plugin.jobrecord import JobRecord
from farm_plugin.runner.progress import ProgressSink
from farm_plugin.runner.units import Unit, plan_units

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_SECONDS = 900.0
DEFAULT_RESTART_LIMIT = 2


class ChunkError(Exception):
    """A chunk did not finish: the message says which frames and why."""


class ChunkFailed(ChunkError):
    def __init__(self, message: str, *, frames: Sequence[int] = ()) -> None:
        self.frames = list(frames)
        super().__init__(message)


class ComfyUILost(ChunkFailed):
    """ComfyUI stopped or hung and could not be restarted here (no restarts left, or not ours to restart)."""


class ChunkCancelled(ChunkError):
    pass


class Server(Protocol):
    """What the runner needs of a ComfyUI: a managed :class:`ComfyUIServer` or an attached one."""

    def client(self) -> ComfyUIClient: ...

    def restart(self) -> None: ...

    def log_tail(self, lines: int = ...) -> List[str]: ...


@dataclass
class ChunkReport:
    written: List[int] = field(default_factory=list)
    skipped: List[int] = field(default_factory=list)
    busy_seconds: float = 0.0  # ComfyUI's own execution time for this chunk's prompts
    restarts: int = 0


class ChunkRunner:
    def __init__(
        self,
        record: JobRecord,
        server: Server,
        *,
        scratch_dir: Path,
        progress: Optional[ProgressSink] = None,
        restart_limit: int = DEFAULT_RESTART_LIMIT,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        cancel: Optional[threading.Event] = None,
    ) -> None:
        self.record = record
        self.server = server
        self.scratch_dir = Path(scratch_dir)
        self.progress = progress or ProgressSink()
        self.restart_limit = restart_limit
        self.idle_timeout_s = idle_timeout_s
        self.cancel = cancel or threading.Event()
        self.source = FramePattern.parse(record.source.pattern, role="input")
        self.output = FramePattern.parse(record.output.pattern)
        self.restarts = 0
        self.totals = ChunkReport()  # every chunk this runner ran, also those that failed or were cancelled

    # -- the chunk --------------------------------------------------------------------------------

    def run(self, frames: Sequence[int]) -> ChunkReport:
        report = ChunkReport()
        total = len(frames)
        todo = []
        for frame in frames:
            if self.is_done(frame):
                report.skipped.append(frame)
                self.totals.skipped.append(frame)
                self.progress.frame_done(frame, skipped=True)
            else:
                todo.append(frame)
        if report.skipped:
            logger.info("%d frame(s) already written and verified: skipped", len(report.skipped))
        self._report(report, total)
        if not todo:
            return report
        Path(self.output.directory or ".").mkdir(parents=True, exist_ok=True)
        self.remove_stale_temporaries(todo)
        workflow = self.record.workflow
        units = plan_units(todo, workflow.mode, workflow.sequence, self.record.source.frames)
        attempt_dir = self.scratch_dir / f"chunk-{todo[0]}-{secrets.token_hex(4)}"
        try:
            while units:
                self._check_cancel()
                try:
                    units = self._run_units(units, report, total, attempt_dir)
                except (ConnectionLost, ComfyUIUnreachable, ComfyUITimeout) as exc:
                    units = self._recover(exc, units, report)
        finally:
            shutil.rmtree(attempt_dir, ignore_errors=True)
        report.restarts = self.restarts
        return report

    def remove_stale_temporaries(self, frames: Sequence[int]) -> None:
        """Remove what an earlier attempt killed mid-write left beside these frames (``.<name>.*.tmp.*``)."""
        for frame in frames:
            target = Path(self.output.path(frame))
            for stale in target.parent.glob(f".{target.name}.*.tmp.*"):
                logger.info("removing %s, left by an attempt that was stopped mid-write", stale)
                stale.unlink(missing_ok=True)

    def is_done(self, frame: int) -> bool:
        """Whether the frame's output exists and reads back whole."""
        path = Path(self.output.path(frame))
        if not path.is_file():
            return False
        try:
            info = probe(path)
            verify_frame(path, width=info.width, height=info.height, channels=info.channels)
        except PlateError as exc:
            logger.warning("frame %d: existing output is unusable, redoing it (%s)", frame, exc)
            return False
        return True

    # -- one pass over the remaining units ---------------------------------------------------------

    def _run_units(self, units: List[Unit], report: ChunkReport, total: int, attempt_dir: Path) -> List[Unit]:
        """Queue every unit, collect their results. Returns the units still to do (none on success)."""
        client = self.server.client()
        tracker = _StatusTracker(self.progress, total, len(report.skipped) + len(report.written))
        by_prompt: Dict[str, Unit] = {}
        infos: Dict[int, PlateInfo] = {}
        failures: List[PromptExecutionError] = []
        failed_frames: List[int] = []
        with client.session(on_event=tracker.on_event) as session:
            try:
                for unit in units:
                    self._check_cancel()
                    prompt_id = self._submit(session, client, unit, attempt_dir, infos)
                    by_prompt[prompt_id] = unit
                    tracker.watch(prompt_id, unit)
                for result in session.results(list(by_prompt), idle_timeout_s=self.idle_timeout_s,
                                              should_stop=self.cancel.is_set):
                    unit = by_prompt.pop(result.prompt_id)
                    if result.ok:
                        self._collect(client, result, unit, infos, attempt_dir, report, total)
                    elif isinstance(result.error, PromptExecutionError):
                        failures.append(result.error)
                        failed_frames.extend(unit.frames)
                        logger.error("frames %s: %s", unit.label, result.error)
                    else:
                        raise result.error or ComfyUIError(f"prompt {result.prompt_id} ended: {result.status}")
            except (ConnectionLost, ComfyUIUnreachable):
                raise  # nothing to withdraw from a ComfyUI that is gone
            except BaseException:
                self._abandon(client, list(by_prompt))
                raise
            if by_prompt:  # stopped early: cancelled
                self._abandon(client, list(by_prompt))
                self._check_cancel()
        if failures:
            first = failures[0]
            raise ChunkFailed(f"{first} (frames {', '.join(map(str, failed_frames))})", frames=failed_frames)
        return []

    def _submit(self, session: PromptSession, client: ComfyUIClient, unit: Unit, attempt_dir: Path,
                infos: Dict[int, PlateInfo]) -> str:
        workflow = self.record.workflow
        stage_dir = attempt_dir / "stage"
        stage_dir.mkdir(parents=True, exist_ok=True)
        policy = self._policy
        sources = [self.source.path(frame) for frame in unit.window]
        try:
            if workflow.mode == "sequence":
                staged = stage_dir / f"{unit.label}.tif"
                for frame, info in zip(unit.window, stage_window(sources, staged, policy)):
                    infos[frame] = info
            else:
                staged = stage_dir / f"{unit.label}.png"
                infos[unit.frames[0]] = stage_frame(sources[0], staged, policy)
        except FrameError as exc:
            raise ChunkFailed(f"frames {unit.label}: cannot stage the source: {exc}", frames=unit.frames) from exc
        subfolder = f"comfyfarm/{self.record.job_id}"
        uploaded = client.upload_image(staged, name=f"{attempt_dir.name}-{staged.name}", subfolder=subfolder)
        staged.unlink()
        graph = copy.deepcopy(workflow.graph)
        graph[workflow.input_node]["inputs"][workflow.input_name] = f"{uploaded.subfolder}/{uploaded.filename}"
        if workflow.output_prefix_input:
            # A fresh prefix per attempt: SaveImage always writes a new file, never a stale cached one.
            graph[workflow.output_node]["inputs"][workflow.output_prefix_input] = (
                f"{subfolder}/{attempt_dir.name}/{unit.label}"
            )
        return session.submit(graph).prompt_id

    @property
    def _policy(self) -> Optional[ColourPolicy]:
        colour = self.record.colour
        if colour.plate_space is None:
            return None  # per plate: ColourPolicy.default_for
        return ColourPolicy(plate_space=colour.plate_space, config=colour.config,
                            **({"working_space": colour.working_space} if colour.working_space else {}))

    def _collect(self, client: ComfyUIClient, result: PromptResult, unit: Unit, infos: Dict[int, PlateInfo],
                 attempt_dir: Path, report: ChunkReport, total: int) -> None:
        files = result.output_files(self.record.workflow.output_node)
        if len(files) != len(unit.window):
            raise ChunkFailed(
                f"frames {unit.label}: the workflow's output node {self.record.workflow.output_node} gave "
                f"{len(files)} image(s) for {len(unit.window)} frame(s): it must write one image per frame",
                frames=unit.frames,
            )
        report.busy_seconds += result.busy_seconds or 0.0
        self.totals.busy_seconds += result.busy_seconds or 0.0
        download_dir = attempt_dir / "results"
        download_dir.mkdir(parents=True, exist_ok=True)
        for frame, output in zip(unit.window, files):
            if frame not in unit.frames:
                continue  # a handle frame: its neighbour chunk writes it
            self._check_cancel()
            local = download_dir / f"{frame}.png"
            local.write_bytes(client.view(output))
            target = self.output.path(frame)
            try:
                written = unstage_result(local, target, source=infos[frame], policy=self._policy,
                                         file_format=self.record.output.file_format)
                verify_frame(target, width=written.width, height=written.height, channels=written.channels)
            except FrameError as exc:
                raise ChunkFailed(f"frame {frame}: cannot write the result: {exc}", frames=[frame]) from exc
            finally:
                local.unlink(missing_ok=True)
            report.written.append(frame)
            self.totals.written.append(frame)
            self.progress.frame_done(frame)
            self._report(report, total)

    def _report(self, report: ChunkReport, total: int) -> None:
        done = len(report.written) + len(report.skipped)
        self.progress.progress(100.0 * done / total if total else 100.0)

    # -- failure and cancel ------------------------------------------------------------------------

    def _recover(self, exc: ComfyUIError, units: List[Unit], report: ChunkReport) -> List[Unit]:
        done = set(report.written)
        remaining = [unit for unit in units if not set(unit.frames) <= done]
        frames = [f for unit in remaining for f in unit.frames if f not in done]
        if self.restarts >= self.restart_limit:
            tail = "\n".join("  " + line for line in self.server.log_tail(15))
            what = f"hung ({exc})" if isinstance(exc, ComfyUITimeout) else "stopped"
            raise ComfyUILost(
                f"ComfyUI {what} during frames {format_frame_list(frames)} and was restarted "
                f"{self.restarts} time(s), the limit: see its log; rerun to finish the missing frames"
                + (f"\nlast lines of ComfyUI's log:\n{tail}" if tail else ""),
                frames=frames,
            ) from exc
        self.restarts += 1
        logger.warning("%s: restarting ComfyUI (%d/%d)", exc, self.restarts, self.restart_limit)
        what = "hung" if isinstance(exc, ComfyUITimeout) else "stopped"
        self.progress.status(f"ComfyUI {what}: restarting it ({self.restarts}/{self.restart_limit})")
        self.server.restart()
        return [Unit(tuple(f for f in unit.frames if f not in done), unit.window) for unit in remaining]

    def _abandon(self, client: ComfyUIClient, prompt_ids: List[str]) -> None:
        """Take our prompts off ComfyUI's queue and interrupt the one running."""
        try:
            client.delete_queued(prompt_ids)
            for prompt_id in prompt_ids:
                client.interrupt(prompt_id)
        except ComfyUIError as exc:
            logger.warning("could not withdraw prompts from ComfyUI: %s", exc)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise ChunkCancelled("cancelled: finished frames are kept, the rest is not written")


class _StatusTracker:
    """Turns prompt events into status lines: ``frame 1012 (3/10) · KSampler 14/20``."""

    def __init__(self, progress: ProgressSink, total: int, done_before: int) -> None:
        self.progress = progress
        self.total = total
        self.done_before = done_before
        self.units: Dict[str, Unit] = {}
        self.order: Dict[str, int] = {}

    def watch(self, prompt_id: str, unit: Unit) -> None:
        self.units[prompt_id] = unit
        self.order[prompt_id] = self.done_before + sum(len(u.frames) for u in self.units.values())

    def on_event(self, event: PromptEvent) -> None:
        unit = self.units.get(event.prompt_id)
        if unit is None:
            return
        what = "frame" if len(unit.frames) == 1 else "frames"
        head = f"{what} {unit.label} ({self.order[event.prompt_id]}/{self.total})"
        if event.kind == "started":
            self.progress.status(head)
        elif event.kind == "progress" and event.max:
            self.progress.status(f"{head} · {event.class_type or event.node} {int(event.value or 0) + 1}/{event.max}")
