"""Qt runs offscreen here: set before any QApplication exists; one QApplication for the whole session."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Sequence

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def qapp() -> Iterator[Any]:
    """The session's QApplication (skips the test when no Qt binding is installed)."""
    qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                             reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")
    app = qt.QtWidgets.QApplication.instance() or qt.QtWidgets.QApplication(["comfyfarm-tests"])
    yield app


def wait_until(app: Any, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let Qt process events until ``condition()`` holds (a background thread reporting to the dialog)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the dialog")
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()


def click_and_wait_for_done(dialog: Any, flame_session: Any, qapp: Any, timeout_s: float = 30.0) -> float:
    """Click the dialog's Submit (or Run) and let Flame idle until it says Done; returns how long the click
    itself took (the work must happen off Flame's main thread)."""
    started = time.monotonic()
    dialog.submit_button.click()
    clicked = time.monotonic() - started
    deadline = time.monotonic() + timeout_s
    while dialog.submit_button.text() != "Done" and time.monotonic() < deadline:
        flame_session.pump_idle(seconds=1)
        qapp.processEvents()
        time.sleep(0.05)
    assert dialog.submit_button.text() == "Done", dialog.problem_label.text()
    return clicked


@contextmanager
def submit_dialogs(app: Any, clips: Sequence[Any], **defaults: Any) -> Iterator[Callable[..., Any]]:
    """``make(workflow="", **kwargs)``: a shown SubmitDialog for ``clips`` (or ``clips=``), with ``defaults`` for
    the arguments not given, the workflow ``workflow`` selected; every one made is closed at the end."""
    from flame_submitter.dialog.submit_dialog import SubmitDialog

    made: List[Any] = []

    def make(workflow: str = "", **kwargs: Any) -> Any:
        for name, value in defaults.items():
            kwargs.setdefault(name, value)
        dialog = SubmitDialog(kwargs.pop("clips", clips), **kwargs)
        dialog.show()
        made.append(dialog)
        if workflow:
            dialog._select_tree_item(workflow)
        app.processEvents()
        return dialog

    try:
        yield make
    finally:
        for dialog in made:
            dialog.close()
            dialog.deleteLater()
        app.processEvents()
