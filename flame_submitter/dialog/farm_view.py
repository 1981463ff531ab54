"""The submit dialog's farm view: once jobs are submitted, each one's state, frames done per pass, and a thumbnail
of the latest finished frame, as ``comfyfarm status`` reports them (``preview.progress``). It shows what it is
given; the dialog's caller polls the farm off Flame's main thread."""

from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence

from flame_submitter.dialog.qt_compat import QtCore, QtGui, QtWidgets
from flame_submitter.preview.progress import JobProgress

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = QtCore.QSize(160, 90)


class JobRow(QtWidgets.QWidget):
    """One job: its name, thumbnail and progress text."""

    def __init__(self, job: str, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.job = job
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        row.setSpacing(8)
        self.thumbnail = QtWidgets.QLabel("no frame yet")
        self.thumbnail.setObjectName("FarmThumbnail")
        self.thumbnail.setFixedSize(THUMBNAIL_SIZE)
        self.thumbnail.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setStyleSheet("background-color: #151515; color: #7a7a7a; font-size: 11px;")
        text = QtWidgets.QVBoxLayout()
        text.setSpacing(2)
        self.title = QtWidgets.QLabel(job)
        self.title.setObjectName("FieldLabel")
        self.title.setWordWrap(True)
        self.details = QtWidgets.QLabel("Asking the farm…")
        self.details.setObjectName("Caption")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        text.addWidget(self.title)
        text.addWidget(self.details)
        text.addStretch(1)
        row.addWidget(self.thumbnail)
        row.addLayout(text, 1)
        self.shown_thumbnail: Optional[str] = None

    def show_progress(self, progress: JobProgress) -> None:
        self.title.setText(f"{progress.name or progress.job}  ({progress.job})")
        self.details.setText(progress.describe())
        latest = progress.thumbnail
        if latest is None or latest.thumbnail is None:
            return
        image = QtGui.QImage(latest.thumbnail)
        if image.isNull():
            logger.info("farm view: the thumbnail %s cannot be read", latest.thumbnail)
            return
        pixmap = QtGui.QPixmap.fromImage(image).scaled(
            THUMBNAIL_SIZE, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
            QtCore.Qt.TransformationMode.SmoothTransformation)
        self.thumbnail.setPixmap(pixmap)
        self.thumbnail.setToolTip(f"{latest.name}: frame {latest.latest} ({latest.thumbnail})")
        self.shown_thumbnail = latest.thumbnail


class FarmView(QtWidgets.QGroupBox):
    """The jobs of the submission, one row each (hidden until the first report)."""

    def __init__(self, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__("On the farm", parent)
        self.setObjectName("FarmView")
        self.rows: Dict[str, JobRow] = {}
        self._column = QtWidgets.QVBoxLayout(self)
        self._column.setContentsMargins(8, 8, 8, 8)
        self._column.setSpacing(6)
        self.note = QtWidgets.QLabel("Updated every few seconds while this dialog is open; Deadline Monitor shows "
                                     "each task.")
        self.note.setObjectName("Hint")
        self.note.setWordWrap(True)
        self._column.addWidget(self.note)
        self.setVisible(False)

    def show_jobs(self, jobs: Sequence[JobProgress]) -> None:
        for progress in jobs:
            row = self.rows.get(progress.job)
            if row is None:
                row = self.rows[progress.job] = JobRow(progress.job)
                self._column.insertWidget(self._column.count() - 1, row)
            row.show_progress(progress)
        self.setVisible(True)
