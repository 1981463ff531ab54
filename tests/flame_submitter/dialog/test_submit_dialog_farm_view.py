"""The submit dialog's farm view, offscreen: after Submit it shows each job's state, the frames done per pass and a
thumbnail of the latest frame, as reports arrive from another thread; and the watcher that polls the farm stops
when the jobs finish or when it is told to (the dialog closed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                         reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")

from farm_plugin.workflow.package import bundled_workflows_dir  # noqa: E402
from flame_submitter.dialog.model import (  # noqa: E402
    ChoicesStore,
    ClipSummary,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.jobs.templates import template_dirs  # noqa: E402
from flame_submitter.preview.progress import FarmWatcher, JobProgress, PassFrames  # noqa: E402
from tests.flame_submitter.dialog.conftest import submit_dialogs, wait_until  # noqa: E402

QtGui = qt.QtGui
CLIPS = (ClipSummary("sh010_plate", 1001, 1024, width=1920, height=1080, fps=24.0),)
PACKAGES, _ = load_workflow_packages([bundled_workflows_dir()])
TEMPLATES, _ = load_job_templates(template_dirs())


def thumbnail(path: Path, colour: str) -> str:
    image = QtGui.QImage(320, 180, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(colour))
    assert image.save(str(path))
    return str(path)


def test_the_farm_view_shows_frames_per_pass_and_the_latest_frame_as_reports_arrive(qapp, tmp_path: Path) -> None:
    store = ChoicesStore(tmp_path / "submit_dialog.json")
    with submit_dialogs(qapp, CLIPS, packages=PACKAGES, templates=TEMPLATES, choices_store=store,
                        farm_lists=None) as make:
        dialog = make("depth_normal_ao_maps")
        view = dialog.farm_view
        assert not view.isVisible()  # nothing submitted yet
        first = JobProgress(job="65a1", name="sh010_plate - Depth, normal and AO maps", state="Rendering",
                            tasks_done=1, tasks=3, progress=33.0,
                            passes=(PassFrames("depth", 8, 24, 1008, thumbnail(tmp_path / "d1.png", "#404040")),
                                    PassFrames("normals", 8, 24, 1008), PassFrames("ao", 7, 24, 1007)))
        threading.Thread(target=dialog.post_farm_progress, args=([first],)).start()
        wait_until(qapp, lambda: "65a1" in view.rows)
        row = view.rows["65a1"]
        assert view.isVisible()
        assert row.title.text() == "sh010_plate - Depth, normal and AO maps  (65a1)"
        assert row.details.text() == ("Rendering: 1/3 tasks (33 %)\ndepth: 8/24 frames, latest 1008\n"
                                      "normals: 8/24 frames, latest 1008\nao: 7/24 frames, latest 1007")
        shown = row.thumbnail.pixmap().toImage()
        assert QtGui.QColor(shown.pixel(shown.width() // 2, shown.height() // 2)).name() == "#404040"
        later = JobProgress(job="65a1", name=first.name, state="Completed", tasks_done=3, tasks=3, progress=100.0,
                            passes=(PassFrames("depth", 24, 24, 1024, thumbnail(tmp_path / "d2.png", "#a0a0a0")),
                                    PassFrames("normals", 24, 24, 1024), PassFrames("ao", 24, 24, 1024)))
        dialog.post_farm_progress([later])
        wait_until(qapp, lambda: row.details.text().startswith("Completed"))
        assert row.shown_thumbnail == str(tmp_path / "d2.png") and len(view.rows) == 1
        shown = row.thumbnail.pixmap().toImage()
        assert QtGui.QColor(shown.pixel(shown.width() // 2, shown.height() // 2)).name() == "#a0a0a0"
        dialog.post_farm_progress([JobProgress(job="65a2", error="comfyfarm status did not answer within 60 s")])
        wait_until(qapp, lambda: "65a2" in view.rows)
        assert view.rows["65a2"].details.text() == "Progress unknown: comfyfarm status did not answer within 60 s"


def test_the_watcher_asks_until_the_jobs_finish_and_stops_when_told() -> None:
    asked: List[str] = []
    reports: List[List[JobProgress]] = []
    states = iter(["Queued", "Rendering", "Completed"])

    def ask(job: str) -> JobProgress:
        asked.append(job)
        return JobProgress(job=job, state=next(states))

    watcher = FarmWatcher(["65a1"], ask, reports.append, poll_s=0.01).start()
    watcher.thread.join(5)
    assert not watcher.thread.is_alive()
    assert [[r.state for r in report] for report in reports] == [["Queued"], ["Rendering"], ["Completed"]]
    endless: List[Any] = []
    watcher = FarmWatcher(["65a1"], lambda job: JobProgress(job=job, state="Rendering"), endless.append,
                          poll_s=0.01).start()
    time.sleep(0.1)
    watcher.stop.set()  # the dialog closed
    watcher.thread.join(5)
    assert not watcher.thread.is_alive() and endless
