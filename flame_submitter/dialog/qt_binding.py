"""Which Qt binding the dialogs load, decided before anything imports Qt (``qt_compat`` reads it here).

Inside Flame the binding is the one Flame's Python ships, from Flame's version: PySide2 up to Flame 2024
(Python 3.9, Qt 5), PySide6 from Flame 2025 (Python 3.11, Qt 6). Loading the other one into Flame's process
mixes two Qt major versions in one process; and what happens to import is no guide: a PySide6 installed next
to a Flame 2024, or PySide2 nobody has imported yet, would be picked. So the Flame side calls
:func:`use_flame_binding` with Flame's version before the first dialog, and that wins over anything else.
Outside Flame: ``COMFYFARM_QT_BINDING`` when set, else the binding already loaded, else PySide6, then PySide2.

Standard library only: importing this module imports no Qt.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import MutableMapping, Optional

logger = logging.getLogger(__name__)

BINDING_ENV = "COMFYFARM_QT_BINDING"
BINDINGS = ("PySide6", "PySide2")
FIRST_PYSIDE6_FLAME = 2025


def binding_for_flame(flame_version: str) -> str:
    """``"2024.2"`` → ``"PySide2"``; ``"2025.1"`` → ``"PySide6"`` (a version without a year: the newest)."""
    year = re.match(r"\s*(\d{4})", str(flame_version))
    return "PySide2" if year and int(year.group(1)) < FIRST_PYSIDE6_FLAME else "PySide6"


def use_flame_binding(flame_version: str, environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Make the dialogs load the binding of Flame ``flame_version`` (through ``COMFYFARM_QT_BINDING``, which
    ``qt_compat`` reads when it is first imported); returns it. A different value set by hand is replaced, and
    the log says so."""
    env = os.environ if environ is None else environ
    binding = binding_for_flame(flame_version)
    asked = env.get(BINDING_ENV)
    if asked and asked != binding:
        logger.warning("comfyfarm: %s=%s ignored: Flame %s runs %s", BINDING_ENV, asked, flame_version, binding)
    env[BINDING_ENV] = binding
    loaded = sys.modules.get("flame_submitter.dialog.qt_compat")
    if loaded is not None and getattr(loaded, "QT_BINDING", binding) != binding:
        logger.error("comfyfarm: the dialogs already loaded %s, but Flame %s runs %s",
                     getattr(loaded, "QT_BINDING", "?"), flame_version, binding)
    return binding
