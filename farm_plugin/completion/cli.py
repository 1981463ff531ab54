"""``python -m farm_plugin.completion.cli``: write a job's completion record (run by a Deadline hand-back job:
the ComfyUI plugin's finish mode, farm_plugin/ComfyUI/ComfyUI.py ``hand_back``).

Unless the job failed, what two chunks of a sequence workflow each left to the other is cross-faded first.
``--failed``: the Deadline job failed (or was cancelled): the record says failed, with the frames that exist.
``--failed-unless-complete``: Deadline no longer has the job (deleted), or it is in no final state: the record
says completed when every frame is on disk, else failed with ``--reason`` and the missing frames.
A complete job's record names its contact sheet (``contact_sheet.py``), written beside the frames first; a sheet that
cannot be made is a warning line and the record names none. Exit 0 when the record is written or was already
there; 2 when the job record cannot be read or the inbox cannot be written. What it did is printed on one line
each, for the hand-back job's log.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence

from farm_plugin.completion.contact_sheet import add_contact_sheet
from farm_plugin.completion.record import (
    HANDLED_FOLDER,
    STATUS_FAILED,
    build_completion,
    completion_summary,
    write_completion,
)
from farm_plugin.errors import EXIT_BAD_INPUT, EXIT_OK
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.framelist import format_frame_list, parse_frame_list
from farm_plugin.jobrecord import JobRecord, JobRecordError, read_job_record
from farm_plugin.runner.joins import finish_joins
from farm_plugin.runner.output import OutputWriter


def run(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m farm_plugin.completion.cli", description=__doc__)
    parser.add_argument("--job", required=True, help="the job record, as this machine sees it")
    parser.add_argument("--deadline-job-id", required=True)
    outcome = parser.add_mutually_exclusive_group()
    outcome.add_argument("--failed", action="store_true", help="the Deadline job failed (or was cancelled)")
    outcome.add_argument("--failed-unless-complete", action="store_true",
                         help="the Deadline job is gone or unfinished: failed (with --reason) unless every frame is "
                              "there")
    parser.add_argument("--reason", default="", help="why it failed")
    parser.add_argument("--part", default="main")
    parser.add_argument("--frames", help="the Deadline job's frames (default: the record's)")
    parser.add_argument("--inbox", help="the inbox as this machine sees it (default: the record's)")
    parser.add_argument("--output-pattern", help="the output pattern as this machine sees it")
    args = parser.parse_args(argv)
    try:
        record = read_job_record(args.job)
    except JobRecordError as exc:
        print(f"comfyfarm relink: {exc}")
        return EXIT_BAD_INPUT
    if not args.failed:
        _finish_joins(record, args.job, args.output_pattern)
    inbox = args.inbox or record.inbox
    if not inbox:
        print(f"comfyfarm relink: job {args.deadline_job_id} has no inbox in its record: nothing to hand back")
        return EXIT_OK
    frames = parse_frame_list(args.frames) if args.frames else None
    completion = build_completion(record, deadline_job_id=args.deadline_job_id, job_failed=args.failed,
                                  reason=args.reason if args.failed else "", part=args.part, frames=frames,
                                  output_pattern=args.output_pattern)
    if args.failed_unless_complete and completion.missing_frames:
        reason = "; ".join(text for text in (args.reason, completion.reason) if text)
        completion = dataclasses.replace(completion, status=STATUS_FAILED, reason=reason)
    if not _already_written(inbox, args.deadline_job_id):
        completion, line = add_contact_sheet(completion, record, output_pattern=args.output_pattern)
        if line:
            print(line)
    try:
        written = write_completion(completion, inbox)
    except OSError as exc:
        print(f"comfyfarm relink: cannot write into the inbox {inbox}: {exc}")
        return EXIT_BAD_INPUT
    summary = completion_summary(completion)
    if written is None:
        print(f"comfyfarm relink: the record for job {args.deadline_job_id} was already written: nothing new")
    else:
        print(f"comfyfarm relink: wrote {written}: {summary['status']}, frames {summary['frames'] or 'none'}"
              + (f", missing {summary['missing']}" if summary["missing"] else "")
              + (f" ({summary['reason']})" if summary["reason"] else ""))
    return EXIT_OK


def _already_written(inbox: str, deadline_job_id: str) -> bool:
    """Whether the inbox has the job's record (waiting, or imported): a repeated hand-back makes no sheet."""
    name = f"{deadline_job_id}.json"
    return (Path(inbox) / name).exists() or (Path(inbox) / HANDLED_FOLDER / name).exists()


def _finish_joins(record: JobRecord, job_path: str, output_pattern: Optional[str]) -> None:
    """Cross-fade what two chunks of a sequence workflow each left to the other (see runner/joins.py)."""
    join_dir = Path(job_path).parent / "joins"
    if not join_dir.is_dir():
        return
    if output_pattern:
        record = dataclasses.replace(record, output=dataclasses.replace(record.output, pattern=output_pattern))
    try:
        written = finish_joins(OutputWriter(record), join_dir)
    except (FrameError, OSError) as exc:
        print(f"comfyfarm relink: could not cross-fade the frames left in {join_dir}: {exc}")
        return
    if written:
        print(f"comfyfarm relink: cross-faded {format_frame_list(written)}, left by chunks that finished together")


if __name__ == "__main__":
    sys.exit(run())
