"""Model-aware scheduling: the group a GPU memory class chooses, a Limit per model family, as Deadline receives
them (docs/farm_scheduling.md)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import List, Optional

import pytest
import yaml

from farm_plugin.workflow.package import WorkflowPackage, load_package
from flame_submitter.jobs.builder import FarmPaths, PlannedJob, SchedulingError, SourceClip, plan_jobs
from flame_submitter.jobs.templates import load_template
from tests.flame_submitter.test_submit import comfyfarm, job_folders, write_config

REPO = Path(__file__).resolve().parents[2]
CLASSES = {16: "gpu16", 24: "gpu24", 48: "gpu48"}
GROUPS = ("none", "gpu16", "gpu24", "gpu48")


def blur(vram_gb: Optional[float] = None, model_family: str = "") -> WorkflowPackage:
    package = load_package(REPO / "workflows" / "blur")
    requirements = dataclasses.replace(package.requirements, vram_gb=vram_gb, model_family=model_family)
    return dataclasses.replace(package, requirements=requirements)


def plan(workflow: WorkflowPackage, **overrides) -> List[PlannedJob]:
    clip = SourceClip(name="sh010", pattern="/mnt/projects/sh010/plate.####.exr", frames=tuple(range(1001, 1011)),
                      output_pattern="/mnt/projects/sh010/comfy/blur.####.exr", width=16, height=16)
    return plan_jobs([clip], workflow=workflow, parameters={}, template=load_template("default").with_overrides(
        overrides), paths=FarmPaths(Path("/mnt/projects/comfyfarm/jobs")), user="ann", token="beef")


def extra_info(info) -> dict:
    return dict(value.split("=", 1) for key, value in info.items() if key.startswith("ExtraInfoKeyValue"))


@pytest.mark.parametrize(("vram_gb", "group"), [(12, "gpu16"), (16, "gpu16"), (20, "gpu24"), (40.5, "gpu48")])
def test_the_smallest_gpu_class_that_holds_the_workflow_gives_the_group(vram_gb: float, group: str) -> None:
    (job,) = plan(blur(vram_gb=vram_gb), gpu_groups=CLASSES)
    info = job.submission.job_info
    assert info["Group"] == group
    memory = group[3:]
    assert extra_info(info)["comfyfarm_gpu_class"] == memory
    assert extra_info(info)["comfyfarm_vram_gb"] == f"{vram_gb:g}"
    assert job.hand_back is not None and job.hand_back.job_info["Group"] == group  # where the runtime is
    assert job.scheduling is not None and job.scheduling.notes() == [
        f"group {group}: the workflow needs {vram_gb:g} GB of GPU memory, the {memory} GB class of job template "
        "'default' (gpu_groups)"]


def test_a_workflow_that_needs_more_than_the_biggest_class_is_refused_before_anything_is_planned() -> None:
    with pytest.raises(SchedulingError) as caught:
        plan(blur(vram_gb=80), gpu_groups=CLASSES)
    assert str(caught.value) == (
        f"workflow 'blur' needs 80 GB of GPU memory (requirements.vram_gb), more than the biggest GPU class of job "
        f"template 'default' (48 GB, group gpu48): add a bigger class to gpu_groups in "
        f"{REPO / 'job_templates' / 'default.yaml'}, or choose a group whose GPUs hold it (--group)")


def test_a_group_the_template_or_the_artist_names_wins_over_the_gpu_class() -> None:
    (job,) = plan(blur(vram_gb=12), gpu_groups=CLASSES, group="gpu48")
    assert job.submission.job_info["Group"] == "gpu48"
    assert "comfyfarm_gpu_class" not in extra_info(job.submission.job_info)
    assert extra_info(job.submission.job_info)["comfyfarm_vram_gb"] == "12"
    (job,) = plan(blur(vram_gb=80), gpu_groups=CLASSES, group="gpu48")  # named: not refused
    assert job.submission.job_info["Group"] == "gpu48"


def test_a_workflow_without_vram_gb_keeps_the_template_group() -> None:
    (job,) = plan(blur(), gpu_groups=CLASSES)
    info = job.submission.job_info
    assert info["Group"] == "none"
    assert not {"comfyfarm_gpu_class", "comfyfarm_vram_gb", "comfyfarm_model_family"} & set(extra_info(info))
    assert job.scheduling is not None and job.scheduling.notes() == []


def test_family_limits_add_the_family_limit_after_the_template_limit_groups() -> None:
    (job,) = plan(blur(model_family="flux"), family_limits=True, limit_groups=["nuke"])
    info = job.submission.job_info
    assert info["LimitGroups"] == "nuke,comfyfarm-flux"
    assert extra_info(info)["comfyfarm_model_family"] == "flux"
    assert job.hand_back is not None and "LimitGroups" not in job.hand_back.job_info  # reads headers, no GPU
    assert job.scheduling is not None and job.scheduling.notes() == [
        "Limit comfyfarm-flux: model family flux (job template 'default', family_limits)"]


def test_a_family_limits_mapping_names_the_limit_of_the_families_it_lists_only() -> None:
    (job,) = plan(blur(model_family="flux"), family_limits={"flux": "flux-gpu"})
    assert job.submission.job_info["LimitGroups"] == "flux-gpu"
    (job,) = plan(blur(model_family="sdxl"), family_limits={"flux": "flux-gpu"})
    assert "LimitGroups" not in job.submission.job_info
    (job,) = plan(blur(model_family="flux"))  # the shipped templates: off
    assert "LimitGroups" not in job.submission.job_info


# -- through `comfyfarm submit` and the Web Service double ----------------------------------------------------------


def package_needing(tmp_path: Path, vram_gb: float, family: str = "flux") -> Path:
    """A copy of the blur package whose manifest asks for ``vram_gb`` GB and the model family ``family``."""
    folder = tmp_path / "packages" / "heavy_blur"
    shutil.copytree(REPO / "workflows" / "blur", folder)
    manifest = yaml.safe_load((folder / "workflow.yaml").read_text())
    manifest["requirements"].update(vram_gb=vram_gb, model_family=family)
    (folder / "workflow.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def farm_template(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "farm.yaml"
    path.write_text(yaml.safe_dump({"gpu_groups": CLASSES, "family_limits": True, **fields}))
    return path


def submit_args(studio: Path, workflow: Path, template: Path, *extra: str) -> List[str]:
    return ["submit", "--workflow", str(workflow), "--template", str(template), "--input",
            str(studio / "sh010" / "plate" / "plate.####.exr"), "--frames", "1001-1010", "--output",
            str(studio / "sh010" / "comfy" / "blur.####.exr"), *extra]


def test_deadline_receives_the_gpu_class_group_and_the_family_limit(fake_deadline_factory, tmp_path: Path,
                                                                    studio: Path) -> None:
    fake = fake_deadline_factory(groups=GROUPS)
    config = write_config(tmp_path, studio, fake.url)
    result = comfyfarm(config, *submit_args(studio, package_needing(tmp_path, 12), farm_template(tmp_path)))
    assert result.returncode == 0, result.stderr
    sent, hand_back = fake.submissions()
    info = sent["JobInfo"]
    assert (info["Group"], info["LimitGroups"]) == ("gpu16", "comfyfarm-flux")
    assert {value for key, value in info.items() if key.startswith("ExtraInfoKeyValue")} >= {
        "comfyfarm_vram_gb=12", "comfyfarm_gpu_class=16", "comfyfarm_model_family=flux"}
    (job,) = fake.store.jobs_json(job_ids=[sent["job_id"]])
    assert (job["Props"]["Grp"], job["Props"]["Limits"]) == ("gpu16", ["comfyfarm-flux"])
    assert (hand_back["JobInfo"]["Group"], hand_back["JobInfo"].get("LimitGroups")) == ("gpu16", None)
    assert ("comfyfarm: group gpu16: the workflow needs 12 GB of GPU memory, the 16 GB class of job template 'farm' "
            "(gpu_groups)") in result.stderr.splitlines()
    assert ("comfyfarm: Limit comfyfarm-flux: model family flux (job template 'farm', family_limits)"
            in result.stderr.splitlines())
    # the double lists no Limits (GET /api/limitgroups: 404): said, not refused
    assert "cannot list Limits (GET /api/limitgroups: HTTP 404): not checked that comfyfarm-flux exist" in (
        result.stderr)


def test_dry_run_shows_the_group_the_gpu_class_chose(fake_deadline_factory, tmp_path: Path, studio: Path) -> None:
    fake = fake_deadline_factory(groups=GROUPS)
    config = write_config(tmp_path, studio, fake.url)
    result = comfyfarm(config, *submit_args(studio, package_needing(tmp_path, 20), farm_template(tmp_path),
                                            "--dry-run"))
    assert result.returncode == 0, result.stderr
    (job,) = json.loads(result.stdout)["jobs"]
    assert (job["JobInfo"]["Group"], job["JobInfo"]["LimitGroups"]) == ("gpu24", "comfyfarm-flux")
    assert ("comfyfarm: group gpu24: the workflow needs 20 GB of GPU memory, the 24 GB class of job template 'farm' "
            "(gpu_groups)") in result.stderr.splitlines()
    assert fake.requests_seen() == []


def test_submit_refuses_a_workflow_bigger_than_every_class_and_sends_nothing(fake_deadline_factory, tmp_path: Path,
                                                                            studio: Path) -> None:
    fake = fake_deadline_factory(groups=GROUPS)
    config = write_config(tmp_path, studio, fake.url)
    template = farm_template(tmp_path)
    result = comfyfarm(config, *submit_args(studio, package_needing(tmp_path, 80), template))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"comfyfarm: workflow 'heavy_blur' needs 80 GB of GPU memory (requirements.vram_gb), more than the biggest "
        f"GPU class of job template 'farm' (48 GB, group gpu48): add a bigger class to gpu_groups in {template}, or "
        f"choose a group whose GPUs hold it (--group)")
    assert fake.requests_seen() == [] and job_folders(studio) == []


def test_an_artist_group_wins_on_the_command_line(fake_deadline_factory, tmp_path: Path, studio: Path) -> None:
    fake = fake_deadline_factory(groups=GROUPS)
    config = write_config(tmp_path, studio, fake.url)
    result = comfyfarm(config, *submit_args(studio, package_needing(tmp_path, 80), farm_template(tmp_path),
                                            "--group", "gpu48"))
    assert result.returncode == 0, result.stderr
    assert fake.submissions()[0]["JobInfo"]["Group"] == "gpu48"
    assert "the 48 GB class" not in result.stderr  # named, not chosen


def test_a_gpu_class_group_missing_on_the_farm_stops_the_submission(fake_deadline_factory, tmp_path: Path,
                                                                    studio: Path) -> None:
    fake = fake_deadline_factory(groups=("none", "gpu24", "gpu48"))
    config = write_config(tmp_path, studio, fake.url)
    template = farm_template(tmp_path)
    result = comfyfarm(config, *submit_args(studio, package_needing(tmp_path, 12), template))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"comfyfarm: group 'gpu16' (the 16 GB GPU class of job template 'farm', gpu_groups) does not exist on the "
        f"farm: create it in Deadline Monitor and add the Workers with that much GPU memory to it, or change "
        f"gpu_groups in {template} (groups: none, gpu24, gpu48)")
    assert fake.submissions() == [] and job_folders(studio) == []


class ListsLimits:
    """The product's client, with the Limits a real Web Service lists (``GET /api/limitgroups?NamesOnly=true``),
    which the double does not answer."""

    def __new__(cls, url: str, limits: List[str]):
        from flame_submitter.deadline.client import DeadlineClient

        client = DeadlineClient(url)
        client.limit_names = lambda: list(limits)  # type: ignore[method-assign]
        return client


def plan_for_the_farm(tmp_path: Path, studio: Path, url: str, template_path: Path):
    from flame_submitter.config import load_config
    from flame_submitter.deadline.submit import ClipRequest
    from flame_submitter.deadline.submit import plan as plan_submission

    config = load_config(write_config(tmp_path, studio, url), environ={})
    template = load_template(str(template_path))
    request = ClipRequest("sh010", str(studio / "sh010" / "plate" / "plate.####.exr"), list(range(1001, 1011)),
                          str(studio / "sh010" / "comfy" / "blur.####.exr"))
    jobs = plan_submission([request], workflow=load_package(package_needing(tmp_path, 12)), parameters={},
                           template=template, config=config)
    return template, jobs


def test_a_family_limit_missing_on_the_farm_stops_the_submission(fake_deadline_factory, tmp_path: Path,
                                                                 studio: Path) -> None:
    from flame_submitter.deadline.submit import SubmitError, preflight_farm

    fake = fake_deadline_factory(groups=GROUPS)
    path = farm_template(tmp_path)
    template, jobs = plan_for_the_farm(tmp_path, studio, fake.url, path)
    with pytest.raises(SubmitError) as caught:
        preflight_farm(ListsLimits(fake.url, ["nuke"]), template, jobs)
    assert str(caught.value) == (
        f"Limit 'comfyfarm-flux' (model family flux, family_limits of job template 'farm') does not exist on the "
        f"farm: create it in Deadline Monitor (the Limits panel, as a super user) with the number of Workers that "
        f"may run the family at once, or set family_limits: false in {path} (Limits: nuke)")
    preflight_farm(ListsLimits(fake.url, ["nuke", "comfyfarm-flux"]), template, jobs)  # once it exists


def test_a_template_limit_missing_on_the_farm_stops_the_submission(fake_deadline_factory, tmp_path: Path,
                                                                   studio: Path) -> None:
    from flame_submitter.deadline.submit import SubmitError, preflight_farm

    fake = fake_deadline_factory(groups=GROUPS)
    template, jobs = plan_for_the_farm(tmp_path, studio, fake.url, farm_template(
        tmp_path, family_limits=False, limit_groups=["nuke"]))
    assert jobs[0].submission.job_info["LimitGroups"] == "nuke"
    with pytest.raises(SubmitError) as caught:
        preflight_farm(ListsLimits(fake.url, []), template, jobs)
    assert str(caught.value) == (
        "Limit 'nuke' (limit_groups of job template 'farm') does not exist on the farm: create it in Deadline Monitor "
        "(the Limits panel, as a super user), or leave it out of limit_groups (Limits: none)")


def test_without_the_jobs_preflight_checks_every_class_group_of_the_template(fake_deadline_factory,
                                                                            tmp_path: Path) -> None:
    """Flame's Submit checks the template (its jobs' groups are one of these)."""
    from flame_submitter.deadline.submit import SubmitError, preflight_farm

    fake = fake_deadline_factory(groups=("none", "gpu16", "gpu24"))
    template = load_template(str(farm_template(tmp_path)))
    with pytest.raises(SubmitError, match=r"^group 'gpu48' \(the 48 GB GPU class of job template 'farm', "):
        preflight_farm(ListsLimits(fake.url, []), template)
    preflight_farm(ListsLimits(fake.url, []), template.with_overrides({"group": "gpu16"}))  # named: the others idle
