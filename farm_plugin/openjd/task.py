"""One Open Job Description task (a chunk of frames): the chunk runner against the session's ComfyUI, its
progress reported as OpenJD stdout messages::

    python -m farm_plugin.openjd task --state SESSION_DIR/comfyui.json --job JOB.json --frames 1001-1006 \\
        [--source-pattern P] [--output-pattern P] [--idle-timeout-s S]

It runs ``python -m farm_plugin.runner`` (the process the Deadline 10 plugin runs per task, unchanged) against
the ComfyUI the step environment started (openjd_env.py), and rewrites the runner's protocol lines into
OpenJD's (openjd-specifications wiki, How-Jobs-Are-Run, "Stdout/Stderr Messages"): ``PROGRESS 42.5`` →
``openjd_progress: 42.5``, ``STATUS …`` → ``openjd_status: …``; an ``ERROR …`` line becomes
``openjd_fail: …`` once the task has failed for good. Other lines pass through, for the task's log.

- A ComfyUI that died or hung (runner exit 3) is restarted on its port, up to the session's restart limit,
  and the chunk goes on (frames already written are skipped), as the Deadline 10 plugin does.
- Cancel: the action's cancelation is ``NOTIFY_THEN_TERMINATE``. openjd-sessions runs the action's command
  with ``exec`` and notifies by sending SIGTERM to that process, i.e. this one, then SIGKILLs its process
  group once ``notifyPeriodInSeconds`` has passed. SIGTERM is passed on to the runner, which withdraws its
  prompts from ComfyUI and leaves no partial file; then ComfyUI's queue is cleared and interrupted, and any
  temporary file an attempt left beside the chunk's frames is removed.

Exit codes are the runner's: 0 done, 1 failed, 2 bad input, 3 ComfyUI lost (restarts spent), 130 cancelled.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.framelist import parse_frame_list
from farm_plugin.jobrecord import JobRecordError, read_job_record
from farm_plugin.openjd.env import SessionComfyUI, SessionStateError, read_state, restart, write_state
from farm_plugin.runner.chunk import DEFAULT_IDLE_TIMEOUT_SECONDS
from farm_plugin.runner.exits import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_COMFYUI_LOST, EXIT_FAILED, EXIT_OK
from farm_plugin.runner.output import OutputWriter
from farm_plugin.runner.progress import parse_progress_line
from farm_plugin.service.prepare import NotReady, prepare
from farm_plugin.service.state import ServiceUnavailable, default_state_dir

logger = logging.getLogger(__name__)

WITHDRAW_TIMEOUT_SECONDS = 5.0


def openjd_line(line: str) -> Tuple[str, Optional[str]]:
    """``(line to print, error text or None)`` for one line of the runner's output."""
    message = parse_progress_line(line)
    if message is None:
        return line.rstrip("\r\n"), None
    if message.kind == "progress":
        return f"openjd_progress: {message.percent:.1f}", None
    if message.kind == "status":
        return f"openjd_status: {message.text}", None
    if message.kind == "frame":
        return f"comfyfarm: frame {message.text}", None
    return f"comfyfarm: error: {message.text}", message.text


def say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


@dataclasses.dataclass
class Chunk:
    state_path: Path
    job: str
    frames: str
    source_pattern: Optional[str]
    output_pattern: Optional[str]
    idle_timeout_s: float


class TaskRun:
    """Runs one chunk; ``cancel()`` (the SIGTERM handler) stops it cleanly."""

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk
        self.cancelled = threading.Event()
        self.child: Optional[subprocess.Popen] = None

    def cancel(self, *_args: Any) -> None:
        self.cancelled.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def runner_command(self, url: str) -> List[str]:
        chunk = self.chunk
        scratch = chunk.state_path.parent / "chunks" / chunk.frames.replace(",", "_")
        command = [sys.executable, "-m", "farm_plugin.runner", "--job", chunk.job, "--frames", chunk.frames,
                   "--comfyui-url", url, "--scratch", str(scratch), "--idle-timeout-s", f"{chunk.idle_timeout_s:g}"]
        if chunk.source_pattern:
            command += ["--source-pattern", chunk.source_pattern]
        if chunk.output_pattern:
            command += ["--output-pattern", chunk.output_pattern]
        return command

    def run_runner(self, url: str) -> Tuple[int, Optional[str]]:
        """Run the chunk runner once; ``(exit code, its last ERROR text)``."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        error = None
        self.child = subprocess.Popen(self.runner_command(url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True, errors="replace", env=env)
        if self.cancelled.is_set():  # SIGTERM came while the runner was being started
            self.child.send_signal(signal.SIGTERM)
        assert self.child.stdout is not None
        for line in self.child.stdout:
            shown, failure = openjd_line(line)
            say(shown)
            error = failure or error
        code = self.child.wait()
        self.child = None
        return code, error

    def run(self) -> int:
        try:
            state = read_state(self.chunk.state_path)
        except SessionStateError as exc:
            say(f"openjd_fail: {exc}")
            return EXIT_BAD_INPUT
        if state.service_gpu:  # the Worker service's ComfyUI: checked and tidied before each task
            try:
                state = dataclasses.replace(state, url=prepare(state.service_gpu, state_dir=default_state_dir(),
                                                               job=self.chunk.state_path.parent.name,
                                                               wait_s=state.startup_timeout_s).url)
            except (ServiceUnavailable, NotReady) as exc:
                say(f"openjd_fail: comfyfarm's service cannot take this task: {exc}")
                return EXIT_COMFYUI_LOST if isinstance(exc, ServiceUnavailable) else EXIT_FAILED
        while True:
            code, error = self.run_runner(state.url) if not self.cancelled.is_set() else (EXIT_CANCELLED, None)
            if self.cancelled.is_set() or code == EXIT_CANCELLED:
                self.withdraw(state)
                say("openjd_status: cancelled: ComfyUI interrupted, finished frames kept, no partial file left")
                return EXIT_CANCELLED
            if code == EXIT_OK:
                say("openjd_progress: 100.0")
                return EXIT_OK
            if code == EXIT_COMFYUI_LOST and state.owned and state.restarts < state.restart_limit:
                restarted = self.restart(state)
                if restarted is not None:
                    state = restarted
                    continue
            if code == EXIT_COMFYUI_LOST:
                for line in state.log_tail():
                    say(f"comfyui: {line}")
            say(f"openjd_fail: {error or f'the comfyfarm chunk runner exited with code {code}'}")
            return code

    def restart(self, state: SessionComfyUI) -> Optional[SessionComfyUI]:
        say(f"openjd_status: ComfyUI stopped: restarting it ({state.restarts + 1}/{state.restart_limit})")
        try:
            restarted = restart(state)
        except ComfyUIError as exc:
            say(f"comfyfarm: error: ComfyUI could not be restarted: {str(exc).splitlines()[0]}")
            return None
        write_state(self.chunk.state_path, restarted)
        return restarted

    def withdraw(self, state: SessionComfyUI) -> None:
        """After a cancel: clear ComfyUI's queue, interrupt it, remove half-written frames of this chunk."""
        client = ComfyUIClient(state.url, timeout_s=WITHDRAW_TIMEOUT_SECONDS)
        try:
            client.clear_queue()
            client.interrupt()
        except (ComfyUIError, OSError) as exc:
            logger.warning("could not reach ComfyUI to withdraw the chunk: %s", exc)
        try:
            record = read_job_record(self.chunk.job)
            if self.chunk.output_pattern:
                record = dataclasses.replace(record, output=dataclasses.replace(
                    record.output, pattern=self.chunk.output_pattern))
            writer = OutputWriter(record)
            writer.remove_stale_temporaries(writer.retime.output_frames(parse_frame_list(self.chunk.frames)))
        except (JobRecordError, FrameError, OSError) as exc:
            logger.warning("could not look for half-written frames: %s", exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m farm_plugin.openjd task", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, help="the session's ComfyUI state file (openjd_env enter)")
    parser.add_argument("--job", required=True, help="the job record (job.json), as this worker sees it")
    parser.add_argument("--frames", required=True, help="this chunk's frames (OpenJD's CHUNK[INT] value, 1001-1006)")
    parser.add_argument("--source-pattern", help="the source pattern as this worker sees it (default: the record's)")
    parser.add_argument("--output-pattern", help="the output pattern as this worker sees it (default: the record's)")
    parser.add_argument("--idle-timeout-s", type=float, default=DEFAULT_IDLE_TIMEOUT_SECONDS)
    return parser


def run(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    task = TaskRun(Chunk(Path(args.state), args.job, args.frames, args.source_pattern, args.output_pattern,
                         args.idle_timeout_s))
    signal.signal(signal.SIGTERM, task.cancel)
    signal.signal(signal.SIGINT, task.cancel)
    return task.run()
