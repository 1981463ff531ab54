"""Local mode: a job's chunks spread over several ComfyUI instances on this machine.

One ComfyUI per instance (or per GPU), started once and reused for every chunk it takes; chunks are
pulled from a shared queue, so a fast instance takes more. An instance takes its next chunk when the last
units of the one it runs are staged, and stages that chunk's first unit while ComfyUI computes them; the last
frames of a chunk are written while ComfyUI starts the next (``ChunkRunner`` ``write_behind``). The same
:class:`ChunkRunner` runs each chunk as on the farm. Cancel (Ctrl-C) interrupts every ComfyUI and keeps
what was written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Protocol, Sequence, Set

from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.jobrecord import JobRecord
from farm_plugin.runner.chunk import ChunkCancelled, ChunkError, ChunkRunner, Server
from farm_plugin.runner.joins import finish_joins
from farm_plugin.runner.output import OutputWriter
from farm_plugin.runner.progress import ProgressSink

logger = logging.getLogger(__name__)

JOIN_POLL_SECONDS = 0.2


class LocalServer(Server, Protocol):
    """What a local run needs of each instance: the runner's :class:`Server`, which it starts once before the
    first chunk and stops after the last (a managed :class:`ComfyUIServer` or an attached ``ExternalServer``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class LocalRunReport:
    written: List[int] = field(default_factory=list)
    skipped: List[int] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)
    busy_seconds: float = 0.0
    startup_seconds: float = 0.0
    processing_seconds: float = 0.0
    restarts: int = 0
    cancelled: bool = False


class LocalRun:
    """Run ``chunks`` of ``record`` on ``servers``; ``progress_for(i)`` gives instance i's progress sink."""

    def __init__(
        self,
        record: JobRecord,
        servers: Sequence[LocalServer],
        *,
        scratch_dir: Path,
        progress_for: Callable[[int], ProgressSink],
        restart_limit: int,
        idle_timeout_s: float,
    ) -> None:
        self.record = record
        self.servers = list(servers)
        self.scratch_dir = Path(scratch_dir)
        self.progress_for = progress_for
        self.restart_limit = restart_limit
        self.idle_timeout_s = idle_timeout_s
        self.cancel = threading.Event()
        self.report = LocalRunReport()
        self._lock = threading.Lock()

    def start_servers(self) -> None:
        """Start every instance at once (their start-ups overlap); stop them all if one fails."""
        started = time.monotonic()
        claimed: Set[int] = set()
        for server in self.servers:
            reserve = getattr(server, "reserve_port", None)
            if reserve is not None:
                claimed.add(reserve(claimed))
        pool = ThreadPoolExecutor(max_workers=len(self.servers))
        futures = [pool.submit(server.start) for server in self.servers]
        try:
            errors = [f.exception() for f in futures]
        except BaseException:  # Ctrl-C (or SIGTERM) while they start: stop them now, not once they answer
            while not all(f.done() for f in futures):
                self.stop_servers()  # a start whose process is stopped under it fails at once
                futures_wait(futures, timeout=0.2)
            self.stop_servers()  # one that had not started its process when first asked
            raise
        finally:
            pool.shutdown(wait=False)
        failed = [e for e in errors if e is not None]
        if failed:
            self.stop_servers()
            raise failed[0]
        self.report.startup_seconds = time.monotonic() - started

    def stop_servers(self) -> None:
        for server in self.servers:
            try:
                server.stop()
            except (ComfyUIError, OSError) as exc:
                logger.warning("could not stop ComfyUI cleanly: %s", exc)

    def run(self, chunks: Sequence[Sequence[int]]) -> LocalRunReport:
        """Process every chunk; returns when all are done, failed or cancelled. Ctrl-C cancels."""
        work: queue.Queue[Sequence[int]] = queue.Queue()
        for chunk in chunks:
            work.put(chunk)
        started = time.monotonic()
        # Wait on events, not Thread.join: a KeyboardInterrupt inside join() can mark a thread that is still
        # running as stopped (CPython's bpo-45274 handling), and the servers would be stopped under it.
        finished = [threading.Event() for _ in self.servers]
        for index, server in enumerate(self.servers):
            threading.Thread(target=self._instance, args=(index, server, work, finished[index]),
                             name=f"comfyui-{index}", daemon=True).start()
        try:
            for event in finished:
                while not event.wait(JOIN_POLL_SECONDS):
                    pass
        except KeyboardInterrupt:
            logger.warning("interrupted: stopping ComfyUI; finished frames are kept")
            self.cancel.set()
            self.report.cancelled = True
            for event in finished:
                while not event.wait(JOIN_POLL_SECONDS):
                    pass
        if not self.report.cancelled:
            # Safety net: two instances that finished an edge at once may both have left its fade to the other.
            self.report.written.extend(finish_joins(OutputWriter(self.record), self.join_dir))
        self.report.processing_seconds = time.monotonic() - started
        return self.report

    @property
    def join_dir(self) -> Path:
        """Where the windows of a cross-fading workflow leave the frames their neighbours fade in."""
        return self.scratch_dir / "joins"

    def _instance(self, index: int, server: Server, work: queue.Queue[Sequence[int]],
                  finished: threading.Event) -> None:
        try:
            self._take_chunks(index, server, work)
        except Exception as exc:  # a bug must not leave the run waiting for this instance forever
            logger.exception("instance %d stopped on an unexpected error", index)
            with self._lock:
                self.report.failures.append(f"instance {index} stopped on an unexpected error: {exc!r}")
        finally:
            finished.set()

    def _take_chunks(self, index: int, server: Server, work: queue.Queue[Sequence[int]]) -> None:
        runner = ChunkRunner(
            self.record,
            server,
            scratch_dir=self.scratch_dir / f"instance-{index}",
            progress=self.progress_for(index),
            restart_limit=self.restart_limit,
            idle_timeout_s=self.idle_timeout_s,
            cancel=self.cancel,
            join_dir=self.join_dir,
            write_behind=True,  # ComfyUI starts the next chunk while the last frames of this one are written
        )
        claimed: List[Sequence[int]] = []  # taken from the queue by the runner, to stage ahead: run next

        def claim_next() -> Optional[Sequence[int]]:
            try:
                claimed.append(work.get_nowait())
            except queue.Empty:
                return None
            return claimed[-1]

        try:
            while not self.cancel.is_set():
                if claimed:
                    chunk = claimed.pop(0)
                else:
                    try:
                        chunk = work.get_nowait()
                    except queue.Empty:
                        break
                try:
                    runner.run(chunk, claim_next=None if claimed else claim_next)
                except ChunkCancelled:
                    break
                except (ChunkError, ComfyUIError) as exc:
                    logger.error("instance %d: %s", index, exc)
                    with self._lock:
                        self.report.failures.append(str(exc))
        finally:
            runner.close()
        with self._lock:
            self.report.failures.extend(runner.late_failures)
            self.report.written.extend(runner.totals.written)
            self.report.skipped.extend(runner.totals.skipped)
            self.report.busy_seconds += runner.totals.busy_seconds
            self.report.restarts += runner.restarts
