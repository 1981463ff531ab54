"""comfyfarm's Flame hook file: the ComfyUI Farm menu and the relink watcher.

Flame imports this file when it starts: nothing here touches ``flame``, the network or the disk at
import time. ``flame`` is imported inside the functions Flame calls, always on its main thread.
Installed (install/install.sh workstation) beside a ``.lib`` folder holding comfyfarm, it finds it there.
"""

from __future__ import annotations

import sys
from pathlib import Path

COMFYFARM_VERSION = "0.1.0"  # the comfyfarm this hook belongs to: comfyfarm doctor checks it against .lib
MENU = "ComfyUI Farm"
MINIMUM_FLAME = "2023.0.0.0"  # Python 3.9 and PySide2; 2025+ brings Python 3.11 and PySide6
_SESSIONS: dict = {}  # one comfyfarm app per Flame session (keyed by the flame module's identity)


def _add_lib():
    """comfyfarm from ``.lib`` beside this file first on sys.path, and ``.lib/python3.X`` (the packages this
    Flame's Python lacks) after Flame's own. A dot-folder: Flame scans the hook folder's subfolders for hooks."""
    lib = Path(__file__).resolve().parent / ".lib"
    packages = lib / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if lib.is_dir() and str(lib) not in sys.path:
        sys.path.insert(0, str(lib))
    if packages.is_dir() and str(packages) not in sys.path:
        sys.path.append(str(packages))


def _app():
    import flame

    _add_lib()
    from flame_submitter.flame.app import app_for

    return app_for(flame, _SESSIONS)


def app_initialized(project_name):
    """Flame has started (or opened a project): start bringing finished farm renders back."""
    app = _app()
    if app is not None:
        app.start_relink()


def _import_finished(selection):
    app = _app()
    if app is not None:
        app.import_finished_renders()


def _show_jobs(selection):
    app = _app()
    if app is not None:
        app.show_farm_jobs()


def _submit(selection):
    app = _app()
    return app.submit_dialog(selection) if app is not None else None


def _run_locally(selection):
    app = _app()
    return app.run_locally_dialog(selection) if app is not None else None


def _settings(selection):
    _app()  # None when the configuration cannot be read: Settings is where to fix it, so it opens anyway
    import flame

    from flame_submitter.flame.app import open_settings

    return open_settings(flame, _SESSIONS)


def _is_clip_selection(selection):
    """Clips and sequences (PySequence is a PyClip) only: the farm takes frames, not reels or libraries."""
    import flame

    return bool(selection) and all(isinstance(item, flame.PyClip) for item in selection)


def _is_segment_selection(selection):
    """Timeline segments only: each is sent as its source media between its source in and out."""
    import flame

    return bool(selection) and all(isinstance(item, flame.PySegment) for item in selection)


# Flame 2023.2 added hierarchy, order and separator to menu entries; before it they are refused. So the menu
# comes twice, as in Autodesk's python_utilities/examples/custom_menu_structure.py: plain up to 2023.1,
# ordered with separators from 2023.2. Only one of the two is ever in range.
STRUCTURED_MENUS = "2023.2.0.0"
LAST_PLAIN_MENUS = "2023.1.999.999"  # Autodesk's example says 2023.1.0.0; this also covers a 2023.1.x


def _menu(is_frames):
    """The ComfyUI Farm group(s); ``is_frames`` says whether a selection can be sent to the farm."""
    entries = (  # name, execute, isVisible, separator above (2023.2+)
        ("Submit to Deadline...", _submit, is_frames, False),
        ("Run locally...", _run_locally, is_frames, False),
        ("Import finished renders", _import_finished, None, True),
        ("Show farm jobs", _show_jobs, None, False),
        ("Settings...", _settings, None, True),
    )
    plain, structured = [], []
    for order, (name, execute, visible, separated) in enumerate(entries, start=1):
        action = {"name": name, "execute": execute, "waitCursor": False}  # each opens a dialog or a message
        if visible is not None:
            action["isVisible"] = visible
        plain.append(dict(action, minimumVersion=MINIMUM_FLAME, maximumVersion=LAST_PLAIN_MENUS))
        ordered = dict(action, minimumVersion=STRUCTURED_MENUS, order=order)
        if separated:
            ordered["separator"] = "above"
        structured.append(ordered)
    return [{"name": MENU, "actions": plain}, {"name": MENU, "actions": structured}]


def get_media_panel_custom_ui_actions():
    return _menu(_is_clip_selection)


def get_timeline_custom_ui_actions():
    return _menu(_is_segment_selection)
