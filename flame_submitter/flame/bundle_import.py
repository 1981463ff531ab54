"""Import a finished job from a folder the artist picks: "Import finished renders" with nothing in the inbox.

A job run from its Open Job Description bundle (on AWS Deadline Cloud, or with ``openjd run``) ends with its
Finish step writing the completion record beside the frames (``<name>.comfyfarm.json``), into the job folder
(``completion.json``), and into the inbox when the job had one (farm_plugin/openjd/finish.py). When the
farm cannot reach the artist's inbox, the frames and their record still come back to the output folder (with
job attachments, ``deadline job download-output`` brings both). So the artist picks that folder, or the job
folder, or the bundle folder, and its verified frames are imported as the relink watcher imports them: every
pass the record lists, as the next ``<clip>_<workflow>_vNNN`` (``<clip>_<workflow>_<pass>_vNNN`` for each pass
of a several-pass job, one version for all; a job that wrote its passes as the layers of one EXR per frame comes
in once, as one multi-channel ``<clip>_<workflow>_vNNN``) in the "ComfyUI Renders" library. A failed or
incomplete job (a frame missing from any pass, on the farm or in the picked folder) imports nothing and says
why in Flame's console; so does a job one of whose passes Flame cannot import (the passes imported before it
are deleted again). Everything here runs on Flame's main thread.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, List, Optional, Sequence

from farm_plugin.completion.record import HANDLED_FOLDER, CompletionRecord, read_completion
from farm_plugin.errors import BadInput
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.openjd.finish import COMPLETION_SUFFIX, JOB_FOLDER_COMPLETION
from flame_submitter.deadline_cloud.bundle import job_record_of
from flame_submitter.flame.relink import (
    PassImportError,
    as_layers,
    import_render,
    imported_text,
    missing_text,
    passes_of,
)

logger = logging.getLogger(__name__)

TITLE = "ComfyUI Farm"
CHOOSE = "Choose Folder..."
CANCEL = "Cancel"
CONSOLE_SECONDS = 10


class FolderImportError(BadInput):
    """The picked folder leads to no finished comfyfarm job: the message says what was looked for."""


def completion_records_in(folder: Path) -> List[Path]:
    """The completion records ``folder`` leads to: ``*.comfyfarm.json`` beside a job's frames (an output
    folder), ``completion.json`` (a job folder), or that of the job a bundle folder names."""
    folder = Path(folder)
    beside = sorted(folder.glob(f"*{COMPLETION_SUFFIX}"))
    if beside:
        return beside
    if (folder / JOB_FOLDER_COMPLETION).is_file():
        return [folder / JOB_FOLDER_COMPLETION]
    record = job_record_of(folder)
    if record is not None and (record.parent / JOB_FOLDER_COMPLETION).is_file():
        return [record.parent / JOB_FOLDER_COMPLETION]
    if record is not None or (folder / "job.json").is_file():
        raise FolderImportError(f"the job of {folder} has not finished: its completion record is not written yet "
                                "(the bundle's Finish step writes it)")
    raise FolderImportError(f"{folder} holds no finished comfyfarm job: pick the job's output folder (where its "
                            f"frames and <name>{COMPLETION_SUFFIX} are), its job folder or its bundle folder")


def read_for_import(path: Path) -> CompletionRecord:
    """The record, with each pass's frames found where they are on this machine: a record beside the frames
    names the farm's folder, which the frames may have been downloaded from (every pass with them)."""
    record = read_completion(path)
    if not path.name.endswith(COMPLETION_SUFFIX) or not record.frames:
        return record
    passes = tuple(replace(item, output_pattern=_here(path.parent, item.output_pattern, item.frames))
                   for item in record.passes)
    if not passes:
        return replace(record, output_pattern=_here(path.parent, record.output_pattern, record.frames))
    return replace(record, passes=passes, output_pattern=passes[0].output_pattern)


def _here(folder: Path, output_pattern: str, frames: Sequence[int]) -> str:
    """``output_pattern`` moved into ``folder`` when its first frame is there, else as it is."""
    pattern = FramePattern.parse(output_pattern)
    here = FramePattern(str(folder), pattern.head, pattern.padding, pattern.tail)
    if frames and here.directory != pattern.directory and Path(here.path(frames[0])).is_file():
        return here.to_hashes()
    return output_pattern


def import_folder(flame: Any, folder: Path, *, library: str, inbox: Optional[Path] = None) -> List[str]:
    """Import every finished job ``folder`` leads to; returns the clips' names. Messages go to the console."""
    names = []
    for path in completion_records_in(folder):
        record = read_for_import(path)
        source = record.relink.get("clip_name") or "clip"
        job = f"{source} · {record.workflow_title}"
        if record.status != "completed":
            say(flame, f"comfyfarm: {job} failed (job {record.deadline_job_id}): {record.reason}; nothing imported",
                "error")
            continue
        missing = missing_text(record)
        if missing:
            say(flame, f"comfyfarm: {job} is incomplete (job {record.deadline_job_id}): {missing}; nothing "
                       "imported: rerun the job's failed tasks", "warning")
            continue
        passes = passes_of(record)
        files = passes[:1] if as_layers(passes) else passes  # the layers of one file: looked for once
        absent = [(item, FramePattern.parse(item.output_pattern).missing_frames(list(item.frames)))
                  for item in files]
        absent = [(item, frames) for item, frames in absent if frames]
        if absent:
            where = "; ".join(
                (f"{len(frames)} frame(s) of {job} are not in {Path(item.output_pattern).parent}" if len(files) == 1
                 else f"{len(frames)} frame(s) of the {item.name} pass of {job} are not in "
                      f"{Path(item.output_pattern).parent}") + f" ({format_frame_list(frames)})"
                for item, frames in absent)
            say(flame, f"comfyfarm: {where}: download the job's output first (deadline job download-output); "
                       "nothing imported", "warning")
            continue
        try:
            imported = import_render(flame, library, workflow=record.workflow, workflow_title=record.workflow_title,
                                     clip_name=source, passes=passes)
        except PassImportError as exc:
            say(flame, f"comfyfarm: {job} (job {record.deadline_job_id}): {exc}", "error")
            continue
        names += imported
        say(flame, f"comfyfarm: {imported_text(imported, passes, record.frames, library)}", "info")
        _mark_inbox_copy_handled(inbox, record)
    return names


def _mark_inbox_copy_handled(inbox: Optional[Path], record: CompletionRecord) -> None:
    """The inbox copy of this record, now or when it arrives, must not be imported a second time: it goes to
    (or is written into) ``<inbox>/imported/``, which the watcher skips and the Finish step does not write over."""
    if inbox is None:
        return
    handled = Path(inbox) / HANDLED_FOLDER / f"{record.deadline_job_id}.json"
    waiting = Path(inbox) / handled.name
    try:
        handled.parent.mkdir(parents=True, exist_ok=True)
        if waiting.is_file():
            waiting.replace(handled)
        elif not handled.exists():
            handled.write_text(record.to_json(), encoding="utf-8")
    except OSError as exc:  # the clip is imported; a second import later is the lesser harm
        logger.warning("comfyfarm: could not mark job %s as imported in %s: %s", record.deadline_job_id, inbox, exc)


def say(flame: Any, message: str, kind: str) -> None:
    logger.info("%s", message)
    flame.messages.show_in_console(message, kind, CONSOLE_SECONDS)


def offer_folder_import(flame: Any, *, library: str, inbox: Optional[Path], start_folder: str = "") -> int:
    """Nothing waits in the inbox: ask whether to import a finished job's folder, let the artist pick it, and
    import it. Returns how many clips were imported."""
    reason = ("No finished renders are waiting in the inbox." if inbox is not None else
              "No inbox is configured (inbox_root), so finished farm renders do not come back by themselves.")
    answer = flame.messages.show_in_dialog(
        TITLE, f"{reason}\n\nImport a finished job from its output folder (a Deadline Cloud job, or a job bundle run "
               "with openjd)?", "question", [CHOOSE], CANCEL)
    if answer != CHOOSE:
        return 0
    from flame_submitter.dialog import choose_folder  # Qt: only when asked

    folder = choose_folder("ComfyUI Farm: a finished job's output folder", start_folder)
    if not folder:
        return 0
    try:
        names = import_folder(flame, Path(folder), library=library, inbox=inbox)
    except FolderImportError as exc:
        flame.messages.show_in_dialog(TITLE, str(exc), "warning", ["OK"], "")
        return 0
    return len(names)
