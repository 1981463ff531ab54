"""comfyfarm's Flame hook file: the ComfyUI Farm menu and the relink watcher.

Flame imports this file when it starts: nothing here touches ``flame``, the network or the disk at
import time. ``flame`` is imported inside the functions Flame calls, always on its main thread.
Installed (install/install.sh workstation) beside a ``.lib`` folder holding comfyfarm, it finds it there.

Every Flame on the machine loads the hook from the shared hook folder, also those older than comfyfarm
supports (Flame 2023.1, Python 3.9): this file is written so that Python 2.7 and 3.7 can compile it, and on
such a Flame every hook returns at once, before anything of comfyfarm (or PyYAML) is imported.

Flame calls ``app_initialized`` after each project it loads, not after "Rescan Python Hooks": the watcher of
this Flame lives in comfyfarm's package (``flame_submitter.flame.app``), so a rescan, which imports this file
again, keeps it; and the first menu Flame builds after this file is loaded starts it if nothing has yet (a
hook installed while Flame runs).
"""

import sys

COMFYFARM_VERSION = "0.1.0"  # the comfyfarm this hook belongs to: comfyfarm doctor checks it against .lib
MENU = "ComfyUI Farm"
# flame.messages (the console and dialogs every action uses) came with 2023.1; 2023 brought Python 3.9 and
# PySide2, 2025 Python 3.11 and PySide6.
MINIMUM_FLAME = "2023.1.0.0"
MINIMUM_PYTHON = (3, 9)
_LOADED = {"watcher_asked": False}  # per import of this file: whether a menu build has asked for the watcher


def _version_numbers(text):
    """``"2025.2"`` -> (2025, 2, 0, 0); ``"2022.1.pr145"`` -> (2022, 1, 145, 0)."""
    numbers = []
    for part in str(text).split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple((numbers + [0, 0, 0, 0])[:4])


def _python_supported():
    return tuple(sys.version_info[:2]) >= MINIMUM_PYTHON


def _flame_supported(flame):
    """Whether this Flame is one comfyfarm supports; older ones load this file and get nothing from it."""
    if not _python_supported():
        return False
    try:
        version = flame.get_version()
    except Exception:  # a Flame without get_version() is older than any comfyfarm supports
        return False
    return _version_numbers(version) >= _version_numbers(MINIMUM_FLAME)


def _add_lib():
    """comfyfarm from ``.lib`` beside this file first on sys.path, and ``.lib/python3.X`` (the packages this
    Flame's Python lacks) after Flame's own. A dot-folder: Flame scans the hook folder's subfolders for hooks."""
    import os

    lib = os.path.join(os.path.dirname(os.path.realpath(__file__)), ".lib")
    packages = os.path.join(lib, "python" + ".".join(str(n) for n in sys.version_info[:2]))
    if os.path.isdir(lib) and lib not in sys.path:
        sys.path.insert(0, lib)
    if os.path.isdir(packages) and packages not in sys.path:
        sys.path.append(packages)


def _app():
    """This Flame's comfyfarm app, or None (a Flame comfyfarm does not support, or no configuration)."""
    import flame

    if not _flame_supported(flame):
        return None
    _add_lib()
    from flame_submitter.flame.app import app_for

    return app_for(flame)


def app_initialized(project_name):
    """Flame has started, or loaded another project: watch the inbox for this project from now on."""
    app = _app()
    if app is not None:
        app.project_loaded(project_name)


def _resume_watcher():
    app = _app()
    if app is not None:
        app.resume_relink()


def _ask_for_watcher():
    """Once per import of this file, from the first menu Flame builds: start the watcher on an idle event if
    app_initialized has not (this file came with a rescan). Quick: the menu waits for it."""
    if _LOADED["watcher_asked"] or not _python_supported():
        return
    _LOADED["watcher_asked"] = True
    try:
        import flame
    except ImportError:  # outside Flame
        return
    if _flame_supported(flame):
        flame.schedule_idle_event(_resume_watcher, 0)


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
    import flame

    if not _flame_supported(flame):
        return None
    _app()  # None when the configuration cannot be read: Settings is where to fix it, so it opens anyway
    from flame_submitter.flame.app import open_settings

    return open_settings(flame)


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
    for order, (name, execute, visible, separated) in enumerate(entries, 1):
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
    if not _python_supported():  # a Flame older than 2023 (Python 2.7 or 3.7): no menu at all
        return []
    _ask_for_watcher()
    return _menu(_is_clip_selection)


def get_timeline_custom_ui_actions():
    if not _python_supported():
        return []
    _ask_for_watcher()
    return _menu(_is_segment_selection)
