"""A folder from Qt's file dialog, parented to Flame's window (Import finished renders picks a job's folder)."""

from __future__ import annotations

from typing import Optional

from flame_submitter.dialog.qt_compat import QtWidgets, exec_dialog
from flame_submitter.dialog.submit_dialog import flame_main_window


def choose_folder(title: str, start_folder: str = "") -> Optional[str]:
    """A folder from Qt's file dialog, parented to Flame's window; None when the artist cancels."""
    dialog = QtWidgets.QFileDialog(flame_main_window(), title, start_folder)
    dialog.setObjectName("comfyfarm_import_folder")
    dialog.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
    dialog.setOption(QtWidgets.QFileDialog.Option.ShowDirsOnly, True)
    if not exec_dialog(dialog):
        return None
    chosen = dialog.selectedFiles()
    return chosen[0] if chosen else None
