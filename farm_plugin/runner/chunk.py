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

import numpy as np

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import (
    ComfyUIError,
    ComfyUITimeout,
    ComfyUIUnreachable,
    ConnectionLost,
    PromptExecutionError,
)
from farm_plugin.comfyui.events import PromptSession
from farm_plugin.comfyui.prompts import PromptEvent, PromptResult
from farm_plugin.errors import Cancelled, ComfyfarmError
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.image_io import PlateInfo
from farm_plugin.frames.staging import read_frame_file, stage_frame, stage_frame_files, stage_window
from farm_plugin.jobrecord import JobRecord
from farm_plugin.runner.binding import LOADER, OFF, SAVER, FramePath, bind_frame_nodes, choose_path
from farm_plugin.runner.joins import AFTER, BEFORE, JoinStore, join_edge
from farm_plugin.runner.output import OutputWriter
from farm_plugin.runner.progress import ProgressSink
from farm_plugin.runner.units import Unit, plan_units

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_SECONDS = 900.0
DEFAULT_RESTART_LIMIT = 2


class ChunkError(ComfyfarmError):
    """A chunk did not finish: the message says which frames and why."""


class ChunkFailed(ChunkError):
    def __init__(self, message: str, *, frames: Sequence[int] = ()) -> None:
        self.frames = list(frames)
        super().__init__(message)


class ComfyUILost(ChunkFailed):
    """ComfyUI stopped or hung and could not be restarted here (no restarts left, or not ours to restart)."""


class ChunkCancelled(ChunkError, Cancelled):
    """The chunk was cancelled (SIGTERM, Ctrl-C): its prompts are withdrawn, no partial file is left."""


class Server(Protocol):
    """What the runner needs of a ComfyUI: a managed :class:`ComfyUIServer` or an attached one."""

    def client(self) -> ComfyUIClient: ...

    def restart(self) -> None: ...

    def log_tail(self, lines: int = ...) -> List[str]: ...


@dataclass
class ChunkReport:
    """Output frame numbers: ``written`` here, ``skipped`` (already there), ``pending`` (cross-faded when the
    neighbouring chunk has computed its part)."""

    written: List[int] = field(default_factory=list)
    skipped: List[int] = field(default_factory=list)
    pending: List[int] = field(default_factory=list)
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
        join_dir: Optional[Path] = None,
        frame_nodes: bool = True,
    ) -> None:
        self.record = record
        self.server = server
        self.scratch_dir = Path(scratch_dir)
        self.progress = progress or ProgressSink()
        self.restart_limit = restart_limit
        self.idle_timeout_s = idle_timeout_s
        self.cancel = cancel or threading.Event()
        self.writer = OutputWriter(record)
        self.source = self.writer.source
        self.output = self.writer.output
        sequence = record.workflow.sequence
        self.joins: Optional[JoinStore] = None
        if sequence is not None and sequence.blend == "crossfade" and sequence.overlap_frames > 0:
            self.joins = JoinStore(Path(join_dir) if join_dir else self.scratch_dir / "joins",
                                   record.source.frames, sequence.overlap_frames)
        self.restarts = 0
        self.totals = ChunkReport()  # every chunk this runner ran, also those that failed or were cancelled
        # False: the 8-bit path whatever the ComfyUI has (to compare with it, or with a sequence workflow)
        self._path: Optional[FramePath] = None if frame_nodes else FramePath(False, OFF)
        self._staged: Dict[int, Path] = {}  # source frame -> its frame file, while its prompt runs

    # -- the chunk --------------------------------------------------------------------------------

    def run(self, frames: Sequence[int]) -> ChunkReport:
        """Process the chunk ``frames`` (source frames); the report lists output frames."""
        report = ChunkReport()
        workflow = self.record.workflow
        units = plan_units(frames, workflow.mode, workflow.sequence, self.record.source.frames)
        outputs = [frame for unit in units for frame in unit.outputs]
        total = len(outputs)
        self.writer.remove_stale_temporaries(outputs)
        for unit in units:
            if unit.boundary is not None:
                self._join(unit.boundary, report)  # both parts may wait there already: no need to compute
        done = set(report.written)
        for frame in outputs:
            if frame not in done and self.writer.is_done(frame):
                done.add(frame)
                report.skipped.append(frame)
                self.totals.skipped.append(frame)
                self.progress.frame_done(frame, skipped=True)
        if report.skipped:
            logger.info("%d frame(s) already written and verified: skipped", len(report.skipped))
        todo = [unit for unit in units if self._needed(unit, done)]
        self._report(report, total)
        if todo:
            Path(self.output.directory or ".").mkdir(parents=True, exist_ok=True)
            attempt_dir = self.scratch_dir / f"chunk-{frames[0]}-{secrets.token_hex(4)}"
            try:
                while todo:
                    self._check_cancel()
                    try:
                        todo = self._run_units(todo, report, total, attempt_dir)
                    except (ConnectionLost, ComfyUIUnreachable, ComfyUITimeout) as exc:
                        todo = self._recover(exc, todo, report)
            finally:
                shutil.rmtree(attempt_dir, ignore_errors=True)
        self._note_pending(units, report)
        report.restarts = self.restarts
        return report

    def _needed(self, unit: Unit, done: set) -> bool:
        """Whether the unit's window must be computed: an output of its own is missing and not waiting for
        the neighbour alone, or the next window's fade lacks the part only this window makes."""
        for frame in unit.outputs:
            if frame in done:
                continue
            if frame not in unit.fade_in or not self._has_part(unit.boundary, frame, AFTER):
                return True
        return any(frame not in done and not self.writer.is_done(frame)
                   and not self._has_part(unit.handoff[0], frame, BEFORE) for frame in unit.handoff)

    def _has_part(self, boundary: Optional[int], frame: int, side: str) -> bool:
        return self.joins is not None and boundary is not None and self.joins.has(boundary, frame, side)

    def _join(self, boundary: int, report: ChunkReport, infos: Optional[Dict[int, PlateInfo]] = None) -> None:
        if self.joins is None:
            return
        try:
            written = join_edge(self.joins, boundary, self.writer, self.scratch_dir / "joining", known=infos,
                                on_written=self._joined)
        except FrameError as exc:
            raise ChunkFailed(f"frames after {boundary}: cannot cross-fade the windows: {exc}") from exc
        report.written.extend(written)

    def _joined(self, frame: int) -> None:
        self.totals.written.append(frame)
        self.progress.frame_done(frame)

    def _note_pending(self, units: List[Unit], report: ChunkReport) -> None:
        settled = set(report.written) | set(report.skipped)
        report.pending = [frame for unit in units for frame in unit.fade_in if frame not in settled]
        if report.pending:
            text = format_frame_list(report.pending)
            logger.info("frames %s: this chunk's part is computed; they are cross-faded with the window before "
                        "when its chunk has run (it writes them then)", text)
            self.progress.status(f"frames {text} wait for the chunk before to cross-fade them")

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
                        units = [u for u in units if u is not unit]
                    elif isinstance(result.error, PromptExecutionError):
                        failures.append(result.error)
                        failed_frames.extend(unit.outputs)
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

    def frame_path(self, client: ComfyUIClient) -> FramePath:
        """Full precision or 8-bit (``binding``), decided once per runner and said in the log and status."""
        if self._path is None:
            workflow = self.record.workflow
            path = choose_path(workflow, client.base_url, {LOADER: {}, SAVER: {}})
            if path.full_precision:  # everything else allows it: ask the ComfyUI for the nodes
                classes: Dict[str, object] = {}
                for name in (LOADER, SAVER):
                    classes.update(client.object_info(name))
                path = choose_path(workflow, client.base_url, classes)
            (logger.info if path.full_precision else logger.warning)("%s", path.reason)
            self.progress.status(path.reason)
            self._path = path
        return self._path

    def _submit(self, session: PromptSession, client: ComfyUIClient, unit: Unit, attempt_dir: Path,
                infos: Dict[int, PlateInfo]) -> str:
        workflow = self.record.workflow
        stage_dir = attempt_dir / "stage"
        stage_dir.mkdir(parents=True, exist_ok=True)
        policy = self.writer.policy
        sources = [self.source.path(frame) for frame in unit.window]
        if self.frame_path(client).full_precision:
            try:
                files, window_infos = stage_frame_files(sources, stage_dir, unit.label, policy)
            except FrameError as exc:
                raise ChunkFailed(f"frames {unit.label}: cannot stage the source: {exc}", frames=unit.outputs) from exc
            infos.update(zip(unit.window, window_infos))
            self._staged.update(zip(unit.window, files))
            graph = bind_frame_nodes(workflow, [str(file) for file in files], str(attempt_dir / "results"),
                                     unit.label)
            return session.submit(graph).prompt_id
        try:
            if workflow.mode == "sequence":
                staged = stage_dir / f"{unit.label}.tif"
                for frame, info in zip(unit.window, stage_window(sources, staged, policy)):
                    infos[frame] = info
            else:
                staged = stage_dir / f"{unit.label}.png"
                infos[unit.frames[0]] = stage_frame(sources[0], staged, policy)
        except FrameError as exc:
            raise ChunkFailed(f"frames {unit.label}: cannot stage the source: {exc}", frames=unit.outputs) from exc
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

    def _collect(self, client: ComfyUIClient, result: PromptResult, unit: Unit, infos: Dict[int, PlateInfo],
                 attempt_dir: Path, report: ChunkReport, total: int) -> None:
        files = result.output_files(self.record.workflow.output_node)
        if len(files) != len(unit.results):
            sequence = self.record.workflow.sequence
            expected = (f"{len(unit.results)} for a window of {len(unit.window)} frame(s) at ratio "
                        f"{sequence.ratio:g}" if sequence is not None and sequence.ratio != 1.0
                        else f"one image per frame ({len(unit.window)})")
            raise ChunkFailed(
                f"frames {unit.label}: the workflow's output node {self.record.workflow.output_node} gave "
                f"{len(files)} image(s), expected {expected}",
                frames=unit.outputs,
            )
        report.busy_seconds += result.busy_seconds or 0.0
        self.totals.busy_seconds += result.busy_seconds or 0.0
        download_dir = attempt_dir / "results"
        download_dir.mkdir(parents=True, exist_ok=True)
        settled = set(report.written) | set(report.skipped)
        direct = set(unit.direct)
        for frame, output in zip(unit.results, files):
            side = AFTER if frame in unit.fade_in else BEFORE if frame in unit.handoff else None
            if frame in settled or (frame not in direct and side is None):
                continue  # already there, or a handle frame nobody fades: the neighbour writes it
            self._check_cancel()
            if output.path:  # full precision: comfyfarm's saver wrote the frame file here, on this machine
                self._write_pixels(frame, Path(output.path), infos, report, total)
                continue
            local = download_dir / f"{frame}.png"
            try:
                local.write_bytes(client.view(output))
            except OSError as exc:  # a full scratch disk: the frame fails, the run goes on and says so
                local.unlink(missing_ok=True)
                raise ChunkFailed(f"frame {frame}: cannot save ComfyUI's result in the scratch folder {download_dir} "
                                  f"({exc.strerror or exc}): free some space there, or set scratch_dir to another "
                                  "folder", frames=[frame]) from exc
            try:
                if side is not None and self.joins is not None:
                    if side == AFTER:
                        assert unit.boundary is not None  # a unit has fade_in frames only after a boundary
                        fade_boundary = unit.boundary
                    else:
                        fade_boundary = unit.handoff[0]
                    self.joins.put(fade_boundary, frame, side, local)
                    continue
                self.writer.write(frame, local, self.writer.source_info(frame, infos))
            except (FrameError, OSError) as exc:
                raise ChunkFailed(f"frame {frame}: cannot write the result: {exc}", frames=[frame]) from exc
            finally:
                local.unlink(missing_ok=True)
            self._written(frame, report, total)
        for boundary in (unit.boundary, unit.handoff[0] if unit.handoff else None):
            if boundary is not None:
                self._join(boundary, report, infos)
        self._report(report, total)

    def _write_pixels(self, frame: int, result: Path, infos: Dict[int, PlateInfo], report: ChunkReport,
                      total: int) -> None:
        try:
            pixels = self._with_plate_alpha(frame, read_frame_file(result))
            self.writer.write_pixels(frame, pixels, self.writer.source_info(frame, infos))
        except (FrameError, OSError) as exc:
            raise ChunkFailed(f"frame {frame}: cannot write the result: {exc}", frames=[frame]) from exc
        finally:
            result.unlink(missing_ok=True)
        self._written(frame, report, total)

    def _written(self, frame: int, report: ChunkReport, total: int) -> None:
        """Output ``frame`` is on disk and verified: count it and say so."""
        report.written.append(frame)
        self.totals.written.append(frame)
        self.progress.frame_done(frame)
        self._report(report, total)

    def _with_plate_alpha(self, frame: int, pixels: np.ndarray) -> np.ndarray:
        """A result without alpha, of its plate's size, takes the plate's alpha (a keyer's gives its own)."""
        staged = self._staged.get(self.writer.retime.source_of(frame))
        if pixels.shape[2] != 3 or staged is None or not staged.is_file():
            return pixels
        plate = np.load(staged, mmap_mode="r")
        if plate.shape[2] != 4 or plate.shape[:2] != pixels.shape[:2]:
            return pixels
        return np.concatenate([pixels, plate[..., 3:4]], axis=2)

    def _report(self, report: ChunkReport, total: int) -> None:
        done = len(report.written) + len(report.skipped)
        self.progress.progress(min(100.0, 100.0 * done / total) if total else 100.0)

    # -- failure and cancel ------------------------------------------------------------------------

    def _recover(self, exc: ComfyUIError, units: List[Unit], report: ChunkReport) -> List[Unit]:
        done = set(report.written) | set(report.skipped)
        units = [unit for unit in units if self._needed(unit, done)]  # collected ones left only parts or frames
        frames = [f for unit in units for f in unit.outputs if f not in done]
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
        return units

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
