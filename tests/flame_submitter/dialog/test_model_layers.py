"""The submit dialog's model, without Qt: "Passes as layers of one EXR" (the job templates' ``exr_layers``).

Offered for a workflow with several passes and an EXR output: the output format OpenEXR, or "Same as the source"
where every clip's results are EXR. Initialised from the farm preset, remembered per workflow, and carried into
the SubmitChoice (and its template overrides) only where it applies, so the dialog never sends a job that the
submission's own check refuses (``check_pass_formats(..., exr_layers=True)`` with a non-EXR output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest

from farm_plugin.workflow.package import WorkflowPackage, bundled_workflows_dir
from flame_submitter.dialog.model import (
    ChoicesStore,
    ClipSummary,
    DialogModel,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.flame.sources import FlameSource
from flame_submitter.flame.submit import clip_summary
from flame_submitter.jobs.templates import JobTemplate, template_dirs

LAYERS = "matte_depth_normal"  # rgba, depth, normals
TITLE = "Matte, depth and normal passes"
EXR_CLIPS = (ClipSummary("sh010", 1001, 1100, source_format="exr"),
             ClipSummary("sh020", 1001, 1060, source_format="exr"))


@pytest.fixture(scope="module")
def packages() -> Dict[str, WorkflowPackage]:
    loaded, _ = load_workflow_packages([bundled_workflows_dir()])
    return {p.name: p for p in loaded}


@pytest.fixture(scope="module")
def templates() -> List[JobTemplate]:
    loaded, _ = load_job_templates(template_dirs())
    return loaded


def model_for(packages: Dict[str, WorkflowPackage], templates: List[JobTemplate], workflow: str,
              clips=EXR_CLIPS, **kwargs) -> DialogModel:  # type: ignore[no-untyped-def]
    model = DialogModel(list(packages.values()), templates, clips, **kwargs)
    model.select_workflow(workflow)
    return model


def test_layers_are_offered_for_several_passes_and_an_exr_output_only(packages, templates) -> None:  # type: ignore[no-untyped-def]
    assert model_for(packages, templates, "blur").exr_layers_available() == (
        False, "Gaussian blur writes one pass: there is nothing to put in layers.")
    model = model_for(packages, templates, LAYERS)
    expected = {"exr": (True, ""), "source": (True, ""),
                "dpx": (False, "DPX files hold no layers: choose OpenEXR as the output format."),
                "png": (False, "PNG files hold no layers: choose OpenEXR as the output format."),
                "tiff": (False, "TIFF files hold no layers: choose OpenEXR as the output format.")}
    for output_format, answer in expected.items():
        model.set_output_format(output_format)
        assert model.exr_layers_available() == answer, output_format
    dpx = ClipSummary("sh020", 1, 9, source_format="dpx")
    mixed = model_for(packages, templates, LAYERS, clips=(EXR_CLIPS[0], dpx))
    mixed.set_output_format("source")
    assert mixed.exr_layers_available() == (False, "sh020 keeps its own format, not EXR, with 'Same as the source': "
                                                   "choose OpenEXR as the output format.")


def test_ticked_with_an_exr_output_the_job_writes_layers(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, LAYERS)
    model.set_output_format("exr")
    assert model.exr_layers is False  # the shipped presets' exr_layers: false
    model.set_exr_layers(True)
    choice = model.choice()
    assert choice.exr_layers is True and choice.template_overrides["exr_layers"] is True
    assert choice.job_template().exr_layers is True
    assert model.hints() == []


def test_with_a_dpx_output_the_passes_stay_sequences_and_a_hint_says_why(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, LAYERS)
    model.set_exr_layers(True)
    model.set_output_format("dpx")
    choice = model.choice()
    assert choice.exr_layers is False and "exr_layers" not in choice.template_overrides
    assert choice.job_template().exr_layers is False
    assert model.hints() == [f"Each pass of {TITLE} is written as its own sequence, not as a layer of one EXR. DPX "
                             "files hold no layers: choose OpenEXR as the output format."]
    model.set_output_format("exr")  # the wish was kept: back to EXR, back to layers
    assert model.choice().exr_layers is True


def test_a_preset_with_exr_layers_sets_the_choice_and_is_turned_off_where_it_cannot_apply(
        packages, templates, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "layers.yaml").write_text("exr_layers: true\noutput_format: exr\n")
    presets, problems = load_job_templates([tmp_path, *template_dirs()])
    assert problems == []
    model = model_for(packages, presets, LAYERS)
    assert model.exr_layers is False
    model.select_template("layers")
    assert (model.exr_layers, model.output_format) == (True, "exr")
    choice = model.choice()
    assert (choice.exr_layers, choice.template) == (True, "layers") and "exr_layers" not in choice.template_overrides
    model.set_output_format("tiff")
    choice = model.choice()
    assert choice.exr_layers is False and choice.template_overrides["exr_layers"] is False
    assert choice.job_template([str(tmp_path)]).exr_layers is False  # never a job the preflight refuses
    model.select_template("default")
    assert model.exr_layers is False


def test_the_choice_is_remembered_per_workflow(packages, templates, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = ChoicesStore(tmp_path / "submit_dialog.json")
    model = model_for(packages, templates, LAYERS, remembered=store.load())
    model.set_output_format("exr")
    model.set_exr_layers(True)
    assert store.save(model.remember())
    again = DialogModel(list(packages.values()), templates, EXR_CLIPS, remembered=store.load())
    assert again.workflow is not None and again.workflow.name == LAYERS
    assert (again.exr_layers, again.output_format, again.choice().exr_layers) == (True, "exr", True)
    again.select_workflow("depth_normal_ao_maps")  # another several-pass workflow: its preset's, not this one's
    assert again.exr_layers is False


def test_the_clip_summary_says_which_clips_results_are_exr_with_the_source_format(tmp_path: Path) -> None:
    def source(pattern):  # type: ignore[no-untyped-def]
        return FlameSource("sh010", (1001, 1002), 16, 9, 24.0, 16, 1001, None, "", "", pattern, None)

    assert clip_summary(source("/mnt/projects/sh010.####.exr")).source_format == "exr"
    assert clip_summary(source("/mnt/projects/sh010.####.dpx")).source_format == "dpx"
    assert clip_summary(source(None)).source_format == "exr"  # exported as EXR first
    not_shared = clip_summary(source("/local/sh010.####.dpx"), lambda path: path.startswith("/mnt/projects"))
    assert not_shared.source_format == "exr"  # the farm cannot read it in place: exported as EXR
