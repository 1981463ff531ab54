"""The submit dialog's "Passes as layers of one EXR" checkbox with real widgets, offscreen (conftest.py sets
QT_QPA_PLATFORM before Qt starts): enabled only for a workflow with several passes and an EXR output, ticked from
the farm preset's ``exr_layers`` or the artist's last choice, and carried into the SubmitChoice."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                         reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")

from farm_plugin.workflow.package import bundled_workflows_dir  # noqa: E402
from flame_submitter.dialog.model import (  # noqa: E402
    ChoicesStore,
    ClipSummary,
    SubmitChoice,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.dialog.submit_dialog import LAYERS_LABEL, SubmitDialog  # noqa: E402
from flame_submitter.jobs.templates import template_dirs  # noqa: E402
from tests.flame_submitter.dialog.conftest import submit_dialogs  # noqa: E402

CLIPS = (ClipSummary("sh010_plate", 1001, 1100, width=1920, height=1080, fps=24.0, source_format="dpx"),)
EXR_CLIPS = (ClipSummary("sh010_plate", 1001, 1100, width=1920, height=1080, fps=24.0, source_format="exr"),)
PACKAGES, _ = load_workflow_packages([bundled_workflows_dir()])
TEMPLATES, _ = load_job_templates(template_dirs())
LAYERS = "matte_depth_normal"  # rgba, depth, normals


@pytest.fixture
def store(tmp_path: Path) -> ChoicesStore:
    return ChoicesStore(tmp_path / "config" / "comfyfarm" / "submit_dialog.json")


@pytest.fixture
def make_dialog(qapp: Any, store: ChoicesStore) -> Iterator[Callable[..., SubmitDialog]]:
    with submit_dialogs(qapp, CLIPS, packages=PACKAGES, templates=TEMPLATES, choices_store=store,
                        farm_lists=None) as make:
        yield make


def choose_format(dialog: SubmitDialog, output_format: str) -> None:
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(output_format))


def submitted(dialog: SubmitDialog) -> SubmitChoice:
    chosen: List[SubmitChoice] = []
    dialog.submit_requested.connect(chosen.append)
    assert dialog.submit_button.isEnabled(), dialog.problem_label.text()
    dialog.submit_button.click()
    assert len(chosen) == 1
    return chosen[0]


def test_the_checkbox_is_enabled_for_several_passes_and_an_exr_output_only(
        make_dialog: Callable[..., SubmitDialog]) -> None:
    dialog = make_dialog("blur")
    box = dialog.layers_check
    assert box.text() == LAYERS_LABEL == "Passes as layers of one EXR"
    assert box.isVisible() and not box.isEnabled() and not box.isChecked()
    assert box.toolTip() == "Gaussian blur writes one pass: there is nothing to put in layers."
    dialog._select_tree_item(LAYERS)
    assert dialog.format_combo.currentData() == "source" and not box.isEnabled()  # a DPX plate: DPX results
    assert box.toolTip() == ("sh010_plate keeps its own format, not EXR, with 'Same as the source': choose OpenEXR as "
                             "the output format.")
    choose_format(dialog, "exr")
    assert box.isEnabled() and not box.isChecked()
    assert box.toolTip().startswith("One EXR per frame holds every pass of Matte, depth and normal passes: rgba as "
                                    "its R, G, B (and A), depth, normals as the layers depth.R/G/B, normals.R/G/B.")
    box.click()
    assert box.isChecked()
    choose_format(dialog, "dpx")
    assert not box.isEnabled() and not box.isChecked()
    assert box.toolTip() == "DPX files hold no layers: choose OpenEXR as the output format."
    assert dialog.hint_label.isVisible()
    assert dialog.hint_label.text() == ("Each pass of Matte, depth and normal passes is written as its own sequence, "
                                        "not as a layer of one EXR. DPX files hold no layers: choose OpenEXR as the "
                                        "output format.")
    assert submitted(dialog).exr_layers is False


def test_ticked_the_choice_asks_for_layers_and_an_exr_output(make_dialog: Callable[..., SubmitDialog]) -> None:
    dialog = make_dialog(LAYERS)
    choose_format(dialog, "exr")
    dialog.layers_check.click()
    choice = submitted(dialog)
    assert (choice.workflow, choice.output_format, choice.exr_layers) == (LAYERS, "exr", True)
    assert choice.template_overrides["exr_layers"] is True and choice.job_template().exr_layers is True


def test_with_the_source_format_exr_plates_may_have_layers(make_dialog: Callable[..., SubmitDialog]) -> None:
    dialog = make_dialog(LAYERS, clips=EXR_CLIPS, local=True)
    assert dialog.format_combo.currentData() == "source" and dialog.layers_check.isEnabled()
    dialog.layers_check.click()
    choice = submitted(dialog)
    assert (choice.local, choice.output_format, choice.exr_layers) == (True, None, True)


def test_the_checkbox_starts_from_the_preset_and_then_from_the_last_choice(
        make_dialog: Callable[..., SubmitDialog], qapp: Any, tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "layers.yaml").write_text("description: Passes as layers\nexr_layers: true\n"
                                                      "output_format: exr\n")
    templates, _ = load_job_templates([tmp_path / "presets", *template_dirs()])
    first = make_dialog(LAYERS, templates=templates)
    assert not first.layers_check.isChecked()
    index = first.template_combo.findData("layers")
    first.template_combo.setCurrentIndex(index)
    first.template_combo.activated.emit(index)  # what Qt says when the artist picks an entry
    qapp.processEvents()
    assert first.format_combo.currentData() == "exr" and first.layers_check.isEnabled()
    assert first.layers_check.isChecked()  # the preset's exr_layers: true
    first.layers_check.click()  # the artist turns it off for this workflow
    choice = submitted(first)
    assert choice.exr_layers is False and choice.template_overrides == {"exr_layers": False}

    second = make_dialog(templates=templates)  # reopened: the last choice, not the preset's
    assert second.model.workflow is not None and second.model.workflow.name == LAYERS
    assert second.template_combo.currentData() == "layers"
    assert second.layers_check.isEnabled() and not second.layers_check.isChecked()
    second.layers_check.click()
    submitted(second)
    third = make_dialog(templates=templates)
    assert third.layers_check.isChecked()


def test_the_layers_screenshot_renders(qapp: Any, tmp_path: Path) -> None:
    from tests.flame_submitter.dialog.screenshots import render_layers

    path = render_layers(tmp_path)  # raises when the checkbox did not tick
    assert path.name == "submit_dialog_layers.png"
    image = qt.QtGui.QImage(str(path))
    assert image.width() >= 1000 and image.height() >= 700
