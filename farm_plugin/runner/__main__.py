"""The chunk runner as a process: ``python -m farm_plugin.runner --job JOB.json --frames LIST --comfyui-url URL``.

This is what the Deadline plugin runs for each task, against the ComfyUI it keeps warm for the job. It
prints the progress protocol (``PROGRESS``/``STATUS``/``FRAME``/``ERROR`` lines, see progress.py) on stdout,
and only there; its log goes to stderr in lines that never start with a protocol word (the logger's name
first), since Deadline hands stderr to the plugin's handlers too, in no order with stdout. It exits with:

- 0: every frame is written and verified (or, for a cross-fading workflow, handed to the join with the
  chunk before, which writes it when that chunk has run);
- 1: the chunk failed (the ``ERROR`` line says why: ComfyUI's node, class and exception, or a file problem);
- 2: bad arguments, or a job record this runtime cannot read;
- 3: ComfyUI stopped, hung or cannot be reached: whoever owns it may restart it and run the chunk again
  (frames already written are skipped);
- 130: cancelled (SIGTERM or SIGINT): ComfyUI's prompts are withdrawn and no partial file is left. (Deadline
  itself kills the process outright on a cancel: then the plugin withdraws the chunk.)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence

from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.errors import BadInput
from farm_plugin.frames.framelist import parse_frame_list
from farm_plugin.jobrecord import read_job_record
from farm_plugin.runner.chunk import DEFAULT_IDLE_TIMEOUT_SECONDS, ChunkCancelled, ChunkFailed, ChunkRunner, ComfyUILost
from farm_plugin.runner.exits import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_COMFYUI_LOST, EXIT_FAILED, EXIT_OK
from farm_plugin.runner.progress import LineProgress, LogLineFormatter

logger = logging.getLogger(__name__)



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m farm_plugin.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", required=True, help="the job record (job.json), as this machine sees it")
    parser.add_argument("--frames", required=True, help="this chunk's frames, in Deadline's syntax")
    parser.add_argument("--comfyui-url", required=True, help="the running ComfyUI to use")
    parser.add_argument("--scratch", required=True, help="a local folder for staging")
    parser.add_argument("--source-pattern", help="the source pattern after path mapping (default: the record's)")
    parser.add_argument("--output-pattern", help="the output pattern after path mapping (default: the record's)")
    parser.add_argument("--idle-timeout-s", type=float, default=DEFAULT_IDLE_TIMEOUT_SECONDS,
                        help="the longest silence from ComfyUI while a prompt runs")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def run(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setFormatter(LogLineFormatter())
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[log_handler])
    for noisy in ("urllib3", "websocket"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    progress = LineProgress(sys.stdout)
    try:
        record = read_job_record(args.job)
        frames: List[int] = parse_frame_list(args.frames)
        if args.source_pattern:
            record = dataclasses.replace(record, source=dataclasses.replace(record.source, pattern=args.source_pattern))
        if args.output_pattern:
            record = dataclasses.replace(record, output=dataclasses.replace(record.output, pattern=args.output_pattern))
        cancel = threading.Event()
        runner = ChunkRunner(record, ExternalServer(args.comfyui_url.rstrip("/")), scratch_dir=Path(args.scratch),
                             progress=progress, restart_limit=0, idle_timeout_s=args.idle_timeout_s, cancel=cancel,
                             join_dir=Path(args.job).parent / "joins")
    except BadInput as exc:  # a job record this runtime cannot read, a bad frame list or ComfyUI address…
        progress.error(str(exc))
        return EXIT_BAD_INPUT

    def stop(signum: int, _frame: Any) -> None:
        logger.warning("signal %d: withdrawing this chunk's prompts from ComfyUI", signum)
        cancel.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        report = runner.run(frames)
    except ChunkCancelled as exc:
        progress.status(str(exc))
        return EXIT_CANCELLED
    except ComfyUILost as exc:
        progress.error(str(exc))
        return EXIT_COMFYUI_LOST
    except (ChunkFailed, ComfyUIError, OSError) as exc:  # ComfyUI refused a prompt, a file could not be written…
        progress.error(str(exc))
        return EXIT_FAILED
    pending = f", {len(report.pending)} to cross-fade when the chunk before has run" if report.pending else ""
    progress.status(f"{len(report.written)} frame(s) written, {len(report.skipped)} already there{pending}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
