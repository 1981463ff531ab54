"""The submit dialog: choose a workflow and its settings, the farm settings, the frames and the format.

The dialog never submits anything and never waits on the network on Flame's main thread:

- The pool and group lists are fetched from the Deadline Web Service in a background thread with a
  timeout; until they arrive (or when they cannot) the dialog offers the last lists it saw, so it opens at
  once and works offline.
- Submit emits ``submit_requested(SubmitChoice)`` and shows the dialog as busy. The caller runs the
  submission (or the local run) off the main thread and hands back a :class:`SubmitResult` with
  :meth:`SubmitDialog.post_result` (any thread) or :meth:`SubmitDialog.show_result` (main thread); a local
  run reports progress with :meth:`SubmitDialog.post_progress`.

Typical use from the hook (on Flame's main thread)::

    dialog = SubmitDialog.from_config(clips, config, local=False, parent=flame_main_window())
    dialog.submit_requested.connect(lambda choice: start_worker_thread(choice, dialog.post_result))
    dialog.show()
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

from farm_plugin.workflow.package import WorkflowPackage, bundled_workflows_dir
from flame_submitter.config import Config
from flame_submitter.deadline.errors import DeadlineAuthError, DeadlineTimeout, DeadlineUnreachable
from flame_submitter.dialog.farm_view import FarmView
from flame_submitter.dialog.model import (
    FARM_NUMBERS,
    OUTPUT_FORMAT_CHOICES,
    ChoicesStore,
    ClipSummary,
    DialogModel,
    PreviewChoice,
    SubmitChoice,
    SubmitResult,
    artist_message,
    comfyui_location,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.dialog.preview_panel import PreviewPanel, load_images
from flame_submitter.dialog.qt_compat import QtCore, QtGui, QtWidgets, Signal
from flame_submitter.dialog.widgets import LenientSpinBox, ParameterForm, QuietComboBox, set_invalid
from flame_submitter.jobs.templates import JobTemplate, template_dirs
from flame_submitter.preview.progress import JobProgress
from flame_submitter.preview.request import PreviewError, PreviewResult

logger = logging.getLogger(__name__)

DEFAULT_FARM_TIMEOUT_SECONDS = 5.0
FLAME_MAIN_WINDOW_NAME = "CF Main Window"  # Flame's main window objectName, as community tools find it (inferred)
FarmLists = Tuple[List[str], List[str]]
_FETCH_FAILURES = (  # why the pools and groups could not be fetched, the first that matches
    (DeadlineUnreachable, "Deadline is not reachable"),
    (DeadlineAuthError, "Deadline refused the login (check deadline_user and deadline_password)"),
)

OUTPUT_FORMAT_LABELS = {
    "source": "Same as the source",
    "exr": "OpenEXR (.exr)",
    "dpx": "DPX (.dpx)",
    "png": "PNG (.png)",
    "tiff": "TIFF (.tif)",
}
FRAME_MODE_LABELS = {"all": "All frames", "marks": "Between marks", "custom": "Custom"}
LAYERS_LABEL = "Passes as layers of one EXR"
CUSTOM_FRAMES_PLACEHOLDER = "e.g. 1001-1100 or 1001-1100x2"

_BACKGROUND = "#2b2b2b"
_FIELD = "#1c1c1c"
_BORDER = "#4a4a4a"
_TEXT = "#d4d4d4"
_DIM = "#a0a0a0"
_ACCENT = "#3f6e9e"
_CATEGORY = "#8fb0d0"
STYLE_SHEET = f"""
QDialog#ComfyFarmSubmitDialog {{ background-color: {_BACKGROUND}; }}
QScrollArea#WorkflowScroll, QWidget#WorkflowPanel, QScrollArea#SettingsScroll, QWidget#SettingsColumn {{
    background-color: {_BACKGROUND}; border: none;
}}
QLabel {{ background: transparent; }}
QLabel#WorkflowTitle {{ font-size: 17px; font-weight: bold; color: #efefef; }}
QLabel#Caption, QLabel#Details, QLabel#FarmStatus, QLabel#Hint {{ color: {_DIM}; font-size: 12px; }}
QLabel#Problem {{ color: #f0a35e; font-weight: bold; }}
QLabel#ResultOk {{ color: #8fd18f; font-weight: bold; }}
QLabel#ResultError {{ color: #ff8a7a; font-weight: bold; }}
QLabel#FieldLabel {{ color: #c8c8c8; padding-top: 6px; }}
QGroupBox {{
    border: 1px solid #404040; border-radius: 4px; margin-top: 12px; padding: 12px 10px 8px 10px;
    background-color: #313131;
}}
QGroupBox::title {{
    subcontrol-origin: margin; subcontrol-position: top left; left: 10px; padding: 0 5px;
    color: #ececec; font-weight: bold;
}}
QLineEdit, QPlainTextEdit, QComboBox {{
    background-color: {_FIELD}; border: 1px solid {_BORDER}; border-radius: 3px; padding: 3px 6px;
    color: #f0f0f0; selection-background-color: {_ACCENT}; min-height: 20px;
}}
QLineEdit:focus, QPlainTextEdit:focus, QComboBox:focus {{ border: 1px solid #6a9bd0; }}
QLineEdit:disabled, QPlainTextEdit:disabled, QComboBox:disabled {{ color: #7a7a7a; background-color: #262626; }}
QLineEdit[invalid="true"], QPlainTextEdit[invalid="true"], QComboBox[invalid="true"] {{ border: 1px solid #ff8a7a; }}
QSpinBox, QDoubleSpinBox {{ background-color: {_FIELD}; color: #f0f0f0; selection-background-color: {_ACCENT}; }}
QSpinBox:disabled, QDoubleSpinBox:disabled {{ background-color: #262626; color: #7a7a7a; }}
QSpinBox[invalid="true"], QDoubleSpinBox[invalid="true"] {{ background-color: #5c2727; }}
QComboBox QAbstractItemView {{
    background-color: {_FIELD}; border: 1px solid {_BORDER}; selection-background-color: {_ACCENT}; color: #f0f0f0;
}}
QPushButton {{
    background-color: #3d3d3d; border: 1px solid #555555; border-radius: 3px; padding: 5px 14px; color: #e6e6e6;
}}
QPushButton:hover {{ background-color: #484848; }}
QPushButton:pressed {{ background-color: #303030; }}
QPushButton:disabled {{ color: #707070; background-color: #333333; border-color: #3d3d3d; }}
QPushButton#SubmitButton {{
    background-color: {_ACCENT}; border-color: #5a89ba; color: #ffffff; font-weight: bold; padding: 6px 22px;
}}
QPushButton#SubmitButton:hover {{ background-color: #4b7db1; }}
QPushButton#SubmitButton:disabled {{ background-color: #36414d; border-color: #404c58; color: #8c98a4; }}
QTreeWidget {{
    background-color: #232323; border: 1px solid #404040; border-radius: 3px; outline: none; color: #e2e2e2;
}}
QTreeWidget::item {{ padding: 3px 2px; }}
QTreeWidget::item:selected {{ background-color: {_ACCENT}; color: #ffffff; }}
QTreeWidget::item:hover:!selected {{ background-color: #343b44; }}
QHeaderView::section {{
    background-color: #353535; color: #c4c4c4; border: none; border-right: 1px solid #2a2a2a;
    padding: 4px 6px; font-weight: bold;
}}
QRadioButton, QCheckBox {{ spacing: 6px; }}
QProgressBar {{
    background-color: {_FIELD}; border: 1px solid {_BORDER}; border-radius: 3px; text-align: center;
    color: #f0f0f0; min-height: 18px;
}}
QProgressBar::chunk {{ background-color: {_ACCENT}; }}
QToolTip {{ background-color: #1a1a1a; color: #e8e8e8; border: 1px solid #5a5a5a; padding: 4px; }}
"""


def dark_palette() -> QtGui.QPalette:
    """Colours close to Flame's UI, for the dialog and its children (QSS styles the rest)."""
    palette = QtGui.QPalette()
    roles = QtGui.QPalette.ColorRole
    for role, colour in ((roles.Window, _BACKGROUND), (roles.WindowText, _TEXT), (roles.Base, _FIELD),
                         (roles.AlternateBase, "#262626"), (roles.Text, "#f0f0f0"), (roles.Button, "#3d3d3d"),
                         (roles.ButtonText, "#e6e6e6"), (roles.Highlight, _ACCENT), (roles.HighlightedText, "#ffffff"),
                         (roles.ToolTipBase, "#1a1a1a"), (roles.ToolTipText, "#e8e8e8"), (roles.Light, "#5a5a5a"),
                         (roles.Midlight, "#4a4a4a"), (roles.Mid, "#3a3a3a"), (roles.Dark, "#1e1e1e"),
                         (roles.Shadow, "#111111"), (roles.BrightText, "#ffffff"), (roles.Link, "#7fb0e0")):
        palette.setColor(role, QtGui.QColor(colour))
    if hasattr(roles, "PlaceholderText"):  # Qt 5.12+
        palette.setColor(roles.PlaceholderText, QtGui.QColor("#7a7a7a"))
    disabled = QtGui.QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, QtGui.QColor("#757575"))
    return palette


NO_PREVIEW = ("No preview: set comfyui_dir (a local ComfyUI) or deadline_url (the farm renders it) in Settings.")


def preview_where(config: Config) -> Optional[str]:
    """How a preview renders with ``config``: on the local ComfyUI when one is configured, else as a one-task farm
    job when Deadline is; None when neither is."""
    if config.comfyui_dir or config.comfyui_urls:
        return "on the local ComfyUI"
    if config.deadline_url:
        return "as a one-task job on the farm"
    return None


def flame_main_window() -> Optional[QtWidgets.QWidget]:
    """Flame's main window, to parent dialogs to (window layering on Linux); None outside Flame."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        return None
    windows = QtWidgets.QApplication.topLevelWidgets()
    for widget in windows:
        if widget.objectName() == FLAME_MAIN_WINDOW_NAME:
            return widget
    active = QtWidgets.QApplication.activeWindow()
    if active is not None:
        return active
    return next((w for w in windows if isinstance(w, QtWidgets.QMainWindow) and w.isVisible()), None)


def deadline_farm_lists(config: Config, *, timeout_s: float = DEFAULT_FARM_TIMEOUT_SECONDS,
                        ) -> Optional[Callable[[], FarmLists]]:
    """A function that asks the configured Web Service for its pools and groups (for a background thread;
    one attempt, ``timeout_s`` per call), or None when no Web Service is configured."""
    if not config.deadline_url:
        return None
    url = config.deadline_url

    def fetch() -> FarmLists:
        from flame_submitter.deadline.client import DeadlineClient  # requests: only when asked

        client = DeadlineClient(url, user=config.deadline_user, password=config.deadline_password,
                                ca_file=config.deadline_ca_file, insecure=config.deadline_insecure,
                                timeout_s=timeout_s, read_retries=0)
        return client.pool_names(), client.group_names()

    return fetch


class _WrappingDelegate(QtWidgets.QStyledItemDelegate):
    """Rows as tall as their wrapped text: two workflows must not both read "Background removal matte …"."""

    def sizeHint(self, option: QtWidgets.QStyleOptionViewItem, index: QtCore.QModelIndex) -> QtCore.QSize:  # noqa: N802
        size = super().sizeHint(option, index)
        view = self.parent()
        depth = 1 if index.parent().isValid() else 0
        width = view.viewport().width() - view.indentation() * (depth + 1) - 12
        text = str(index.data() or "")
        if width <= 40 or not text:
            return size
        bounds = option.fontMetrics.boundingRect(QtCore.QRect(0, 0, width, 10000),
                                                 int(QtCore.Qt.TextFlag.TextWordWrap), text)
        return QtCore.QSize(size.width(), max(size.height(), bounds.height() + 8))


class WorkflowTree(QtWidgets.QTreeWidget):
    """The workflows by category; titles wrap to the list's width."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(_WrappingDelegate(self))
        self.setWordWrap(True)
        self.setUniformRowHeights(False)
        self.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self.doItemsLayout()  # the wrapped heights depend on the width


class _Relay(QtCore.QObject):
    """Carries results from worker threads to the dialog (queued onto the main thread by Qt)."""

    lists = Signal(object)
    result = Signal(object)
    progress = Signal(float, str)
    preview_result = Signal(object)
    preview_progress = Signal(float, str)
    farm_progress = Signal(object)


class SubmitDialog(QtWidgets.QDialog):
    """The submit dialog (see the module docstring). Build it on the main thread; it touches no ``flame``.

    Signals:
        submit_requested(SubmitChoice): Submit (or Run locally) was pressed with a valid form.
        cancel_requested(): Stop was pressed while a local run is in progress.
        farm_lists_changed(str): the pool and group lists changed; the text says where they came from.
        preview_requested(PreviewChoice): Preview was pressed; answer with post_preview_result (any thread).
        preview_stop_requested(): Stop was pressed while a preview renders, or the dialog closed meanwhile.
    """

    submit_requested = Signal(object)
    cancel_requested = Signal()
    farm_lists_changed = Signal(str)
    preview_requested = Signal(object)
    preview_stop_requested = Signal()

    def __init__(
        self,
        clips: Sequence[ClipSummary],
        *,
        packages: Sequence[WorkflowPackage],
        templates: Sequence[JobTemplate],
        local: bool = False,
        choices_store: Optional[ChoicesStore] = None,
        farm_lists: Optional[Callable[[], FarmLists]] = None,
        farm_timeout_s: float = DEFAULT_FARM_TIMEOUT_SECONDS,
        load_problems: Sequence[str] = (),
        preview_where: Optional[str] = None,
        parent: Optional[QtWidgets.QWidget] = None,
    ) -> None:
        super().__init__(parent)
        self.store = choices_store or ChoicesStore()
        self.model = DialogModel(packages, templates, clips, local=local, remembered=self.store.load())
        self.local = local
        self.submitted_choice: Optional[SubmitChoice] = None
        self.busy = False
        self._updating = False
        self._farm_lists = farm_lists
        self._farm_timeout_s = farm_timeout_s
        self._fetch_state = "idle"  # idle, pending, done, timed out
        self._relay = _Relay(self)
        self._relay.lists.connect(self._on_farm_lists)
        self._relay.result.connect(self.show_result)
        self._relay.progress.connect(self.show_progress)
        self._relay.preview_result.connect(self.show_preview_result)
        self._relay.preview_progress.connect(self.show_preview_progress)
        self._relay.farm_progress.connect(self.show_farm_progress)
        self.form: Optional[ParameterForm] = None
        self.preview_where = preview_where  # how a preview renders ("on the local ComfyUI"); None: it cannot
        self.preview_pending: Optional[PreviewChoice] = None  # the preview rendering now
        self.preview_shown: Optional[PreviewChoice] = None  # the preview on screen

        self.setObjectName("ComfyFarmSubmitDialog")
        self.setPalette(dark_palette())
        font = self.font()
        font.setPixelSize(13)
        self.setFont(font)
        self.setAutoFillBackground(True)
        self.setStyleSheet(STYLE_SHEET)
        self.setWindowTitle("ComfyUI Farm: Run locally" if local else "ComfyUI Farm: Submit to Deadline")
        self.setSizeGripEnabled(True)
        self.resize(1300, 900)
        self._build(load_problems)
        self._load_model_into_widgets()
        if self.model.workflow is not None:
            self._select_tree_item(self.model.workflow.name)
        self._refresh()
        if not local:
            self._start_fetching_farm_lists()

    @classmethod
    def from_config(cls, clips: Sequence[ClipSummary], config: Config, *, local: bool = False,
                    choices_path: Optional[Path] = None, farm_timeout_s: float = DEFAULT_FARM_TIMEOUT_SECONDS,
                    parent: Optional[QtWidgets.QWidget] = None) -> SubmitDialog:
        """The dialog with the configured workflows and job templates (then the bundled ones), the user's
        remembered choices and the configured Deadline Web Service."""
        folders = [Path(d) for d in config.workflows_dirs] + [bundled_workflows_dir()]
        packages, package_problems = load_workflow_packages(folders)
        templates, template_problems = load_job_templates(template_dirs(config.job_templates_dirs))
        return cls(clips, packages=packages, templates=templates, local=local,
                   choices_store=ChoicesStore(choices_path),
                   farm_lists=None if local else deadline_farm_lists(config, timeout_s=farm_timeout_s),
                   farm_timeout_s=farm_timeout_s, load_problems=package_problems + template_problems,
                   preview_where=preview_where(config), parent=parent)

    # -- building -------------------------------------------------------------------------------------

    def _build(self, load_problems: Sequence[str]) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(10)
        layout.addWidget(self._build_clips())
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.setHandleWidth(8)
        splitter.addWidget(self._build_workflow_list(load_problems))
        middle = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        middle.setChildrenCollapsible(False)
        middle.setHandleWidth(8)
        middle.addWidget(self._build_workflow_panel())
        middle.addWidget(self._build_preview())
        middle.setStretchFactor(0, 1)
        middle.setStretchFactor(1, 1)
        middle.setSizes([460, 340])
        splitter.addWidget(middle)
        splitter.addWidget(self._build_settings_column())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([300, 560, 390])
        layout.addWidget(splitter, 1)
        layout.addLayout(self._build_footer())

    def _build_clips(self) -> QtWidgets.QWidget:
        count = len(self.model.clips)
        box = QtWidgets.QGroupBox(f"Clips to send ({count})" if count != 1 else "Clip to send")
        column = QtWidgets.QVBoxLayout(box)
        column.setContentsMargins(8, 6, 8, 8)
        table = QtWidgets.QTreeWidget()
        table.setObjectName("ClipTable")
        table.setRootIsDecorated(False)
        table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        table.setHeaderLabels(["Clip", "Frames", "Marks", "Format", "To render"])
        for clip in self.model.clips:
            marks = clip.marks
            item = QtWidgets.QTreeWidgetItem([
                clip.name,
                f"{clip.first_frame}-{clip.last_frame}  ({clip.frame_count})",
                f"{marks[0]}-{marks[1]}  ({marks[1] - marks[0] + 1})" if marks else "none",
                clip.describe() or "unknown",
                "",
            ])
            item.setToolTip(0, clip.name)
            table.addTopLevelItem(item)
        header = table.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Interactive)
        widths = [300, 170, 150, 190]
        for index, width in enumerate(widths):
            table.setColumnWidth(index, width)
        row_height = max(table.fontMetrics().height() + 10, 24)
        table.setFixedHeight(row_height * (min(max(count, 1), 4) + 1) + 6)
        if not count:
            table.setHeaderLabels(["No clips selected: select clips, sequences or segments in Flame first"])
        column.addWidget(table)
        self.clip_table = table
        return box

    def _build_workflow_list(self, load_problems: Sequence[str]) -> QtWidgets.QWidget:
        panel = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 6, 0)
        column.setSpacing(6)
        heading = QtWidgets.QLabel("Workflow")
        heading.setObjectName("FieldLabel")
        column.addWidget(heading)
        tree = WorkflowTree()
        tree.setObjectName("WorkflowTree")
        tree.setHeaderHidden(True)
        tree.setIndentation(14)
        tree.setMinimumWidth(250)
        tree.header().setStretchLastSection(True)
        for category, packages in self.model.categories():
            parent = QtWidgets.QTreeWidgetItem([category])
            parent.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
            font = parent.font(0)
            font.setBold(True)
            parent.setFont(0, font)
            parent.setForeground(0, QtGui.QBrush(QtGui.QColor(_CATEGORY)))
            tree.addTopLevelItem(parent)
            for package in packages:
                child = QtWidgets.QTreeWidgetItem([package.title])
                child.setData(0, QtCore.Qt.ItemDataRole.UserRole, package.name)
                child.setToolTip(0, f"{package.title}\n({package.name})")
                parent.addChild(child)
            parent.setExpanded(True)
        tree.currentItemChanged.connect(self._on_tree_item)
        column.addWidget(tree, 1)
        if load_problems:
            warning = QtWidgets.QLabel(f"{len(load_problems)} workflow or preset file(s) could not be read "
                                       "(hover for details).")
            warning.setObjectName("Hint")
            warning.setWordWrap(True)
            warning.setToolTip("\n\n".join(load_problems))
            column.addWidget(warning)
        self.workflow_tree = tree
        return panel

    def _build_workflow_panel(self) -> QtWidgets.QWidget:
        """The chosen workflow: title, description, what it needs, and its settings (scrolls when long)."""
        scroll = QtWidgets.QScrollArea()
        scroll.setObjectName("WorkflowScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(440)
        panel = QtWidgets.QWidget()
        panel.setObjectName("WorkflowPanel")
        column = QtWidgets.QVBoxLayout(panel)
        column.setContentsMargins(6, 0, 8, 0)
        column.setSpacing(8)
        self.title_label = QtWidgets.QLabel("Choose a workflow")
        self.title_label.setObjectName("WorkflowTitle")
        self.title_label.setWordWrap(True)
        self.description_label = QtWidgets.QLabel("Pick what to do to the clips in the list on the left.")
        self.description_label.setWordWrap(True)
        self.description_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_label = QtWidgets.QLabel("")
        self.details_label.setObjectName("Details")
        self.details_label.setWordWrap(True)
        self.details_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.title_label)
        column.addWidget(self.description_label)
        column.addWidget(self.details_label)
        self.parameters_box = QtWidgets.QGroupBox("Settings")
        self.parameters_layout = QtWidgets.QVBoxLayout(self.parameters_box)
        self.parameters_layout.setContentsMargins(10, 10, 10, 8)
        self.parameters_box.setVisible(False)
        column.addWidget(self.parameters_box)
        column.addStretch(1)
        scroll.setWidget(panel)
        self.workflow_panel = panel
        return scroll

    def _build_preview(self) -> QtWidgets.QWidget:
        model = self.model
        panel = PreviewPanel(model.clips, [model.default_preview_frame(clip) for clip in model.clips],
                             where=self.preview_where or "")
        panel.preview_clicked.connect(self._on_preview)
        panel.stop_clicked.connect(self.preview_stop_requested.emit)
        if self.preview_where is None:
            panel.view.set_message(NO_PREVIEW)
        self.preview_panel = panel
        return panel

    def _build_settings_column(self) -> QtWidgets.QWidget:
        """Farm (or local run) settings above frames and output: always in view, whatever the workflow."""
        panel = QtWidgets.QWidget()
        panel.setObjectName("SettingsColumn")
        column = QtWidgets.QVBoxLayout(panel)
        column.setContentsMargins(4, 0, 0, 0)
        column.setSpacing(8)
        column.addWidget(self._build_farm_box())
        column.addWidget(self._build_frames_box())
        self.farm_view = FarmView()
        column.addWidget(self.farm_view)
        column.addStretch(1)
        panel.setMinimumWidth(360)
        scroll = QtWidgets.QScrollArea()  # the farm view below them after Submit: scroll, never squeeze
        scroll.setObjectName("SettingsScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(panel)
        scroll.setMinimumWidth(380)
        self.settings_scroll = scroll
        return scroll

    def _spin(self, key: str) -> LenientSpinBox:
        _, low, high = FARM_NUMBERS[key]
        spin = LenientSpinBox()
        spin.setRange(low, high)
        spin.setCorrectionMode(QtWidgets.QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        spin.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        spin.setMinimumWidth(100)
        spin.lineEdit().textChanged.connect(lambda _text, k=key, s=spin: self._on_farm_number(k, s))
        spin.valueChanged.connect(lambda _value, k=key, s=spin: self._on_farm_number(k, s))  # arrows, setValue
        return spin

    def _build_farm_box(self) -> QtWidgets.QWidget:
        box = QtWidgets.QGroupBox("Local run" if self.local else "Farm")
        form = QtWidgets.QFormLayout(box)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.template_combo = QuietComboBox()
        for name, template in self.model.templates.items():
            self.template_combo.addItem(name, name)
            self.template_combo.setItemData(self.template_combo.count() - 1, template.description,
                                            QtCore.Qt.ItemDataRole.ToolTipRole)
        self.template_combo.activated.connect(self._on_template)
        self.template_caption = QtWidgets.QLabel("")
        self.template_caption.setObjectName("Caption")
        self.template_caption.setWordWrap(True)
        self.chunk_spin = self._spin("chunk_size")
        self.chunk_spin.setSuffix(" frames")
        self.chunk_spin.setToolTip("Frames per Deadline task (per ComfyUI batch in a local run).")
        self.priority_spin = self._spin("priority")
        self.priority_spin.setToolTip("Deadline priority, 0 to 100 (higher renders first).")
        self.gpus_spin = self._spin("gpus_per_task")
        self.gpus_spin.setToolTip("GPUs each task's ComfyUI uses (0: all of the Worker's GPUs).")
        self.pool_combo = QuietComboBox()
        self.group_combo = QuietComboBox()
        for combo, key in ((self.pool_combo, "pool"), (self.group_combo, "group")):
            combo.setMinimumWidth(150)
            combo.currentIndexChanged.connect(lambda _index, k=key, c=combo: self._on_farm_text(k, c))
        self.farm_status = QtWidgets.QLabel("")
        self.farm_status.setObjectName("FarmStatus")
        self.farm_status.setWordWrap(True)
        if not self.local:
            form.addRow("Preset", self.template_combo)
            form.addRow("", self.template_caption)
        form.addRow("Chunk size", self.chunk_spin)
        if not self.local:
            form.addRow("Priority", self.priority_spin)
            form.addRow("Pool", self.pool_combo)
            form.addRow("Group", self.group_combo)
            form.addRow("GPUs per task", self.gpus_spin)
            form.addRow("", self.farm_status)
        else:
            note = QtWidgets.QLabel("Runs on this machine's GPUs with the local ComfyUI; Flame stays usable.")
            note.setObjectName("Caption")
            note.setWordWrap(True)
            form.addRow("", note)
        if self.local:  # farm-only fields: kept (hidden) so that the code reads one shape of dialog
            for widget in (self.template_combo, self.template_caption, self.priority_spin, self.gpus_spin,
                           self.pool_combo, self.group_combo, self.farm_status):
                widget.setParent(box)
                widget.hide()
        self.farm_box = box
        return box

    def _build_frames_box(self) -> QtWidgets.QWidget:
        box = QtWidgets.QGroupBox("Frames and output")
        form = QtWidgets.QFormLayout(box)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignTop)
        radios = QtWidgets.QWidget()
        radio_grid = QtWidgets.QGridLayout(radios)
        radio_grid.setContentsMargins(0, 4, 0, 0)
        radio_grid.setHorizontalSpacing(8)
        radio_grid.setVerticalSpacing(6)
        radio_grid.setColumnStretch(1, 1)
        self.frame_mode_group = QtWidgets.QButtonGroup(self)
        self.frame_mode_buttons = {}
        for row, (mode, label) in enumerate(FRAME_MODE_LABELS.items()):
            button = QtWidgets.QRadioButton(label)
            button.setObjectName(f"frames_{mode}")
            self.frame_mode_group.addButton(button)
            self.frame_mode_buttons[mode] = button
            radio_grid.addWidget(button, row, 0)
            button.toggled.connect(lambda checked, m=mode: self._on_frame_mode(m) if checked else None)
        marks_button = self.frame_mode_buttons["marks"]
        marks_button.setEnabled(self.model.any_marks)
        marks_button.setToolTip("Each clip between its in and out marks (clips without marks: all frames)."
                                if self.model.any_marks else "No selected clip has in and out marks.")
        self.custom_frames_edit = QtWidgets.QLineEdit()
        self.custom_frames_edit.setObjectName("CustomFrames")
        self.custom_frames_edit.setPlaceholderText(CUSTOM_FRAMES_PLACEHOLDER)
        self.custom_frames_edit.setToolTip("Deadline's frame list syntax: ranges 1001-1100, steps 1001-1100x2, "
                                           "lists 1001,1005,1010-1020.")
        self.custom_frames_edit.textChanged.connect(self._on_custom_frames)
        self.format_combo = QuietComboBox()
        for key in OUTPUT_FORMAT_CHOICES:
            self.format_combo.addItem(OUTPUT_FORMAT_LABELS.get(key, key), key)
        self.format_combo.setToolTip("The results' file format. 'Same as the source' keeps each clip's format and "
                                     "bit depth.")
        self.format_combo.currentIndexChanged.connect(self._on_output_format)
        self.layers_check = QtWidgets.QCheckBox(LAYERS_LABEL)
        self.layers_check.setObjectName("ExrLayers")
        self.layers_check.toggled.connect(self._on_exr_layers)
        radio_grid.addWidget(self.custom_frames_edit, 3, 0, 1, 2)
        self.custom_frames_edit.setMinimumWidth(200)
        form.addRow("Range", radios)
        form.addRow("Output format", self.format_combo)
        form.addRow("", self.layers_check)
        self.frames_box = box
        return box

    def _build_footer(self) -> QtWidgets.QLayout:
        column = QtWidgets.QVBoxLayout()
        column.setSpacing(6)
        self.hint_label = QtWidgets.QLabel("")
        self.hint_label.setObjectName("Hint")
        self.hint_label.setWordWrap(True)
        self.result_label = QtWidgets.QLabel("")
        self.result_label.setObjectName("ResultOk")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setVisible(False)
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setVisible(False)
        column.addWidget(self.hint_label)
        column.addWidget(self.result_label)
        column.addWidget(self.progress_bar)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.submit_button = QtWidgets.QPushButton(self._submit_text())
        self.submit_button.setObjectName("SubmitButton")
        self.submit_button.setAutoDefault(False)  # Return in a text field must not submit
        self.submit_button.clicked.connect(self._on_submit)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.submit_button)
        column.addLayout(buttons)
        self.problem_label = QtWidgets.QLabel("")
        self.problem_label.setObjectName("Problem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignTop)
        column.addWidget(self.problem_label)
        return column

    def _submit_text(self) -> str:
        count = len(self.model.clips)
        if self.local:
            return "Run locally"
        return "Submit to Deadline" if count <= 1 else f"Submit {count} jobs to Deadline"

    # -- model → widgets ------------------------------------------------------------------------------

    def _load_model_into_widgets(self) -> None:
        self._updating = True
        try:
            self._show_farm_fields()
            self.frame_mode_buttons[self.model.frame_mode].setChecked(True)
            self.custom_frames_edit.setText(self.model.custom_frames)
            self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(self.model.output_format)))
        finally:
            self._updating = False

    def _show_farm_fields(self) -> None:
        """Farm widgets from the model (the preset, after a workflow or a preset was chosen)."""
        was_updating, self._updating = self._updating, True
        try:
            index = self.template_combo.findData(self.model.template_name)
            if index >= 0:
                self.template_combo.setCurrentIndex(index)
            template = self.model.template
            self.template_caption.setText(template.description if template else "")
            for key, spin in (("chunk_size", self.chunk_spin), ("priority", self.priority_spin),
                              ("gpus_per_task", self.gpus_spin)):
                text = str(self.model.farm.get(key, "")).strip()
                if text.lstrip("-").isdigit() and spin.minimum() <= int(text) <= spin.maximum():
                    spin.setValue(int(text))
                else:  # as typed: the problem stays visible
                    spin.lineEdit().setText(text)
            self._fill_farm_combos()
            self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(self.model.output_format)))
        finally:
            self._updating = was_updating

    def _fill_farm_combos(self) -> None:
        was_updating, self._updating = self._updating, True
        try:
            for combo, key, known in ((self.pool_combo, "pool", self.model.known_pools),
                                      (self.group_combo, "group", self.model.known_groups)):
                current = str(self.model.farm.get(key) or "")
                names = list(known) or []
                if current and current not in names:
                    names.append(current)
                combo.clear()
                combo.addItems(names)
                combo.setCurrentIndex(max(0, names.index(current)) if current in names else 0)
        finally:
            self._updating = was_updating

    def _show_workflow(self) -> None:
        package = self.model.workflow
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
            self.form = None
        if package is None:
            self.parameters_box.setVisible(False)
            return
        self.title_label.setText(package.title)
        self.description_label.setText(package.description or "")
        self.details_label.setText(self._details(package, local=self.local))
        self.details_label.setToolTip(self._details_tooltip(package))
        self.form = ParameterForm(package, self.parameters_box)
        self.form.set_values(self.model.raw_values)
        self.form.changed.connect(self._on_parameter)
        self.parameters_layout.addWidget(self.form)
        self.parameters_box.setVisible(True)

    @staticmethod
    def _details(package: WorkflowPackage, *, local: bool = False) -> str:
        if package.mode == "sequence" and package.sequence is not None:
            sequence = package.sequence
            how = (f"Temporal: renders {sequence.context_frames}-frame windows"
                   + (f" with {sequence.overlap_frames} handle frames each side" if sequence.overlap_frames else "")
                   + (f", {sequence.ratio:g}x the frames" if sequence.ratio != 1 else ""))
        else:
            how = "Frame by frame"
        requirements = package.requirements
        needs = [p.rsplit("/", 1)[-1] for p in requirements.packs] + [m.name for m in requirements.models]
        needs_text = ", ".join(needs) if needs else "ComfyUI's core nodes only, no model file"
        where = "Needs in the local ComfyUI" if local else "Needs on every worker"
        return f"{how}.\n{where}: {needs_text}."

    @staticmethod
    def _details_tooltip(package: WorkflowPackage) -> str:
        requirements = package.requirements
        lines = [f"Workflow package: {package.name} ({package.path})"]
        lines += [f"Custom nodes: {pack}" for pack in requirements.packs]
        lines += [f"Model: {m.name}" + (f" in {comfyui_location(m.folder)}" if m.folder else "")
                  for m in requirements.models]
        if requirements.nodes:
            lines.append("Node classes: " + ", ".join(requirements.nodes))
        return "\n".join(lines)

    def _refresh(self) -> None:
        """Re-validate and show the result: Submit enabled only without problems, the reason under it."""
        model = self.model
        problems = model.problems()
        if self.form is not None:
            self.form.set_problems(model.parameter_problems())
        farm_problems = " ".join(model.farm_problems())
        for spin, key in ((self.chunk_spin, "chunk_size"), (self.priority_spin, "priority"),
                          (self.gpus_spin, "gpus_per_task")):
            set_invalid(spin, FARM_NUMBERS[key][0] + ":" in farm_problems)
        set_invalid(self.pool_combo, "Pool" in farm_problems)
        set_invalid(self.group_combo, "Group" in farm_problems)
        custom = model.frame_mode == "custom"
        self.custom_frames_edit.setEnabled(custom and not self.busy)
        set_invalid(self.custom_frames_edit, custom and model.custom_frame_list()[1] is not None)
        for index, clip in enumerate(model.clips):
            frames = model.frames_for(clip)
            text = f"{frames[0]}-{frames[-1]}  ({len(frames)})" if frames else "-"
            if frames and len(frames) != frames[-1] - frames[0] + 1:
                text = f"{len(frames)} frames from {frames[0]} to {frames[-1]}"
            self.clip_table.topLevelItem(index).setText(4, text)
        if problems:
            shown = problems[:3]
            more = len(problems) - len(shown)
            text = "\n".join(shown) + (f"\n(and {more} more)" if more else "")
            self.problem_label.setText(text)
        else:
            self.problem_label.setText("")
        self.problem_label.setVisible(bool(problems) and not self.busy)
        self._show_exr_layers()
        self.hint_label.setText("\n".join(model.hints()))
        self.hint_label.setVisible(bool(model.hints()))
        self.submit_button.setEnabled(not problems and not self.busy)
        self.submit_button.setToolTip("\n".join(problems))
        self._refresh_preview()

    def _refresh_preview(self) -> None:
        """Preview enabled when the workflow's settings are valid; the picture stale once they differ from its own."""
        panel = self.preview_panel
        reasons = [NO_PREVIEW] if self.preview_where is None else self.model.preview_problems()
        panel.set_available(reasons + (["A submission is under way"] if self.busy else []))
        panel.set_stale(self.preview_stale)

    @property
    def preview_stale(self) -> bool:
        """A preview is on screen and the settings have changed since it was rendered."""
        if self.preview_shown is None:
            return False
        settings = self.model.preview_settings()
        return settings is None or settings.key != self.preview_shown.settings.key

    def _show_exr_layers(self) -> None:
        """The layers checkbox: enabled for a several-pass workflow with an EXR output, ticked as it applies."""
        available, why = self.model.exr_layers_available()
        was_updating, self._updating = self._updating, True
        try:
            self.layers_check.setEnabled(available)
            self.layers_check.setChecked(self.model.effective_exr_layers)
        finally:
            self._updating = was_updating
        package = self.model.workflow
        if available and package is not None:
            names = [output.name for output in package.outputs]
            self.layers_check.setToolTip(
                f"One EXR per frame holds every pass of {package.title}: {names[0]} as its R, G, B (and A), "
                f"{', '.join(names[1:])} as the layers {', '.join(f'{n}.R/G/B' for n in names[1:])}. Flame imports "
                "it as one multi-channel clip. Unticked: each pass is its own sequence and its own clip.")
        else:
            self.layers_check.setToolTip(why)

    def _select_tree_item(self, name: str) -> None:
        iterator = QtWidgets.QTreeWidgetItemIterator(self.workflow_tree)
        while iterator.value() is not None:
            item = iterator.value()
            if item.data(0, QtCore.Qt.ItemDataRole.UserRole) == name:
                self.workflow_tree.setCurrentItem(item)
                self.workflow_tree.scrollToItem(item)
                return
            iterator += 1

    # -- widgets → model ------------------------------------------------------------------------------

    def _on_tree_item(self, current: Optional[QtWidgets.QTreeWidgetItem], _previous: Any) -> None:
        name = current.data(0, QtCore.Qt.ItemDataRole.UserRole) if current is not None else None
        if not name:
            return
        if self.model.workflow is None or self.model.workflow.name != name:
            self.model.select_workflow(name)
        self._show_workflow()
        self._show_farm_fields()
        self._refresh()

    def _on_parameter(self, key: str, raw: Any) -> None:
        self.model.set_value(key, raw)
        self._refresh()

    def _on_template(self, index: int) -> None:
        name = self.template_combo.itemData(index)
        if self._updating or not name:
            return
        self.model.select_template(name)
        self._show_farm_fields()
        self._refresh()

    def _on_farm_number(self, key: str, spin: QtWidgets.QSpinBox) -> None:
        if self._updating:
            return
        self.model.set_farm(key, spin.cleanText())
        self._refresh()

    def _on_farm_text(self, key: str, combo: QtWidgets.QComboBox) -> None:
        if self._updating:
            return
        self.model.set_farm(key, combo.currentText())
        self._refresh()

    def _on_frame_mode(self, mode: str) -> None:
        if self._updating:
            return
        self.model.set_frame_mode(mode)
        if mode == "custom" and not self.custom_frames_edit.text().strip() and self.model.clips:
            clip = self.model.clips[0]
            self.custom_frames_edit.setPlaceholderText(
                f"e.g. {clip.first_frame}-{clip.last_frame} or {clip.first_frame}-{clip.last_frame}x2")
        self._refresh()
        if mode == "custom":
            self.custom_frames_edit.setFocus()

    def _on_custom_frames(self, text: str) -> None:
        if self._updating:
            return
        self.model.set_custom_frames(text)
        self._refresh()

    def _on_output_format(self, index: int) -> None:
        if self._updating:
            return
        self.model.set_output_format(self.format_combo.itemData(index))
        self._refresh()

    def _on_exr_layers(self, checked: bool) -> None:
        if self._updating:
            return
        self.model.set_exr_layers(checked)
        self._refresh()

    # -- pools and groups -----------------------------------------------------------------------------

    def _saved_lists_text(self) -> str:
        if self.model.known_pools or self.model.known_groups:
            when = f" (from {self.memory_date})" if self.memory_date else ""
            return f"using the last known pools and groups{when}"
        return "using the preset's pool and group"

    @property
    def memory_date(self) -> str:
        return self.model.memory.lists_saved_at

    def _start_fetching_farm_lists(self) -> None:
        if self._farm_lists is None:
            self._set_farm_status(f"No Deadline Web Service configured (deadline_url): {self._saved_lists_text()}.")
            return
        self._fetch_state = "pending"
        self._set_farm_status("Asking Deadline for its pools and groups…")
        fetch, relay = self._farm_lists, self._relay

        def run() -> None:
            try:
                outcome: Tuple[str, Any] = ("ok", fetch())
            except Exception as exc:  # reported in the dialog, never raised into Qt
                logger.info("could not fetch Deadline's pools and groups: %s", exc)
                outcome = ("error", exc)
            try:
                relay.lists.emit(outcome)
            except RuntimeError:  # the dialog was closed and deleted meanwhile
                logger.debug("farm lists arrived after the dialog was closed")

        threading.Thread(target=run, name="comfyfarm-farm-lists", daemon=True).start()
        self._fetch_timer = QtCore.QTimer(self)
        self._fetch_timer.setSingleShot(True)
        self._fetch_timer.timeout.connect(self._on_fetch_timeout)
        self._fetch_timer.start(int(self._farm_timeout_s * 1000))

    def _on_fetch_timeout(self) -> None:
        if self._fetch_state != "pending":
            return
        self._fetch_state = "timed out"
        self._set_farm_status(f"Deadline did not answer within {self._farm_timeout_s:g} s: "
                              f"{self._saved_lists_text()}.")

    def _on_farm_lists(self, outcome: Tuple[str, Any]) -> None:
        kind, payload = outcome
        late = self._fetch_state == "timed out"
        self._fetch_state = "done"
        if kind == "ok":
            pools, groups = payload
            self.model.set_farm_lists(pools, groups, live=True)
            self.store.save(self.model.memory)  # the offline fallback for next time
            self._fill_farm_combos()
            self._set_farm_status("Pools and groups from Deadline" + (" (it answered late)." if late else "."))
            self._refresh()
            return
        if late:
            return  # already told: the timeout said the lists are the saved ones
        if isinstance(payload, DeadlineTimeout):  # the client's own timeout, just before the dialog's
            what = f"Deadline did not answer within {self._farm_timeout_s:g} s"
        else:
            what = next((text for kind, text in _FETCH_FAILURES if isinstance(payload, kind)),
                        "Could not get the pools and groups from Deadline")
        reason = artist_message(payload) if isinstance(payload, BaseException) else str(payload)
        self._set_farm_status(f"{what}: {self._saved_lists_text()}.", tooltip=reason)

    def _set_farm_status(self, text: str, *, tooltip: str = "") -> None:
        self.farm_status.setText(text)
        self.farm_status.setToolTip(tooltip)
        self.farm_lists_changed.emit(text)

    # -- the preview ----------------------------------------------------------------------------------

    def _on_preview(self, clip_index: int, frame: int) -> None:
        try:
            choice = self.model.preview_choice(clip_index, frame)
        except (ValueError, PreviewError) as exc:
            self.preview_panel.show_result(PreviewResult(error=artist_message(exc)), {})
            return
        self.preview_pending = choice
        self.preview_panel.start(frame, choice.frames, self.preview_where or "")
        logger.info("submit dialog: preview %s frame %d of %s", choice.choice.workflow, frame, choice.clip.name)
        self.preview_requested.emit(choice)

    def show_preview_progress(self, fraction: float, text: str = "") -> None:
        """A preview's progress (0 to 1). Main thread only: from other threads use post_preview_progress."""
        if self.preview_panel.running:
            self.preview_panel.show_progress(fraction, text)

    def show_preview_result(self, result: PreviewResult) -> None:
        """A preview ended: its pictures and time, or its error (ComfyUI's own words). Main thread only."""
        pending, self.preview_pending = self.preview_pending, None
        if result.ok and pending is not None:
            self.preview_shown = pending
        self.preview_panel.show_result(result, load_images(result) if result.ok else {})
        self._refresh()

    def post_preview_result(self, result: PreviewResult) -> None:
        """:meth:`show_preview_result` from any thread (queued onto the main thread)."""
        try:
            self._relay.preview_result.emit(result)
        except RuntimeError:
            logger.info("the submit dialog was closed before the preview came")

    def post_preview_progress(self, fraction: float, text: str = "") -> None:
        """:meth:`show_preview_progress` from any thread (queued onto the main thread)."""
        try:
            self._relay.preview_progress.emit(float(fraction), text)
        except RuntimeError:
            logger.debug("the submit dialog was closed during the preview")

    def show_farm_progress(self, jobs: Sequence[JobProgress]) -> None:
        """The submitted jobs as the farm reports them: state, frames per pass, the latest frame. Main thread only:
        from other threads use post_farm_progress."""
        first = not self.farm_view.isVisible()
        self.farm_view.show_jobs(jobs)
        if first:  # the news is below the settings: bring it into view once
            QtCore.QTimer.singleShot(0, lambda: self.settings_scroll.ensureWidgetVisible(self.farm_view))

    def post_farm_progress(self, jobs: Sequence[JobProgress]) -> None:
        """:meth:`show_farm_progress` from any thread (queued onto the main thread)."""
        try:
            self._relay.farm_progress.emit(list(jobs))
        except RuntimeError:
            logger.debug("the submit dialog was closed while the farm was asked")

    def done(self, code: int) -> None:  # noqa: D102 (QDialog's): closing stops a preview that still renders
        if self.preview_panel.running:
            self.preview_stop_requested.emit()
        super().done(code)

    # -- submit and results ---------------------------------------------------------------------------

    def _on_submit(self) -> None:
        try:
            choice = self.model.choice()
        except Exception as exc:  # a problem that slipped past problems(): show it, do not submit
            self.problem_label.setText(artist_message(exc))
            self.problem_label.setVisible(True)
            return
        self.model.memory = self.model.remember()
        self.store.save(self.model.memory)
        if self.preview_shown is not None and not self.preview_stale:
            logger.info("submit dialog: submitting the settings previewed on frame %d", self.preview_shown.frame)
        self.submitted_choice = choice
        self._set_busy(True)
        self.result_label.setVisible(False)
        if self.local:
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("Starting ComfyUI…")
            self.progress_bar.setVisible(True)
        logger.info("submit dialog: %s %s on %d clip(s)", "run locally" if self.local else "submit",
                    choice.workflow, len(choice.clips))
        self.submit_requested.emit(choice)

    def _on_cancel(self) -> None:
        if self.busy and self.local:
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Stopping…")
            self.cancel_requested.emit()
            return
        self.reject()

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for widget in (self.workflow_tree, self.parameters_box, self.farm_box, self.frames_box):
            widget.setEnabled(not busy)
        self.submit_button.setText(("Running…" if self.local else "Submitting…") if busy else self._submit_text())
        if busy:
            self.cancel_button.setText("Stop" if self.local else "Close")
        self._refresh()

    def show_progress(self, fraction: float, text: str = "") -> None:
        """Show a local run's progress (0 to 1). Main thread only: from other threads use post_progress."""
        self.progress_bar.setVisible(True)
        self.progress_bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        self.progress_bar.setFormat(text or f"{fraction * 100:.0f} %")

    def show_result(self, result: SubmitResult) -> None:
        """Show what became of the submission. Main thread only: from other threads use post_result.

        Success: the job ids (selectable, to paste into Deadline Monitor) and Close. Failure: the error in
        the artist's words, and the form enabled again to fix it and retry.
        """
        self.busy = False
        self.cancel_button.setEnabled(True)
        self.result_label.setVisible(True)
        if result.ok:
            self.result_label.setObjectName("ResultOk")
            self.result_label.setText(self._success_text(result))
            self.submit_button.setText("Done")
            self.submit_button.setEnabled(False)
            self.cancel_button.setText("Close")
            self.problem_label.setVisible(False)
            if self.local:
                self.progress_bar.setValue(1000)
                self.progress_bar.setFormat("Finished")
            for widget in (self.workflow_tree, self.parameters_box, self.farm_box, self.frames_box):
                widget.setEnabled(False)
        else:
            self.result_label.setObjectName("ResultError")
            self.result_label.setText(result.error[:1].upper() + result.error[1:])
            self.progress_bar.setVisible(False)
            self.cancel_button.setText("Cancel")
            self._set_busy(False)
        self.result_label.style().unpolish(self.result_label)
        self.result_label.style().polish(self.result_label)

    def _success_text(self, result: SubmitResult) -> str:
        if result.job_ids:
            jobs = "job" if len(result.job_ids) == 1 else "jobs"
            text = f"Submitted {len(result.job_ids)} {jobs} to Deadline: {', '.join(result.job_ids)}."
            text += " The results come back to the Flame library when the jobs finish."
            return f"{text} {result.message}".strip()
        return result.message or "Done."

    def post_result(self, result: SubmitResult) -> None:
        """:meth:`show_result` from any thread (queued onto the main thread)."""
        try:
            self._relay.result.emit(result)
        except RuntimeError:
            logger.info("the submit dialog was closed before the result came: %s", result)

    def post_progress(self, fraction: float, text: str = "") -> None:
        """:meth:`show_progress` from any thread (queued onto the main thread)."""
        try:
            self._relay.progress.emit(float(fraction), text)
        except RuntimeError:
            logger.debug("the submit dialog was closed during the run")

    def post_error(self, error: BaseException) -> None:
        """Report an exception of the submission from any thread, in the artist's words."""
        logger.error("submission failed: %s", error, exc_info=error)
        self.post_result(SubmitResult(error=artist_message(error)))
