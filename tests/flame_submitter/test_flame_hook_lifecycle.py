"""The real hook file over a Flame's life in the double: projects opened one after another, "Rescan Python
Hooks", Flame versions older than comfyfarm supports (the shared hook folder serves them all), and what the
hook loads into Flame's process (PyYAML only where comfyfarm runs; the Qt binding of Flame's version)."""

from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import List, Optional

import pytest
import yaml

from farm_plugin.completion import write_completion
from tests.doubles.flame.harness import REAL_PYTHON
from tests.flame_submitter.test_relink import record as completion_record

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


@pytest.fixture
def inbox(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_user": "ann", "inbox_root": str(folder)}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    return folder


def watcher_ticks(session) -> int:
    """How many relink watchers are waiting on Flame's idle loop."""
    return sum(1 for event in session.idle_queue if getattr(event.function, "__name__", "") == "_tick")


def imported_clips(session) -> List[str]:
    libraries = [lib for lib in session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders"]
    return [c.name.get_value() for lib in libraries for f in lib.folders for c in f.clips]


# ---------------------------------------------------------------------------------------------------------
# projects and rescans


def test_each_project_flame_opens_gets_its_records(flame_session, inbox: Path, tmp_path: Path) -> None:
    """app_initialized runs after each project load (Autodesk's Python Hooks Reference): the records of show_b
    that arrived while show_2026 was open come in when show_b opens, and one watcher does it."""
    hooks = flame_session.load_hooks(HOOK)
    hooks.app_initialized("show_2026")
    write_completion(completion_record(tmp_path, "for_b", project="show_b"), inbox)
    flame_session.pump_idle(seconds=30)
    assert (inbox / "for_b.json").is_file() and imported_clips(flame_session) == []
    flame_session.switch_project("show_b")  # project_changed_dict, then app_initialized("show_b")
    flame_session.pump_idle(seconds=5)  # the watcher's next look (relink_poll_s)
    assert imported_clips(flame_session) == ["sh010_plate_invert_v001"]
    assert (inbox / "imported" / "for_b.json").is_file()
    assert watcher_ticks(flame_session) == 1


def test_a_rescan_keeps_the_one_watcher(flame_session, inbox: Path, tmp_path: Path) -> None:
    """"Rescan Python Hooks" imports the hook file again and calls no app_initialized: the watcher that ran goes
    on, and the next project load does not start a second one."""
    import flame

    hooks = flame_session.load_hooks(HOOK)
    hooks.app_initialized("show_2026")
    flame_session.pump_idle(seconds=1)
    assert flame.execute_shortcut("Rescan Python Hooks") is True
    write_completion(completion_record(tmp_path, "after_rescan"), inbox)
    flame_session.pump_idle(seconds=10)
    assert imported_clips(flame_session) == ["sh010_plate_invert_v001"]
    flame_session.answer_dialogs("Cancel")  # nothing waits: it offers to import a folder instead
    hooks.run_action("Import finished renders", selection=())
    flame_session.switch_project("show_2026_b")
    flame_session.pump_idle(seconds=10)
    assert watcher_ticks(flame_session) == 1


def test_a_hook_loaded_by_a_rescan_starts_the_watcher_with_the_first_menu(flame_session, inbox: Path,
                                                                        tmp_path: Path) -> None:
    """Installed while Flame runs, the hook arrives with a rescan, and Flame calls no app_initialized: the first
    menu Flame builds asks for the watcher (on an idle event, so the menu stays quick)."""
    write_completion(completion_record(tmp_path, "waiting"), inbox)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.pump_idle(seconds=10)
    assert imported_clips(flame_session) == []  # nothing started it yet
    hooks.actions("media_panel", selection=())  # the artist right-clicks in the Media Panel
    hooks.actions("timeline", selection=())
    flame_session.pump_idle(seconds=1)
    assert imported_clips(flame_session) == ["sh010_plate_invert_v001"]
    assert watcher_ticks(flame_session) == 1


# ---------------------------------------------------------------------------------------------------------
# Flame versions older than comfyfarm supports


@pytest.mark.parametrize(("version", "preset"), [("2022.3", 11), ("2023.0", 12)])
def test_an_older_flame_loads_the_hook_and_gets_nothing_from_it(flame_session_factory, inbox: Path,
                                                                version: str, preset: int) -> None:
    """Every Flame on the machine loads the shared hook folder; Flame 2023.0 has no flame.messages (it came
    with 2023.1), so comfyfarm needs 2023.1: older ones get no menu, no watcher and no error."""
    session = flame_session_factory(version=version, preset_version=preset)
    hooks = session.load_hooks(HOOK)
    assert not hooks.touched_flame_at_import
    hooks.app_initialized()
    assert hooks.actions("media_panel", selection=()) == [] and hooks.actions("timeline", selection=()) == []
    session.pump_idle(seconds=10)
    assert session.idle_queue == [] and session.console_messages == [] and session.warnings == []
    assert hooks.module.MINIMUM_FLAME == "2023.1.0.0"


def test_the_hook_compiles_with_python_3_7_grammar() -> None:
    """Flame 2021-2022 run Python 3.7 and load the shared hook folder too: no newer syntax in the hook file, and
    only ASCII (Python 2.7, of older Flames still, refuses anything else without a coding line)."""
    text = HOOK.read_text(encoding="utf-8")
    ast.parse(text, filename=str(HOOK), feature_version=(3, 7))
    assert text.isascii()


def old_python(version: str) -> Optional[str]:
    """An interpreter of ``version`` ("3.7", "2.7") that runs, from PATH or pyenv's versions."""
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "import sys"], capture_output=True).returncode == 0:
            return candidate
    return None


OLD_FLAME = textwrap.dedent("""
    import imp, sys, types
    flame = types.ModuleType("flame")
    flame.get_version = lambda: "{version}"
    def refuse(*args):
        raise AssertionError("an old Flame must not be asked anything else")
    flame.schedule_idle_event = refuse
    sys.modules["flame"] = flame
    hook = imp.load_source("comfyfarm_hooks", {hook!r})
    hook.app_initialized("show")
    assert hook.get_media_panel_custom_ui_actions() == [] and hook.get_timeline_custom_ui_actions() == []
    assert not [name for name in sys.modules if name.split(".")[0] in ("yaml", "flame_submitter", "farm_plugin")]
    print("silent")
""")


@pytest.mark.parametrize(("python", "flame_version"), [("3.7", "2022.3"), ("2.7", "2020.3")])
def test_an_older_flames_python_loads_the_hook_silently(python: str, flame_version: str) -> None:
    interpreter = old_python(python)
    if interpreter is None:
        pytest.skip(f"no Python {python} here")
    code = OLD_FLAME.format(version=flame_version, hook=str(HOOK))
    result = subprocess.run([interpreter, "-B", "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"]})
    assert (result.returncode, result.stdout, result.stderr) == (0, "silent\n", "")


# ---------------------------------------------------------------------------------------------------------
# what the hook loads into Flame's process


IN_FLAME = textwrap.dedent("""
    import json, os, sys
    from tests.doubles.flame.harness import FlameSession
    session = FlameSession(version={version!r}, root={root!r})
    hooks = session.load_hooks({hook!r})
    hooks.app_initialized()
    session.pump_idle(seconds=10)
    report = {{"OpenImageIO": "OpenImageIO" in sys.modules, "binding": os.environ.get("COMFYFARM_QT_BINDING")}}
    try:
        import flame_submitter.dialog.qt_compat as qt
        report["qt"] = qt.QT_BINDING
    except ImportError as exc:
        report["qt"] = "ImportError: " + str(exc)
    report["PySide6"] = "PySide6" in sys.modules
    report["PySide2"] = "PySide2" in sys.modules
    session.close()
    print(json.dumps(report))
""")


def in_flame(version: str, tmp_path: Path, inbox: Path) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if k != "COMFYFARM_QT_BINDING"}
    env.update(PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([REAL_PYTHON, "-c", IN_FLAME.format(version=version, root=str(tmp_path / "flame"),
                                                                hook=str(HOOK))],
                            capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("version", "binding"), [("2024.2", "PySide2"), ("2025.2", "PySide6")])
def test_the_dialogs_use_the_qt_binding_of_flames_version(tmp_path: Path, inbox: Path, version: str,
                                                          binding: str) -> None:
    """Flame 2023-2024 run PySide2, 2025+ PySide6: the binding comes from Flame's version, whatever else this
    Python could import (here PySide6 may be installed next to a Flame 2024)."""
    report = in_flame(version, tmp_path, inbox)
    assert report["binding"] == binding
    other = "PySide6" if binding == "PySide2" else "PySide2"
    assert report[other] is False
    assert report["qt"] == binding or report["qt"].startswith(f"ImportError: No module named '{binding}'")


def test_the_watcher_does_not_load_openimageio_into_flame(tmp_path: Path, inbox: Path) -> None:
    assert in_flame("2025.2", tmp_path, inbox)["OpenImageIO"] is False
