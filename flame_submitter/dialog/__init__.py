"""The submit dialog (pick a workflow, its settings, the farm settings, the frames and the output format)
and the Settings dialog (the artist's own comfyfarm settings: ``settings_dialog``).

``model`` holds the dialog's state without Qt (and is what the tests check most); ``widgets`` generates
the parameter editors from a workflow manifest; ``submit_dialog`` is the QDialog; ``folders`` asks for a
folder; ``qt_binding`` decides PySide2 or PySide6 (from Flame's version, inside Flame) before Qt is imported.
Qt is imported here only (through ``qt_compat``), and importing this package does not import it:
``SubmitDialog``, ``SettingsDialog``, ``flame_main_window``, ``deadline_farm_lists`` and ``choose_folder`` are
loaded on first use.
"""

from __future__ import annotations

from typing import Any

from flame_submitter.dialog.model import (
    ChoicesStore,
    ClipSummary,
    DialogModel,
    PreviewChoice,
    RememberedChoices,
    SubmitChoice,
    SubmitResult,
    artist_message,
    default_choices_path,
)

__all__ = [
    "ChoicesStore",
    "ClipSummary",
    "DialogModel",
    "PreviewChoice",
    "RememberedChoices",
    "SubmitChoice",
    "SubmitDialog",
    "SettingsDialog",
    "SubmitResult",
    "artist_message",
    "binding_for_flame",
    "choose_folder",
    "deadline_farm_lists",
    "default_choices_path",
    "flame_main_window",
    "use_flame_binding",
]


def __getattr__(name: str) -> Any:
    if name in ("SubmitDialog", "flame_main_window", "deadline_farm_lists"):
        from flame_submitter.dialog import submit_dialog

        return getattr(submit_dialog, name)
    if name == "SettingsDialog":
        from flame_submitter.dialog import settings_dialog

        return settings_dialog.SettingsDialog
    if name in ("binding_for_flame", "use_flame_binding"):
        from flame_submitter.dialog import qt_binding

        return getattr(qt_binding, name)
    if name == "choose_folder":
        from flame_submitter.dialog import folders

        return folders.choose_folder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
