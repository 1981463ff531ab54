"""comfyfarm's Flame hook file: the ComfyUI Farm menu and the relink watcher.

Flame imports this file when it starts: nothing here touches ``flame``, the network or the disk at
import time. ``flame`` is imported inside the functions Flame calls, always on its main thread.
Installed beside a ``lib`` folder holding comfyfarm and its dependencies, it finds them there.
"""

from __future__ import annotations

import sys
from pathlib import Path

MENU = "ComfyUI Farm"
MINIMUM_FLAME = "2023.0.0.0"  # Python 3.9 and PySide2; 2025+ brings Python 3.11 and PySide6
_SESSIONS: dict = {}  # one comfyfarm app per Flame session (keyed by the flame module's identity)


def _app():
    import flame

    lib = Path(__file__).resolve().parent / "lib"
    if lib.is_dir() and str(lib) not in sys.path:
        sys.path.insert(0, str(lib))
    from flame_submitter.flame_app import app_for

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


def _is_clip_selection(selection):
    """Clips and sequences (PySequence is a PyClip) only: the farm takes frames, not reels or libraries."""
    import flame

    return bool(selection) and all(isinstance(item, flame.PyClip) for item in selection)


def get_media_panel_custom_ui_actions():
    return [
        {
            "name": MENU,
            "actions": [
                {"name": "Submit to Deadline...", "execute": _submit, "isVisible": _is_clip_selection,
                 "waitCursor": False, "minimumVersion": MINIMUM_FLAME},
                {"name": "Run locally...", "execute": _run_locally, "isVisible": _is_clip_selection,
                 "waitCursor": False, "minimumVersion": MINIMUM_FLAME},
                {"name": "Import finished renders", "execute": _import_finished, "waitCursor": False,
                 "minimumVersion": MINIMUM_FLAME},
                {"name": "Show farm jobs", "execute": _show_jobs, "waitCursor": False,
                 "minimumVersion": MINIMUM_FLAME},
            ],
        }
    ]
