"""Build an emulated Flame for tests: ``FlameSession`` installs the ``flame`` test double and its state.

    session = FlameSession(version="2025.2", project="show_2026", user="ann", root=tmp_path / "flame")
    lib = session.workspace.create_library("Plates")
    clip = session.add_clip(lib, name="sh010_plate", frames=range(1001, 1049), fps="24 fps", width=64,
                            height=36, timecode="01:00:00:00", source_dir=tmp_path / "plates", bit_depth=16)
    session.select(clip)                          # flame.media_panel.selected_entries
    hooks = session.load_hooks(hook_file)         # imports the file as Flame does, calls nothing
    hooks.run_action("Submit to ComfyUI Farm…")    # isVisible/isEnabled checked, execute(selection)
    session.pump_idle(seconds=1.0)                # runs schedule_idle_event callbacks as they fall due
    session.console_messages; session.dialogs; session.exports; session.imports; session.warnings
    session.switch_project("show_b")              # project_changed_dict + app_initialized on loaded hooks
    session.rescan_hooks()                        # "Rescan Python Hooks": hook files imported again, nothing called
    session.close()                               # or use it as a context manager / the pytest fixtures

While a session is open, ``import flame`` gives a fresh copy of tests/doubles/flame/site/flame (the
session puts that folder on sys.path, as Flame's own module exists only inside Flame); ``close()`` removes
it, so no state survives a session. Only one session can be open at a time. A product module that keeps
``import flame`` at its top level holds the old copy after its session closes and fails in the next
session: import ``flame`` inside functions, as Autodesk's examples do.

What the double does as the evidence says (tests/doubles/test_fake_flame_contract.py, last section, names each
source), beyond flame.md:

* ``clip.duration`` counts between the marks when the clip has any (an unset mark stands for the clip's start
  or end); the segments' record times keep the whole clip. Marks are cleared by assigning ``None``.
* ``clip.start_time`` is a PyAttribute (read-only here) holding the PyTime of the first frame: read
  ``.get_value()``; ``str()`` gives ``01:00:00+00``.
* ``flame.messages`` does not exist before Flame 2023.1 (AttributeError).
* A closed library (``opened`` False) refuses reading and changing its content until ``open()``.
* ``switch_project(name)`` unloads the project (its objects then raise RuntimeError on any use), loads a new
  one with a new project's Media Panel, and calls ``project_changed_dict(info)`` then ``app_initialized(name)``
  on every loaded hook module; pending idle events still run.
* "Rescan Python Hooks" (``rescan_hooks()``, or ``flame.execute_shortcut`` with it) imports every loaded hook
  file again as a new module of the same name (modules it imported stay in sys.modules) and calls nothing.
* While a session is open this test process looks like Flame's: ``sys.executable`` is Flame's binary
  (``<root>/opt/Autodesk/flame_<v>/bin/flame``, which refuses Python's options); ``PYTHONPATH`` starts with
  ``<root>/opt/Autodesk/flame_<v>/python`` and ``LD_LIBRARY_PATH`` with ``<root>/opt/Autodesk/python/<v>/lib``
  and ``<root>/opt/Autodesk/lib64/<v>`` (as tk-flame's bootstrap sets them); Flame's own Python is
  ``<root>/opt/Autodesk/python/<v>/bin/python3`` (a stand-in running ``REAL_PYTHON``); the Qt binding of the
  other Qt major version (PySide6 for Flame 2023-2024, PySide2 for 2025+) cannot be imported afresh.
  ``close()`` restores all of it, the whole environment included (what code "inside Flame" set in it stays
  with the session). Start Pythons of your own with ``REAL_PYTHON``.

What the double does as shared/reference/flame.md says (section numbers from there):

* §2 PyAttribute (``get_value``/``set_value``/assignment, quoted ``str()`` of strings, ``attr + "str"``);
  properties return plain values. PyAttributes: clip ``name``, ``in_mark``, ``out_mark``,
  ``current_time``, ``selected``, ``colour``, ``uid`` (read-only), and from 2025.1 ``tags`` (list of str)
  and ``colour_label`` (str), from 2026 ``shot_name``; segment ``name``, ``shot_name``, ``comment``,
  ``hidden``, ``selected``, ``colour``; library/folder/reel group ``name``, ``expanded``, ``colour``;
  reel, desktop, workspace ``name``; track ``name``, ``hidden``; marker ``name``, ``comment``, ``colour``,
  ``location``, ``duration``. PyProject ``name`` is a plain property (the stubs list it as one).
* §2 PyTime's three constructors, ``frame``, ``frame_rate``, ``relative_frame``, ``timecode``,
  ``str()`` = ``01:00:00+00``; ``PyTime + int``.
* isinstance-checkable classes, ``PySequence(PyClip)``; ``PyExporter.PresetVisibility`` /
  ``PyExporter.PresetType`` (nested, with ``.values``/``.names`` like Boost.Python enums; also
  ``PyExporter.Autodesk``... as Boost's export_values does; NOT at module level, as in Flame).
* §1 hooks, §3 PyExporter, §4 import_clips, §5 idle events and the main-thread rule.

Guesses, where flame.md and the public sources are silent (each strict: code that relies on something
the double does not promise fails here rather than in Flame):

Time and marks
* An absolute frame is the timecode counted in frames from 00:00:00:00 (01:00:00:00 @ 24 fps = 86400):
  ``PyTime.frame`` of a clip's time, a segment's ``source_in``/``record_in``. A relative frame is 1-based
  from the clip's (or source media's, for source_in/out) first frame, independent of ``start_frame``.
  Durations (``clip.duration``, ``record_duration``, ``source_duration``) are PyTimes whose ``frame`` and
  ``relative_frame`` are both the number of frames (AYON reads ``clip.duration.frame`` as a count).
* ``PyTime(relative)`` has no ``frame``/``frame_rate``/``timecode`` and ``PyTime(tc_or_frame, rate)`` no
  ``relative_frame`` until a clip resolves them: those raise RuntimeError. ``str()`` of a relative-only
  PyTime is the number. Drop-frame timecodes print with ``;`` (``+`` otherwise).
* ``in_mark``/``out_mark``/``current_time`` take an int relative frame or a PyTime (one with an absolute
  frame is converted through the clip's start timecode, so a PyTime from a clip works on its duplicate);
  ``out_mark`` is exclusive (2..N+1); a value outside the clip raises ValueError; an unset mark's
  ``get_value()`` is ``None``. ``current_time`` starts at relative frame 1.
* Segment ``source_out``/``record_out`` are the last frame (inclusive: AYON computes
  ``source_out - source_in + 1``); export hook ``sourceOut``/``recordOut`` are exclusive (tk-flame-export
  subtracts 1). ``head``/``tail`` are ints. Segment ``type`` is ``"Video Segment"`` or ``"Gap"``; a gap's
  source members are ``None``/``""``/0.
* ``clip.start_frame`` (default: the first frame number) is separate from the timecode;
  ``change_start_frame`` changes it and the segments' ``start_frame``, never the timecode.
* ``segment.head`` is the number of source frames before the source in (an int; Flame may say
  ``"infinite"`` for generated media, which the double does not make); ``segment.start_frame`` is the
  frame number of the source media's first frame, and ``source_in.relative_frame`` counts from it (1-based).
* ``segment.match(destination, preserve_handle=False, use_sequence_info=True, include_nested_content=False,
  include_timeline_fx=False)`` (the stubs' signature; flameTimewarpML calls it as ``match(parent,
  include_timeline_fx=False)``) adds a new source clip of the segment's media to a reel, folder or library
  and returns it. "Prevent the unrolling of the media handles" is read as: False (the default) shows the
  whole source media with no marks; True shows the segment's frames only, with the source in's timecode and
  frame number. ``use_sequence_info`` names the clip after the segment (else its source); nested content is
  not emulated (NotImplementedError); a gap raises RuntimeError; a locked shared library refuses it.

Media
* ``segment.file_path`` of a file sequence is the path of its first frame (``/plates/sh010.1001.exr``, as
  AYON parses it); media that lives only inside Flame has ``file_path == ""``.
* ``add_clip(source_dir=...)`` writes real frames ``<source_dir>/<name>.<frame padded>.<ext>`` with the
  test pattern of ``frame_tag`` and, by default, SMPTE timecode and FramesPerSecond in EXR/DPX headers.
* ``colour_primaries``/``transfer_characteristics`` are H.273 codes from a small table (2 = unknown);
  ``get_colour_space()`` is the clip's colour space name (imports: ``import_colour_spaces`` by extension).
* ``clips`` lists clips without sequences; ``sequences`` lists sequences.

Media Panel
* A new project has workspace "Workspace" with library "Default Library" (open) and a desktop with reel
  group "Reels" (Reel 1-4 and a "Sequences" reel) and batch group "Batch".
* ``create_library`` libraries are open; ``create_shared_library`` libraries are locked: changing one (create,
  import, delete, duplicate into it) needs ``acquire_exclusive_access()`` first. Reading or changing a
  closed library's content raises RuntimeError (call ``open()``).
* ``uid`` values are upper-case UUID strings; ``find_by_uid`` matches ``uid`` (not ``source_uid``);
  ``get_wiretap_node_id()`` is ``/projects/<project>/0x...``; both opaque. ``flame.duplicate(clip)`` puts
  a copy (same name, media, marks; new uid and node id) in the same container; other objects are not
  emulated. ``flame.delete`` removes the object; any later use of it raises RuntimeError.
* ``media_panel.selected_entries`` is a new list; hooks get the selection as a tuple.

import_clips (chosen; flame.md §4 says this is unconfirmed)
* ``start_frame`` = the first frame number; timecode from the first file's ``smpte:TimeCode`` when
  ``import_timecode="header"`` (default) and present, otherwise the first frame number read as a frame
  count (frame 1001 @ 24 fps → 00:00:41+17); frame rate from the header's FramesPerSecond, else
  ``import_frame_rate`` (default "24 fps"); name = file name without frame number and extension.
* ``[0100-0200]`` (leading zero, or both numbers the same length) is zero-padded to that width;
  ``[100-2000]`` is unpadded. Folders (2023.2+) and ``{name}_v{version}.{frame}.{extension}`` patterns give
  one clip per contiguous numbered run. A missing path, a sequence with any missing frame, an unreadable
  header or an unknown frame rate import nothing for that path: the call returns the clips that did import
  (``[]``) and the failure is in ``session.imports`` (``error``). No destination, or one that is not a
  reel/folder/library, raises TypeError.

PyExporter (see site/flame/_exporter.py for the preset rules)
* Preset version per emulated Flame: 2023.x → 12, 2024.x → 13, 2025.x → 14, 2026.x → 15 (only 9, 14 and
  15 appear in public presets; override with ``preset_version=``). The factory presets
  ``<root>/opt/Autodesk/presets/<version>/export/presets/flame/file_sequence/{OpenEXR,DPX,PNG,Jpeg}/...``
  are written with it. A mismatch records a Flame dialog (``origin="flame"``) and raises RuntimeError.
* Preset dirs live under ``<root>/opt/Autodesk`` (Autodesk: ``presets/<version>/export/presets/flame``,
  Shared: ``shared/export/presets``, Project: ``project/<project>/export/presets``, User:
  ``user/<user>/export/presets``; types ``file_sequence``, ``movie_file``, ``audio_file``,
  ``sequence_publish``, ``distribution_package``). Enum numbers: PresetVisibility User 0, Project 1,
  Autodesk 2, Shared 3, Shotgun 4, Flow_Production_Tracking 5; PresetType Image_Sequence 0 (TWML uses
  ``values.get(0)``), Audio 1, Movie 2, Sequence_Publish 3, Distribution_Package 4.
* ``export`` refuses (RuntimeError, nothing written, no hook called): a missing output directory, a clip
  with unrendered Timeline FX (render it first), an in mark not before the out mark, a preset it cannot
  emulate. A target file that exists needs the hooks object's ``exportOverwriteFile(path)`` to return
  ``"overwrite"``; otherwise RuntimeError. Between marks: frames in_mark..out_mark-1 (an unset mark means
  the clip's start/end). Hook order: preExport, then per clip preExportSequence, preExportAsset,
  (frames written when foreground), postExportAsset, postExportSequence; then postExport. With
  ``hooks=None`` the snake_case export hooks of loaded hook files are called instead. ``info["abort"] =
  True`` in preExport stops the export. A preExportAsset hook may change ``resolvedPath`` (keeping the
  ``[first-last]`` token). Asset info: destinationHost ("localhost"), destinationPath, namePattern,
  resolvedPath (``name.[00086400-00086447].exr``, the bare name for one frame), assetName, sequenceName,
  shotName, assetType ("video"), width, height, aspectRatio, depth ("16 fp", "10-bits"), scanFormat,
  fps ("24", "23.976"), sequenceFps, drop, sequenceDrop, sourceIn/sourceOut (the written frame numbers,
  out exclusive), recordIn/recordOut (absolute timecode frames, out exclusive), handleIn/handleOut (0),
  startFrame, track ("001"), trackName, segmentIndex, versionName, versionNumber, colourSpace,
  isBackground, backgroundJobId (``"bb000001"``; "" in the foreground). Frames carry the source pixels
  (Timeline FX are not applied) and the frame's timecode in EXR/DPX headers.

Threads, hooks, UI
* Every ``flame.*`` access and every member of a Flame object, from a thread other than the session's,
  raises RuntimeError: also ``schedule_idle_event`` (TWML calls it from a worker thread, so Flame may
  tolerate that one; the double does not).
* ``schedule_idle_event(function, delay)``: delay is an int number of seconds (a float is a TypeError, as
  Boost's ``(int)delay``); ``pump_idle`` runs callbacks when the virtual clock reaches their due time; one
  scheduled during a tick runs on a later tick; an exception in a callback propagates out of
  ``pump_idle``; callbacks slower than 0.5 s of real time are recorded in ``warnings``.
* ``show_in_dialog`` answers from ``answer_dialogs(...)`` (in order) or ``dialog_responder``; with neither,
  or an answer that is not a button, it raises. Console message types: info, warning, error.
* Hook files: ``load_hooks`` imports the file under its stem as module name (one namespace, as in Flame;
  a clash raises), with its folder on sys.path (TWML imports its sibling modules that way). Menus: group
  keys name, actions (+ hierarchy/order/separator and min/max version); action keys name, caption,
  execute, isVisible, isEnabled, minimumVersion, maximumVersion, waitCursor, hierarchy, order,
  separator; any other key raises (catches typos). min/maximumVersion are inclusive; hierarchy/order/
  separator on an entry shown before 2023.2 raise (gate them with ``"minimumVersion": "2023.2.0.0"``);
  isVisible/isEnabled must be bools or return bools. ``show_in_dialog`` inside an action whose
  ``waitCursor`` is not False is recorded in ``warnings``.
* ``execute_shortcut`` returns True for "Rescan Python Hooks" and "Refresh Thumbnails", False otherwise;
  every call is in ``session.shortcuts``; "Rescan Python Hooks" rescans (above).
* ``project_changed_dict``'s info holds ``flameProjectName`` and ``shotgunProjectName`` (empty), as Autodesk's
  hook templates describe it; a project switch creates the new project's default Media Panel.
* Flame's behaviour with the other Qt binding is a guess: the double refuses its import (ImportError) rather
  than crash.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

log = logging.getLogger(__name__)

SITE_DIR = Path(__file__).resolve().parent / "site"
DEFAULT_VERSION = "2025.2"
PRESET_VERSIONS = {2023: 12, 2024: 13, 2025: 14, 2026: 15}
# The Python that runs the tests, taken before any session makes sys.executable Flame's binary. Tests that
# start a Python themselves while a session is open use this one.
REAL_PYTHON = sys.executable
FIRST_PYSIDE6_FLAME = 2025  # Flame 2023-2024: Python 3.9 and PySide2; 2025 and later: Python 3.11 and PySide6

MENU_HOOKS = {
    "media_panel": "get_media_panel_custom_ui_actions",
    "timeline": "get_timeline_custom_ui_actions",
    "main_menu": "get_main_menu_custom_ui_actions",
    "batch": "get_batch_custom_ui_actions",
    "mediahub_files": "get_mediahub_files_custom_ui_actions",
}
GROUP_KEYS = {"name", "actions", "hierarchy", "order", "separator", "minimumVersion", "maximumVersion"}
ACTION_KEYS = {
    "name", "caption", "execute", "isVisible", "isEnabled", "minimumVersion", "maximumVersion", "waitCursor",
    "hierarchy", "order", "separator",
}
STRUCTURE_KEYS = ("hierarchy", "order", "separator")
STRUCTURE_MIN_VERSION = (2023, 2)


class FlameHookError(Exception):
    """A hook file broke Flame's hook contract (bad menu entry, missing hook, action not available)."""


def default_preset_version(version: str) -> int:
    from_major = PRESET_VERSIONS.get(int(str(version).split(".")[0]))
    if from_major is None:
        raise ValueError(f"No default export preset version for Flame {version}; pass preset_version=")
    return from_major


@dataclass
class MenuAction:
    """One menu action as Flame would show it for a selection."""

    name: str
    caption: str
    group: str
    visible: bool
    enabled: bool
    wait_cursor: bool
    hierarchy: Tuple[str, ...]
    order: Optional[int]
    separator: Optional[str]
    execute: Callable[[Tuple[Any, ...]], Any]
    raw: Dict[str, Any] = field(repr=False)


class HookModule:
    """A hook file loaded by ``FlameSession.load_hooks``: its module and what it did with ``flame`` at import."""

    def __init__(
        self, session: FlameSession, path: Path, module: ModuleType, accesses: List[str], importers: List[str]
    ) -> None:
        self.session = session
        self.path = path
        self.module = module
        self.import_time_access: Tuple[str, ...] = tuple(dict.fromkeys(accesses))  # unique, in order
        self.modules_importing_flame: Tuple[str, ...] = tuple(importers)

    @property
    def touched_flame_at_import(self) -> bool:
        """True when loading the file used ``flame`` (``flame.X``/``from flame import X``) or left a module-level
        ``import flame`` in the hook or in a module it imported."""
        return bool(self.import_time_access or self.modules_importing_flame)

    # -- menus ------------------------------------------------------------------------------------------
    def actions(self, menu: str = "media_panel", selection: Optional[Sequence[Any]] = None) -> List[MenuAction]:
        """The actions the menu hook offers on this Flame version, evaluated for the selection (default: the
        session's media panel selection; the timeline's for ``menu="timeline"``)."""
        if menu not in MENU_HOOKS:
            raise ValueError(f"Unknown menu {menu!r}; menus: {', '.join(MENU_HOOKS)}")
        function = getattr(self.module, MENU_HOOKS[menu], None)
        if function is None:
            raise FlameHookError(f"{self.path.name} has no {MENU_HOOKS[menu]}()")
        selected = self.session._selection_tuple(menu, selection)
        groups = function()
        if not isinstance(groups, (list, tuple)):
            raise FlameHookError(f"{MENU_HOOKS[menu]}() must return a list of groups, not {groups!r}")
        out: List[MenuAction] = []
        for group in groups:
            self._check_entry(group, GROUP_KEYS, "group")
            if not self._in_version_range(group):
                continue
            self._check_structure(group, f"group {group.get('name')!r}")
            actions = group.get("actions")
            if not isinstance(actions, (list, tuple)):
                raise FlameHookError(f"group {group.get('name')!r}: 'actions' must be a list")
            for action in actions:
                self._check_entry(action, ACTION_KEYS, f"action in group {group.get('name')!r}")
                if not self._in_version_range(action):
                    continue
                self._check_structure(action, f"action {action.get('name')!r}")
                if not isinstance(action.get("name"), str) or not callable(action.get("execute")):
                    raise FlameHookError(f"action {action!r} needs a str 'name' and a callable 'execute'")
                out.append(
                    MenuAction(
                        name=action["name"],
                        caption=action.get("caption", action["name"]),
                        group=str(group.get("name", "")),
                        visible=self._flag(action, "isVisible", selected),
                        enabled=self._flag(action, "isEnabled", selected),
                        wait_cursor=action.get("waitCursor", True),
                        hierarchy=tuple(action.get("hierarchy", group.get("hierarchy", ()))),
                        order=action.get("order"),
                        separator=action.get("separator"),
                        execute=action["execute"],
                        raw=action,
                    )
                )
        return out

    def media_panel_actions(self, selection: Optional[Sequence[Any]] = None) -> List[MenuAction]:
        return self.actions("media_panel", selection)

    def timeline_actions(self, selection: Optional[Sequence[Any]] = None) -> List[MenuAction]:
        return self.actions("timeline", selection)

    def action(self, name: str, menu: str = "media_panel", selection: Optional[Sequence[Any]] = None) -> MenuAction:
        for candidate in self.actions(menu, selection):
            if name in (candidate.name, candidate.caption):
                return candidate
        raise FlameHookError(
            f"No action {name!r} in the {menu} menu of {self.path.name} on Flame {self.session.version}"
        )

    def run_action(self, name: str, menu: str = "media_panel", selection: Optional[Sequence[Any]] = None) -> Any:
        """Run an action as the artist would: it must be visible and enabled for the selection."""
        selected = self.session._selection_tuple(menu, selection)
        action = self.action(name, menu, selected)
        if not action.visible:
            raise FlameHookError(f"Action {name!r} is not visible for the selection {selected!r}")
        if not action.enabled:
            raise FlameHookError(f"Action {name!r} is disabled for the selection {selected!r}")
        rt = self.session._rt
        rt.current_action = dict(action.raw)
        try:
            return action.execute(selected)
        finally:
            rt.current_action = None

    # -- lifecycle hooks ----------------------------------------------------------------------------------
    def app_initialized(self, project_name: Optional[str] = None) -> Any:
        return self.call("app_initialized", project_name or self.session.project.name)

    def call(self, hook_name: str, *args: Any, **kwargs: Any) -> Any:
        function = getattr(self.module, hook_name, None)
        if not callable(function):
            raise FlameHookError(f"{self.path.name} has no {hook_name}()")
        return function(*args, **kwargs)

    # -- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _check_entry(entry: Any, allowed: set, what: str) -> None:
        if not isinstance(entry, dict):
            raise FlameHookError(f"{what} must be a dict, not {entry!r}")
        unknown = set(entry) - allowed
        if unknown:
            raise FlameHookError(f"{what} has unknown key(s) {sorted(unknown)}; Flame knows {sorted(allowed)}")

    def _in_version_range(self, entry: Dict[str, Any]) -> bool:
        """minimumVersion / maximumVersion, inclusive, compared number by number ("2025.2" == "2025.2.0.0")."""
        rt = self.session._rt
        versions = self.session._flame_attr("_attributes")
        for key in ("minimumVersion", "maximumVersion"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise FlameHookError(f"{key} must be a str like '2023.2.0.0', not {value!r}")
        minimum, maximum = entry.get("minimumVersion"), entry.get("maximumVersion")
        if minimum is not None and not versions.version_at_least(rt.version_tuple, versions.parse_version(minimum)):
            return False
        return maximum is None or versions.version_at_least(versions.parse_version(maximum), rt.version_tuple)

    def _check_structure(self, entry: Dict[str, Any], what: str) -> None:
        rt = self.session._rt
        used = [k for k in STRUCTURE_KEYS if k in entry]
        if used and not rt.supports("2023.2"):
            raise FlameHookError(
                f"{what} uses {used}, which Flame {rt.version} does not know (2023.2+): gate it with "
                "\"minimumVersion\": \"2023.2.0.0\""
            )

    @staticmethod
    def _flag(action: Dict[str, Any], key: str, selection: Tuple[Any, ...]) -> bool:
        value = action.get(key, True)
        if callable(value):
            value = value(selection)
        if not isinstance(value, bool):
            raise FlameHookError(f"action {action.get('name')!r}: {key} must be (or return) a bool, not {value!r}")
        return value


class FlameSession:
    """One emulated Flame (see the module docstring). Close it, or use the pytest fixtures."""

    def __init__(
        self,
        version: str = DEFAULT_VERSION,
        project: str = "show_2026",
        user: str = "ann",
        *,
        root: Optional[Union[str, Path]] = None,
        preset_version: Optional[int] = None,
        import_timecode: str = "header",
        import_frame_rate: str = "24 fps",
        import_colour_spaces: Optional[Dict[str, str]] = None,
    ) -> None:
        existing = sys.modules.get("flame")
        if existing is not None:
            state = sys.modules.get("flame._state")
            if state is not None and getattr(state, "RUNTIME", None) is not None and not state.RUNTIME.closed:
                raise RuntimeError("Another FlameSession is open: close it before creating a new one")
            self._purge_flame_modules()
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="flame_double_")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._added_site = str(SITE_DIR) not in sys.path
        if self._added_site:
            sys.path.insert(0, str(SITE_DIR))
        self._hook_dirs: List[str] = []
        self._hook_module_names: List[str] = []
        self.hooks: List[HookModule] = []
        self.rescans = 0  # how many times "Rescan Python Hooks" ran
        self._saved_process: Optional[Tuple[str, Dict[str, str]]] = None
        self._qt_guard: Optional[_RefuseImports] = None
        self.closed = True  # until the runtime is attached
        try:
            self._start(version, project, user, preset_version, import_timecode, import_frame_rate,
                        import_colour_spaces)
        except BaseException:
            self._leave_flame_process()
            self._purge_flame_modules()
            if self._added_site:
                while str(SITE_DIR) in sys.path:
                    sys.path.remove(str(SITE_DIR))
            if self._owns_root:
                shutil.rmtree(self.root, ignore_errors=True)
            raise
        self.closed = False
        log.debug("Flame session %s (project %s, user %s) at %s", version, project, user, self.root)

    def _start(
        self,
        version: str,
        project: str,
        user: str,
        preset_version: Optional[int],
        import_timecode: str,
        import_frame_rate: str,
        import_colour_spaces: Optional[Dict[str, str]],
    ) -> None:
        self.flame: ModuleType = importlib.import_module("flame")
        runtime_module = importlib.import_module("flame._runtime")
        colour_spaces = {"exr": "scene-linear Rec 709/sRGB", "dpx": "Rec.709 video", "tif": "Rec.709 video",
                         "png": "sRGB - Display", "jpg": "sRGB - Display"}
        colour_spaces.update(import_colour_spaces or {})
        self._rt = runtime_module.Runtime(
            version=version,
            project_name=project,
            user_name=user,
            root=str(self.root),
            preset_version=preset_version if preset_version is not None else default_preset_version(version),
            import_timecode=import_timecode,
            import_frame_rate=import_frame_rate,
            import_colour_spaces=colour_spaces,
        )
        self.flame._attach(self._rt)
        self._flame_attr("_exporter").write_factory_presets(self._rt)
        self._rt.rescan_hooks = self.rescan_hooks
        self._enter_flame_process(version)

    # -- the Flame process --------------------------------------------------------------------------------
    @property
    def autodesk_root(self) -> Path:
        """The emulated ``/opt/Autodesk``: presets, projects, ``flame_<version>/bin/flame`` and Flame's Python."""
        return self.root / "opt" / "Autodesk"

    @property
    def flame_executable(self) -> Path:
        """What ``sys.executable`` is inside this Flame: Flame's own binary, not a Python."""
        return self.autodesk_root / f"flame_{self.version}" / "bin" / "flame"

    @property
    def flame_python(self) -> Path:
        """Flame's own Python, ``<autodesk root>/python/<version>/bin/python3`` (tk-flame's
        TOOLKIT_FLAME_PYTHON_BINARY, flameTimewarpML, Autodesk's export_selection.py): here a stand-in that runs
        the tests' Python (REAL_PYTHON)."""
        return self.autodesk_root / "python" / self.version / "bin" / "python3"

    @property
    def qt_binding(self) -> str:
        """The Qt binding this Flame's Python ships: PySide2 up to 2024, PySide6 from 2025."""
        return "PySide6" if self._rt.version_tuple[0] >= FIRST_PYSIDE6_FLAME else "PySide2"

    def _enter_flame_process(self, version: str) -> None:
        """Make this test process look like Flame's while the session is open: ``sys.executable`` is Flame's binary
        (which refuses Python's options), Flame's library and Python paths are in the environment (tk-flame's
        python/startup/bootstrap.py prepends PYTHONPATH <root>/flame_<v>/python and LD_LIBRARY_PATH
        <root>/python/<v>/lib, <root>/lib64/<v> before Flame starts), Flame's own Python exists, and the Qt
        binding of the other Qt major version cannot be imported."""
        install = self.autodesk_root / f"flame_{version}"
        paths = {"PYTHONPATH": [install / "python"],
                 "LD_LIBRARY_PATH": [self.autodesk_root / "python" / version / "lib",
                                     self.autodesk_root / "lib64" / version]}
        for folders in paths.values():
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
        _write_script(self.flame_executable,
                      'echo "flame: unknown option $1: this is Autodesk Flame, not a Python" >&2\nexit 64\n')
        _write_script(self.flame_python, f"exec {shlex.quote(REAL_PYTHON)} \"$@\"\n")
        python = self.flame_python.with_name("python")
        if not python.exists():
            python.symlink_to(self.flame_python.name)
        self._saved_process = (sys.executable, dict(os.environ))
        for key, folders in paths.items():
            os.environ[key] = os.pathsep.join([*map(str, folders), *filter(None, [os.environ.get(key)])])
        sys.executable = str(self.flame_executable)
        other = "PySide2" if self.qt_binding == "PySide6" else "PySide6"
        self._qt_guard = _RefuseImports(other, f"Flame {version} runs {self.qt_binding}: {other} cannot be loaded "
                                               "into its process (two Qt major versions do not mix)")
        sys.meta_path.insert(0, self._qt_guard)

    def _leave_flame_process(self) -> None:
        saved = getattr(self, "_saved_process", None)
        if saved is None:
            return
        sys.executable = saved[0]
        # The whole environment as it was: Flame's paths, and whatever code "inside Flame" set (e.g. the Qt
        # binding for this Flame's version), stay with the session.
        for key in [key for key in os.environ if key not in saved[1]]:
            del os.environ[key]
        for key, value in saved[1].items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        while self._qt_guard in sys.meta_path:
            sys.meta_path.remove(self._qt_guard)
        self._saved_process = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed or not hasattr(self, "_rt"):
            return
        self.closed = True
        self._rt.closed = True
        self._leave_flame_process()
        self.flame._detach()
        for name in self._hook_module_names:
            sys.modules.pop(name, None)
        for directory in self._hook_dirs:
            while directory in sys.path:
                sys.path.remove(directory)
        self._purge_flame_modules()
        if self._added_site:
            while str(SITE_DIR) in sys.path:
                sys.path.remove(str(SITE_DIR))
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FlameSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def _purge_flame_modules() -> None:
        for name in [n for n in sys.modules if n == "flame" or n.startswith("flame.")]:
            del sys.modules[name]

    def _flame_attr(self, submodule: str) -> Any:
        return sys.modules[f"flame.{submodule}"] if f"flame.{submodule}" in sys.modules else importlib.import_module(
            f"flame.{submodule}"
        )

    # -- state --------------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._rt.version

    @property
    def preset_version(self) -> int:
        return self._rt.preset_version

    @property
    def project(self) -> Any:
        return self._rt.project

    @property
    def workspace(self) -> Any:
        return self._rt.project._workspace

    @property
    def desktop(self) -> Any:
        return self._rt.project._workspace._desktop

    @property
    def user(self) -> str:
        return self._rt.user_name

    @property
    def clock_seconds(self) -> float:
        """The virtual time idle events are scheduled against."""
        return self._rt.clock_seconds

    @property
    def console_messages(self) -> List[Any]:
        return self._rt.console_messages

    @property
    def dialogs(self) -> List[Any]:
        return self._rt.dialogs

    @property
    def exports(self) -> List[Any]:
        return self._rt.exports

    @property
    def imports(self) -> List[Any]:
        return self._rt.imports

    @property
    def shortcuts(self) -> List[Any]:
        return self._rt.shortcuts

    @property
    def warnings(self) -> List[str]:
        return self._rt.warnings

    @property
    def renders(self) -> List[Any]:
        return self._rt.renders

    @property
    def idle_queue(self) -> List[Any]:
        """Pending idle events (function, delay_seconds, due_seconds), oldest first."""
        return sorted(self._rt.idle_queue, key=lambda e: (e.due_seconds, e.seq))

    @property
    def pending_background_jobs(self) -> List[str]:
        return [job_id for job_id, job in self._rt.background_jobs.items() if job.state == "queued"]

    @property
    def import_timecode(self) -> str:
        """``"header"`` or ``"frame_number"``: where import_clips takes a clip's start timecode from."""
        return self._rt.import_timecode

    # -- building the Media Panel --------------------------------------------------------------------------
    def add_clip(
        self,
        parent: Any,
        name: str,
        frames: Iterable[int] = range(1001, 1049),
        fps: str = "24 fps",
        width: int = 64,
        height: int = 36,
        timecode: Optional[str] = None,
        source_dir: Optional[Union[str, Path]] = None,
        bit_depth: int = 16,
        ext: str = "exr",
        channels: int = 3,
        padding: int = 4,
        start_frame: Optional[int] = None,
        colour_space: Optional[str] = None,
        tape_name: str = "",
        shot_name: str = "",
        header_timecode: bool = True,
        header_frame_rate: bool = True,
    ) -> Any:
        """A source clip in ``parent`` (reel, folder or library). With ``source_dir`` its frames are real files
        ``<source_dir>/<name>.<frame>.<ext>``; without, its media lives only inside Flame (``file_path == ""``).
        ``timecode`` defaults to the first frame number read as a frame count (the import rule)."""
        rt = self._rt
        time_mod, media_mod = self._flame_attr("_time"), self._flame_attr("_media")
        objects = self._flame_attr("_objects")
        numbers = list(frames)
        if not numbers or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise ValueError("frames must be a non-empty contiguous range of frame numbers")
        rate = time_mod.frame_rate(fps).name
        start_tc = time_mod.timecode_to_frame(timecode, rate) if timecode else numbers[0]
        files = None
        if source_dir is not None:
            media_mod.writable_bit_depths(ext)
            directory = Path(source_dir)
            directory.mkdir(parents=True, exist_ok=True)
            files = media_mod.FileSequence(str(directory), f"{name}.", f".{ext}", padding, numbers[0], numbers[-1])
            for index, number in enumerate(numbers):
                media_mod.write_pixels(
                    files.path(number),
                    media_mod.pattern_pixels(width, height, channels, number),
                    ext,
                    bit_depth,
                    timecode_frame=start_tc + index if header_timecode else None,
                    frame_rate=rate,
                    write_frame_rate=header_frame_rate,
                )
        elif bit_depth not in (8, 10, 12, 16, 32):
            raise ValueError(f"bit_depth must be 8, 10, 12, 16 or 32, not {bit_depth}")
        media = media_mod.Media(
            uid=rt.new_uid(),
            name=name,
            width=width,
            height=height,
            channels=channels,
            bit_depth=bit_depth,
            frame_rate=rate,
            start_tc=start_tc,
            length=len(numbers),
            start_frame=numbers[0],
            colour_space=colour_space or rt.import_colour_spaces.get(ext, "Unknown"),
            tape_name=tape_name,
            files=files,
        )
        clip = objects.build_source_clip(rt, name, media)
        segment = clip._top_segments()[0]
        segment._values["shot_name"] = shot_name
        if start_frame is not None:
            clip._start_frame = start_frame
            segment._start_frame = start_frame
        parent._add(clip)
        return clip

    def add_sequence(
        self,
        parent: Any,
        name: str,
        items: Sequence[Union[Any, int]],
        fps: Optional[str] = None,
        timecode: str = "01:00:00:00",
        width: Optional[int] = None,
        height: Optional[int] = None,
        bit_depth: Optional[int] = None,
        start_frame: int = 1,
    ) -> Any:
        """A one-track PySequence: each item is a source clip (its whole media), ``(clip, first, length)`` (the
        clip's media from its 0-based frame index ``first`` for ``length`` frames: a trimmed edit) or an int
        (a gap of n frames)."""
        rt = self._rt
        time_mod, objects = self._flame_attr("_time"), self._flame_attr("_objects")
        clips = [item[0] if isinstance(item, tuple) else item for item in items if not isinstance(item, int)]
        if not clips:
            raise ValueError("a sequence needs at least one clip")
        first = clips[0]
        rate = fps or first._rate
        parts = []
        for item in items:
            if isinstance(item, int):
                parts.append((None, 0, item, ""))
                continue
            clip, src_in, length = item if isinstance(item, tuple) else (item, 0, None)
            media = clip._top_segments()[0]._media
            length = media.length - src_in if length is None else length
            if media.frame_rate != rate:
                raise ValueError(f"{clip!r} is {media.frame_rate}, the sequence {rate}: retimes are not emulated")
            if src_in < 0 or length < 1 or src_in + length > media.length:
                raise ValueError(f"frames {src_in}..{src_in + length - 1} are outside {clip!r} (0..{media.length - 1})")
            parts.append((media, src_in, length, clip._values["name"]))
        seq = objects.build_sequence(
            rt, name, parts, rate, time_mod.timecode_to_frame(timecode, rate),
            width or first._width, height or first._height, bit_depth or first._bit_depth, start_frame,
            first._colour_space,
        )
        parent._add(seq)
        return seq

    def add_effect(self, target: Any, effect_type: str = "Colour Correct", rendered: bool = False) -> Any:
        """A Timeline FX on a segment (or a clip's first media segment); unrendered by default."""
        objects = self._flame_attr("_objects")
        segment = target
        if isinstance(target, objects.PyClip):
            segment = next(s for s in target._top_segments() if s._media is not None)
        fx = segment.create_effect(effect_type)
        fx._rendered = rendered
        return fx

    def select(self, *entries: Any) -> None:
        """Set the Media Panel selection (``flame.media_panel.selected_entries``; clips' ``selected``)."""
        objects = self._flame_attr("_objects")
        for entry in entries:
            if not isinstance(entry, objects.PyArchiveEntry) or entry._deleted:
                raise TypeError(f"Only live Media Panel entries can be selected, not {entry!r}")
        for old in self._rt.media_panel_selection:
            if isinstance(old, objects.PyClip):
                old._values["selected"] = False
        self._rt.media_panel_selection = list(entries)
        for entry in entries:
            if isinstance(entry, objects.PyClip):
                entry._values["selected"] = True

    def select_segments(self, *segments: Any) -> None:
        """Set the Timeline selection (the timeline menu's selection; ``flame.timeline``)."""
        objects = self._flame_attr("_objects")
        for seg in segments:
            if not isinstance(seg, objects.PySegment) or seg._deleted:
                raise TypeError(f"Only live segments can be selected in the timeline, not {seg!r}")
        for old in self._rt.timeline_selection:
            old._values["selected"] = False
        self._rt.timeline_selection = list(segments)
        for seg in segments:
            seg._values["selected"] = True
        self._rt.timeline_clip = segments[0]._clip() if segments else None

    def add_clip_node(self, clip: Any, name: Optional[str] = None) -> Any:
        """A Batch clip node (``flame.PyClipNode``) showing ``clip``, for batch-menu selections."""
        objects = self._flame_attr("_objects")
        return objects.PyClipNode(self._rt, name or clip._values["name"], clip, self._rt.batch)

    def select_nodes(self, *nodes: Any) -> None:
        """Set the Batch selection (the batch menu's selection)."""
        objects = self._flame_attr("_objects")
        for node in nodes:
            if not isinstance(node, objects.PyNode):
                raise TypeError(f"Only nodes can be selected in Batch, not {node!r}")
        self._rt.batch_selection = list(nodes)

    def _selection_tuple(self, menu: str, selection: Optional[Sequence[Any]]) -> Tuple[Any, ...]:
        if selection is not None:
            return tuple(selection)
        if menu == "timeline":
            return tuple(self._rt.timeline_selection)
        if menu == "batch":
            return tuple(self._rt.batch_selection)
        return tuple(e for e in self._rt.media_panel_selection if not e._deleted)

    # -- the artist and the idle loop ----------------------------------------------------------------------
    def answer_dialogs(self, *labels: str) -> None:
        """Script the buttons the artist presses in the next ``show_in_dialog`` calls, in order."""
        self._rt.dialog_answers.extend(labels)

    @property
    def dialog_responder(self) -> Optional[Callable[[Any], str]]:
        return self._rt.dialog_responder

    @dialog_responder.setter
    def dialog_responder(self, responder: Optional[Callable[[Any], str]]) -> None:
        """A function (DialogRecord) -> button label, used when no scripted answer is queued."""
        self._rt.dialog_responder = responder

    def pump_idle(self, seconds: float = 0.0, max_events: int = 10_000) -> int:
        """Let Flame idle for ``seconds`` of virtual time; returns how many idle callbacks ran."""
        if self.closed:
            raise RuntimeError("This FlameSession is closed")
        return self._rt.pump_idle(seconds, max_events)

    def finish_background_job(self, job_id: str) -> List[str]:
        """Let Backburner finish an export job: its frames are written now. Returns the written paths."""
        return self._rt.finish_background_job(job_id)

    def finish_background_jobs(self) -> List[str]:
        return [p for job_id in self.pending_background_jobs for p in self.finish_background_job(job_id)]

    @staticmethod
    def frame_tag(path: Union[str, Path]) -> int:
        """The source frame number (mod 1000) that the double's test pattern put in a frame's B channel
        (exact for float and 16-bit files; any session or none)."""
        import OpenImageIO as oiio

        inp = oiio.ImageInput.open(str(path))
        if inp is None:
            raise OSError(f"Cannot read {path}: {oiio.geterror()}")
        try:
            pixels = inp.read_image("float")
        finally:
            inp.close()
        return int(round(float(pixels[pixels.shape[0] // 2, pixels.shape[1] // 2, 2]) * 1000)) % 1000

    # -- hooks --------------------------------------------------------------------------------------------
    def load_hooks(self, path: Union[str, Path]) -> HookModule:
        """Import a hook file as Flame does (nothing called) and record what it did with ``flame``."""
        path = Path(path).resolve()
        if not path.is_file() or path.suffix != ".py":
            raise FileNotFoundError(f"No hook file {path}")
        name = path.stem
        loaded = sys.modules.get(name)
        if loaded is not None:
            raise FlameHookError(
                f"A module named {name!r} is already loaded ({getattr(loaded, '__file__', loaded)}): Flame loads "
                "every hook into one namespace, so hook module names must be unique"
            )
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
            self._hook_dirs.append(directory)
        before = set(self._modules_referencing_flame())
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FlameHookError(f"Cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self._hook_module_names.append(name)
        self._rt.import_watch = []
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            accesses = self._rt.import_watch or []
            self._rt.import_watch = None
        importers = sorted(set(self._modules_referencing_flame()) - before)
        self._rt.hook_modules.append(module)
        hook = HookModule(self, path, module, accesses, importers)
        self.hooks.append(hook)
        return hook

    def rescan_hooks(self) -> None:
        """What "Rescan Python Hooks" does: every loaded hook file is imported again, as a new module under the same
        name (the packages it imported stay in sys.modules), and Flame calls nothing: not app_initialized. Each
        HookModule then uses the new module. Also what ``flame.execute_shortcut("Rescan Python Hooks")`` does."""
        if self.closed:
            raise RuntimeError("This FlameSession is closed")
        for hook in self.hooks:
            sys.modules.pop(hook.module.__name__, None)
            spec = importlib.util.spec_from_file_location(hook.module.__name__, hook.path)
            if spec is None or spec.loader is None:
                raise FlameHookError(f"Cannot import {hook.path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[hook.module.__name__] = module
            self._rt.import_watch = []
            try:
                spec.loader.exec_module(module)
            finally:
                accesses = self._rt.import_watch or []
                self._rt.import_watch = None
            hook.module = module
            hook.import_time_access = tuple(dict.fromkeys(accesses))
        self._rt.hook_modules = [hook.module for hook in self.hooks]
        self.rescans += 1

    def switch_project(self, name: str) -> Any:
        """The artist opens another project: the current one is unloaded (its objects refuse every use), ``name``
        is loaded with a new project's Media Panel, and Flame calls ``project_changed_dict(info)`` then
        ``app_initialized(name)`` on every loaded hook module that has them (Autodesk's Python Hooks Reference:
        projectChangedDict and appInitialized are called whenever the project changes). Idle events scheduled
        before keep running. Returns the new PyProject."""
        if self.closed:
            raise RuntimeError("This FlameSession is closed")
        project = self._rt.load_project(name)
        for hook in list(self.hooks):
            changed = getattr(hook.module, "project_changed_dict", None)
            if callable(changed):
                changed({"flameProjectName": name, "shotgunProjectName": ""})
        for hook in list(self.hooks):
            initialized = getattr(hook.module, "app_initialized", None)
            if callable(initialized):
                initialized(name)
        return project

    def _modules_referencing_flame(self) -> List[str]:
        flame = self.flame
        names = []
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or mod_name == "flame" or mod_name.startswith("flame."):
                continue
            try:
                values = list(vars(mod).values())
            except TypeError:
                continue
            if any(v is flame for v in values):
                names.append(mod_name)
        return names


def _write_script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


class _RefuseImports(importlib.abc.MetaPathFinder):
    """Refuses a fresh import of one top-level package (a module already in sys.modules is not looked up)."""

    def __init__(self, package: str, reason: str) -> None:
        self.package = package
        self.reason = reason

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] == self.package:
            raise ImportError(self.reason, name=fullname)
