"""The submit dialog's model, without Qt: widget kinds, checks, SubmitChoice and remembered choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import pytest

from farm_plugin.workflow.package import WorkflowPackage, bundled_workflows_dir
from flame_submitter.deadline.errors import DeadlineUnreachable
from flame_submitter.dialog.model import (
    FARM_NUMBERS,
    ChoicesStore,
    ClipSummary,
    DialogModel,
    RememberedChoices,
    SubmitChoice,
    artist_message,
    comfyui_location,
    default_choices_path,
    file_spec,
    load_job_templates,
    load_workflow_packages,
    typed_value,
    widget_kind,
)
from flame_submitter.jobs.templates import JobTemplate, TemplateError, load_template, template_dirs

CLIPS = (
    ClipSummary("sh010", 1001, 1100, has_marks=True, mark_in=1011, mark_out=1050, width=1920, height=1080, fps=24.0),
    ClipSummary("sh020", 1001, 1060, width=1920, height=1080, fps=23.976),
)


@pytest.fixture(scope="module")
def packages() -> Dict[str, WorkflowPackage]:
    loaded, problems = load_workflow_packages([bundled_workflows_dir()])
    assert problems == []
    return {p.name: p for p in loaded}


@pytest.fixture(scope="module")
def templates() -> List[JobTemplate]:
    loaded, problems = load_job_templates(template_dirs())
    assert problems == []
    return loaded


def model_for(packages: Dict[str, WorkflowPackage], templates: List[JobTemplate], workflow: str = "",
              clips=CLIPS, **kwargs) -> DialogModel:  # type: ignore[no-untyped-def]
    model = DialogModel(list(packages.values()), templates, clips, **kwargs)
    if workflow:
        model.select_workflow(workflow)
    return model


# -- widget kinds ---------------------------------------------------------------------------------------

EXPECTED_KINDS = {
    ("advanced_chroma_key", "key_colour"): "choice",
    ("advanced_chroma_key", "softness"): "float",
    ("advanced_chroma_key", "remove_specks"): "bool",
    ("blur", "radius"): "int",
    ("film_look_lut", "lut"): "file",
    ("film_look_lut", "strength"): "float",
    ("flux_tiled_upscale", "prompt"): "prompt",
    ("flux_tiled_upscale", "seed"): "seed",
    ("set_extension_water_splash", "prompt"): "prompt",
    ("temporal_coherence_animatediff", "prompt"): "prompt",
    ("temporal_coherence_animatediff", "negative_prompt"): "prompt",
    ("temporal_coherence_animatediff", "cfg"): "float",  # labelled "Prompt adherence (CFG)", but a number
    ("toonyou_style", "seed"): "seed",
    ("toonyou_style", "steps"): "int",
    ("rife_frame_interpolation", "scale_factor"): "choice",
    ("rembg_matte", "model"): "choice",
}


def test_every_shipped_parameter_gets_the_expected_widget_kind(packages: Dict[str, WorkflowPackage]) -> None:
    kinds = {(p.name, q.key): widget_kind(q) for p in packages.values() for q in p.parameters}
    for key, kind in EXPECTED_KINDS.items():
        assert kinds[key] == kind, key
    by_type = {"int": {"int", "seed"}, "float": {"float"}, "bool": {"bool"}, "choice": {"choice"},
               "string": {"text", "prompt", "file"}}
    for package in packages.values():
        for parameter in package.parameters:
            assert kinds[(package.name, parameter.key)] in by_type[parameter.type]
    assert {k for k in kinds.values()} >= {"int", "seed", "float", "choice", "bool", "prompt", "file"}


def test_a_lut_parameter_names_a_file_in_comfyuis_luts_folder(packages: Dict[str, WorkflowPackage]) -> None:
    package = packages["film_look_lut"]
    spec = file_spec(package, package.parameter("lut"))
    assert (spec.name_only, spec.folder) == (True, "luts")
    assert "ComfyUI/models/luts on every worker" in spec.hint()
    assert comfyui_location("custom_nodes/aux/ckpts") == "ComfyUI/custom_nodes/aux/ckpts"


# -- values as typed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workflow", "key", "raw", "value", "problem"),
    [
        ("blur", "radius", "7", 7, None),
        ("blur", "radius", "99", 99, "99 is more than the maximum, 31"),
        ("blur", "radius", "0", 0, "0 is less than the minimum, 1"),
        ("blur", "radius", "", "", "enter a whole number from 1 to 31"),
        ("blur", "radius", "2.5", "2.5", "'2.5' is not a whole number from 1 to 31"),
        ("blur", "sigma", "2.5", 2.5, None),
        ("blur", "sigma", "20", 20.0, "20 is more than the maximum, 10"),
        ("rife_frame_interpolation", "scale_factor", "0.5", 0.5, None),
        ("rife_frame_interpolation", "scale_factor", 3.0, 3.0, "'3.0' is not one of 0.25, 0.5, 1.0, 2.0, 4.0"),
        ("film_look_lut", "lut", "  ", "  ", "choose a file"),
        ("advanced_chroma_key", "remove_specks", False, False, None),
    ],
)
def test_typed_values_and_their_problems(packages: Dict[str, WorkflowPackage], workflow: str, key: str, raw: object,
                                         value: object, problem: object) -> None:
    assert typed_value(packages[workflow].parameter(key), raw) == (value, problem)


# -- problems: why Submit is disabled -------------------------------------------------------------------


def test_a_fresh_model_asks_for_a_workflow(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates)
    assert model.workflow is None
    assert model.problems() == ["Choose a workflow in the list"]


def test_no_clips_is_a_problem(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "invert", clips=())
    assert model.problems() == ["No clips to send: select clips, sequences or segments in Flame first"]


def test_shipped_workflows_at_their_defaults_can_be_submitted(packages, templates) -> None:  # type: ignore[no-untyped-def]
    for name in packages:
        model = model_for(packages, templates, name)
        assert model.problems() == [], name


def test_an_out_of_range_parameter_is_named_by_its_label(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "blur")
    model.set_value("radius", "99")
    assert model.problems() == ["Radius (pixels): 99 is more than the maximum, 31"]
    assert model.parameter_problems() == {"radius": "Radius (pixels): 99 is more than the maximum, 31"}
    with pytest.raises(ValueError, match="cannot submit yet: Radius"):
        model.choice()
    model.set_value("radius", "31")
    assert model.problems() == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "Custom frames: frame list is empty: write frames like 1001-1100, 1-100x2 or 1,5,10-20"),
        ("1001-", "Custom frames: frame list '1001-' has a bad entry"),
        ("990-1005", "Custom frames: 990-1000 are not in clip 'sh010' (1001-1100)"),
        ("1001-1070", "Custom frames: 1061-1070 are not in clip 'sh020' (1001-1060)"),
        ("1100", "Custom frames: 1100 is not in clip 'sh020' (1001-1060)"),
    ],
)
def test_custom_frames_are_checked_against_every_clip(packages, templates, text: str,  # type: ignore[no-untyped-def]
                                                      problem: str) -> None:
    model = model_for(packages, templates, "invert")
    model.set_frame_mode("custom")
    model.set_custom_frames(text)
    problems = model.problems()
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_frames_per_mode(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "invert")
    assert [len(model.frames_for(c)) for c in CLIPS] == [100, 60]
    model.set_frame_mode("marks")
    assert model.frames_for(CLIPS[0]) == list(range(1011, 1051))
    assert len(model.frames_for(CLIPS[1])) == 60
    assert model.hints() == ["No marks on sh020: all its frames are sent."]
    model.set_frame_mode("custom")
    model.set_custom_frames("1001-1020x5")
    assert model.frames_for(CLIPS[1]) == [1001, 1006, 1011, 1016]


def test_marks_mode_without_marks_is_a_problem(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "invert", clips=CLIPS[1:])
    model.set_frame_mode("marks")
    assert model.problems() == ["Between marks: no clip has in and out marks; choose All frames or Custom"]


def test_farm_numbers_out_of_bounds(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "invert")
    model.set_farm("priority", "200")
    model.set_farm("chunk_size", "")
    assert model.problems() == ["Chunk size: enter a whole number from 1 to 100000",
                                "Priority: 200 is not a whole number from 0 to 100"]


@pytest.mark.parametrize("key", sorted(FARM_NUMBERS))
def test_farm_number_bounds_are_the_job_templates_own(key: str) -> None:
    _, low, high = FARM_NUMBERS[key]
    template = load_template("default")
    assert getattr(template.with_overrides({key: low}), key) == low
    assert getattr(template.with_overrides({key: high}), key) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(TemplateError):
            template.with_overrides({key: outside})


def test_pool_not_on_the_farm_only_counts_when_the_farm_said_so(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "invert")
    model.set_farm("pool", "gpu_old")
    model.set_farm_lists(["none", "gpu"], ["none"], live=False)  # remembered lists: may be stale
    assert model.problems() == []
    model.set_farm_lists(["none", "gpu"], ["none"], live=True)
    assert model.problems() == ["Pool 'gpu_old' does not exist on the farm: choose one of none, gpu"]


def test_a_sequence_workflow_gets_a_chunk_of_one_windows_kept_frames(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "toonyou_style")
    assert model.template_name == "heavy"  # the manifest's preference; heavy has chunk_size 1
    assert model.farm["chunk_size"] == 16  # 24-frame windows less 4 handle frames each side
    assert model.hints() == ["Chunk size 16 instead of the preset's 1: ToonYou cartoon style (AnimateDiff + lineart "
                             "ControlNet) keeps 16 frames of each window it renders, so a smaller chunk would waste "
                             "GPU time."]
    model.set_farm("chunk_size", "32")
    assert model.hints() == []
    model.set_farm("chunk_size", "10")
    assert model.hints() == ["ToonYou cartoon style (AnimateDiff + lineart ControlNet) renders 24-frame windows and "
                             "keeps 16 frames of each: a chunk size of 16 (or a multiple) wastes no GPU time."]


def test_choosing_a_preset_loads_its_values(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "blur")
    model.set_farm("priority", "80")
    model.select_template("preview")
    assert (model.farm["priority"], model.farm["chunk_size"]) == (60, 10)
    assert model.template_overrides() == {}


# -- what Submit produces -------------------------------------------------------------------------------


def test_the_submit_choice_of_a_filled_in_model(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "toonyou_style")
    model.set_value("prompt", "pencil sketch, cross hatching")
    model.set_value("strength", "0.7")
    model.set_value("seed", "1234")
    model.set_farm_lists(["none", "gpu"], ["none", "gpu_24gb"], live=True)
    model.set_farm("pool", "gpu")
    model.set_farm("group", "gpu_24gb")
    model.set_farm("priority", "70")
    model.set_frame_mode("marks")
    model.set_output_format("exr")
    choice = model.choice()
    assert choice.workflow == "toonyou_style"
    assert choice.workflow_path == str(packages["toonyou_style"].path)
    assert choice.parameters["prompt"] == "pencil sketch, cross hatching"
    assert (choice.parameters["strength"], choice.parameters["seed"]) == (0.7, 1234)
    assert choice.parameters["steps"] == 20 and len(choice.parameters) == 8
    assert choice.template == "heavy"
    assert choice.template_overrides == {"chunk_size": 16, "priority": 70, "pool": "gpu", "group": "gpu_24gb",
                                         "output_format": "exr"}
    assert (choice.frame_mode, choice.custom_frames, choice.output_format, choice.local) == ("marks", "", "exr", False)
    assert choice.frames_for(CLIPS[0]) == list(range(1011, 1051))
    template = choice.job_template()
    assert (template.name, template.chunk_size, template.pool, template.priority, template.task_timeout_minutes) == (
        "heavy", 16, "gpu", 70, 240)
    assert "strength=0.7" in choice.set_arguments() and "seed=1234" in choice.set_arguments()


def test_a_local_choice_carries_only_what_a_local_run_uses(packages, templates) -> None:  # type: ignore[no-untyped-def]
    model = model_for(packages, templates, "blur", local=True)
    model.set_farm("chunk_size", "4")
    model.set_farm("priority", "999")  # hidden in a local run: not checked, not sent
    model.set_frame_mode("custom")
    model.set_custom_frames(" 1001-1010 ")
    choice = model.choice()
    assert choice.local is True
    assert choice.template_overrides == {"chunk_size": 4}
    assert (choice.custom_frames, choice.frames_for(CLIPS[1])) == ("1001-1010", list(range(1001, 1011)))


def test_submit_choice_is_frozen() -> None:
    choice = SubmitChoice("invert", "/w/invert", {}, "default", {}, "all", "", None, False)
    with pytest.raises(AttributeError):
        choice.workflow = "blur"  # type: ignore[misc]


# -- remembered choices ---------------------------------------------------------------------------------


def test_choices_survive_a_save_and_a_new_model(tmp_path: Path, packages, templates) -> None:  # type: ignore[no-untyped-def]
    store = ChoicesStore(tmp_path / "cfg" / "submit_dialog.json")
    model = model_for(packages, templates, "blur", remembered=store.load())
    model.set_value("radius", "9")
    model.set_farm_lists(["none", "gpu", "cpu"], ["none", "gpu_24gb"], live=True)
    model.set_farm("pool", "gpu")
    model.set_farm("priority", "65")
    model.set_farm("chunk_size", "5")
    model.set_frame_mode("custom")
    model.set_custom_frames("1001-1010")
    model.set_output_format("dpx")
    assert store.save(model.remember())
    saved = json.loads(store.path.read_text())
    assert saved["workflows"]["blur"]["parameters"] == {"radius": 9, "sigma": 1.0}
    assert saved["farm_lists"]["pools"] == ["none", "gpu", "cpu"]

    again = DialogModel(list(packages.values()), templates, CLIPS, remembered=store.load())
    assert again.workflow is not None and again.workflow.name == "blur"
    assert again.raw_values == {"radius": 9, "sigma": 1.0}
    assert (again.farm["pool"], again.farm["priority"], again.farm["chunk_size"]) == ("gpu", 65, 5)
    assert (again.frame_mode, again.custom_frames, again.output_format) == ("custom", "1001-1010", "dpx")
    assert (again.known_pools, again.lists_live) == (("none", "gpu", "cpu"), False)
    again.select_workflow("invert")  # another workflow: its own preset, the artist's pool and priority
    assert (again.template_name, again.farm["chunk_size"], again.farm["pool"]) == ("default", 10, "gpu")


def test_remembered_values_that_no_longer_fit_fall_back_to_the_defaults(tmp_path: Path, packages,  # type: ignore[no-untyped-def]
                                                                        templates) -> None:
    path = tmp_path / "submit_dialog.json"
    memory = RememberedChoices(workflow="blur").to_json()
    memory["workflows"] = {"blur": {"parameters": {"radius": 500, "sigma": 2.0, "gone": 1}, "template": "nope"}}
    path.write_text(json.dumps(memory))
    model = DialogModel(list(packages.values()), templates, CLIPS, remembered=ChoicesStore(path).load())
    assert model.raw_values == {"radius": 5, "sigma": 2.0}
    assert model.template_name == "default"


@pytest.mark.parametrize("text", ["{not json", "[]", '{"schema": 99, "workflow": "blur"}'])
def test_a_broken_memory_file_is_an_empty_memory(tmp_path: Path, text: str) -> None:
    path = tmp_path / "submit_dialog.json"
    path.write_text(text)
    assert ChoicesStore(path).load() == RememberedChoices()


def test_an_unwritable_memory_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ChoicesStore(blocker / "sub" / "submit_dialog.json").save(RememberedChoices()) is False


def test_the_memory_lives_in_the_users_config_dir(tmp_path: Path) -> None:
    assert default_choices_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "comfyfarm" / "submit_dialog.json"
    assert default_choices_path({}).parts[-3:] == (".config", "comfyfarm", "submit_dialog.json")


# -- loading and messages -------------------------------------------------------------------------------


def test_studio_workflows_come_first_and_broken_ones_are_reported(tmp_path: Path) -> None:
    studio = tmp_path / "studio"
    (studio / "invert").mkdir(parents=True)
    source = bundled_workflows_dir() / "invert"
    (studio / "invert" / "workflow.json").write_text((source / "workflow.json").read_text())
    (studio / "invert" / "workflow.yaml").write_text((source / "workflow.yaml").read_text().replace(
        "title: Invert", "title: Studio invert"))
    (studio / "broken").mkdir()
    (studio / "broken" / "workflow.json").write_text("{}")
    (studio / "broken" / "workflow.yaml").write_text("title: [")
    loaded, problems = load_workflow_packages([studio, bundled_workflows_dir()])
    by_name = {p.name: p for p in loaded}
    assert by_name["invert"].title == "Studio invert"
    assert len(by_name) == 16
    assert len(problems) == 1 and "broken" in problems[0]


def test_artist_messages() -> None:
    message = artist_message(DeadlineUnreachable("http://deadline:8081", "connection refused"))
    assert message.startswith("The Deadline Web Service is not reachable at http://deadline:8081")
    assert message.endswith("running.")
    foreign = artist_message(KeyError("job_id"))
    assert foreign.startswith("Something unexpected went wrong (KeyError: 'job_id').")
    assert "pipeline team" in foreign


def test_clip_summary() -> None:
    clip = ClipSummary("a", 1, 10, has_marks=True, mark_in=5, mark_out=50, width=2048, height=1152, fps=25.0)
    assert clip.marks == (5, 10)  # clamped to the clip
    assert clip.describe() == "2048 x 1152, 25 fps"
    assert ClipSummary("b", 1, 3, has_marks=True).marks is None
