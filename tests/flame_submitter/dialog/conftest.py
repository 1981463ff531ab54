"""Qt runs offscreen here: set before any QApplication exists; one QApplication for the whole session."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def qapp() -> Iterator[Any]:
    """The session's QApplication (skips the test when no Qt binding is installed)."""
    qt = pytest.importorskip("flame_submitter.qt_compat",
                             reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")
    app = qt.QtWidgets.QApplication.instance() or qt.QtWidgets.QApplication(["comfyfarm-tests"])
    yield app
