"""The last step of an Open Job Description bundle: finish the job's frames and say what was rendered::

    python -m farm_plugin.openjd finish --job JOB.json --frames 1001-1024 [--output-pattern P] [--inbox DIR]

It runs once, after every chunk of the render step(s) (the step depends on them). What the Deadline 10
path does in its hand-back jobs (the ComfyUI plugin's finish mode), it does here:

- cross-fades what two chunks of a sequence workflow each left to the other (runner/joins.py);
- verifies every output frame on disk and builds the completion record (farm_plugin/completion);
- writes it beside the frames, as ``<output name>.comfyfarm.json`` (what "Import finished renders" in Flame
  finds when the artist picks a finished job's output folder: with job attachments, it comes back with
  the frames), as ``completion.json`` in the job folder, and, when ``--inbox`` is given, into the relink
  inbox as ``<job id>.json``, where Flame imports it by itself.

The job id is ``DEADLINE_JOB_ID`` (the Deadline Cloud worker agent sets it for a session's actions), else
the job record's key (``openjd run``). Exit 0 when every frame is there; 1 (with ``openjd_fail``) when
frames are missing: the record still says which, so that Flame reports it; 2 when the job record cannot be
read.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from farm_plugin.atomic import write_text_atomic
from farm_plugin.completion.contact_sheet import add_contact_sheet
from farm_plugin.completion.record import CompletionRecord, build_completion, completion_summary, write_completion
from farm_plugin.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.framelist import format_frame_list, parse_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, JobRecordError, read_job_record
from farm_plugin.runner.joins import finish_joins
from farm_plugin.runner.output import OutputWriter

logger = logging.getLogger(__name__)

EXIT_INCOMPLETE = EXIT_FAILED  # frames are missing, or the completion record cannot be written
COMPLETION_SUFFIX = ".comfyfarm.json"
JOB_FOLDER_COMPLETION = "completion.json"
JOB_ID_VARIABLE = "DEADLINE_JOB_ID"


def completion_beside(output_pattern: str) -> Path:
    """Where the completion record goes beside the frames: ``/out/sh010_blur.####.exr`` →
    ``/out/sh010_blur.comfyfarm.json`` (``frames.comfyfarm.json`` for a pattern with no name before the number)."""
    pattern = FramePattern.parse(output_pattern)
    name = pattern.head.rstrip("._- ") or "frames"
    return Path(pattern.directory or ".") / f"{name}{COMPLETION_SUFFIX}"


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` atomically, replacing an earlier one (a rerun of the step says what is there now)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text, mode=0o644)


def join_leftovers(record: JobRecord, job_path: Path) -> None:
    """Cross-fade what two chunks of a sequence workflow each left to the other."""
    join_dir = job_path.parent / "joins"
    if record.workflow.sequence is None or not join_dir.is_dir():
        return
    written = finish_joins(OutputWriter(record), join_dir)
    if written:
        print(f"comfyfarm: cross-faded {format_frame_list(written)}, left by chunks that finished together")


def finish(record: JobRecord, job_path: Path, *, frames: Optional[Sequence[int]], job_id: str,
           output_pattern: Optional[str] = None, inbox: Optional[str] = None) -> CompletionRecord:
    """Joins, verification and the completion record in every place it goes; returns the record.

    ``output_pattern`` is where the frames are on this worker; the record keeps the artist's path for Flame."""
    here = record
    if output_pattern:
        here = dataclasses.replace(record, output=dataclasses.replace(record.output, pattern=output_pattern))
    try:
        join_leftovers(here, job_path)
    except (FrameError, OSError) as exc:
        print(f"comfyfarm: error: could not cross-fade the frames left between chunks: {exc}")
    completion = build_completion(record, deadline_job_id=job_id, job_failed=False,
                                  frames=list(frames) if frames else None, output_pattern=here.output.pattern)
    completion, line = add_contact_sheet(completion, record, output_pattern=here.output.pattern)
    if line:
        print(line)
    text = completion.to_json()
    beside = completion_beside(here.output.pattern)
    replace_file(beside, text)
    print(f"comfyfarm: wrote {beside}")
    try:
        replace_file(job_path.parent / JOB_FOLDER_COMPLETION, text)
    except OSError as exc:  # a read-only copy of the job folder (job attachments): the copy beside the frames counts
        print(f"comfyfarm: could not write {JOB_FOLDER_COMPLETION} into the job folder: {exc}")
    if inbox:
        written = write_completion(completion, inbox)
        print(f"comfyfarm: {'wrote ' + str(written) if written else 'the inbox already has the record'}")
    return completion


def run(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m farm_plugin.openjd finish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", required=True, help="the job record, as this worker sees it")
    parser.add_argument("--frames", help="the job's source frames (default: the record's)")
    parser.add_argument("--output-pattern", help="the output pattern as this worker sees it (default: the record's)")
    parser.add_argument("--inbox", default="", help="the relink inbox as this worker sees it (default: none)")
    parser.add_argument("--job-id", default="", help=f"the job's id (default: ${JOB_ID_VARIABLE}, else the record's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        record = read_job_record(args.job)
        frames = parse_frame_list(args.frames) if args.frames else None
    except (JobRecordError, FrameError) as exc:
        print(f"openjd_fail: {exc}", flush=True)
        return EXIT_BAD_INPUT
    job_id = args.job_id or os.environ.get(JOB_ID_VARIABLE) or record.job_id
    print("openjd_status: verifying the job's frames", flush=True)
    try:
        completion = finish(record, Path(args.job), frames=frames, job_id=job_id,
                            output_pattern=args.output_pattern or None, inbox=args.inbox or None)
    except OSError as exc:
        print(f"openjd_fail: cannot write the completion record: {exc}", flush=True)
        return EXIT_INCOMPLETE
    summary = completion_summary(completion)
    if not completion.complete:
        print(f"openjd_fail: {completion.reason}", flush=True)
        return EXIT_INCOMPLETE
    print(f"openjd_status: {len(completion.frames)} frame(s) verified: {summary['frames']}", flush=True)
    return EXIT_OK
