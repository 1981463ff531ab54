"""Progress reporting, and the worker progress protocol (DESIGN.md "Contracts").

When the chunk runner runs as a process it prints one line per event, which the Deadline plugin's
stdout handlers turn into ``SetProgress`` / ``SetStatusMessage`` / ``FailRender``::

    PROGRESS 42.5
    STATUS frame 1012 (3/10) · KSampler 14/20
    FRAME 1012 done          (or: FRAME 1012 skipped, when a rerun finds it already written)
    ERROR ComfyUI node 7 (KSampler) failed: RuntimeError: …

The protocol is on stdout only. The runner's log goes to stderr, which Deadline hands to the same handlers
(in no order with stdout), so no log line may read as a protocol line: :class:`LogLineFormatter` starts each
with the logger's name (``farm_plugin.runner.chunk ERROR: …``) and indents the rest of a record (a traceback).
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
from dataclasses import dataclass
from typing import Optional, TextIO

PROGRESS_LINE = re.compile(r"^(PROGRESS|STATUS|FRAME|ERROR) (.*)$")


class ProgressSink:
    """Receives what a chunk runner reports. The base class ignores everything."""

    def status(self, text: str) -> None:
        """A one-line status message for the artist or wrangler."""

    def progress(self, percent: float) -> None:
        """Overall progress of the chunk, 0–100."""

    def frame_done(self, frame: int, *, skipped: bool = False) -> None:
        """A frame is written and verified (or was already, when ``skipped``)."""

    def error(self, text: str) -> None:
        """The chunk failed; ``text`` says why."""


class LineProgress(ProgressSink):
    """Prints the progress protocol to a stream (stdout by default), one flushed line per event."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        with self._lock:
            self.stream.write(line.replace("\n", " ") + "\n")
            self.stream.flush()

    def status(self, text: str) -> None:
        self._write(f"STATUS {text}")

    def progress(self, percent: float) -> None:
        if not math.isfinite(percent):
            raise ValueError(f"progress must be a finite number, got {percent!r}")
        self._write(f"PROGRESS {min(100.0, max(0.0, percent)):.1f}")

    def frame_done(self, frame: int, *, skipped: bool = False) -> None:
        self._write(f"FRAME {frame} {'skipped' if skipped else 'done'}")

    def error(self, text: str) -> None:
        self._write(f"ERROR {text}")


class LogLineFormatter(logging.Formatter):
    """Log lines that never read as protocol lines (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("%(name)s %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\n    ")


@dataclass(frozen=True)
class ProgressMessage:
    kind: str  # "progress", "status", "frame", "error"
    text: str
    percent: Optional[float] = None
    frame: Optional[int] = None
    skipped: bool = False


def parse_progress_line(line: str) -> Optional[ProgressMessage]:
    """Read one protocol line; None for any other output (logging, ComfyUI chatter)."""
    match = PROGRESS_LINE.match(line.rstrip("\r\n"))
    if not match:
        return None
    kind, text = match.group(1).lower(), match.group(2)
    if kind == "progress":
        try:
            percent = float(text)
        except ValueError:
            return None
        return ProgressMessage("progress", text, percent=percent) if math.isfinite(percent) else None
    if kind == "frame":
        parts = text.split()
        if len(parts) != 2 or parts[1] not in ("done", "skipped"):
            return None
        try:
            frame = int(parts[0])
        except ValueError:
            return None
        return ProgressMessage("frame", text, frame=frame, skipped=parts[1] == "skipped")
    return ProgressMessage(kind, text)
