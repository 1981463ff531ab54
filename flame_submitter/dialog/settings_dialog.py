"""The Settings dialog: the artist's own comfyfarm settings, where each value comes from, Test connection.

The state and the rules live in flame_submitter/config/settings_model.py (no Qt); this is the window over it. It
never waits on the network on Flame's main thread: Test connection asks the Web Service from a thread,
with a timeout, and the answer comes back through a queued Qt signal. It touches no ``flame``.

Typical use from the hook (on Flame's main thread)::

    dialog = SettingsDialog(SettingsModel.load(), parent=flame_main_window())
    dialog.saved.connect(lambda path: reload_the_configuration())
    dialog.show()
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from farm_plugin.paths import OS_NAMES
from flame_submitter.config import ConfigError
from flame_submitter.config.settings_checks import Check
from flame_submitter.config.settings_model import FIELDS, SECTIONS, SettingField, SettingsModel
from flame_submitter.deadline.connection import try_deadline_connection
from flame_submitter.dialog.qt_compat import QtCore, QtWidgets, Signal
from flame_submitter.dialog.submit_dialog import STYLE_SHEET, dark_palette
from flame_submitter.dialog.widgets import set_invalid

logger = logging.getLogger(__name__)

DEFAULT_TEST_TIMEOUT_SECONDS = 5.0
OS_LABELS = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}
SETTINGS_STYLE = STYLE_SHEET + """
QLabel { font-size: 13px; }
QDialog#ComfyFarmSettingsDialog { background-color: #2b2b2b; }
QLabel#Origin { color: #a0a0a0; font-size: 12px; }
QLabel#CheckError { color: #ff8a7a; font-size: 12px; }
QLabel#CheckWarning { color: #f0a35e; font-size: 12px; }
QLabel#TestOk { color: #8fd18f; font-size: 13px; }
QLabel#TestError { color: #ff8a7a; font-size: 13px; }
QLabel#FilePath { color: #c8c8c8; font-size: 13px; }
QLabel#Problem { font-size: 13px; }
QTableWidget { background-color: #1c1c1c; color: #f0f0f0; gridline-color: #404040; border: 1px solid #4a4a4a; }
QScrollBar:vertical { background: #2b2b2b; width: 12px; margin: 0; }
QScrollBar::handle:vertical { background: #505050; border-radius: 5px; min-height: 30px; margin: 1px; }
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical { height: 0; }
QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical { background: none; }
"""
Tester = Callable[[str, Optional[str], Optional[str]], Check]


class _Relay(QtCore.QObject):
    """Carries Test connection's answer from its thread to the dialog (queued onto the main thread)."""

    tested = Signal(object, int)


class MappingsTable(QtWidgets.QWidget):
    """Path mappings: one row per storage, a column per OS; Add and Remove rows."""

    changed = Signal()

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        self.table = QtWidgets.QTableWidget(0, len(OS_NAMES))
        self.table.setHorizontalHeaderLabels([OS_LABELS[n] for n in OS_NAMES])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setFixedHeight(84)
        self.table.itemChanged.connect(lambda _item: self.changed.emit())
        column.addWidget(self.table)
        buttons = QtWidgets.QHBoxLayout()
        self.add_button = QtWidgets.QPushButton("Add mapping")
        self.add_button.setAutoDefault(False)
        self.add_button.clicked.connect(self.add_row)
        self.remove_button = QtWidgets.QPushButton("Remove mapping")
        self.remove_button.setAutoDefault(False)
        self.remove_button.clicked.connect(self.remove_row)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        column.addLayout(buttons)

    def rows(self) -> List[Dict[str, str]]:
        found = []
        for row in range(self.table.rowCount()):
            cells = {}
            for index, os_name in enumerate(OS_NAMES):
                item = self.table.item(row, index)
                cells[os_name] = item.text() if item is not None else ""
            found.append(cells)
        return found

    def set_rows(self, rows: List[Dict[str, str]]) -> None:
        blocked = self.table.blockSignals(True)
        self.table.setRowCount(0)
        for row in rows:
            self._append(row)
        self.table.blockSignals(blocked)
        self.changed.emit()

    def _append(self, row: Dict[str, str]) -> None:
        number = self.table.rowCount()
        self.table.insertRow(number)
        for index, os_name in enumerate(OS_NAMES):
            self.table.setItem(number, index, QtWidgets.QTableWidgetItem(row.get(os_name, "")))

    def add_row(self) -> None:
        self._append({})
        self.table.setCurrentCell(self.table.rowCount() - 1, 0)
        self.changed.emit()

    def remove_row(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            row = self.table.rowCount() - 1
        if row >= 0:
            self.table.removeRow(row)
            self.changed.emit()


class SettingsDialog(QtWidgets.QDialog):
    """The Settings dialog (see the module docstring). Build it on the main thread.

    Signals:
        saved(str): the user's file was written (its path); the dialog then closes.
    """

    saved = Signal(str)

    def __init__(self, model: SettingsModel, *, tester: Optional[Tester] = None,
                 test_timeout_s: float = DEFAULT_TEST_TIMEOUT_SECONDS,
                 parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.model = model
        self.test_timeout_s = test_timeout_s
        self._tester = tester or (lambda url, user, password: try_deadline_connection(
            url, user, password, timeout_s=test_timeout_s))
        self._test_number = 0
        self._relay = _Relay(self)
        self._relay.tested.connect(self._on_tested)
        self.editors: Dict[str, Any] = {}
        self.origin_labels: Dict[str, QtWidgets.QLabel] = {}
        self.check_labels: Dict[str, QtWidgets.QLabel] = {}
        self.setObjectName("ComfyFarmSettingsDialog")
        self.setWindowTitle("ComfyUI Farm: Settings")
        self.setPalette(dark_palette())
        font = self.font()
        font.setPixelSize(13)
        self.setFont(font)
        self.setAutoFillBackground(True)
        self.setStyleSheet(SETTINGS_STYLE)
        self.setSizeGripEnabled(True)
        self.resize(900, 1040)
        self._build()
        self._load()
        self._refresh()

    # -- building -------------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)
        where = QtWidgets.QLabel(self._where_text())
        where.setObjectName("FilePath")
        where.setWordWrap(True)
        where.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)
        self.file_problems = QtWidgets.QLabel("\n".join(self.model.sources.problems))
        self.file_problems.setObjectName("Problem")
        self.file_problems.setWordWrap(True)
        self.file_problems.setVisible(bool(self.model.sources.problems))
        layout.addWidget(self.file_problems)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QtWidgets.QWidget()
        body.setObjectName("SettingsColumn")
        column = QtWidgets.QVBoxLayout(body)
        column.setContentsMargins(0, 0, 6, 0)
        for section in SECTIONS:
            column.addWidget(self._build_section(section))
        column.addStretch(1)
        scroll.setWidget(body)
        layout.addWidget(scroll, 1)
        layout.addLayout(self._build_footer())

    def _where_text(self) -> str:
        sources = self.model.sources
        studio = (f"the studio's ({sources.studio_path})" if sources.studio or sources.studio_path.is_file()
                  else "the studio's, if there is one")
        return (f"Your settings are saved in {sources.user_path}. Leave a field empty to use {studio} or "
                "comfyfarm's default, shown in grey.")

    def _build_section(self, section: str) -> QtWidgets.QWidget:
        box = QtWidgets.QGroupBox(section)
        grid = QtWidgets.QGridLayout(box)
        grid.setContentsMargins(10, 10, 10, 8)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(3)
        grid.setColumnMinimumWidth(0, 150)
        grid.setColumnStretch(1, 1)
        row = 0
        for setting in (f for f in FIELDS if f.section == section):
            label = QtWidgets.QLabel(setting.label)
            label.setObjectName("FieldLabel")
            label.setToolTip(setting.hint)
            grid.addWidget(label, row, 0, QtCore.Qt.AlignmentFlag.AlignTop)
            grid.addWidget(self._editor(setting), row, 1)
            origin = QtWidgets.QLabel("")
            origin.setObjectName("Origin")
            origin.setWordWrap(True)
            check = QtWidgets.QLabel("")
            check.setObjectName("CheckError")
            check.setWordWrap(True)
            check.setVisible(False)
            grid.addWidget(origin, row + 1, 1)
            grid.addWidget(check, row + 2, 1)
            grid.setRowMinimumHeight(row + 3, 4)  # air between one setting and the next
            self.origin_labels[setting.key] = origin
            self.check_labels[setting.key] = check
            row += 4
        if section == "Deadline":
            grid.addLayout(self._build_test_row(), row, 1)
        return box

    def _editor(self, setting: SettingField) -> QtWidgets.QWidget:
        if setting.kind == "mappings":
            table = MappingsTable()
            table.setToolTip(setting.hint)
            table.changed.connect(lambda k=setting.key, t=table: self._on_edit(k, t.rows()))
            self.editors[setting.key] = table
            return table
        line = QtWidgets.QLineEdit()
        line.setToolTip(setting.hint)
        line.setClearButtonEnabled(setting.kind != "password")
        if setting.kind == "password":
            line.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        line.textChanged.connect(lambda text, k=setting.key: self._on_edit(k, text))
        self.editors[setting.key] = line
        if setting.kind not in ("folder", "comfyui_dir", "program"):
            return line
        holder = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(line, 1)
        browse = QtWidgets.QPushButton("Browse…")
        browse.setAutoDefault(False)
        browse.clicked.connect(lambda _checked=False, s=setting, e=line: self._browse(s, e))
        row.addWidget(browse)
        return holder

    def _build_test_row(self) -> QtWidgets.QLayout:
        column = QtWidgets.QVBoxLayout()
        column.setContentsMargins(0, 6, 0, 0)
        row = QtWidgets.QHBoxLayout()
        self.test_button = QtWidgets.QPushButton("Test connection")
        self.test_button.setAutoDefault(False)
        self.test_button.setToolTip("Asks the Web Service whether it answers and takes the user and password")
        self.test_button.clicked.connect(self.test_connection)
        row.addWidget(self.test_button)
        row.addStretch(1)
        column.addLayout(row)
        self.test_label = QtWidgets.QLabel("")
        self.test_label.setWordWrap(True)
        self.test_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.test_label)
        return column

    def _build_footer(self) -> QtWidgets.QLayout:
        column = QtWidgets.QVBoxLayout()
        self.problem_label = QtWidgets.QLabel("")
        self.problem_label.setObjectName("Problem")
        self.problem_label.setWordWrap(True)
        column.addWidget(self.problem_label)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self.reject)
        self.save_button = QtWidgets.QPushButton("Save")
        self.save_button.setObjectName("SubmitButton")
        self.save_button.setAutoDefault(False)  # Return in a field must not save
        self.save_button.clicked.connect(self.save)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.save_button)
        column.addLayout(buttons)
        return column

    # -- model <-> widgets ----------------------------------------------------------------------------

    def _load(self) -> None:
        for setting in FIELDS:
            editor = self.editors[setting.key]
            value = self.model.shown.get(setting.key)
            if isinstance(editor, MappingsTable):
                editor.set_rows(list(value or []))
            else:
                editor.setText(str(value or ""))
                editor.setPlaceholderText(self.model.placeholder(setting.key))

    def _on_edit(self, key: str, value: Any) -> None:
        self.model.set(key, value)
        self._refresh()

    def _refresh(self) -> None:
        for setting in FIELDS:
            key = setting.key
            self.origin_labels[key].setText(self.model.origin_text(key))
            found = self.model.check(key)
            label = self.check_labels[key]
            label.setVisible(found is not None)
            label.setText(found.text if found is not None else "")
            label.setObjectName("CheckWarning" if found is not None and found.level == "warning" else "CheckError")
            label.style().unpolish(label)
            label.style().polish(label)
            editor = self.editors[key]
            set_invalid(editor.table if isinstance(editor, MappingsTable) else editor,
                        found is not None and found.level == "error")
        errors = self.model.errors()
        changes = self.model.changes()
        self.problem_label.setText(errors[0] if errors else "")
        self.problem_label.setVisible(bool(errors))
        self.save_button.setEnabled(not errors and bool(changes))
        self.save_button.setToolTip("" if changes else "Nothing changed yet")

    def _browse(self, setting: SettingField, line: QtWidgets.QLineEdit) -> None:
        start = line.text() or line.placeholderText().split(" (")[0]
        if setting.kind == "program":
            chosen, _ = QtWidgets.QFileDialog.getOpenFileName(self, setting.label, start)
        else:
            chosen = QtWidgets.QFileDialog.getExistingDirectory(self, setting.label, start)
        if chosen:
            line.setText(chosen)

    # -- saving ----------------------------------------------------------------------------------------

    def save(self) -> bool:
        """Write the user's file (the checks passed); close and emit ``saved``. False: nothing was written."""
        try:
            path = self.model.save()
        except ConfigError as exc:
            self.problem_label.setText(str(exc))
            self.problem_label.setVisible(True)
            return False
        self.saved.emit(str(path))
        self.accept()
        return True

    # -- test connection ------------------------------------------------------------------------------

    def test_connection(self) -> None:
        """Ask the Web Service, from a thread, with what the form says (the environment still wins)."""
        url = self.model.effective("deadline_url")
        if not url:
            self._show_test(Check("error", "Set the Web Service URL first"))
            return
        user = self.model.effective("deadline_user")
        password = self.model.effective("deadline_password")
        self._test_number += 1
        number, tester, relay = self._test_number, self._tester, self._relay
        self.test_button.setEnabled(False)
        self.test_button.setText("Testing…")
        self._show_test(Check("info", f"Asking {url}…"))

        def run() -> None:
            try:
                answer = tester(str(url), user and str(user), password and str(password))
            except Exception as exc:  # an unexpected failure is an answer too, never raised into Qt
                logger.exception("comfyfarm: Test connection failed")
                answer = Check("error", f"The test itself failed ({type(exc).__name__}: {exc})")
            try:
                relay.tested.emit(answer, number)
            except RuntimeError:  # the dialog was closed and deleted meanwhile
                logger.debug("the connection test ended after the dialog closed")

        threading.Thread(target=run, name="comfyfarm-test-connection", daemon=True).start()
        QtCore.QTimer.singleShot(int((self.test_timeout_s + 1.0) * 1000), lambda n=number: self._on_test_timeout(n))

    def _on_test_timeout(self, number: int) -> None:
        if number == self._test_number and not self.test_button.isEnabled():
            self._on_tested(Check("error", f"Deadline did not answer within {self.test_timeout_s:g} s"), number)

    def _on_tested(self, answer: Check, number: int) -> None:
        if number != self._test_number or self.test_button.isEnabled():
            return  # an older test, or one already reported as timed out
        self.test_button.setEnabled(True)
        self.test_button.setText("Test connection")
        self._show_test(answer)

    def _show_test(self, answer: Check) -> None:
        self.test_label.setText(answer.text)
        self.test_label.setObjectName({"ok": "TestOk", "error": "TestError"}.get(answer.level, "Origin"))
        self.test_label.style().unpolish(self.test_label)
        self.test_label.style().polish(self.test_label)
