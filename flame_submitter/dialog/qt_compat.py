"""The one place that imports Qt: PySide6 (Flame 2025 and later), else PySide2 (Flame 2023 and 2024).

Import Qt names from here, never from PySide directly::

    from flame_submitter.dialog.qt_compat import QtCore, QtGui, QtWidgets, Signal

Which binding: ``COMFYFARM_QT_BINDING`` (``PySide6`` or ``PySide2``) when set, which inside Flame the Flame
side sets from Flame's version before the first dialog (``qt_binding.use_flame_binding``); else the one this
process has already imported; else PySide6, then PySide2. The binding asked for is never swapped for the
other, and is refused when the other one is already loaded: two Qt bindings in one process do not mix.

Nothing but Qt is imported, and only Qt's own import work happens at import time. Use scoped enum
names (``QtCore.Qt.AlignmentFlag.AlignLeft``): both bindings accept them, and PySide6 drops the short ones.
Differences the dialogs meet: ``exec()`` is ``exec_()`` in PySide2 (:func:`exec_dialog`); PySide2 ignores
the string a Python ``fixup`` override returns (widgets.py puts the corrected text in the field instead).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional

from flame_submitter.dialog.qt_binding import BINDING_ENV

logger = logging.getLogger(__name__)

_WANTED = os.environ.get(BINDING_ENV) or next((n for n in ("PySide6", "PySide2") if n in sys.modules), "")
if _WANTED not in ("", "PySide6", "PySide2"):
    raise ImportError(f"{BINDING_ENV}={_WANTED!r}: use PySide6 or PySide2, or unset it")
_OTHER = {"PySide6": "PySide2", "PySide2": "PySide6"}.get(_WANTED)
if _OTHER is not None and _OTHER in sys.modules:
    raise ImportError(f"{_WANTED} is asked for ({BINDING_ENV}), but {_OTHER} is already loaded in this process: "
                      "two Qt bindings do not mix")

if _WANTED == "PySide2":
    from PySide2 import QtCore, QtGui, QtWidgets

    QT_BINDING = "PySide2"
else:
    try:
        from PySide6 import QtCore, QtGui, QtWidgets

        QT_BINDING = "PySide6"
    except ImportError:  # Flame 2023-2024 ship PySide2
        if _WANTED == "PySide6":
            raise
        from PySide2 import QtCore, QtGui, QtWidgets

        QT_BINDING = "PySide2"

Signal = QtCore.Signal
Slot = QtCore.Slot

__all__ = ["QT_BINDING", "QtCore", "QtGui", "QtWidgets", "Signal", "Slot", "exec_dialog", "application"]


def exec_dialog(dialog: Any) -> int:
    """Run a modal dialog: ``exec()`` in PySide6, ``exec_()`` in PySide2 (``exec`` was a Python 2 keyword)."""
    runner = getattr(dialog, "exec", None) or dialog.exec_
    return int(runner())


def application() -> Optional[Any]:
    """The running QApplication (Flame's own inside Flame), or None outside a Qt application."""
    return QtWidgets.QApplication.instance()
