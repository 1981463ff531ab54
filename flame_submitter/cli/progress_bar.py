"""A terminal progress bar over every instance of a local run: frames, frames/s and ETA."""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO

from farm_plugin.runner.progress import ProgressSink

BAR_WIDTH = 30


class ProgressBar:
    """Counts frames from all instances. On a terminal it redraws one line; elsewhere it prints a line
    at every tenth of the job, so that logs stay short."""

    def __init__(self, total_frames: int, *, label: str = "", stream: Optional[TextIO] = None,
                 enabled: bool = True) -> None:
        self.total = total_frames
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = enabled and self.stream.isatty()
        self.done = 0
        self.skipped = 0
        self.started = time.monotonic()
        self._last_tenth = -1
        self._lock = threading.Lock()

    def sink(self) -> ProgressSink:
        bar = self

        class _Sink(ProgressSink):
            def frame_done(self, frame: int, *, skipped: bool = False) -> None:
                bar.frame_done(skipped=skipped)

        return _Sink()

    def frame_done(self, *, skipped: bool = False) -> None:
        with self._lock:
            self.done += 1
            if skipped:
                self.skipped += 1
            self._draw()

    def line(self) -> str:
        processed = self.done - self.skipped
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = processed / elapsed
        remaining = self.total - self.done
        eta = f"{int(remaining / rate // 60)}:{int(remaining / rate % 60):02d}" if rate > 0 else "--:--"
        filled = int(BAR_WIDTH * self.done / self.total) if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{self.label} [{bar}] {self.done}/{self.total} frames  {rate:.1f} frames/s  ETA {eta}"

    def _draw(self) -> None:
        if not self.enabled:
            return
        if self.interactive:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            return
        tenth = int(10 * self.done / self.total) if self.total else 10
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
