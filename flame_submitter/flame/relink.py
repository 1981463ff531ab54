"""The relink watcher: finished farm renders come back into Flame by themselves.

Started from the hook's ``app_initialized``, it looks at the inbox on Flame's idle loop
(``schedule_idle_event``), handles at most one completion record per tick, and never calls ``flame``
off the main thread. For each record of the current project and user it:

- imports the verified frames with ``flame.import_clips`` into the library "ComfyUI Renders"
  (configurable), in a folder per workflow;
- names the clip ``<source>_<workflow>_v<NNN>``, the next free version (never overwriting), gives it the
  source's start frame (the frames carry the source timecode in their headers) and marks it with a
  colour so artists see what came from the farm;
- moves the record to ``<inbox>/imported/``, so that it is imported once, also across Flame restarts.

A failure record, or a record with missing frames, becomes a message in Flame's console and imports
nothing. Records that arrive while Flame is closed are there at the next start.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from farm_plugin.completion.record import HANDLED_FOLDER, CompletionRecord, read_completion
from farm_plugin.frames.framelist import format_frame_list

logger = logging.getLogger(__name__)

DEFAULT_LIBRARY = "ComfyUI Renders"
DEFAULT_POLL_SECONDS = 5
FARM_COLOUR = (0.2, 0.45, 0.75)  # a calm blue: rendered on the farm by comfyfarm


def text_of(value: Any) -> str:
    """A Flame string attribute's value (``get_value()``), or a plain value, as text."""
    if hasattr(value, "get_value"):
        value = value.get_value()
    return "" if value is None else str(value)


def sequence_path(output_pattern: str, first: int, last: int) -> str:
    """``/out/x.####.exr`` → ``/out/x.[1001-1048].exr``, the form ``flame.import_clips`` takes."""
    match = re.search(r"#+", output_pattern)
    if match is None:
        raise ValueError(f"output pattern '{output_pattern}' has no #### frame token")
    padding = len(match.group(0))
    return f"{output_pattern[:match.start()]}[{first:0{padding}d}-{last:0{padding}d}]{output_pattern[match.end():]}"


@dataclass(frozen=True)
class Outcome:
    record: str
    imported: Optional[str] = None  # the clip's name
    message: str = ""


class RelinkWatcher:
    """Imports completion records from ``inbox`` for ``user`` in the current Flame project."""

    def __init__(self, flame: Any, inbox: Path, *, user: str, library: str = DEFAULT_LIBRARY,
                 poll_s: int = DEFAULT_POLL_SECONDS) -> None:
        self.flame = flame
        self.inbox = Path(inbox)
        self.user = user
        self.library_name = library
        self.poll_s = poll_s
        self.running = False
        self._foreign: Set[str] = set()  # records of other projects or users, read once

    # -- the idle loop -------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.running:
            self.running = True
            self.flame.schedule_idle_event(self._tick, 0)

    def stop(self) -> None:
        self.running = False

    def _tick(self) -> None:
        if not self.running:
            return
        more = False
        try:
            more = self.import_next() is not None and bool(self.pending())
        except Exception:  # the watcher must keep running whatever one record does
            logger.exception("comfyfarm relink: a record could not be handled")
        finally:
            if self.running:
                self.flame.schedule_idle_event(self._tick, 0 if more else int(self.poll_s))

    # -- records -------------------------------------------------------------------------------------

    def project(self) -> str:
        return text_of(self.flame.projects.current_project.name)

    def pending(self) -> List[Path]:
        """Records waiting for this project and user, oldest first."""
        if not self.inbox.is_dir():
            return []
        found = []
        for path in sorted(self.inbox.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
            if path.name in self._foreign:
                continue
            try:
                relink = json.loads(path.read_text(encoding="utf-8")).get("relink") or {}
            except (OSError, ValueError):
                continue  # being written, or not ours to judge: the writer renames whole files in
            if relink.get("project") == self.project() and relink.get("user") in (None, "", self.user):
                found.append(path)
            else:
                self._foreign.add(path.name)
        return found

    def import_next(self) -> Optional[Outcome]:
        """Handle the oldest pending record, if any."""
        pending = self.pending()
        return self.handle(pending[0]) if pending else None

    def import_all(self) -> List[Outcome]:
        """Handle every pending record now (the "Import finished renders" menu action)."""
        outcomes: List[Outcome] = []
        while True:
            outcome = self.import_next()
            if outcome is None:
                return outcomes
            outcomes.append(outcome)

    def handle(self, path: Path) -> Outcome:
        record = read_completion(path)
        source = record.relink.get("clip_name") or "clip"
        if record.status != "completed":
            outcome = Outcome(path.name, message=f"comfyfarm: {source} · {record.workflow_title} failed on the farm "
                                                 f"(job {record.deadline_job_id}): {record.reason}")
            self.say(outcome.message, "error")
        elif record.missing_frames or not record.frames:
            outcome = Outcome(path.name, message=(
                f"comfyfarm: {source} · {record.workflow_title} came back incomplete (job {record.deadline_job_id}): "
                f"{len(record.missing_frames)} frame(s) missing ({format_frame_list(record.missing_frames)}); "
                "nothing imported: requeue the failed tasks in Deadline Monitor"))
            self.say(outcome.message, "warning")
        elif record.part == "preview":
            outcome = Outcome(path.name, message=(
                f"comfyfarm: the preview of {source} · {record.workflow_title} is ready "
                f"({len(record.frames)} frames in {Path(record.output_pattern).parent}); the whole clip follows"))
            self.say(outcome.message, "info")
        else:
            name = self.import_clip(record)
            outcome = Outcome(path.name, imported=name, message=(
                f"comfyfarm: imported {name} ({format_frame_list(record.frames)}) into {self.library_name}"))
            self.say(outcome.message, "info")
        self.mark_handled(path)
        return outcome

    def mark_handled(self, path: Path) -> None:
        handled = self.inbox / HANDLED_FOLDER
        handled.mkdir(exist_ok=True)
        path.replace(handled / path.name)

    def say(self, message: str, kind: str) -> None:
        logger.info("%s", message)
        self.flame.messages.show_in_console(message, kind, 10)

    # -- importing -----------------------------------------------------------------------------------

    def import_clip(self, record: CompletionRecord) -> str:
        return import_render(self.flame, self.library_name, workflow=record.workflow,
                             workflow_title=record.workflow_title, clip_name=record.relink.get("clip_name") or "clip",
                             output_pattern=record.output_pattern, frames=list(record.frames))


def import_render(flame: Any, library_name: str, *, workflow: str, workflow_title: str, clip_name: str,
                  output_pattern: str, frames: List[int]) -> str:
    """Import a finished render into ``library_name`` / ``workflow_title`` as the next
    ``<clip>_<workflow>_vNNN``, with the first frame as start frame and the farm colour. Main thread only."""
    folder = destination(flame, library_name, workflow_title or workflow)
    name = next_name(folder, f"{clip_name}_{workflow}")
    clips = flame.import_clips(sequence_path(output_pattern, frames[0], frames[-1]), folder)
    if not clips:
        raise RuntimeError(f"Flame imported nothing from {output_pattern}")
    clip = clips[0]
    clip.name = name
    if clip.start_frame != frames[0]:
        clip.change_start_frame(frames[0])
    clip.colour = FARM_COLOUR
    return name


def destination(flame: Any, library_name: str, workflow: str) -> Any:
    workspace = flame.projects.current_project.current_workspace
    library = next((lib for lib in workspace.libraries if text_of(lib.name) == library_name), None)
    if library is None:
        library = workspace.create_library(library_name)
    folder = next((f for f in library.folders if text_of(f.name) == workflow), None)
    return folder if folder is not None else library.create_folder(workflow)


def next_name(folder: Any, base: str) -> str:
    """``<base>_vNNN``, one above the highest version already in ``folder``."""
    taken: Dict[int, str] = {}
    for clip in folder.clips:
        match = re.fullmatch(re.escape(base) + r"_v(\d{3,})", text_of(clip.name))
        if match:
            taken[int(match.group(1))] = text_of(clip.name)
    return f"{base}_v{max(taken, default=0) + 1:03d}"
