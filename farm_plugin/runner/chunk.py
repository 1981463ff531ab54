"""The chunk runner: a job record + a list of frames → verified, frame-numbered results on disk.

For a chunk it skips frames already written and verified (a rerun resumes), stages the rest for
ComfyUI's loaders, binds each into the workflow, queues every prompt of the chunk at once, follows the
WebSocket, and writes each result under the *source* frame number, atomically, then verifies it. If
ComfyUI dies it is restarted (a bounded number of times) and the unfinished frames are queued again.
On cancel it interrupts ComfyUI, removes its temporary files and leaves finished frames in place.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Set, Tuple

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
from farm_plugin.comfyui.gpu_failures import OUT_OF_MEMORY, classify_error, classify_exit, classify_log
from farm_plugin.comfyui.prompts import OutputFile, PromptEvent, PromptResult
from farm_plugin.errors import Cancelled, ComfyfarmError
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.image_io import PlateInfo
from farm_plugin.frames.staging import (
    load_frame_file,
    read_frame_file,
    read_result_image,
    stage_frame,
    stage_frame_files,
    stage_window,
)
from farm_plugin.jobrecord import JobRecord
from farm_plugin.runner.binding import LOADER, OFF, SAVER, FramePath, bind_core_nodes, bind_frame_nodes, choose_path
from farm_plugin.runner.joins import AFTER, BEFORE, JoinStore, join_edge
from farm_plugin.runner.output import OutputWriter
from farm_plugin.runner.progress import ProgressSink
from farm_plugin.runner.units import Unit, plan_units

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_SECONDS = 900.0
DEFAULT_RESTART_LIMIT = 2
EXIT_WAIT_S = 2.0  # after a lost connection: how long a managed ComfyUI is given to be reported ended
QUEUE_AHEAD = 2  # prompts staged and queued in ComfyUI behind the one it runs
WRITE_THREADS = 2  # threads writing results (reading, converting and encoding a frame)
PENDING_WRITES_PER_THREAD = 2  # units whose results wait for a writer, per thread, before the runner waits


class ChunkError(ComfyfarmError):
    """A chunk did not finish: the message says which frames and why."""


class ChunkFailed(ChunkError):
    def __init__(self, message: str, *, frames: Sequence[int] = ()) -> None:
        self.frames = list(frames)
        super().__init__(message)


class WindowOutOfMemory(ChunkFailed):
    """A sequence workflow's window ran out of GPU memory (``gpu_failures``): it may be retried shorter."""


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
        write_behind: bool = False,
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
        self.queue_ahead = QUEUE_AHEAD
        self.write_threads = WRITE_THREADS
        self.totals = ChunkReport()  # every chunk this runner ran, also those that failed or were cancelled
        # A chunk returns once ComfyUI has computed it; its last frames are written behind the next chunk, and
        # close() waits for them (local mode: ComfyUI starts the next chunk at once). Not for a sequence
        # workflow, whose next windows ask which of the frames around them are written.
        self.write_behind = write_behind and sequence is None
        self.late_failures: List[str] = []  # frames written behind whose write failed
        self._io: Optional[_FrameIO] = None
        self._claim_next: Optional[Callable[[], Optional[Sequence[int]]]] = None
        self._prefetch: Optional[_Prefetch] = None  # the next chunk's first unit, staged ahead
        # False: the 8-bit path whatever the ComfyUI has (to compare with it, or with a sequence workflow)
        self._path: Optional[FramePath] = None if frame_nodes else FramePath(False, OFF)

    # -- the chunk --------------------------------------------------------------------------------

    def run(self, frames: Sequence[int], *,
            claim_next: Optional[Callable[[], Optional[Sequence[int]]]] = None) -> ChunkReport:
        """Process the chunk ``frames`` (source frames); the report lists output frames.

        ``claim_next`` (with ``write_behind``): called once every unit of this chunk is staged, it gives the
        chunk the caller will run next (or None), whose first unit is then staged while ComfyUI computes the
        last ones of this chunk."""
        prefetch = self._take_prefetch(frames)
        self._claim_next = claim_next if self.write_behind else None
        try:
            return self._run_chunk(frames, prefetch)
        finally:
            self._claim_next = None
            if prefetch is not None and self._io is not None:
                self._io.discard_after(prefetch.attempt_dir)  # staged for a unit this run did not need

    def _run_chunk(self, frames: Sequence[int], prefetch: Optional[_Prefetch]) -> ChunkReport:
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
            attempt_dir = prefetch.attempt_dir if prefetch is not None else self._attempt_dir(frames)
            retried = False
            try:
                while todo:
                    self._check_cancel()
                    try:
                        todo = self._run_units(todo, report, total, attempt_dir, prefetch)
                    except (ConnectionLost, ComfyUIUnreachable, ComfyUITimeout) as exc:
                        todo = self._recover(exc, todo, report)
                    except WindowOutOfMemory as exc:
                        if retried:
                            raise
                        todo = self._shorter_windows(exc, todo, report)
                        retried = True
            finally:
                if self._io is not None:  # writes behind still read ComfyUI's results and the staged alpha
                    self._io.discard_after(attempt_dir)
                else:
                    shutil.rmtree(attempt_dir, ignore_errors=True)
        self._note_pending(units, report)
        report.restarts = self.restarts
        report.written.sort()  # in frame order, whichever writer finished first
        return report

    def close(self) -> None:
        """Wait for the frames written behind (``write_behind``) and count them; a failed write is noted in
        ``late_failures``. A unit staged ahead for a chunk that was not run is removed."""
        if self._prefetch is not None and self._io is not None:
            self._io.discard_after(self._prefetch.attempt_dir)
        self._prefetch = None
        if self._io is not None:
            io, self._io = self._io, None
            self._count(io.close(), None, closing=True)

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
            written = join_edge(self.joins, boundary, self.writer, known=infos,
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

    def _shorter_windows(self, exc: WindowOutOfMemory, units: List[Unit], report: ChunkReport) -> List[Unit]:
        """The units still to do, planned again in the manifest's shorter windows (``sequence.oom_context``):
        once per chunk, after a window ran out of GPU memory. Without that setting the chunk fails as it is."""
        sequence = self.record.workflow.sequence
        if sequence is None or not sequence.oom_context_frames:
            raise exc
        done = self._settled(report)
        left = sorted({frame for unit in units if self._needed(unit, done) for frame in unit.frames},
                      key=list(self.record.source.frames).index)
        shorter = dataclasses.replace(sequence, context_frames=sequence.oom_context_frames)
        replanned = plan_units(left, self.record.workflow.mode, shorter, self.record.source.frames)
        text = (f"GPU out of memory in a window of {sequence.context_frames} frames: retrying frames "
                f"{format_frame_list(left)} in windows of {shorter.context_frames} (sequence.oom_context)")
        logger.warning("%s", text)
        self.progress.status(text)
        return [unit for unit in replanned if self._needed(unit, done)]

    def _attempt_dir(self, frames: Sequence[int]) -> Path:
        return self.scratch_dir / f"chunk-{frames[0]}-{secrets.token_hex(4)}"

    def _take_prefetch(self, frames: Sequence[int]) -> Optional[_Prefetch]:
        """The unit staged ahead for the chunk ``frames``; one staged for another chunk is dropped."""
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None and prefetch.frames != tuple(frames):
            if self._io is not None:
                self._io.discard_after(prefetch.attempt_dir)
            return None
        return prefetch

    def _stage_next_chunk(self, client: ComfyUIClient, io: _FrameIO, full_precision: bool) -> None:
        """Ask for the next chunk (once per run) and stage its first unit, unless that unit is written."""
        claim, self._claim_next = self._claim_next, None
        frames = claim() if claim is not None else None
        if not frames:
            return
        workflow = self.record.workflow
        unit = plan_units(frames, workflow.mode, workflow.sequence, self.record.source.frames)[0]
        if all(self.writer.is_done(frame) for frame in unit.outputs):
            return
        attempt_dir = self._attempt_dir(frames)
        self._prefetch = _Prefetch(tuple(frames), unit.label, attempt_dir,
                                   io.stage(self._prepare, client, unit, attempt_dir, full_precision))

    def _run_units(self, units: List[Unit], report: ChunkReport, total: int, attempt_dir: Path,
                   prefetch: Optional[_Prefetch] = None) -> List[Unit]:
        """Queue the units and collect their results, the frame I/O off ComfyUI's way: the next unit is staged
        while ComfyUI computes (at most ``queue_ahead`` prompts wait in its queue behind the one it runs) and
        results are written on worker threads (at most ``PENDING_WRITES`` units' worth at once). Returns the
        units still to do (none on success)."""
        client = self.server.client()
        full_precision = self.frame_path(client).full_precision  # asked here, not on a staging thread
        tracker = _StatusTracker(self.progress, total, len(report.skipped) + len(report.written))
        by_prompt: Dict[str, Unit] = {}
        infos: Dict[int, PlateInfo] = {}
        failures: List[PromptExecutionError] = []
        failed_frames: List[int] = []
        waiting = list(units)
        staged: Dict[str, Dict[int, Path]] = {}  # unit label -> its frame files by source frame
        chunk = _Chunk(report, total)
        if self._io is None:
            self._io = _FrameIO(self.write_threads)
        io = self._io
        try:
            with client.session(on_event=tracker.on_event) as session:
                staging: Optional[Tuple[Unit, Future]] = None
                try:
                    while waiting or staging is not None or by_prompt:
                        self._check_cancel()
                        if staging is None and waiting:
                            unit = waiting.pop(0)
                            if prefetch is not None and prefetch.label == unit.label and not prefetch.used:
                                prefetch.used = True  # staged while the chunk before ran
                                staging = unit, prefetch.future
                            else:
                                staging = unit, io.stage(self._prepare, client, unit, attempt_dir, full_precision)
                        elif staging is None and self._claim_next is not None:
                            self._stage_next_chunk(client, io, full_precision)
                        if staging is not None and (not by_prompt or (staging[1].done()
                                                                       and len(by_prompt) <= self.queue_ahead)):
                            unit, prepared = staging[0], staging[1].result()
                            staging = None
                            infos.update(prepared.infos)
                            staged[unit.label] = prepared.files
                            prompt_id = session.submit(prepared.graph).prompt_id
                            by_prompt[prompt_id] = unit
                            tracker.watch(prompt_id, unit)
                            continue
                        self._settle(io, chunk)
                        result = self._next_result(session, by_prompt, staging)
                        if result is None:
                            continue  # staged meanwhile, or cancelled: the loop's head decides
                        unit = by_prompt.pop(result.prompt_id)
                        if result.ok:
                            self._collect(client, result, unit, infos, attempt_dir, chunk, io,
                                          staged.pop(unit.label, {}))
                            units = [u for u in units if u is not unit]
                        elif isinstance(result.error, PromptExecutionError):
                            failures.append(result.error)
                            failed_frames.extend(unit.outputs)
                            logger.error("frames %s: %s", unit.label, result.error)
                        else:
                            raise result.error or ComfyUIError(f"prompt {result.prompt_id} ended: {result.status}")
                    self._settle(io, chunk, wait=not self.write_behind)
                except (ConnectionLost, ComfyUIUnreachable):
                    raise  # nothing to withdraw from a ComfyUI that is gone
                except BaseException:
                    self._abandon(client, list(by_prompt))
                    raise
        finally:
            if not self.write_behind:  # writes under way finish whole, and count
                self.close()
        if failures:
            error = failures[0]
            out_of_memory = classify_error(error.exception_type, error.exception_message) is OUT_OF_MEMORY
            kind = WindowOutOfMemory if out_of_memory and self.record.workflow.sequence is not None else ChunkFailed
            raise kind(_failure_text(error, failed_frames), frames=failed_frames)
        return []

    def _settle(self, io: _FrameIO, chunk: _Chunk, *, wait: bool = False) -> None:
        """Count the frames the writers have finished (all of them: ``wait``); raise the first error of a write
        of ``chunk`` (that of an earlier chunk, written behind, is noted in ``late_failures``)."""
        error = self._count(io.harvest(wait=wait), chunk)
        if error is not None:
            raise error

    def _count(self, writes: List[_Write], chunk: Optional[_Chunk], *, closing: bool = False
               ) -> Optional[BaseException]:
        """Count the frames of finished ``writes``; the first error of ``chunk``'s own writes, returned."""
        first: Optional[BaseException] = None
        for write in writes:
            for frame in write.written:
                self._written(frame, write.chunk.report, write.chunk.total, current=write.chunk is chunk)
            error = write.error
            if error is None or isinstance(error, ChunkCancelled):
                continue
            if write.chunk is chunk:
                first = first or error
            elif closing and not self.write_behind:
                logger.warning("a result could not be written while the chunk stopped: %s", error)
            else:
                logger.error("%s", error)
                self.late_failures.append(str(error))
        return first

    def _next_result(self, session: PromptSession, by_prompt: Dict[str, Unit],
                     staging: Optional[Tuple[Unit, Future]]) -> Optional[PromptResult]:
        """The next prompt to end; None when the wait stopped early: cancelled, or the next unit is staged
        and ComfyUI's queue has room for it."""

        def stop() -> bool:
            return self.cancel.is_set() or (staging is not None and staging[1].done()
                                            and len(by_prompt) <= self.queue_ahead)

        for result in session.results(list(by_prompt), idle_timeout_s=self.idle_timeout_s, should_stop=stop):
            return result
        return None

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

    def _prepare(self, client: ComfyUIClient, unit: Unit, attempt_dir: Path, full_precision: bool) -> _Prepared:
        """Stage ``unit``'s frames and bind them into the graph (on a staging thread: touches nothing shared)."""
        workflow = self.record.workflow
        stage_dir = attempt_dir / "stage"
        stage_dir.mkdir(parents=True, exist_ok=True)
        policy = self.writer.policy
        sources = [self.source.path(frame) for frame in unit.window]
        if full_precision:
            try:
                files, window_infos = stage_frame_files(sources, stage_dir, unit.label, policy)
            except FrameError as exc:
                raise ChunkFailed(f"frames {unit.label}: cannot stage the source: {exc}", frames=unit.outputs) from exc
            graph = bind_frame_nodes(workflow, [str(file) for file in files], str(attempt_dir / "results"),
                                     unit.label)
            return _Prepared(graph, dict(zip(unit.window, window_infos)), dict(zip(unit.window, files)))
        infos: Dict[int, PlateInfo] = {}
        try:
            if workflow.mode == "sequence":
                staged = stage_dir / f"{unit.label}.tif"
                infos.update(zip(unit.window, stage_window(sources, staged, policy)))
            else:
                staged = stage_dir / f"{unit.label}.png"
                infos[unit.frames[0]] = stage_frame(sources[0], staged, policy)
        except FrameError as exc:
            raise ChunkFailed(f"frames {unit.label}: cannot stage the source: {exc}", frames=unit.outputs) from exc
        subfolder = f"comfyfarm/{self.record.job_id}"
        uploaded = client.upload_image(staged, name=f"{attempt_dir.name}-{staged.name}", subfolder=subfolder)
        staged.unlink()
        graph = bind_core_nodes(workflow, f"{uploaded.subfolder}/{uploaded.filename}",
                                f"{subfolder}/{attempt_dir.name}/{unit.label}")
        return _Prepared(graph, infos, {})

    def _collect(self, client: ComfyUIClient, result: PromptResult, unit: Unit, infos: Dict[int, PlateInfo],
                 attempt_dir: Path, chunk: _Chunk, io: _FrameIO, staged: Dict[int, Path]) -> None:
        """Check ``unit``'s result and hand its frames to the writers (the joins take a sequence's faded
        frames here, in order). ``staged``: the unit's frame files, by source frame."""
        workflow = self.record.workflow
        outputs: Dict[str, List[OutputFile]] = {}
        for spec in workflow.passes:
            files = result.output_files(spec.node)
            if len(files) != len(unit.results):
                sequence = workflow.sequence
                expected = (f"{len(unit.results)} for a window of {len(unit.window)} frame(s) at ratio "
                            f"{sequence.ratio:g}" if sequence is not None and sequence.ratio != 1.0
                            else f"one image per frame ({len(unit.window)})")
                node = (f"the {spec.name} pass's output node" if workflow.several_passes
                        else "the workflow's output node")
                raise ChunkFailed(f"frames {unit.label}: {node} {spec.node} gave {len(files)} image(s), expected "
                                  f"{expected}", frames=unit.outputs)
            outputs[spec.name] = files
        report, total = chunk.report, chunk.total
        report.busy_seconds += result.busy_seconds or 0.0
        self.totals.busy_seconds += result.busy_seconds or 0.0
        download_dir = attempt_dir / "results"
        download_dir.mkdir(parents=True, exist_ok=True)
        settled = set(report.written) | set(report.skipped) | io.writing
        direct = set(unit.direct)
        frames: List[Tuple[int, int]] = []  # (output frame, index in the result)
        for index, frame in enumerate(unit.results):
            side = AFTER if frame in unit.fade_in else BEFORE if frame in unit.handoff else None
            if frame in settled or (frame not in direct and side is None):
                continue  # already there, or a handle frame nobody fades: the neighbour writes it
            if side is not None and self.joins is not None:  # a sequence workflow's faded frame: one pass
                self._check_cancel()
                (name, files), = outputs.items()
                self._write_output(client, frame, files[index], name, side, unit, infos, download_dir, staged)
                continue
            frames.append((frame, index))

        def write() -> List[int]:
            for frame, index in frames:
                if self.writer.layered:
                    self._check_cancel()
                    self._write_layers(client, frame, {name: files[index] for name, files in outputs.items()},
                                       infos, download_dir, staged)
                    continue
                for name, files in outputs.items():
                    self._check_cancel()
                    self._write_output(client, frame, files[index], name, None, unit, infos, download_dir, staged)
            for path in staged.values():  # the plate's alpha was read from them: the unit is done with them
                path.unlink(missing_ok=True)
            return [frame for frame, _ in frames]

        io.write([frame for frame, _ in frames], write, chunk)
        for boundary in (unit.boundary, unit.handoff[0] if unit.handoff else None):
            if boundary is not None:
                self._join(boundary, report, infos)
        self._report(report, total)

    def _write_output(self, client: ComfyUIClient, frame: int, output: OutputFile, pass_name: str,
                      side: Optional[str], unit: Unit, infos: Dict[int, PlateInfo], download_dir: Path,
                      staged: Mapping[int, Path]) -> None:
        """Write one pass of output ``frame`` from ComfyUI's ``output``, or hand it to the joins (``side``, a
        sequence workflow's faded frame: one pass). ``staged``: the unit's frame files by source frame (the
        plate's alpha is read there)."""
        boundary = None
        if side is not None and self.joins is not None:
            boundary = unit.handoff[0] if side == BEFORE else unit.boundary
            assert boundary is not None  # a unit has fade_in frames only after a boundary
        try:
            if output.path:  # full precision: comfyfarm's saver wrote the frame file here, on this machine
                pixels = self._with_plate_alpha(staged.get(self.writer.retime.source_of(frame)),
                                                self._result_pixels(client, frame, output, pass_name, download_dir))
                if boundary is not None and side is not None and self.joins is not None:
                    self.joins.put_pixels(boundary, frame, side, pixels)
                else:
                    self.writer.write_pixels(frame, pixels, self.writer.source_info(frame, infos), pass_name)
                return
            local = self._download(client, frame, output, pass_name, download_dir)
            try:
                if boundary is not None and side is not None and self.joins is not None:
                    self.joins.put(boundary, frame, side, local)
                else:
                    self.writer.write(frame, local, self.writer.source_info(frame, infos), pass_name)
            finally:
                local.unlink(missing_ok=True)
        except (FrameError, OSError) as exc:
            what = f"the {pass_name} result" if self.record.workflow.several_passes else "the result"
            raise ChunkFailed(f"frame {frame}: cannot write {what}: {exc}", frames=[frame]) from exc

    def _write_layers(self, client: ComfyUIClient, frame: int, outputs: Dict[str, OutputFile],
                      infos: Dict[int, PlateInfo], download_dir: Path, staged: Mapping[int, Path]) -> None:
        """Write output ``frame``'s passes (``outputs`` by pass, in the job's order) as the layers of one EXR.
        The plate's alpha goes with the first pass only, where that pass has none of its own."""
        layers: List[Tuple[str, np.ndarray]] = []
        try:
            for name, output in outputs.items():
                pixels = self._result_pixels(client, frame, output, name, download_dir)
                if not layers:
                    pixels = self._with_plate_alpha(staged.get(self.writer.retime.source_of(frame)), pixels)
                layers.append((name, pixels))
            self.writer.write_layers(frame, layers, self.writer.source_info(frame, infos))
        except (FrameError, OSError) as exc:
            raise ChunkFailed(f"frame {frame}: cannot write the passes as layers: {exc}", frames=[frame]) from exc

    def _result_pixels(self, client: ComfyUIClient, frame: int, output: OutputFile, pass_name: str,
                       download_dir: Path) -> np.ndarray:
        """One pass of ComfyUI's result for output ``frame``, in the working space; its file is removed."""
        if output.path:  # full precision: comfyfarm's saver wrote the frame file here, on this machine
            result = Path(output.path)
            try:
                return read_frame_file(result)
            finally:
                result.unlink(missing_ok=True)
        local = self._download(client, frame, output, pass_name, download_dir)
        try:
            return read_result_image(local)
        finally:
            local.unlink(missing_ok=True)

    @staticmethod
    def _download(client: ComfyUIClient, frame: int, output: OutputFile, pass_name: str, download_dir: Path) -> Path:
        """ComfyUI's saved image of one pass of output ``frame`` (8-bit path), in the scratch folder."""
        local = download_dir / f"{frame}.{pass_name}.png"
        try:
            local.write_bytes(client.view(output))
        except OSError as exc:  # a full scratch disk: the frame fails, the run goes on and says so
            raise ChunkFailed(f"frame {frame}: cannot save ComfyUI's result in the scratch folder "
                              f"{download_dir} ({exc.strerror or exc}): free some space there, or set scratch_dir "
                              "to another folder", frames=[frame]) from exc
        return local

    def _written(self, frame: int, report: ChunkReport, total: int, *, current: bool = True) -> None:
        """Output ``frame`` is on disk and verified: count it and say so (and the progress of its chunk, when
        that is the chunk under way)."""
        report.written.append(frame)
        self.totals.written.append(frame)
        self.progress.frame_done(frame)
        if current:
            self._report(report, total)

    @staticmethod
    def _with_plate_alpha(staged: Optional[Path], pixels: np.ndarray) -> np.ndarray:
        """A result without alpha, of its plate's size, takes the plate's alpha (a keyer's gives its own)."""
        if pixels.shape[2] != 3 or staged is None or not staged.is_file():
            return pixels
        plate = load_frame_file(staged, mmap=True)
        if plate.shape[2] != 4 or plate.shape[:2] != pixels.shape[:2]:
            return pixels
        return np.concatenate([pixels, plate[..., 3:4]], axis=2)

    def _report(self, report: ChunkReport, total: int) -> None:
        done = len(report.written) + len(report.skipped)
        self.progress.progress(min(100.0, 100.0 * done / total) if total else 100.0)

    # -- failure and cancel ------------------------------------------------------------------------

    def _settled(self, report: ChunkReport) -> Set[int]:
        """Output frames that need no more computing: written, skipped, or handed to a writer."""
        return set(report.written) | set(report.skipped) | (self._io.writing if self._io is not None else set())

    def _recover(self, exc: ComfyUIError, units: List[Unit], report: ChunkReport) -> List[Unit]:
        done = self._settled(report)
        units = [unit for unit in units if self._needed(unit, done)]  # collected ones left only parts or frames
        frames = [f for unit in units for f in unit.outputs if f not in done]
        hung = isinstance(exc, ComfyUITimeout)
        # a managed ComfyUI's, once it ended; the connection drops before the kernel reports a killed process ended
        exit_code = None if hung else getattr(self.server, "exit_code", lambda wait_s=0.0: None)(wait_s=EXIT_WAIT_S)
        lines = self.server.log_tail(15)
        cause = None if hung else classify_exit(exit_code) or classify_log(lines)
        if self.restarts >= self.restart_limit:
            tail = "\n".join("  " + line for line in lines)
            what = f"hung ({exc})" if isinstance(exc, ComfyUITimeout) else "stopped"
            text = (f"ComfyUI {what} during frames {format_frame_list(frames)} and was restarted "
                    f"{self.restarts} time(s), the limit")
            text = cause.describe(text) if cause else f"{text}: see its log; rerun to finish the missing frames"
            raise ComfyUILost(text + (f"\nlast lines of ComfyUI's log:\n{tail}" if tail else ""),
                              frames=frames) from exc
        self.restarts += 1
        logger.warning("%s%s: restarting ComfyUI (%d/%d)", f"{cause.headline}: " if cause else "", exc,
                       self.restarts, self.restart_limit)
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


@dataclass
class _Prepared:
    """A unit ready to queue: its bound graph, its plates' headers and its frame files, by source frame."""

    graph: Dict[str, Any]
    infos: Dict[int, PlateInfo]
    files: Dict[int, Path]


def _failure_text(error: PromptExecutionError, frames: Sequence[int]) -> str:
    """A node's failure for the chunk's error: ComfyUI's words and the frames, a GPU failure named first with
    its fix (``gpu_failures``)."""
    text = f"{error} (frames {', '.join(map(str, frames))})"
    cause = classify_error(error.exception_type, error.exception_message)
    if cause is None:
        return text
    first_line = (error.exception_message.strip().splitlines() or [""])[0]  # not ComfyUI's tips: ours follow
    return cause.describe(f"ComfyUI node {error.node_id} ({error.node_type}) failed: {error.exception_type}: "
                          f"{first_line} (frames {', '.join(map(str, frames))})")


@dataclass
class _Prefetch:
    """The first unit of the next chunk, staged ahead (``claim_next``) into that chunk's scratch folder."""

    frames: Tuple[int, ...]
    label: str
    attempt_dir: Path
    future: Future
    used: bool = False


@dataclass
class _Chunk:
    """The chunk a write belongs to: its report, and its frame count for the progress."""

    report: ChunkReport
    total: int


@dataclass
class _Write:
    """Frames handed to a writer together (one unit's), and how it went once finished."""

    frames: List[int]
    chunk: _Chunk
    future: Future
    written: List[int] = field(default_factory=list)
    error: Optional[BaseException] = None


class _FrameIO:
    """The frame I/O beside ComfyUI: one thread stages the next unit, ``threads`` threads write results.

    Memory: one frame being staged and one being written per writing thread, about three float32 copies each
    (as read, converted, encoded): about 0.3 GB at 2048x1080 RGBA and 1.2 GB at 3840x2160 with two writing
    threads. Units waiting for a writer (``PENDING_WRITES_PER_THREAD * threads`` at most) hold no pixels, only
    their result files. On disk: the frame files of the units staged and queued in ComfyUI, and those of the
    units not written yet (docs/frames.md).
    """

    def __init__(self, threads: int) -> None:
        self._stager = ThreadPoolExecutor(1, thread_name_prefix="comfyfarm-stage")
        self._writers = ThreadPoolExecutor(max(1, threads), thread_name_prefix="comfyfarm-write")
        self._limit = max(1, threads) * PENDING_WRITES_PER_THREAD
        self._writes: List[_Write] = []
        self._discards: List[Tuple[Path, List[Future]]] = []  # folders to remove once these writes are done
        self._staging: List[Future] = []
        self.writing: Set[int] = set()  # output frames handed to a writer and not counted yet

    def stage(self, prepare: Callable[..., _Prepared], *args: Any) -> Future:
        future = self._stager.submit(prepare, *args)
        self._staging = [staging for staging in self._staging if not staging.done()] + [future]
        return future

    def write(self, frames: List[int], job: Callable[[], List[int]], chunk: _Chunk) -> None:
        """Run ``job`` (it writes ``frames`` of ``chunk``) on a writer; first wait while too many are under way."""
        running = [write.future for write in self._writes if not write.future.done()]
        if len(running) >= self._limit:
            wait(running, return_when=FIRST_COMPLETED)
        self.writing.update(frames)
        self._writes.append(_Write(frames, chunk, self._writers.submit(job)))

    def discard_after(self, folder: Path) -> None:
        """Remove ``folder`` once the staging and the writes handed over so far are done (now, when none is
        under way)."""
        under_way = [write.future for write in self._writes] + self._staging
        self._discards.append((folder, [future for future in under_way if not future.done()]))
        self._discard_done()

    def harvest(self, *, wait: bool = False) -> List[_Write]:
        """The writes finished since the last harvest (every one under way finished first: ``wait``), with the
        frames each wrote or its error."""
        finished: List[_Write] = []
        pending: List[_Write] = []
        for write in self._writes:
            if not (wait or write.future.done()):
                pending.append(write)
                continue
            self.writing.difference_update(write.frames)
            write.error = write.future.exception()
            if write.error is None:
                write.written = write.future.result()
            finished.append(write)
        self._writes = pending
        self._discard_done()
        return finished

    def close(self) -> List[_Write]:
        """Let the staging and the writes under way finish; the writes finished meanwhile."""
        self._stager.shutdown(wait=True)
        finished = self.harvest(wait=True)
        self._writers.shutdown(wait=True)
        return finished

    def _discard_done(self) -> None:
        kept = []
        for folder, futures in self._discards:
            if all(future.done() for future in futures):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                kept.append((folder, futures))
        self._discards = kept


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
