"""The submit dialog's preview: a frame rendered with the current settings, beside its source.

:class:`PreviewView` paints the source and the result through a wipe (source left of the line, result right;
drag the line, or show either alone). :class:`PreviewPanel` holds it with the clip and frame to preview, the
Preview and Stop buttons, the progress of a render, which pass to show, and a line that says what the picture
is: the frame and the time it took, ComfyUI's error when it failed, or that the settings have changed since it
was rendered (the picture is then greyed and crossed by a banner). The panel renders nothing itself: it asks
(``preview_clicked``), and the dialog's caller renders off Flame's main thread.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence

from flame_submitter.dialog.model import ClipSummary
from flame_submitter.dialog.qt_compat import QtCore, QtGui, QtWidgets, Signal
from flame_submitter.preview.request import PreviewResult

logger = logging.getLogger(__name__)

VIEW_MODES = (("wipe", "Wipe"), ("source", "Source"), ("result", "Result"))
STALE_TEXT = "Settings changed since this preview: press Preview to see them"
_LABEL_BACKGROUND = QtGui.QColor(0, 0, 0, 150)


class PreviewView(QtWidgets.QWidget):
    """The source and the result, fitted into the widget with their aspect kept, seen through a wipe."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("PreviewView")
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.source: Optional[QtGui.QImage] = None
        self.result: Optional[QtGui.QImage] = None
        self.mode = "wipe"
        self.wipe = 0.5  # the share of the picture, from the left, that shows the source
        self.stale = False
        self.message = "No preview yet: choose a frame and press Preview."
        self.setMouseTracking(False)

    def set_images(self, source: Optional[QtGui.QImage], result: Optional[QtGui.QImage]) -> None:
        self.source, self.result = source, result
        self.update()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.update()

    def set_wipe(self, fraction: float) -> None:
        self.wipe = max(0.0, min(1.0, fraction))
        self.update()

    def set_stale(self, stale: bool) -> None:
        self.stale = stale
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def picture_rect(self) -> QtCore.QRect:
        """Where the pictures are drawn: the first picture's aspect, fitted and centred."""
        image = self.source or self.result
        area = self.rect().adjusted(4, 4, -4, -4)
        if image is None or image.isNull() or area.width() <= 0 or area.height() <= 0:
            return area
        scale = min(area.width() / image.width(), area.height() / image.height())
        width, height = max(1, int(image.width() * scale)), max(1, int(image.height() * scale))
        return QtCore.QRect(area.x() + (area.width() - width) // 2, area.y() + (area.height() - height) // 2,
                            width, height)

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        self._drag(event)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        self._drag(event)

    def _drag(self, event: QtGui.QMouseEvent) -> None:
        if self.mode != "wipe":
            return
        rect = self.picture_rect()
        x = event.position().x() if hasattr(event, "position") else event.x()  # PySide6, PySide2
        self.set_wipe((x - rect.x()) / max(1, rect.width()))

    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        painter = QtGui.QPainter(self)
        try:
            painter.fillRect(self.rect(), QtGui.QColor("#151515"))
            if self.source is None and self.result is None:
                painter.setPen(QtGui.QColor("#9a9a9a"))
                painter.drawText(self.rect().adjusted(16, 16, -16, -16),
                                 int(QtCore.Qt.AlignmentFlag.AlignCenter) | int(QtCore.Qt.TextFlag.TextWordWrap),
                                 self.message)
                return
            rect = self.picture_rect()
            painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, True)
            show_source = self.mode in ("wipe", "source") and self.source is not None
            show_result = self.mode in ("wipe", "result") and self.result is not None
            if show_source and self.source is not None:
                painter.drawImage(rect, self.source)
            if show_result and self.result is not None:
                split = rect.x() + int(rect.width() * self.wipe) if self.mode == "wipe" and show_source else rect.x()
                clip = QtCore.QRect(split, rect.y(), rect.right() - split + 1, rect.height())
                painter.save()
                painter.setClipRect(clip)
                painter.drawImage(rect, self.result)
                painter.restore()
                if self.mode == "wipe" and show_source:
                    painter.setPen(QtGui.QPen(QtGui.QColor("#f2c14e"), 2))
                    painter.drawLine(split, rect.y(), split, rect.bottom())
            if show_source:
                self._label(painter, rect.topLeft() + QtCore.QPoint(6, 6), "Source", left=True)
            if show_result:
                self._label(painter, rect.topRight() + QtCore.QPoint(-6, 6), "Result", left=False)
            if self.stale:
                painter.fillRect(rect, QtGui.QColor(20, 20, 20, 140))
                band = QtCore.QRect(rect.x(), rect.center().y() - 16, rect.width(), 32)
                painter.fillRect(band, QtGui.QColor(150, 90, 20, 210))
                painter.setPen(QtGui.QColor("#ffffff"))
                painter.drawText(band, int(QtCore.Qt.AlignmentFlag.AlignCenter), "STALE: settings changed")
        finally:
            painter.end()

    def _label(self, painter: QtGui.QPainter, corner: QtCore.QPoint, text: str, *, left: bool) -> None:
        metrics = painter.fontMetrics()
        width, height = metrics.horizontalAdvance(text) + 12, metrics.height() + 4
        x = corner.x() if left else corner.x() - width
        box = QtCore.QRect(x, corner.y(), width, height)
        painter.fillRect(box, _LABEL_BACKGROUND)
        painter.setPen(QtGui.QColor("#f0f0f0"))
        painter.drawText(box, int(QtCore.Qt.AlignmentFlag.AlignCenter), text)


class PreviewPanel(QtWidgets.QGroupBox):
    """The preview box of the submit dialog (see the module docstring).

    Signals:
        preview_clicked(int, int): Preview was pressed for this clip (its index) and frame.
        stop_clicked(): Stop was pressed while a preview renders.
    """

    preview_clicked = Signal(int, int)
    stop_clicked = Signal()

    def __init__(self, clips: Sequence[ClipSummary], default_frames: Sequence[int], *, where: str,
                 parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__("Preview", parent)
        self.setObjectName("PreviewPanel")
        self.clips = list(clips)
        self.default_frames = list(default_frames)
        self.running = False
        self.result: Optional[PreviewResult] = None
        self.images: Dict[str, QtGui.QImage] = {}
        column = QtWidgets.QVBoxLayout(self)
        column.setContentsMargins(10, 10, 10, 8)
        column.setSpacing(6)

        controls = QtWidgets.QHBoxLayout()
        self.clip_combo = QtWidgets.QComboBox()
        self.clip_combo.setObjectName("PreviewClip")
        for clip in self.clips:
            self.clip_combo.addItem(clip.name)
        self.clip_combo.setVisible(len(self.clips) > 1)
        self.clip_combo.currentIndexChanged.connect(self._on_clip)
        frame_label = QtWidgets.QLabel("Frame")
        self.frame_spin = QtWidgets.QSpinBox()
        self.frame_spin.setObjectName("PreviewFrame")
        self.frame_spin.setMinimumWidth(90)
        self.frame_spin.setToolTip("The frame to preview: the one under Flame's positioner when the dialog opened. "
                                   "A sequence workflow renders a short window around it.")
        self.preview_button = QtWidgets.QPushButton("Preview")
        self.preview_button.setObjectName("PreviewButton")
        self.preview_button.setToolTip(f"Render this frame with the settings above, {where}.")
        self.preview_button.clicked.connect(self._on_preview)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("PreviewStop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self._on_stop)
        controls.addWidget(self.clip_combo, 1)
        controls.addWidget(frame_label)
        controls.addWidget(self.frame_spin)
        controls.addStretch(1)
        controls.addWidget(self.preview_button)
        controls.addWidget(self.stop_button)
        column.addLayout(controls)

        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setObjectName("PreviewProgress")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setVisible(False)
        column.addWidget(self.progress_bar)

        self.view = PreviewView()
        column.addWidget(self.view, 1)

        below = QtWidgets.QHBoxLayout()
        self.mode_buttons: Dict[str, QtWidgets.QRadioButton] = {}
        for mode, label in VIEW_MODES:
            button = QtWidgets.QRadioButton(label)
            button.setObjectName(f"PreviewMode_{mode}")
            button.toggled.connect(lambda on, m=mode: self._on_mode(m, on))
            self.mode_buttons[mode] = button
            below.addWidget(button)
        self.mode_buttons["wipe"].setChecked(True)
        self.pass_combo = QtWidgets.QComboBox()
        self.pass_combo.setObjectName("PreviewPass")
        self.pass_combo.setToolTip("Which pass of the workflow the result shows.")
        self.pass_combo.setVisible(False)
        self.pass_combo.currentIndexChanged.connect(self._on_pass)
        below.addStretch(1)
        below.addWidget(self.pass_combo)
        column.addLayout(below)

        self.status_label = QtWidgets.QLabel("")
        self.status_label.setObjectName("Caption")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.status_label)
        self._on_clip(0)

    # -- what the artist does -------------------------------------------------------------------------

    @property
    def clip_index(self) -> int:
        return max(0, self.clip_combo.currentIndex())

    def _on_clip(self, index: int) -> None:
        if not self.clips:
            self.frame_spin.setEnabled(False)
            return
        index = max(0, index)
        clip = self.clips[index]
        self.frame_spin.setRange(clip.first_frame, clip.last_frame)
        self.frame_spin.setValue(self.default_frames[index] if index < len(self.default_frames) else clip.first_frame)

    def _on_preview(self) -> None:
        if self.clips and not self.running:
            self.frame_spin.interpretText()
            self.preview_clicked.emit(self.clip_index, self.frame_spin.value())

    def _on_stop(self) -> None:
        if self.running:
            self.stop_button.setEnabled(False)
            self.stop_button.setText("Stopping…")
            self.stop_clicked.emit()

    def _on_mode(self, mode: str, on: bool) -> None:
        if on:
            self.view.set_mode(mode)

    def _on_pass(self, _index: int) -> None:
        name = self.pass_combo.currentText()
        self.view.set_images(self.images.get("source"), self.images.get(name))

    # -- what the dialog tells it ---------------------------------------------------------------------

    def set_available(self, problems: Sequence[str]) -> None:
        """Preview enabled only when the settings are valid; otherwise the button says why."""
        self.preview_button.setEnabled(not problems and not self.running and bool(self.clips))
        self.preview_button.setToolTip("\n".join(problems) if problems else self.preview_button.toolTip())

    def start(self, frame: int, frames: Sequence[int], where: str) -> None:
        """A render of ``frame`` (``frames``: what is rendered) has started ``where``."""
        self.running = True
        self.preview_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.stop_button.setText("Stop")
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"Rendering frame {frame} {where}…")
        self.progress_bar.setVisible(True)
        self._set_status(f"Rendering frame {frame}" + (f" (frames {frames[0]}-{frames[-1]})" if len(frames) > 1
                                                       else "") + f" {where}…", error=False)

    def show_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.setVisible(True)
        self.progress_bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if text:
            self.progress_bar.setFormat(text)

    def show_result(self, result: PreviewResult, images: Dict[str, QtGui.QImage]) -> None:
        """The render ended: its pictures (by name: ``source`` and each pass) and the time it took, or its error."""
        self.running = False
        self.stop_button.setEnabled(False)
        self.stop_button.setText("Stop")
        self.progress_bar.setVisible(False)
        if not result.ok:
            self._set_status(result.error, error=True)
            self.view.set_stale(False)
            self.view.set_images(None, None)
            self.view.set_message(f"No preview: {result.error}")
            self.result, self.images = None, {}
            self.pass_combo.setVisible(False)
            return
        self.result, self.images = result, dict(images)
        names = [p.name for p in result.passes]
        self.pass_combo.blockSignals(True)
        self.pass_combo.clear()
        self.pass_combo.addItems(names)
        self.pass_combo.blockSignals(False)
        self.pass_combo.setVisible(len(names) > 1)
        self.view.set_stale(False)
        self.view.set_images(images.get("source"), images.get(names[0]) if names else None)
        self._set_status(self.summary(result), error=False)

    @staticmethod
    def summary(result: PreviewResult) -> str:
        window = f" (window {result.frames[0]}-{result.frames[-1]})" if len(result.frames) > 1 else ""
        text = f"Frame {result.frame}{window} rendered in {result.seconds:.1f} s"
        text += f" by {result.where}" if result.where else ""
        started = result.startup_seconds >= 0.05  # a ComfyUI started for it, not one that was running
        text += f" (ComfyUI started in {result.startup_seconds:.1f} s first)." if started else "."
        for warning in result.warnings:
            text += f"\n{warning}"
        return text

    def set_stale(self, stale: bool) -> None:
        """Mark (or unmark) the picture as rendered with settings that have changed since."""
        if self.result is None or self.running:
            return
        self.view.set_stale(stale)
        self._set_status(STALE_TEXT if stale else self.summary(self.result), error=False, stale=stale)

    @property
    def stale(self) -> bool:
        return self.view.stale

    def _set_status(self, text: str, *, error: bool, stale: bool = False) -> None:
        self.status_label.setObjectName("ResultError" if error else ("Problem" if stale else "Caption"))
        style = self.status_label.style()
        style.unpolish(self.status_label)
        style.polish(self.status_label)  # the style's font first, then the text: its wrapped height follows
        self.status_label.setText(text)
        # a wrapped label's height is not asked again inside the splitter: hold room for every line it wraps to
        self.status_label.setMinimumHeight(self.status_label.heightForWidth(max(200, self.status_label.width())))


def load_images(result: PreviewResult) -> Dict[str, QtGui.QImage]:
    """The result's JPEGs as QImages, by name (``source``, each pass); one that does not load is left out."""
    images: Dict[str, QtGui.QImage] = {}
    items: List[tuple] = ([("source", result.source.path)] if result.source else [])
    items += [(p.name, p.path) for p in result.passes]
    for name, path in items:
        image = QtGui.QImage(path)
        if image.isNull():
            logger.warning("preview: the picture %s cannot be read", path)
            continue
        images[name] = image
    return images
