"""The submit dialog's preview with real widgets, offscreen: it asks for the frame under the positioner with the
current settings, shows the pictures it gets back through a wipe with the time taken, says ComfyUI's error, marks
itself stale when a setting that changes the picture changes, and the same settings are then submitted.

The render is a stand-in here (a thread that answers with pictures written beforehand), as the dialog's caller
would run it; tests/flame_submitter/dialog/test_hook_preview.py renders for real from the Flame double."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                         reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")

from farm_plugin.workflow.package import bundled_workflows_dir  # noqa: E402
from flame_submitter.config import Config  # noqa: E402
from flame_submitter.dialog.model import (  # noqa: E402
    ChoicesStore,
    ClipSummary,
    PreviewChoice,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.dialog.preview_panel import STALE_TEXT  # noqa: E402
from flame_submitter.dialog.submit_dialog import NO_PREVIEW, SubmitDialog, preview_where  # noqa: E402
from flame_submitter.jobs.templates import template_dirs  # noqa: E402
from flame_submitter.preview.request import PreviewImage, PreviewResult  # noqa: E402
from tests.flame_submitter.dialog.conftest import submit_dialogs, wait_until  # noqa: E402

QtCore, QtGui, QtWidgets = qt.QtCore, qt.QtGui, qt.QtWidgets

CLIPS = (
    ClipSummary("sh010_plate", 1001, 1100, has_marks=True, mark_in=1011, mark_out=1050, width=1920, height=1080,
                fps=24.0, positioner=1042),
    ClipSummary("sh020_plate", 1001, 1060, width=1920, height=1080, fps=24.0),
)
PACKAGES, _ = load_workflow_packages([bundled_workflows_dir()])
TEMPLATES, _ = load_job_templates(template_dirs())


def picture(path: Path, colour: str) -> str:
    image = QtGui.QImage(192, 108, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(colour))
    assert image.save(str(path))
    return str(path)


class StandIn:
    """Answers each preview from a thread, as FlameApp's PreviewRunner does: progress, then the result."""

    def __init__(self, dialog: SubmitDialog, tmp_path: Path, *, error: str = "") -> None:
        self.dialog = dialog
        self.asked: List[PreviewChoice] = []
        self.stops = 0
        self.error = error
        self.release = threading.Event()
        self.release.set()
        self.current: object = None
        self.source = picture(tmp_path / "source.png", "#336699")
        self.result = picture(tmp_path / "blurred.png", "#cc9933")
        dialog.preview_requested.connect(self.render)
        dialog.preview_stop_requested.connect(self.stop)

    def render(self, choice: PreviewChoice) -> None:
        self.asked.append(choice)
        token = self.current = object()

        def work() -> None:
            self.dialog.post_preview_progress(0.5, "1/2 frames")
            self.release.wait(10)
            if self.current is not token:  # stopped: it answers nothing more
                return
            if self.error:
                self.dialog.post_preview_result(PreviewResult(error=self.error))
                return
            self.dialog.post_preview_result(PreviewResult(
                frame=choice.frame, frames=choice.frames, seconds=2.5, where="1 ComfyUI on GPU 0",
                source=PreviewImage("source", self.source, choice.frame),
                passes=(PreviewImage("blurred", self.result, choice.frame),)))

        threading.Thread(target=work, daemon=True).start()

    def stop(self) -> None:
        self.stops += 1
        self.current = None
        self.dialog.post_preview_result(PreviewResult(error="Stopped: the preview was interrupted; nothing was kept"))


@pytest.fixture
def make_dialog(qapp: Any, tmp_path: Path) -> Iterator[Callable[..., SubmitDialog]]:
    store = ChoicesStore(tmp_path / "config" / "submit_dialog.json")
    with submit_dialogs(qapp, CLIPS, packages=PACKAGES, templates=TEMPLATES, choices_store=store,
                        farm_lists=lambda: (["none", "gpu"], ["none", "gpu_24gb"]),
                        preview_where="on the local ComfyUI") as make:
        yield make


def preview(qapp: Any, dialog: SubmitDialog) -> None:
    dialog.preview_panel.preview_button.click()
    wait_until(qapp, lambda: not dialog.preview_panel.running)


def pixel(image: Any, x: int, y: int) -> str:
    return QtGui.QColor(image.pixel(x, y)).name()


def test_the_preview_renders_the_frame_under_the_positioner_and_shows_it_beside_its_source(
        qapp, make_dialog, tmp_path: Path) -> None:
    dialog = make_dialog("blur")
    stand_in = StandIn(dialog, tmp_path)
    panel = dialog.preview_panel
    assert panel.frame_spin.value() == 1042  # Flame's positioner
    assert (panel.frame_spin.minimum(), panel.frame_spin.maximum()) == (1001, 1100)
    dialog.form.fields["radius"].editor.setValue(5)  # type: ignore[union-attr]
    qapp.processEvents()
    preview(qapp, dialog)
    (asked,) = stand_in.asked
    assert (asked.clip.name, asked.frame, asked.frames) == ("sh010_plate", 1042, (1042,))
    assert asked.settings.parameters["radius"] == 5 and "radius=5" in asked.settings.set_arguments
    assert asked.choice.custom_frames == "1042" and asked.choice.template_overrides == {"chunk_size": 1}
    assert panel.status_label.text() == "Frame 1042 rendered in 2.5 s by 1 ComfyUI on GPU 0."
    assert set(panel.images) == {"source", "blurred"} and not panel.pass_combo.isVisible()
    shown = panel.view.grab().toImage()
    rect = panel.view.picture_rect()
    left, right = rect.x() + rect.width() // 4, rect.x() + 3 * rect.width() // 4
    assert pixel(shown, left, rect.center().y()) == "#336699"  # the source left of the wipe
    assert pixel(shown, right, rect.center().y()) == "#cc9933"  # the result right of it
    panel.mode_buttons["result"].setChecked(True)
    assert pixel(panel.view.grab().toImage(), left, rect.center().y()) == "#cc9933"
    panel.mode_buttons["source"].setChecked(True)
    assert pixel(panel.view.grab().toImage(), right, rect.center().y()) == "#336699"


def test_a_sequence_workflow_previews_a_window_around_the_frame_inside_the_clip(qapp, make_dialog,
                                                                                tmp_path: Path) -> None:
    dialog = make_dialog("sequence_invert")
    stand_in = StandIn(dialog, tmp_path)
    dialog.preview_panel.frame_spin.setValue(1099)
    preview(qapp, dialog)
    (asked,) = stand_in.asked
    context = next(p for p in PACKAGES if p.name == "sequence_invert").sequence.context_frames  # type: ignore
    assert asked.frames == tuple(range(1101 - context, 1101)) and 1099 in asked.frames
    assert dialog.preview_panel.status_label.text().startswith(f"Frame 1099 (window {1101 - context}-1100)")


def test_changing_a_setting_marks_the_preview_stale_and_the_same_settings_are_submitted(qapp, make_dialog,
                                                                                      tmp_path: Path) -> None:
    dialog = make_dialog("blur")
    stand_in = StandIn(dialog, tmp_path)
    form = dialog.form
    assert form is not None
    form.fields["radius"].editor.setValue(4)  # type: ignore[attr-defined]
    qapp.processEvents()
    preview(qapp, dialog)
    panel = dialog.preview_panel
    assert not dialog.preview_stale and not panel.stale
    dialog.chunk_spin.setValue(7)  # the farm's chunking does not change the picture
    qapp.processEvents()
    assert not dialog.preview_stale
    form.fields["radius"].editor.setValue(9)  # type: ignore[attr-defined]
    qapp.processEvents()
    assert dialog.preview_stale and panel.stale and panel.status_label.text() == STALE_TEXT
    before = panel.view.grab().toImage()
    rect = panel.view.picture_rect()
    assert pixel(before, rect.x() + 5, rect.y() + 5) != "#336699"  # greyed over
    form.fields["radius"].editor.setValue(4)  # type: ignore[attr-defined]  # back to what was previewed
    qapp.processEvents()
    assert not dialog.preview_stale and panel.status_label.text().startswith("Frame 1042 rendered")
    index = dialog.format_combo.findData("exr")
    dialog.format_combo.setCurrentIndex(index)
    dialog.format_combo.activated.emit(index)
    qapp.processEvents()
    assert dialog.preview_stale  # the output format changes what is written: preview again
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("source"))
    dialog.format_combo.activated.emit(dialog.format_combo.findData("source"))
    qapp.processEvents()
    assert not dialog.preview_stale
    wait_until(qapp, lambda: dialog.submit_button.isEnabled())
    submitted: List[Any] = []
    dialog.submit_requested.connect(submitted.append)
    dialog.submit_button.click()
    (choice,) = submitted
    shown = dialog.preview_shown
    assert shown is not None
    assert choice.workflow_path == shown.settings.workflow_path
    assert dict(choice.parameters) == dict(shown.settings.parameters) and choice.parameters["radius"] == 4
    assert choice.output_format == shown.settings.output_format and choice.exr_layers == shown.settings.exr_layers
    assert choice.frame_mode == "all"  # the job sends the clips' frames, not the previewed one
    assert len(stand_in.asked) == 1


def test_a_preview_that_fails_shows_comfyuis_error(qapp, make_dialog, tmp_path: Path) -> None:
    dialog = make_dialog("blur")
    error = ("ComfyUI failed the prompt: node 3 (ImageBlur) raised RuntimeError: the blur radius is larger "
             "than the image")
    stand_in = StandIn(dialog, tmp_path, error=error)
    preview(qapp, dialog)
    assert len(stand_in.asked) == 1
    panel = dialog.preview_panel
    assert panel.status_label.text() == error and panel.status_label.objectName() == "ResultError"
    assert panel.view.source is None and panel.view.message == f"No preview: {error}"
    assert panel.preview_button.isEnabled() and not panel.stop_button.isEnabled()
    assert dialog.preview_shown is None and not dialog.preview_stale


def test_stop_asks_the_caller_to_stop_and_closing_the_dialog_does_too(qapp, make_dialog, tmp_path: Path) -> None:
    dialog = make_dialog("blur")
    stand_in = StandIn(dialog, tmp_path)
    stand_in.release.clear()  # the render runs until stopped
    panel = dialog.preview_panel
    panel.preview_button.click()
    wait_until(qapp, lambda: panel.progress_bar.value() == 500)
    assert panel.running and panel.stop_button.isEnabled() and not panel.preview_button.isEnabled()
    assert panel.progress_bar.text() == "1/2 frames"
    panel.stop_button.click()
    wait_until(qapp, lambda: not panel.running)
    assert stand_in.stops == 1
    assert panel.status_label.text() == "Stopped: the preview was interrupted; nothing was kept"
    panel.preview_button.click()
    wait_until(qapp, lambda: panel.running)
    dialog.reject()  # Cancel or the window's close button while it renders
    assert stand_in.stops == 2
    stand_in.release.set()


def test_settings_that_are_not_valid_disable_the_preview_and_say_why(qapp, make_dialog, tmp_path: Path) -> None:
    dialog = make_dialog("blur")
    form = dialog.form
    assert form is not None
    form.fields["radius"].editor.lineEdit().setText("999")  # type: ignore[attr-defined]
    qapp.processEvents()
    button = dialog.preview_panel.preview_button
    assert not button.isEnabled() and "Radius" in button.toolTip()


def test_without_a_local_comfyui_or_deadline_the_preview_says_what_to_set(qapp, tmp_path: Path) -> None:
    assert preview_where(Config(comfyui_dir="/opt/ComfyUI")) == "on the local ComfyUI"
    assert preview_where(Config(deadline_url="http://deadline:8081")) == "as a one-task job on the farm"
    assert preview_where(Config()) is None
    store = ChoicesStore(tmp_path / "submit_dialog.json")
    with submit_dialogs(qapp, CLIPS, packages=PACKAGES, templates=TEMPLATES, choices_store=store,
                        farm_lists=None, preview_where=None) as make:
        dialog = make("blur")
        button = dialog.preview_panel.preview_button
        assert not button.isEnabled() and button.toolTip() == NO_PREVIEW
        assert dialog.preview_panel.view.message == NO_PREVIEW
