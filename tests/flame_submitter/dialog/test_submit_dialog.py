"""The submit dialog with real widgets, offscreen (conftest.py sets QT_QPA_PLATFORM before Qt starts)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                         reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")

from farm_plugin.workflow.package import WorkflowPackage, bundled_workflows_dir  # noqa: E402
from flame_submitter.config import Config  # noqa: E402
from flame_submitter.deadline.errors import DeadlineUnreachable  # noqa: E402
from flame_submitter.dialog import widgets  # noqa: E402
from flame_submitter.dialog.model import (  # noqa: E402
    ChoicesStore,
    ClipSummary,
    SubmitChoice,
    SubmitResult,
    artist_message,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.dialog.submit_dialog import SubmitDialog, deadline_farm_lists  # noqa: E402
from flame_submitter.jobs.templates import template_dirs  # noqa: E402
from tests.flame_submitter.dialog.conftest import submit_dialogs, wait_until  # noqa: E402

QtCore, QtWidgets = qt.QtCore, qt.QtWidgets
QTest = pytest.importorskip(f"{qt.QT_BINDING}.QtTest").QTest  # PySide6 or PySide2, as qt_compat chose

CLIPS = (
    ClipSummary("sh010_plate", 1001, 1100, has_marks=True, mark_in=1011, mark_out=1050, width=1920, height=1080,
                fps=24.0),
    ClipSummary("sh020_plate", 1001, 1060, width=1920, height=1080, fps=24.0),
)
POOLS, GROUPS = ["none", "gpu", "cpu"], ["none", "gpu_24gb", "gpu_48gb"]
PACKAGES, _ = load_workflow_packages([bundled_workflows_dir()])
TEMPLATES, _ = load_job_templates(template_dirs())
BY_NAME: Dict[str, WorkflowPackage] = {p.name: p for p in PACKAGES}




@pytest.fixture
def store(tmp_path: Path) -> ChoicesStore:
    return ChoicesStore(tmp_path / "config" / "comfyfarm" / "submit_dialog.json")


@pytest.fixture
def make_dialog(qapp: Any, store: ChoicesStore) -> Iterator[Callable[..., SubmitDialog]]:
    with submit_dialogs(qapp, CLIPS, packages=PACKAGES, templates=TEMPLATES, choices_store=store,
                        farm_lists=lambda: (POOLS, GROUPS)) as make:
        yield make


def type_into(widget: Any, text: str) -> None:
    line = widget.lineEdit() if isinstance(widget, QtWidgets.QAbstractSpinBox) else widget
    line.setFocus()
    line.selectAll()
    QTest.keyClick(line, QtCore.Qt.Key.Key_Delete)
    QTest.keyClicks(line, text)


# -- widgets generated from the manifests ---------------------------------------------------------------

FIELD_TYPES = {
    "int": (widgets.IntField, QtWidgets.QSpinBox),
    "seed": (widgets.SeedField, QtWidgets.QSpinBox),
    "float": (widgets.FloatField, QtWidgets.QDoubleSpinBox),
    "choice": (widgets.ChoiceField, QtWidgets.QComboBox),
    "bool": (widgets.BoolField, QtWidgets.QCheckBox),
    "prompt": (widgets.PromptField, QtWidgets.QPlainTextEdit),
    "file": (widgets.FileField, QtWidgets.QLineEdit),
    "text": (widgets.TextField, QtWidgets.QLineEdit),
}
EXPECTED = {  # the kind of each string parameter, and a few others, as an artist expects them
    "flux_tiled_upscale": {"prompt": "prompt", "seed": "seed", "weight_precision": "choice"},
    "set_extension_water_splash": {"prompt": "prompt", "seed": "seed", "extend_left": "int"},
    "temporal_coherence_animatediff": {"prompt": "prompt", "negative_prompt": "prompt", "seed": "seed"},
    "toonyou_style": {"prompt": "prompt", "negative_prompt": "prompt", "seed": "seed", "cfg": "float"},
    "film_look_lut": {"lut": "file", "strength": "float"},
    "advanced_chroma_key": {"key_colour": "choice", "remove_specks": "bool"},
    "rife_frame_interpolation": {"fast_mode": "bool", "scale_factor": "choice"},
    "blur": {"radius": "int", "sigma": "float"},
}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_widgets_of_each_shipped_workflow(make_dialog: Callable[..., SubmitDialog], name: str) -> None:
    dialog = make_dialog(name)
    package = BY_NAME[name]
    assert dialog.model.workflow is package
    assert dialog.title_label.text() == package.title
    form = dialog.form
    assert form is not None and list(form.fields) == [p.key for p in package.parameters]
    for parameter in package.parameters:
        field = form.fields[parameter.key]
        field_class, editor_class = FIELD_TYPES[field.kind]
        assert type(field) is field_class and isinstance(field.editor, editor_class), parameter.key
        assert field.kind == EXPECTED.get(name, {}).get(parameter.key, field.kind)
        editor = field.editor
        if parameter.type in ("int", "float"):
            assert editor.minimum() == pytest.approx(parameter.min)
            assert editor.maximum() == pytest.approx(parameter.max)
            assert editor.singleStep() == pytest.approx(parameter.step or (1 if parameter.type == "int" else 0.1))
            assert editor.value() == pytest.approx(parameter.default)
            if parameter.type == "float":  # enough decimals to show every step
                assert round(parameter.step or 0.1, editor.decimals()) == pytest.approx(parameter.step or 0.1)
        elif parameter.type == "choice":
            assert [editor.itemText(i) for i in range(editor.count())] == [str(c) for c in parameter.choices]
            assert field.raw_value() == parameter.default
        elif parameter.type == "bool":
            assert editor.isChecked() is parameter.default
        else:
            text = editor.toPlainText() if field.kind == "prompt" else editor.text()
            assert text == parameter.default
        if field.kind == "seed":
            assert field.randomise_button.text() == "Randomise"
        if field.kind == "file":
            assert field.browse_button.text() == "Browse…"
    if not package.parameters:
        assert "no settings" in dialog.parameters_box.findChild(QtWidgets.QLabel, "Caption").text()
    assert dialog.model.problems() == []
    assert dialog.submit_button.isEnabled()
    assert dialog.problem_label.text() == ""


# -- validation as the artist types ---------------------------------------------------------------------


def test_an_out_of_range_value_disables_submit_with_the_reason(make_dialog: Callable[..., SubmitDialog],
                                                               qapp: Any) -> None:
    dialog = make_dialog("blur")
    assert dialog.submit_button.isEnabled()
    radius = dialog.form.fields["radius"].editor
    type_into(radius, "99")
    assert radius.text() == "99"  # kept as typed, not refused
    assert not dialog.submit_button.isEnabled()
    assert dialog.problem_label.text() == "Radius (pixels): 99 is more than the maximum, 31"
    assert dialog.problem_label.isVisible()
    assert radius.property("invalid") is True
    type_into(radius, "12")
    assert dialog.submit_button.isEnabled() and dialog.problem_label.text() == ""
    assert radius.property("invalid") is False

    sigma = dialog.form.fields["sigma"].editor
    type_into(sigma, "0.05")
    assert dialog.problem_label.text() == "Sigma: 0.05 is less than the minimum, 0.1"
    assert not dialog.submit_button.isEnabled()
    QTest.keyClick(sigma.lineEdit(), QtCore.Qt.Key.Key_Return)  # Return (or leaving it) puts the nearest value
    assert sigma.value() == pytest.approx(0.1) and sigma.text() == "0.1"
    assert dialog.submit_button.isEnabled()
    type_into(radius, "99")
    QTest.keyClick(radius.lineEdit(), QtCore.Qt.Key.Key_Return)
    assert radius.text() == "31" and dialog.model.raw_values["radius"] == "31" and dialog.submit_button.isEnabled()
    assert dialog.isVisible()  # Return did not submit or close the dialog


def test_an_empty_or_foreign_custom_frame_list_disables_submit(make_dialog: Callable[..., SubmitDialog]) -> None:
    dialog = make_dialog("invert")
    assert not dialog.custom_frames_edit.isEnabled()
    dialog.frame_mode_buttons["custom"].click()
    assert dialog.custom_frames_edit.isEnabled()
    assert not dialog.submit_button.isEnabled()
    assert dialog.problem_label.text().startswith("Custom frames: frame list is empty: write frames like")
    type_into(dialog.custom_frames_edit, "1001-1020x5")
    assert dialog.submit_button.isEnabled()
    assert dialog.clip_table.topLevelItem(1).text(4) == "4 frames from 1001 to 1016"
    type_into(dialog.custom_frames_edit, "1050-1070")
    assert dialog.problem_label.text() == "Custom frames: 1061-1070 are not in clip 'sh020_plate' (1001-1060)"
    assert not dialog.submit_button.isEnabled()
    dialog.frame_mode_buttons["marks"].click()
    assert dialog.submit_button.isEnabled()
    assert dialog.clip_table.topLevelItem(0).text(4) == "1011-1050  (40)"
    assert dialog.hint_label.text() == "No marks on sh020_plate: all its frames are sent."


def test_a_farm_number_out_of_range_disables_submit(make_dialog: Callable[..., SubmitDialog]) -> None:
    dialog = make_dialog("invert")
    type_into(dialog.priority_spin, "150")
    assert dialog.problem_label.text() == "Priority: 150 is not a whole number from 0 to 100"
    assert not dialog.submit_button.isEnabled()


def test_the_marks_mode_is_offered_only_when_a_clip_has_marks(make_dialog: Callable[..., SubmitDialog]) -> None:
    assert make_dialog("invert").frame_mode_buttons["marks"].isEnabled()
    assert not make_dialog("invert", clips=CLIPS[1:]).frame_mode_buttons["marks"].isEnabled()


def test_seed_randomise_and_file_browse(make_dialog: Callable[..., SubmitDialog], monkeypatch: Any) -> None:
    dialog = make_dialog("toonyou_style")
    seed = dialog.form.fields["seed"]
    seed.randomise_button.click()
    assert seed.editor.value() != 0 and 0 <= seed.editor.value() <= 2147483647
    assert dialog.model.raw_values["seed"] == str(seed.editor.value())
    steps = dialog.form.fields["steps"].editor
    steps.stepUp()  # the arrows reach the model too
    assert dialog.model.raw_values["steps"] == "21"
    dialog.gpus_spin.stepUp()
    assert dialog.model.farm["gpus_per_task"] == "2"

    dialog._select_tree_item("film_look_lut")
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args: ("/show/luts/kodak_2383.cube", "LUT files")))
    lut = dialog.form.fields["lut"]
    lut.browse_button.click()
    assert lut.editor.text() == "kodak_2383.cube"  # ComfyUI looks it up by name in models/luts
    type_into(lut.editor, "")
    assert dialog.problem_label.text() == "LUT file: choose a file"


# -- pools and groups from the Web Service, and offline -------------------------------------------------


def test_pools_and_groups_come_from_the_web_service(make_dialog: Callable[..., SubmitDialog], qapp: Any,
                                                    fake_deadline: Any, store: ChoicesStore) -> None:
    config = Config(deadline_url=fake_deadline.url)
    dialog = make_dialog("invert", farm_lists=deadline_farm_lists(config, timeout_s=5))
    wait_until(qapp, lambda: "from Deadline" in dialog.farm_status.text())
    assert dialog.farm_status.text() == "Pools and groups from Deadline."
    assert [dialog.pool_combo.itemText(i) for i in range(dialog.pool_combo.count())] == POOLS
    assert [dialog.group_combo.itemText(i) for i in range(dialog.group_combo.count())] == GROUPS
    assert ("GET", "/api/pools") in fake_deadline.requests_seen()
    saved = json.loads(store.path.read_text())  # the fallback for when the farm cannot be reached
    assert saved["farm_lists"]["pools"] == POOLS and saved["farm_lists"]["groups"] == GROUPS
    dialog.pool_combo.setCurrentIndex(1)
    assert dialog.model.farm["pool"] == "gpu" and dialog.submit_button.isEnabled()


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_offline_the_dialog_offers_the_last_known_lists(make_dialog: Callable[..., SubmitDialog], qapp: Any,
                                                        store: ChoicesStore) -> None:
    remembered = store.load()
    store.save(type(remembered)(known_pools=("none", "gpu"), known_groups=("none", "gpu_24gb"),
                                lists_saved_at="2026-05-04 10:30", pool="gpu"))
    config = Config(deadline_url=_closed_port_url())
    started = time.monotonic()
    dialog = make_dialog("blur", farm_lists=deadline_farm_lists(config, timeout_s=2))
    assert time.monotonic() - started < 1.0
    wait_until(qapp, lambda: "not reachable" in dialog.farm_status.text())
    assert dialog.farm_status.text() == ("Deadline is not reachable: using the last known pools and groups "
                                         "(from 2026-05-04 10:30).")
    assert "connection refused" in dialog.farm_status.toolTip()
    assert [dialog.pool_combo.itemText(i) for i in range(dialog.pool_combo.count())] == ["none", "gpu"]
    assert dialog.pool_combo.currentText() == "gpu"
    assert dialog.submit_button.isEnabled()  # usable offline: the submission itself checks the farm


def test_no_web_service_configured(make_dialog: Callable[..., SubmitDialog]) -> None:
    dialog = make_dialog("invert", farm_lists=deadline_farm_lists(Config()))
    assert dialog.farm_status.text() == ("No Deadline Web Service configured (deadline_url): using the preset's "
                                         "pool and group.")
    assert dialog.pool_combo.currentText() == "none" and dialog.submit_button.isEnabled()


def test_a_slow_web_service_never_blocks_the_dialog(make_dialog: Callable[..., SubmitDialog], qapp: Any,
                                                    fake_deadline: Any) -> None:
    fake_deadline.set_faults(delay_s=2.0)
    config = Config(deadline_url=fake_deadline.url)
    started = time.monotonic()
    dialog = make_dialog("blur", farm_lists=deadline_farm_lists(config, timeout_s=0.4), farm_timeout_s=0.4)
    assert time.monotonic() - started < 0.4  # opened at once
    assert dialog.farm_status.text() == "Asking Deadline for its pools and groups…"
    type_into(dialog.form.fields["radius"].editor, "40")  # the dialog answers while Deadline does not
    assert dialog.problem_label.text() == "Radius (pixels): 40 is more than the maximum, 31"
    wait_until(qapp, lambda: "did not answer" in dialog.farm_status.text(), timeout_s=3)
    assert dialog.farm_status.text() == ("Deadline did not answer within 0.4 s: using the preset's pool and group.")
    assert time.monotonic() - started < 1.5


def test_a_failing_web_service(make_dialog: Callable[..., SubmitDialog], qapp: Any, fake_deadline: Any) -> None:
    fake_deadline.set_faults(status=500, body="Internal Server Error", path_prefix="/api/pools")
    dialog = make_dialog("invert", farm_lists=deadline_farm_lists(Config(deadline_url=fake_deadline.url)))
    wait_until(qapp, lambda: "Could not get" in dialog.farm_status.text())
    assert dialog.farm_status.text() == ("Could not get the pools and groups from Deadline: using the preset's "
                                         "pool and group.")
    assert "HTTP 500" in dialog.farm_status.toolTip()
    assert dialog.submit_button.isEnabled()


# -- remembered choices ---------------------------------------------------------------------------------


def test_the_last_choices_are_restored_on_the_next_open(make_dialog: Callable[..., SubmitDialog], qapp: Any,
                                                        store: ChoicesStore) -> None:
    first = make_dialog("blur")
    wait_until(qapp, lambda: "from Deadline" in first.farm_status.text())
    type_into(first.form.fields["radius"].editor, "9")
    first.pool_combo.setCurrentIndex(POOLS.index("gpu"))
    type_into(first.priority_spin, "70")
    first.frame_mode_buttons["custom"].click()
    type_into(first.custom_frames_edit, "1001-1010")
    first.format_combo.setCurrentIndex(first.format_combo.findData("png"))
    first.submit_button.click()
    assert store.path.is_file()

    second = make_dialog(farm_lists=None)
    assert second.model.workflow is not None and second.model.workflow.name == "blur"
    assert second.workflow_tree.currentItem().text(0) == "Gaussian blur"
    assert second.form.fields["radius"].editor.value() == 9
    assert second.pool_combo.currentText() == "gpu"
    assert [second.pool_combo.itemText(i) for i in range(second.pool_combo.count())] == POOLS
    assert second.priority_spin.value() == 70
    assert second.frame_mode_buttons["custom"].isChecked()
    assert second.custom_frames_edit.text() == "1001-1010"
    assert second.format_combo.currentData() == "png"
    assert second.submit_button.isEnabled()


# -- Submit: the SubmitChoice, then the result ----------------------------------------------------------


def test_submit_emits_the_choice_and_shows_the_job_ids(make_dialog: Callable[..., SubmitDialog], qapp: Any) -> None:
    dialog = make_dialog("toonyou_style")
    wait_until(qapp, lambda: "from Deadline" in dialog.farm_status.text())
    fields = dialog.form.fields
    fields["prompt"].editor.setPlainText("pencil sketch, cross hatching")
    type_into(fields["strength"].editor, "0.7")
    type_into(fields["seed"].editor, "4242")
    dialog.pool_combo.setCurrentIndex(POOLS.index("gpu"))
    dialog.group_combo.setCurrentIndex(GROUPS.index("gpu_48gb"))
    type_into(dialog.gpus_spin, "2")
    dialog.frame_mode_buttons["marks"].click()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("exr"))
    assert dialog.submit_button.text() == "Submit 2 jobs to Deadline"
    chosen: List[SubmitChoice] = []
    dialog.submit_requested.connect(chosen.append)
    dialog.submit_button.click()

    assert len(chosen) == 1
    choice = chosen[0]
    assert choice == dialog.submitted_choice
    assert (choice.workflow, choice.template, choice.frame_mode, choice.output_format, choice.local) == (
        "toonyou_style", "heavy", "marks", "exr", False)
    assert choice.parameters["prompt"] == "pencil sketch, cross hatching"
    assert (choice.parameters["strength"], choice.parameters["seed"], choice.parameters["steps"]) == (0.7, 4242, 20)
    assert choice.template_overrides == {"chunk_size": 16, "pool": "gpu", "group": "gpu_48gb", "gpus_per_task": 2,
                                         "output_format": "exr"}
    assert choice.clips == CLIPS
    assert [len(choice.frames_for(c)) for c in CLIPS] == [40, 60]
    assert dialog.busy and not dialog.submit_button.isEnabled() and dialog.submit_button.text() == "Submitting…"
    assert not dialog.farm_box.isEnabled()

    worker = threading.Thread(target=dialog.post_result, args=(SubmitResult(job_ids=("64f0a1", "64f0a2")),))
    worker.start()
    worker.join()
    wait_until(qapp, lambda: dialog.result_label.isVisible())
    assert dialog.result_label.text().startswith("Submitted 2 jobs to Deadline: 64f0a1, 64f0a2.")
    assert dialog.cancel_button.text() == "Close" and not dialog.submit_button.isEnabled()


def test_a_failed_submission_is_shown_in_words_and_can_be_retried(make_dialog: Callable[..., SubmitDialog],
                                                                  qapp: Any) -> None:
    dialog = make_dialog("invert")
    dialog.submit_button.click()
    assert dialog.busy
    dialog.post_error(DeadlineUnreachable("http://deadline:8081", "connection refused"))
    wait_until(qapp, lambda: dialog.result_label.isVisible())
    assert dialog.result_label.objectName() == "ResultError"
    assert dialog.result_label.text() == artist_message(DeadlineUnreachable("http://deadline:8081",
                                                                            "connection refused"))
    assert not dialog.busy and dialog.submit_button.isEnabled() and dialog.farm_box.isEnabled()


def test_run_locally_uses_the_same_dialog(make_dialog: Callable[..., SubmitDialog], qapp: Any) -> None:
    fetched: List[int] = []
    dialog = make_dialog("blur", local=True, farm_lists=lambda: fetched.append(1) or (POOLS, GROUPS))
    assert dialog.windowTitle() == "ComfyUI Farm: Run locally"
    assert dialog.submit_button.text() == "Run locally"
    for widget in (dialog.template_combo, dialog.priority_spin, dialog.pool_combo, dialog.group_combo,
                   dialog.gpus_spin):
        assert widget.isHidden()
    assert dialog.chunk_spin.isVisible()
    chosen: List[SubmitChoice] = []
    dialog.submit_requested.connect(chosen.append)
    stops: List[bool] = []
    dialog.cancel_requested.connect(lambda: stops.append(True))
    dialog.submit_button.click()
    assert chosen[0].local and chosen[0].template_overrides == {}
    assert dialog.progress_bar.isVisible() and dialog.cancel_button.text() == "Stop"
    dialog.post_progress(0.25, "25 of 100 frames")
    wait_until(qapp, lambda: dialog.progress_bar.value() == 250)
    assert dialog.progress_bar.format() == "25 of 100 frames"
    dialog.cancel_button.click()
    assert stops == [True]
    dialog.post_result(SubmitResult(message="Rendered 100 frames into /shots/sh010/comfy/."))
    wait_until(qapp, lambda: dialog.result_label.isVisible())
    assert dialog.result_label.text() == "Rendered 100 frames into /shots/sh010/comfy/."
    assert fetched == []  # a local run never asks the farm


def test_built_from_the_configuration(qapp: Any, tmp_path: Path) -> None:
    dialog = SubmitDialog.from_config(CLIPS, Config(), choices_path=tmp_path / "choices.json")
    try:
        assert len(dialog.model.packages) == 16 and set(dialog.model.templates) == {"default", "heavy", "preview"}
        assert dialog.farm_status.text().startswith("No Deadline Web Service configured")
        assert dialog.parent() is None and dialog.model.workflow is None
        assert dialog.problem_label.text() == "Choose a workflow in the list"
    finally:
        dialog.deleteLater()


def test_screenshots_render(qapp: Any, tmp_path: Path) -> None:
    from tests.flame_submitter.dialog.screenshots import render

    written = render(tmp_path)
    assert [p.name for p in written] == ["submit_dialog_invert.png", "submit_dialog_prompt.png"]
    for path in written:
        image = qt.QtGui.QImage(str(path))
        assert image.width() >= 1000 and image.height() >= 700
