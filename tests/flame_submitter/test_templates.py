from __future__ import annotations

from pathlib import Path

import pytest

from flame_submitter.jobs.templates import FailureDetection, TemplateError, load_template


def test_shipped_templates() -> None:
    default, heavy, preview = (load_template(n) for n in ("default", "heavy", "preview"))
    assert (default.plugin, default.chunk_size, default.gpus_per_task, default.preview_every) == ("ComfyUI", 10, 1, 0)
    assert (heavy.chunk_size, heavy.task_timeout_minutes) == (1, 240)
    assert heavy.task_timeout_minutes > default.task_timeout_minutes
    assert preview.preview_every == 10
    assert default.failure_detection == FailureDetection(task_errors=3, job_errors=20)


def test_overrides_are_checked_like_the_file() -> None:
    template = load_template("default").with_overrides({"priority": "70", "pool": "gpu", "chunk_size": 4})
    assert (template.priority, template.pool, template.chunk_size) == (70, "gpu", 4)
    with pytest.raises(TemplateError, match=r"command line: priority: 200 is not a whole number from 0 to 100"):
        load_template("default").with_overrides({"priority": 200})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chunk_size: 0\n", "chunk_size: 0 is not a whole number from 1 to 100000"),
        ("on_complete: Remove\n", "on_complete: 'Remove' is not one of Nothing, Delete, Archive"),
        ("pools: gpu\n", "unknown key(s) pools: the keys are chunk_size, concurrent_tasks, description,"),
        ("output_format: mov\n", "output_format: 'mov' is not one of exr, dpx, png, tiff (or null for the source's"),
        ("failure_detection: {task: 3}\n", "failure_detection: expected {task_errors: N, job_errors: N}"),
    ],
)
def test_template_mistakes_name_the_file_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "studio.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError) as caught:
        load_template(str(path))
    assert str(caught.value).startswith(f"{path}: {message}")


def test_unknown_template_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "farm_a.yaml").write_text("priority: 40\n")
    assert load_template("farm_a", [str(tmp_path)]).priority == 40
    with pytest.raises(TemplateError, match="no job template 'fast': use one of default, farm_a, heavy, preview"):
        load_template("fast", [str(tmp_path)])


def test_exr_layers_is_off_in_the_shipped_templates_and_a_template_may_turn_it_on(tmp_path: Path) -> None:
    assert [load_template(n).exr_layers for n in ("default", "heavy", "preview")] == [False, False, False]
    path = tmp_path / "layers.yaml"
    path.write_text("exr_layers: true\n")
    assert load_template(str(path)).exr_layers is True
    assert load_template("default").with_overrides({"exr_layers": "true"}).exr_layers is True  # --farm exr_layers=true
    assert load_template(str(path)).with_overrides({"exr_layers": "false"}).exr_layers is False


@pytest.mark.parametrize("value", ["1", "maybe", "[depth]"])
def test_an_exr_layers_that_is_not_true_or_false_names_the_file_the_key_and_the_fix(tmp_path: Path,
                                                                                   value: str) -> None:
    path = tmp_path / "studio.yaml"
    path.write_text(f"exr_layers: {value}\n")
    with pytest.raises(TemplateError) as caught:
        load_template(str(path))
    shown = {"1": "1", "maybe": "'maybe'", "[depth]": "['depth']"}[value]
    assert str(caught.value) == (
        f"{path}: exr_layers: {shown} is not true or false: use true to write a workflow's several passes as the "
        "layers of one EXR per frame, or false to write each pass as its own sequence")


def test_an_exr_layers_override_is_checked_like_the_file() -> None:
    with pytest.raises(TemplateError) as caught:
        load_template("default").with_overrides({"exr_layers": "sometimes"})
    assert str(caught.value).startswith("command line: exr_layers: 'sometimes' is not true or false: use true")


def test_scheduling_is_off_in_the_shipped_templates_and_a_template_may_turn_it_on(tmp_path: Path) -> None:
    for name in ("default", "heavy", "preview"):
        template = load_template(name)
        assert (template.group, template.gpu_groups, template.family_limits.limit_for("flux")) == ("none", (), "")
    path = tmp_path / "farm.yaml"
    path.write_text("gpu_groups: {48: gpu48, 16: gpu16, 24GB: gpu24}\nfamily_limits: true\n")
    template = load_template(str(path))
    assert template.gpu_groups == ((16.0, "gpu16"), (24.0, "gpu24"), (48.0, "gpu48"))  # smallest first
    assert template.family_limits.limit_for("flux") == "comfyfarm-flux"
    path.write_text("family_limits: {flux: flux-gpu}\n")
    assert [load_template(str(path)).family_limits.limit_for(f) for f in ("flux", "sdxl", "")] == ["flux-gpu", "", ""]


def test_scheduling_overrides_take_text_as_on_the_command_line() -> None:
    template = load_template("default").with_overrides({"gpu_groups": "24:gpu24, 16:gpu16", "family_limits": "yes"})
    assert template.gpu_groups == ((16.0, "gpu16"), (24.0, "gpu24"))
    assert template.family_limits.limit_for("depth") == "comfyfarm-depth"
    template = template.with_overrides({"family_limits": "flux:flux-gpu", "gpu_groups": ""})
    assert (template.gpu_groups, template.family_limits.limit_for("flux")) == ((), "flux-gpu")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpu_groups: [16, 24]\n",
         "gpu_groups: expected the GPU memory in GB of each class and its Deadline group, e.g. {16: gpu16, 24: gpu24, "
         "48: gpu48}, got [16, 24]"),
        ("gpu_groups: {big: gpu48}\n",
         "gpu_groups: 'big' is not a GPU memory in GB (a number above 0): write each class as GB: group, e.g. "
         "{16: gpu16, 24: gpu24, 48: gpu48}"),
        ("gpu_groups: {0: gpu0}\n",
         "gpu_groups: 0 is not a GPU memory in GB (a number above 0): write each class as GB: group, e.g. "
         "{16: gpu16, 24: gpu24, 48: gpu48}"),
        ("gpu_groups: {24: 'gpu 24'}\n",
         "gpu_groups: 24: 'gpu 24' is not a Deadline group name: name the group whose Workers have that much GPU "
         "memory (no comma or space; not none)"),
        ("gpu_groups: {24: none}\n",
         "gpu_groups: 24: 'none' is not a Deadline group name: name the group whose Workers have that much GPU "
         "memory (no comma or space; not none)"),
        ("gpu_groups: {24: gpu24, 24GB: gpu24b}\n",
         "gpu_groups: '24GB': the 24 GB class is given twice: keep one"),
        ("family_limits: sometimes\n",
         "family_limits: expected true (every model family under the Limit comfyfarm-<family>), false, or the Limit "
         "of each family, e.g. {flux: flux-gpu, sdxl: sdxl-gpu}, got 'sometimes'"),
        ("family_limits: {FLUX: flux-gpu}\n",
         "family_limits: 'FLUX' is not a model family: write the family as a workflow's requirements.model_family "
         "names it (lower-case letters, digits, _ and -), e.g. {flux: flux-gpu, sdxl: sdxl-gpu}"),
        ("family_limits: {flux: 'flux,gpu'}\n",
         "family_limits: flux: 'flux,gpu' is not a Deadline Limit name: name the Limit (no comma or space) that caps "
         "how many Workers run this family at once"),
    ],
)
def test_scheduling_mistakes_name_the_file_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "studio.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError) as caught:
        load_template(str(path))
    assert str(caught.value) == f"{path}: {message}"


def test_a_scheduling_override_is_checked_like_the_file() -> None:
    with pytest.raises(TemplateError) as caught:
        load_template("default").with_overrides({"gpu_groups": "16=gpu16"})
    assert str(caught.value) == ("command line: gpu_groups: '16=gpu16' is not GB:group pairs: write e.g. "
                                 "16:gpu16,24:gpu24,48:gpu48")
