"""The relink watcher: finished farm renders come back into Flame by themselves.

Started from the hook's ``app_initialized``, it looks at the inbox on Flame's idle loop
(``schedule_idle_event``), handles at most one completion record per tick, and never calls ``flame``
off the main thread. For each record of the current project and user it:

- imports the verified frames of every pass the record lists with ``flame.import_clips`` into the library
  "ComfyUI Renders" (configurable; opened first when the artist closed it), in a folder per workflow, one clip
  per pass;
- names the clip ``<source>_<workflow>_v<NNN>`` (one-pass job), or each pass's clip
  ``<source>_<workflow>_<pass>_v<NNN>`` (several-pass job), with one version NNN for all passes of the job:
  the next free one across the passes' names (never overwriting). A job that wrote its passes as the layers
  of one EXR per frame (``exr_layers``: the record lists every pass at the same pattern) is imported once, as
  one multi-channel clip (Flame 2022 and later import such a file so) named like a one-pass job's clip, and
  the console says which passes it holds as layers; gives each clip the source's start frame
  (the frames carry the source timecode in their headers) and marks it with a colour so artists see what
  came from the farm;
- where the record names a contact sheet (``contact_sheet``: a JPEG of each pass's first, middle and last frame,
  written by the hand-back beside the frames), puts its path into each clip's comment (the comment of the clip's
  media segment, ``versions[0].tracks[0].segments[0]``: a PyClip has no comment of its own) and into the
  console's import message;
- moves the record to ``<inbox>/imported/``, so that it is imported once, also across Flame restarts.

A failure record, or a record with a frame missing from any pass, becomes a message in Flame's console
(naming the passes and frames) and imports nothing. Records that arrive while Flame is closed are there at
the next start. Records of another project or user are read once and left in the inbox; when the artist
opens another project (``app_initialized`` calls :meth:`RelinkWatcher.reset`, and the watcher also notices
the change on its own), the watcher looks at every record again, so a project's records seen while another
was open are imported when it opens.

A job's passes come in together or not at all: when Flame cannot import one pass, the clips of the passes
imported before it are deleted again (so no version is half there and its number stays free), the console
says which pass failed and why, and the record stays in the inbox, skipped by the idle loop until the
artist asks again ("Import finished renders", which retries it) or Flame restarts. A clip that cannot be
deleted again is named in the message.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Set, Tuple

from farm_plugin.completion.record import HANDLED_FOLDER, CompletionRecord, read_completion
from farm_plugin.errors import ServiceError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.pattern import FramePattern

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
class RenderedPass:
    """One pass of a finished render on disk: its name, its frames as a ``####`` pattern, and which frames."""

    name: str
    output_pattern: str
    frames: Tuple[int, ...]


def passes_of(record: CompletionRecord) -> List[RenderedPass]:
    """The passes a completion record lists (a record built without ``passes``: its top-level output)."""
    listed = record.passes or ()
    if not listed:
        return [RenderedPass("result", record.output_pattern, tuple(record.frames))]
    return [RenderedPass(item.name, item.output_pattern, tuple(item.frames)) for item in listed]


def passes_at(output_pattern: str, pass_names: Sequence[str], frames: Sequence[int], *,
              exr_layers: bool = False) -> List[RenderedPass]:
    """Where a job writes its passes (as the farm does, ``pass_patterns``): a one-pass job at its output
    pattern, each pass of a several-pass job at ``FramePattern.for_pass`` of it, or with ``exr_layers`` every
    pass at the output pattern, as the layers of its one EXR per frame."""
    if len(pass_names) <= 1:
        return [RenderedPass(pass_names[0] if pass_names else "result", output_pattern, tuple(frames))]
    if exr_layers:
        return [RenderedPass(name, output_pattern, tuple(frames)) for name in pass_names]
    pattern = FramePattern.parse(output_pattern)
    return [RenderedPass(name, pattern.for_pass(name).to_hashes(), tuple(frames)) for name in pass_names]


def as_layers(passes: Sequence[RenderedPass]) -> bool:
    """Whether ``passes`` are the layers of one EXR sequence: several passes, all at one pattern (a job with
    ``exr_layers``; every other several-pass job writes each pass at a pattern of its own)."""
    return len(passes) > 1 and len({item.output_pattern for item in passes}) == 1


def imported_text(names: Sequence[str], passes: Sequence[RenderedPass], frames: Sequence[int], library: str) -> str:
    """The console's words for a render imported as the clips ``names``: ``imported sh010_blur_v001 (1001-1024)
    into ComfyUI Renders``, and for passes imported as the layers of one clip which passes it holds."""
    text = f"imported {', '.join(names)} ({format_frame_list(list(frames))}) into {library}"
    if as_layers(passes):
        text += f": one multi-channel clip, the passes {', '.join(item.name for item in passes)} as its layers"
    return text


def missing_text(record: CompletionRecord) -> Optional[str]:
    """None when every pass of ``record`` has all its frames; else what is missing, e.g. ``2 frame(s) missing
    (1010-1011)``, or for a several-pass job ``… (depth: 1010-1011; normals: 1011)``."""
    listed = record.passes or ()
    missing = sorted(set(record.missing_frames).union(*(item.missing_frames for item in listed)))
    empty = [item.name for item in listed if not item.frames]
    if not missing and record.frames and not empty:
        return None
    if len(listed) <= 1 or as_layers(passes_of(record)):  # layers: the passes of one file miss the same frames
        return f"{len(missing)} frame(s) missing ({format_frame_list(missing)})"
    detail = "; ".join(f"{item.name}: {format_frame_list(item.missing_frames) if item.missing_frames else 'none'}"
                       for item in listed if item.missing_frames or not item.frames)
    return f"{len(missing)} frame(s) missing ({detail})"


class PassImportError(ServiceError):
    """Flame could not import one pass of a render. The passes imported before it were deleted again;
    ``left`` names those Flame would not delete."""

    def __init__(self, pass_name: Optional[str], reason: str, left: Sequence[str] = ()) -> None:
        self.pass_name = pass_name  # None for a one-pass job
        self.reason = reason
        self.left = tuple(left)
        what = f"the {pass_name} pass" if pass_name else "the render"
        text = f"{what} could not be imported ({reason})"
        if left:
            text += f"; {', '.join(left)} stayed in the library: delete it by hand"
        elif pass_name:
            text += "; none of its passes was imported"
        super().__init__(text)


@dataclass(frozen=True)
class Outcome:
    record: str
    imported: Tuple[str, ...] = ()  # the clips' names, one per pass
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
        self._foreign: Set[str] = set()  # records of other projects or users, read once (for _seen_project)
        self._held: Set[str] = set()  # records Flame could not import: retried when the artist asks, not per tick
        self._seen_project: Optional[str] = None  # the project _foreign and _held were judged for

    # -- the idle loop -------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.running:
            self.running = True
            self.flame.schedule_idle_event(self._tick, 0)

    def stop(self) -> None:
        self.running = False

    def reset(self) -> None:
        """Forget which records were another project's or could not be imported: the project changed."""
        self._foreign.clear()
        self._held.clear()
        self._seen_project = None

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
        """The name of the project open in Flame ("" while none is)."""
        project = self.flame.projects.current_project
        return text_of(project.name) if project is not None else ""

    def pending(self) -> List[Path]:
        """Records waiting for this project and user, oldest first (none while no project is open)."""
        project = self.project()
        if project != self._seen_project:  # another project: its records may be among those set aside
            self.reset()
            self._seen_project = project
        if not project or not self.inbox.is_dir():
            return []
        found = []
        for path in sorted(self.inbox.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
            if path.name in self._foreign or path.name in self._held:
                continue
            try:
                relink = json.loads(path.read_text(encoding="utf-8")).get("relink") or {}
            except (OSError, ValueError):
                continue  # being written, or not ours to judge: the writer renames whole files in
            if relink.get("project") == project and relink.get("user") in (None, "", self.user):
                found.append(path)
            else:
                self._foreign.add(path.name)
        return found

    def import_next(self) -> Optional[Outcome]:
        """Handle the oldest pending record, if any."""
        pending = self.pending()
        return self.handle(pending[0]) if pending else None

    def import_all(self) -> List[Outcome]:
        """Handle every pending record now (the "Import finished renders" menu action), and try again the
        records Flame could not import before."""
        self._held.clear()
        outcomes: List[Outcome] = []
        while True:
            outcome = self.import_next()
            if outcome is None:
                return outcomes
            outcomes.append(outcome)

    def handle(self, path: Path) -> Outcome:
        record = read_completion(path)
        source = record.relink.get("clip_name") or "clip"
        job = f"{source} · {record.workflow_title}"
        missing = missing_text(record) if record.status == "completed" else None
        if record.status != "completed":
            outcome = Outcome(path.name, message=f"comfyfarm: {job} failed on the farm "
                                                 f"(job {record.deadline_job_id}): {record.reason}")
            self.say(outcome.message, "error")
        elif missing:
            outcome = Outcome(path.name, message=(
                f"comfyfarm: {job} came back incomplete (job {record.deadline_job_id}): {missing}; "
                "nothing imported: requeue the failed tasks in Deadline Monitor"))
            self.say(outcome.message, "warning")
        elif record.part == "preview":
            outcome = Outcome(path.name, message=(
                f"comfyfarm: the preview of {job} is ready "
                f"({len(record.frames)} frames in {Path(record.output_pattern).parent}); the whole clip follows"))
            self.say(outcome.message, "info")
        else:
            try:
                names = self.import_clip(record)
            except PassImportError as exc:
                self._held.add(path.name)
                outcome = Outcome(path.name, message=(
                    f"comfyfarm: {job} (job {record.deadline_job_id}): {exc}; the record stays in the inbox: use "
                    "Import finished renders to try again"))
                self.say(outcome.message, "error")
                return outcome
            sheet = f"; contact sheet {record.contact_sheet}" if record.contact_sheet else ""
            outcome = Outcome(path.name, imported=tuple(names), message=(
                f"comfyfarm: {imported_text(names, passes_of(record), record.frames, self.library_name)}{sheet}"))
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

    def import_clip(self, record: CompletionRecord) -> List[str]:
        return import_render(self.flame, self.library_name, workflow=record.workflow,
                             workflow_title=record.workflow_title, clip_name=record.relink.get("clip_name") or "clip",
                             passes=passes_of(record),
                             comment=sheet_comment(record.contact_sheet) if record.contact_sheet else "")


def sheet_comment(path: str) -> str:
    """The comment an imported clip gets when its record names a contact sheet."""
    return f"comfyfarm contact sheet: {path}"


def import_render(flame: Any, library_name: str, *, workflow: str, workflow_title: str, clip_name: str,
                  passes: Sequence[RenderedPass], comment: str = "") -> List[str]:
    """Import a finished render into ``library_name`` / ``workflow_title``, one clip per pass, as the next
    ``<clip>_<workflow>_vNNN`` (one pass) or ``<clip>_<workflow>_<pass>_vNNN`` (several passes, one NNN for
    all), each with its first frame as start frame and the farm colour; returns the clips' names. Passes that
    are the layers of one EXR sequence (``as_layers``) are that sequence, imported once as one multi-channel
    clip named like a one-pass job's. The version is free for every name a job of the workflow gives its
    clips: a several-pass workflow's jobs, with layers or without, count on from one another. All or nothing:
    raises PassImportError, after deleting the clips of the passes already imported. ``comment`` (a contact sheet's
    path) goes into each clip's comment where Flame takes it (``set_comment``). Main thread only."""
    taken = [f"{clip_name}_{workflow}"] + ([f"{clip_name}_{workflow}_{item.name}" for item in passes]
                                           if len(passes) > 1 else [])
    if as_layers(passes):
        passes = passes[:1]  # the file holds every pass: Flame makes one multi-channel clip of it
    several = len(passes) > 1
    bases = [f"{clip_name}_{workflow}_{rendered.name}" if several else f"{clip_name}_{workflow}"
             for rendered in passes]
    try:
        folder = destination(flame, library_name, workflow_title or workflow)
        version = next_version(folder, taken)
    except Exception as exc:  # e.g. a library Flame will not open or write to: nothing was imported
        logger.exception("comfyfarm: the library %s cannot take the render", library_name)
        raise PassImportError(None, f"the library {library_name} cannot take it: {exc}") from exc
    imported: List[Tuple[str, Any]] = []
    for base, rendered in zip(bases, passes):
        name = f"{base}_v{version:03d}"
        try:
            clip = _import_pass(flame, folder, rendered)
            imported.append((name, clip))
            clip.name = name
            if clip.start_frame != rendered.frames[0]:
                clip.change_start_frame(rendered.frames[0])
            clip.colour = FARM_COLOUR
            if comment:
                set_comment(clip, comment)
        except Exception as exc:  # Flame's own errors have no common type: each is turned into words here
            logger.exception("comfyfarm: importing %s failed", rendered.output_pattern)
            left = take_back(flame, imported)
            raise PassImportError(rendered.name if several else None, str(exc) or type(exc).__name__, left) from exc
    return [name for name, _ in imported]


def set_comment(clip: Any, text: str) -> bool:
    """Put ``text`` into ``clip``'s comment: the ``comment`` PyAttribute of its media segment
    (``versions[0].tracks[0].segments[0]``; a PyClip has none of its own). False, logged, where the clip has no
    segment or Flame refuses it: the import stands, and the console message carries the text."""
    try:
        segment = clip.versions[0].tracks[0].segments[0]
        segment.comment = text
    except Exception:  # Flame's own errors have no common type; a comment is no reason to undo an import
        logger.warning("comfyfarm: could not set the comment of %s", text_of(getattr(clip, "name", "")), exc_info=True)
        return False
    return True


def _import_pass(flame: Any, folder: Any, rendered: RenderedPass) -> Any:
    """The clip of one pass's frames, imported into ``folder``."""
    frames = rendered.frames
    clips = flame.import_clips(sequence_path(rendered.output_pattern, frames[0], frames[-1]), folder)
    if not clips:
        raise RuntimeError(f"Flame imported nothing from {rendered.output_pattern}")
    return clips[0]


def take_back(flame: Any, imported: Sequence[Tuple[str, Any]]) -> List[str]:
    """Delete clips just imported; returns the names of those Flame would not delete."""
    left = []
    for name, clip in imported:
        try:
            flame.delete(clip, confirm=False)
        except Exception:  # reported by name: the artist deletes it by hand
            logger.exception("comfyfarm: could not delete %s after a failed import", name)
            left.append(name)
    return left


def destination(flame: Any, library_name: str, workflow: str) -> Any:
    """The folder ``workflow`` in the library ``library_name`` of the current workspace, both made when missing.
    A library the artist closed is opened (a closed library's content can be neither read nor changed: its
    ``opened`` is False until ``open()``); it stays open, showing the render."""
    workspace = flame.projects.current_project.current_workspace
    library = next((lib for lib in workspace.libraries if text_of(lib.name) == library_name), None)
    if library is None:
        library = workspace.create_library(library_name)
    if not library.opened:
        logger.info("comfyfarm: opening the closed library %s to import into it", library_name)
        if library.open() is False:
            raise RuntimeError(f"Flame did not open the closed library {library_name}")
    folder = next((f for f in library.folders if text_of(f.name) == workflow), None)
    return folder if folder is not None else library.create_folder(workflow)


def next_version(folder: Any, bases: Sequence[str]) -> int:
    """One above the highest version any of ``bases`` has in ``folder`` (``<base>_vNNN``): a version free for
    all of them, so the passes of one job share it."""
    taken: Set[int] = set()
    for clip in folder.clips:
        for base in bases:
            match = re.fullmatch(re.escape(base) + r"_v(\d{3,})", text_of(clip.name))
            if match:
                taken.add(int(match.group(1)))
    return max(taken, default=0) + 1
