"""Run ``comfyfarm preview`` from Flame: a subprocess, with progress, Stop, a time limit and no process left behind.

Inside Flame the comfyfarm command runs in its own Python (``flame.launch.comfyfarm_command``), never in Flame's:
it loads OpenImageIO and starts ComfyUI. It runs in a session of its own, so that what it leaves can be found.
Stop (or the time limit) sends it SIGINT, which makes it interrupt ComfyUI and stop the ComfyUI it started, as
Ctrl-C does for ``run-local``; what has not ended ``STOP_GRACE_S`` later is killed, its whole process group with
it. The answer is the command's last result line (``request.RESULT_PREFIX``), or, where it printed none, its last
line of errors.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence

from flame_submitter.preview.request import PreviewResult, PreviewSettings

logger = logging.getLogger(__name__)

PREVIEW_TIMEOUT_S = 900.0  # a first preview may start ComfyUI and load a model from network storage
STOP_GRACE_S = 45.0  # after SIGINT: time to interrupt ComfyUI and stop it (10 s grace of its own) cleanly
PROGRESS_LINE = re.compile(r"\] (\d+)/(\d+) frames")  # run-local's progress bar, as preview and Run locally read it
ERROR_PREFIX = "comfyfarm preview: "


def preview_command(launcher: Sequence[str], settings: PreviewSettings, *, pattern: str, frame: int, folder: Path,
                    gpus: Sequence[str] = (), rendered: Optional[str] = None) -> List[str]:
    """The ``comfyfarm preview`` command line for ``frame`` of the plate at ``pattern``, its pictures in ``folder``;
    ``rendered``: the output pattern a farm job rendered the frames at (then nothing is rendered)."""
    command = [*launcher, "preview", *settings.arguments(), "--input", pattern, "--frame", str(frame),
               "--folder", str(folder)]
    if gpus:
        command += ["--gpus", ",".join(str(gpu) for gpu in gpus)]
    if rendered:
        command += ["--rendered", rendered]
    return command


def run_preview(command: Sequence[str], *, progress: Callable[[float, str], None], stop: threading.Event,
                env: Optional[Mapping[str, str]] = None, timeout_s: float = PREVIEW_TIMEOUT_S,
                grace_s: float = STOP_GRACE_S) -> PreviewResult:
    """Run ``command`` (a :func:`preview_command`) off the main thread and return what it rendered, or why not.
    Never raises; ``stop`` and ``timeout_s`` end it, and nothing it started is left running."""
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(env) if env is not None else None, close_fds=True,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return PreviewResult(error=f"comfyfarm could not be started ({command[0]}): {exc}")
    out: List[str] = []
    reader = threading.Thread(target=lambda: out.extend(process.stdout or ()), name="comfyfarm-preview-out",
                              daemon=True)
    reader.start()
    ended = threading.Event()
    why: List[str] = []
    guard = threading.Thread(target=_guard, args=(process, stop, ended, time.monotonic() + timeout_s, grace_s, why),
                             name="comfyfarm-preview-guard", daemon=True)
    guard.start()
    errors: List[str] = []
    assert process.stderr is not None
    for line in process.stderr:
        errors = (errors + [line.rstrip()])[-20:]
        match = PROGRESS_LINE.search(line)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            progress(done / max(1, total), f"{done}/{total} frames")
    process.wait()
    ended.set()
    guard.join()
    reader.join(timeout=5)
    _kill_group(process.pid)  # anything of its session still running: nothing may outlive a preview
    if why:
        return PreviewResult(error=why[0])
    try:
        result = PreviewResult.from_output("".join(out))
    except ValueError as exc:  # PreviewError: an answer that cannot be read
        return PreviewResult(error=str(exc))
    if result is not None:
        return result
    reason = next((line[len(ERROR_PREFIX):] for line in reversed(errors) if line.startswith(ERROR_PREFIX)),
                  next((line for line in reversed(errors) if line.strip()), ""))
    return PreviewResult(error=reason or f"comfyfarm preview ended with status {process.returncode} and no answer")


def _guard(process: subprocess.Popen, stop: threading.Event, ended: threading.Event, deadline: float,
           grace_s: float, why: List[str]) -> None:
    """Interrupt the preview on ``stop`` or at ``deadline``; kill its group if it has not ended ``grace_s`` later."""
    while not ended.is_set():
        if stop.wait(0.1):
            why.append("Stopped: the preview was interrupted; nothing was kept")
            break
        if time.monotonic() > deadline:
            why.append("The preview did not finish in time and was stopped: check the local ComfyUI's log (a model "
                       "that loads slowly, a GPU that is busy) and preview again")
            break
    else:
        return
    if process.poll() is None:
        logger.info("preview: interrupting comfyfarm preview (pid %d)", process.pid)
        try:
            process.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
    if not ended.wait(grace_s):
        logger.warning("preview: comfyfarm preview did not stop within %.0f s: killing it", grace_s)
        _kill_group(process.pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
