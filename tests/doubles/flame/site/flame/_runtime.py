"""The state of one emulated Flame: the project tree, the idle queue, the records, the module functions.

A ``Runtime`` is built and owned by tests/doubles/flame/harness.py's ``FlameSession``; the ``flame`` module
resolves every public name through ``Runtime.module_attribute`` (so each access is checked and, while hooks
load, recorded).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional

from . import _attributes, _exporter, _importer, _objects, _time
from ._attributes import parse_version, version_at_least

log = logging.getLogger(__name__)

CONSOLE_TYPES = ("info", "warning", "error")
DIALOG_TYPES = ("error", "info", "question", "warning")
KNOWN_SHORTCUTS = ("Rescan Python Hooks", "Refresh Thumbnails")
RESCAN_SHORTCUT = "Rescan Python Hooks"
# Module members that a Flame older than the version given lacks (AttributeError, as on a real old Flame):
# flame.messages came with 2023.1 (logik-portal refresh_python_hooks: "Message to Flame message window only shows
# up in Flame 2023.1+"; shared/STYLE.md).
GATED_MODULE_MEMBERS = {"messages": "2023.1"}
TABS = ("MediaHub", "Conform", "Timeline", "Effects", "Batch", "Tools")
IDLE_CALL_BUDGET_SECONDS = 0.5  # an idle callback slower than this is recorded as a warning


@dataclass
class ConsoleMessage:
    message: str
    type: str
    duration: int
    at_seconds: float


@dataclass
class DialogRecord:
    """A dialog: from messages.show_in_dialog (origin "hook", with the scripted answer) or from Flame itself
    (origin "flame", e.g. a preset-version warning; answer "")."""

    title: str
    message: str
    type: str
    buttons: List[str]
    cancel_button: str
    answer: str
    origin: str = "hook"


@dataclass
class ImportRecord:
    path: str
    destination: Any
    clips: List[Any]
    error: Optional[str]


@dataclass
class IdleEvent:
    function: Callable[[], Any]
    delay_seconds: int
    due_seconds: float
    seq: int


@dataclass
class ShortcutRecord:
    description: str
    update_list: bool
    result: bool


@dataclass(repr=False)
class Runtime:
    version: str
    project_name: str
    user_name: str
    root: str
    preset_version: int
    import_timecode: str = "header"
    import_frame_rate: str = "24 fps"
    import_colour_spaces: Dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Flame runtime {self.version} project={self.project_name!r}{' (closed)' if self.closed else ''}>"

    def __post_init__(self) -> None:
        self.version_tuple = parse_version(self.version)
        self.main_thread_id = threading.get_ident()
        self.closed = False
        self._ids = itertools.count(1)
        self._jobs = itertools.count(1)
        self.wiretap_storage_id = f"{uuid.UUID(int=0x5700 + 1)}".upper()
        self.clock_seconds = 0.0
        self.idle_queue: List[IdleEvent] = []
        self._idle_seq = itertools.count()
        self.console_messages: List[ConsoleMessage] = []
        self.dialogs: List[DialogRecord] = []
        self.imports: List[ImportRecord] = []
        self.exports: List[_exporter.ExportRecord] = []
        self.background_jobs: Dict[str, _exporter.BackgroundJob] = {}
        self.shortcuts: List[ShortcutRecord] = []
        self.renders: List[Any] = []
        self.warnings: List[str] = []
        self.dialog_answers: Deque[str] = deque()
        self.dialog_responder: Optional[Callable[[DialogRecord], str]] = None
        self.import_watch: Optional[List[str]] = None
        self.hook_modules: List[Any] = []
        self.current_action: Optional[Dict[str, Any]] = None
        self.media_panel_selection: List[Any] = []
        self.timeline_selection: List[Any] = []
        self.batch_selection: List[Any] = []
        self.timeline_clip: Optional[Any] = None
        self.current_tab = "Timeline"
        self.rescan_hooks: Optional[Callable[[], None]] = None  # set by the harness: "Rescan Python Hooks"
        if self.import_timecode not in ("header", "frame_number"):
            raise ValueError("import_timecode must be 'header' or 'frame_number'")
        _time.frame_rate(self.import_frame_rate)

        project_folder = os.path.join(self.root, "opt", "Autodesk", "project", self.project_name)
        self.project = _objects.PyProject(self, self.project_name, self.project_name, project_folder)
        self.user = _objects.PyUser(self, self.user_name)
        self._default_media_panel()
        self._services = {
            "projects": _objects.PyProjectSelector(self),
            "project": _objects.PyProjectSelector(self),
            "users": _objects.PyUsers(self),
            "media_panel": _objects.PyMediaPanel(self),
            "messages": _objects.PyMessages(self),
            "timeline": _objects.PyTimeline(self),
        }
        self._classes = {
            cls.__name__: cls
            for cls in (
                _attributes.PyAttribute, _attributes.PyFlameObject, _time.PyTime,
                _objects.PyArchiveEntry, _objects.PyClip, _objects.PySequence, _objects.PySegment,
                _objects.PyTrack, _objects.PyVersion, _objects.PyMarker, _objects.PyTimelineFX,
                _objects.PyReel, _objects.PyReelGroup, _objects.PyFolder, _objects.PyLibrary, _objects.PyDesktop,
                _objects.PyWorkspace, _objects.PyProject, _objects.PyProjectSelector, _objects.PyBatch,
                _objects.PyNode, _objects.PyClipNode, _objects.PyMediaPanel, _objects.PyMessages,
                _objects.PyTimeline, _objects.PyUser, _objects.PyUsers, _exporter.PyExporter,
            )
        }
        self._functions = self._make_functions()

    # -- checks -----------------------------------------------------------------------------------------
    def check(self, member: str) -> None:
        """Refuse calls into a closed session or from a thread other than the session's (Flame's main) one."""
        if self.closed:
            raise RuntimeError(f"flame.{member}: this Flame session is closed")
        if threading.get_ident() != self.main_thread_id:
            raise RuntimeError(
                f"flame.{member} called from thread {threading.current_thread().name!r}: Flame's Python API may "
                "only be called on Flame's main thread (hooks, idle events, Qt slots); a call from another thread "
                "crashes Flame. Hand the work to flame.schedule_idle_event from the main thread instead."
            )

    def module_attribute(self, name: str) -> Any:
        self.check(name)
        if self.import_watch is not None:
            self.import_watch.append(name)
        gate = GATED_MODULE_MEMBERS.get(name)
        if gate is not None and not self.supports(gate):
            raise AttributeError(f"module 'flame' has no attribute '{name}' (Flame {self.version}; it came with "
                                 f"{gate})")
        if name in self._services:
            return self._services[name]
        if name == "batch":
            return self.batch
        if name in self._classes:
            return self._classes[name]
        if name in self._functions:
            return self._functions[name]
        raise AttributeError(f"module 'flame' has no attribute '{name}'")

    def public_names(self) -> List[str]:
        names = set(self._services) | {"batch"} | set(self._classes) | set(self._functions)
        return sorted(n for n in names if n not in GATED_MODULE_MEMBERS or self.supports(GATED_MODULE_MEMBERS[n]))

    # -- ids --------------------------------------------------------------------------------------------
    def new_uid(self) -> str:
        return str(uuid.UUID(int=(0xF1A3E << 96) + next(self._ids))).upper()

    def new_wiretap_id(self) -> str:
        return f"/projects/{self.project_name}/0x{0x1000 + next(self._ids):08X}"

    def new_job_id(self) -> str:
        return f"bb{next(self._jobs):06d}"

    # -- records ----------------------------------------------------------------------------------------
    def record_import(self, path: str, destination: Any, clips: List[Any], error: Optional[str]) -> None:
        self.imports.append(ImportRecord(path, destination, list(clips), error))

    def record_flame_dialog(self, title: str, message: str, type_: str) -> None:
        self.dialogs.append(DialogRecord(title, message, type_, [], "", "", origin="flame"))

    def log_render(self, clip: Any) -> None:
        self.renders.append(clip)

    def show_in_console(self, message: Any, type_: Any, duration: Any) -> None:
        if not isinstance(message, str):
            raise TypeError(f"show_in_console: message must be a str, not {type(message).__name__}")
        if type_ not in CONSOLE_TYPES:
            raise ValueError(f"show_in_console: type must be one of {CONSOLE_TYPES}, not {type_!r}")
        if not _time._is_int(duration):
            raise TypeError(f"show_in_console: duration must be an int number of seconds (-1: stays), not {duration!r}")
        self.console_messages.append(ConsoleMessage(message, type_, duration, self.clock_seconds))

    def clear_console(self) -> None:
        self.console_messages.append(ConsoleMessage("", "info", 0, self.clock_seconds))

    def show_in_dialog(self, title: Any, message: Any, type_: Any, buttons: Any, cancel_button: Any) -> str:
        if not isinstance(title, str) or not isinstance(message, str):
            raise TypeError("show_in_dialog: title and message must be str")
        if type_ not in DIALOG_TYPES:
            raise ValueError(f"show_in_dialog: type must be one of {DIALOG_TYPES}, not {type_!r}")
        if not isinstance(buttons, list) or not all(isinstance(b, str) for b in buttons):
            raise TypeError(f"show_in_dialog: buttons must be a list of str, not {buttons!r}")
        if not isinstance(cancel_button, str):
            raise TypeError("show_in_dialog: cancel_button must be a str")
        if not buttons and not cancel_button:
            raise ValueError("show_in_dialog: a dialog needs at least one button")
        if self.current_action is not None and self.current_action.get("waitCursor", True):
            self.warnings.append(
                f"show_in_dialog({title!r}) from the action {self.current_action.get('name')!r} whose waitCursor "
                "is True: set \"waitCursor\": False on actions that open dialogs"
            )
        record = DialogRecord(title, message, type_, list(buttons), cancel_button, "")
        if self.dialog_answers:
            answer = self.dialog_answers.popleft()
        elif self.dialog_responder is not None:
            answer = self.dialog_responder(record)
        else:
            raise RuntimeError(
                f"Unexpected dialog {title!r}: {message!r} (buttons {buttons}, cancel {cancel_button!r}); "
                "script the artist's answer with FlameSession.answer_dialogs(...)"
            )
        if answer not in buttons and not (cancel_button and answer == cancel_button):
            raise ValueError(
                f"Scripted answer {answer!r} is not a button of dialog {title!r}: {buttons} / {cancel_button!r}"
            )
        record.answer = answer
        self.dialogs.append(record)
        return answer

    # -- media panel --------------------------------------------------------------------------------------
    def iter_entries(self, root: Optional[Any] = None) -> Iterator[Any]:
        """Every live Media Panel entry under root (default: workspace, desktop, shared libraries)."""
        roots = [root] if root is not None else [self.project._workspace, *self.project._shared]
        stack = list(reversed(roots))
        while stack:
            node = stack.pop()
            if node._deleted:
                continue
            yield node
            if isinstance(node, _objects.PyLibrary) and not node._opened:
                continue
            children: List[Any] = []
            if isinstance(node, _objects.PyWorkspace):
                children = [node._desktop, *node._items]
            elif isinstance(node, _objects._Container):
                children = list(node._items)
            stack.extend(reversed(children))

    def delete_object(self, obj: Any) -> None:
        def mark(o: Any) -> None:
            o._deleted = True
            for child in getattr(o, "_items", []):
                mark(child)
            for version in getattr(o, "_versions", []):
                version._deleted = True
                for track in version._tracks:
                    track._deleted = True
                    for seg in track._segments:
                        seg._deleted = True

        parent = obj._parent
        if isinstance(parent, _objects._Container):
            parent._require_writable()
            parent._discard(obj)
        if isinstance(obj, _objects.PyLibrary) and obj in self.project._shared:
            self.project._shared.remove(obj)
        mark(obj)
        self.media_panel_selection = [e for e in self.media_panel_selection if not e._deleted]
        self.timeline_selection = [s for s in self.timeline_selection if not s._deleted]

    def load_project(self, name: str) -> Any:
        """Unload the current project (its objects refuse every use afterwards) and load ``name``, with the
        default Media Panel of a new project. Idle events and the selection's absence carry over; hooks are
        the harness's business."""
        old = self.project
        stack: List[Any] = [old, old._workspace, *old._shared]
        while stack:
            node = stack.pop()
            node._deleted = True
            stack.extend(getattr(node, "_items", []))
            if isinstance(node, _objects.PyWorkspace):
                stack.append(node._desktop)
            for version in getattr(node, "_versions", []):
                version._deleted = True
                for track in version._tracks:
                    track._deleted = True
                    for seg in track._segments:
                        seg._deleted = True
        self.media_panel_selection, self.timeline_selection, self.batch_selection = [], [], []
        self.timeline_clip = None
        self.project_name = name
        project_folder = os.path.join(self.root, "opt", "Autodesk", "project", name)
        self.project = _objects.PyProject(self, name, name, project_folder)
        self._default_media_panel()
        return self.project

    def _default_media_panel(self) -> None:
        desktop = self.project._workspace._desktop
        reels = desktop.create_reel_group("Reels")
        for n in range(1, 5):
            reels.create_reel(f"Reel {n}")
        reels.create_reel("Sequences", sequence=True)
        self.batch = desktop._add(_objects.PyBatch(self, "Batch"))
        self.project._workspace.create_library("Default Library")

    # -- idle loop ----------------------------------------------------------------------------------------
    def schedule_idle_event(self, function: Any, delay: Any = 0) -> None:
        if not callable(function):
            raise TypeError(f"schedule_idle_event: function must be callable, not {function!r}")
        if not _time._is_int(delay) or delay < 0:
            raise TypeError(f"schedule_idle_event: delay must be an int number of seconds >= 0, not {delay!r}")
        self.idle_queue.append(IdleEvent(function, delay, self.clock_seconds + delay, next(self._idle_seq)))

    def pump_idle(self, seconds: float, max_events: int) -> int:
        """Advance the virtual clock by ``seconds``, running idle events as they fall due (see harness)."""
        end = self.clock_seconds + seconds
        ran = 0
        while True:
            due = sorted((e for e in self.idle_queue if e.due_seconds <= self.clock_seconds), key=lambda e: e.seq)
            if due:
                for event in due:
                    self.idle_queue.remove(event)
                for event in due:
                    ran += 1
                    if ran > max_events:
                        raise RuntimeError(
                            f"pump_idle ran more than {max_events} idle events: an idle function keeps "
                            "rescheduling itself with delay=0 (Flame would spin)"
                        )
                    started = time.monotonic()
                    event.function()
                    took = time.monotonic() - started
                    if took > IDLE_CALL_BUDGET_SECONDS:
                        self.warnings.append(
                            f"idle event {getattr(event.function, '__qualname__', event.function)!r} took "
                            f"{took:.2f} s: idle functions must be quick (they block Flame's UI)"
                        )
                continue
            pending = [e.due_seconds for e in self.idle_queue]
            next_due = min(pending) if pending else None
            if next_due is None or next_due > end:
                self.clock_seconds = max(self.clock_seconds, end)
                return ran
            self.clock_seconds = next_due

    # -- module functions --------------------------------------------------------------------------------
    def _make_functions(self) -> Dict[str, Callable[..., Any]]:
        rt = self

        def import_clips(path: Any, destination: Any = None) -> list:
            """Import one or many clips from a path (file, [first-last] sequence, folder, pattern or list)."""
            rt.check("import_clips")
            return _importer.import_clips(rt, path, destination)

        def schedule_idle_event(function: Any, delay: int = 0) -> None:
            """Register a function to call when the application is idle, at least delay seconds from now."""
            rt.check("schedule_idle_event")
            rt.schedule_idle_event(function, delay)

        def execute_shortcut(description: str, update_list: bool = True) -> bool:
            """Execute the Flame shortcut."""
            rt.check("execute_shortcut")
            if not isinstance(description, str):
                raise TypeError("execute_shortcut: description must be a str")
            result = description in KNOWN_SHORTCUTS
            rt.shortcuts.append(ShortcutRecord(description, update_list, result))
            if description == RESCAN_SHORTCUT and rt.rescan_hooks is not None:
                rt.rescan_hooks()
            return result

        def find_by_name(name: str, parent: Any = None) -> list:
            """Find a Flame object in the Media Panel by name."""
            rt.check("find_by_name")
            if not isinstance(name, str):
                raise TypeError("find_by_name: name must be a str")
            return [
                e for e in rt.iter_entries(parent)
                if e is not parent and isinstance(e, _objects.PyArchiveEntry) and e._values.get("name") == name
            ]

        def find_by_uid(uid: str) -> Any:
            """Find a Flame object in the Media Panel by UID (the entry's ``uid`` attribute)."""
            rt.check("find_by_uid")
            return next((e for e in rt.iter_entries() if e._values.get("uid") == uid), None)

        def find_by_wiretap_node_id(node_id: str) -> Any:
            """Find a Flame object in the Media Panel by Wiretap Node ID."""
            rt.check("find_by_wiretap_node_id")
            return next((e for e in rt.iter_entries() if getattr(e, "_wiretap_id", None) == node_id), None)

        def delete(object: Any, confirm: bool = True) -> bool:
            """Delete the target object."""
            rt.check("delete")
            if not isinstance(object, _objects.PyFlameObject) or object._deleted:
                raise TypeError(f"delete: not a live Flame object: {object!r}")
            rt.delete_object(object)
            return True

        def duplicate(object: Any, keep_node_connections: bool = False) -> Any:
            """Duplicate the target object (clips: into the same container, same name)."""
            rt.check("duplicate")
            if not isinstance(object, _objects.PyClip) or object._deleted:
                raise NotImplementedError(f"The Flame double duplicates clips only, not {object!r}")
            copy = _objects.copy_clip(rt, object)
            if isinstance(object._parent, _objects._Container):
                object._parent._add(copy)
            return copy

        def get_version() -> str:
            """Get the application version."""
            rt.check("get_version")
            return rt.version

        def get_version_major() -> str:
            rt.check("get_version_major")
            return str(rt.version_tuple[0])

        def get_version_minor() -> str:
            rt.check("get_version_minor")
            return str(rt.version_tuple[1] if len(rt.version_tuple) > 1 else 0)

        def get_version_patch() -> str:
            rt.check("get_version_patch")
            return str(rt.version_tuple[2] if len(rt.version_tuple) > 2 else 0)

        def get_current_tab() -> str:
            rt.check("get_current_tab")
            return rt.current_tab

        def set_current_tab(tab: str) -> None:
            rt.check("set_current_tab")
            if tab not in TABS:
                raise ValueError(f"set_current_tab: unknown tab {tab!r}; tabs: {', '.join(TABS)}")
            rt.current_tab = tab

        functions = {
            f.__name__: f
            for f in (
                import_clips, schedule_idle_event, execute_shortcut, find_by_name, find_by_uid,
                find_by_wiretap_node_id, delete, duplicate, get_version, get_version_major, get_version_minor,
                get_version_patch, get_current_tab, set_current_tab,
            )
        }
        for f in functions.values():
            f.__module__ = "flame"
            f.__qualname__ = f.__name__
        return functions

    # -- background exports -------------------------------------------------------------------------------
    def finish_background_job(self, job_id: str) -> List[str]:
        job = self.background_jobs.get(job_id)
        if job is None:
            raise KeyError(f"No background export job {job_id!r}; jobs: {sorted(self.background_jobs)}")
        if job.state == "queued":
            for write in job.writes:
                write()
            job.state = "completed"
            job.record.state = "written"
        return job.record.paths

    def supports(self, minimum: str) -> bool:
        return version_at_least(self.version_tuple, parse_version(minimum))
