"""The submit dialog (pick a workflow, its settings, the farm settings, the frames and the output format)
and the Settings dialog (the artist's own comfyfarm settings: ``settings_dialog``).

``model`` holds the dialog's state without Qt (and is what the tests check most); ``widgets`` generates
the parameter editors from a workflow manifest; ``submit_dialog`` is the QDialog. Importing this package
does not import Qt: ``SubmitDialog``, ``SettingsDialog``, ``flame_main_window`` and ``deadline_farm_lists`` are
loaded on first use.
"""

from __future__ import annotations

from typing import Any

from flame_submitter.dialog.model import (
    ChoicesStore,
    ClipSummary,
    DialogModel,
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
    "RememberedChoices",
    "SubmitChoice",
    "SubmitDialog",
    "SettingsDialog",
    "SubmitResult",
    "artist_message",
    "deadline_farm_lists",
    "default_choices_path",
    "flame_main_window",
]


def __getattr__(name: str) -> Any:
    if name in ("SubmitDialog", "flame_main_window", "deadline_farm_lists"):
        from flame_submitter.dialog import submit_dialog

        return getattr(submit_dialog, name)
    if name == "SettingsDialog":
        from flame_submitter.dialog import settings_dialog

        return settings_dialog.SettingsDialog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
