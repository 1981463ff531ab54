"""The job bundle a job becomes: valid for the OpenJD runtime (``openjd check``) for every shipped workflow and
job template, and saying what a wrangler would look for (chunks, GPUs, cancel, the Deadline 10 settings).
The default job's bundle is pinned by golden files (UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
import yaml

from farm_plugin.jobrecord import RelinkIdentity
from farm_plugin.paths import PathMapping
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import resolve_parameters
from flame_submitter.deadline_cloud.bundle import BundleError, BundleOptions, build_bundle, read_values
from flame_submitter.jobs.builder import FarmPaths, SourceClip, plan_jobs
from flame_submitter.jobs.templates import load_template

from .conftest import needs_openjd

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
NOON = 1795521600.0  # 2026-11-24 12:00:00 UTC
MAPPINGS = (PathMapping.from_dict({"linux": "/mnt/projects", "macos": "/Volumes/projects"}),)
WORKFLOWS = sorted(p.name for p in (REPO / "workflows").iterdir() if (p / "workflow.yaml").is_file())
TEMPLATES = sorted(p.stem for p in (REPO / "job_templates").glob("*.yaml"))


@pytest.fixture(autouse=True)
def utc(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def clip(frames=tuple(range(1001, 1049))) -> SourceClip:
    return SourceClip(name="sh010_plate", pattern="/Volumes/projects/show/sh010/sh010_plate.####.exr", frames=frames,
                      output_pattern="/Volumes/projects/show/sh010/comfy/sh010_blur.####.exr", width=1920,
                      height=1080, fps=24.0, timecode="01:00:00:00",
                      relink=RelinkIdentity(project="show_2026", clip_name="sh010_plate", user="ann"))


def plan(workflow: str = "blur", template: str = "default", frames=tuple(range(1001, 1049)), **overrides):
    package = load_package(REPO / "workflows" / workflow)
    return plan_jobs([clip(frames)], workflow=package, parameters=resolve_parameters(package, {}),
                     template=load_template(template).with_overrides(overrides),
                     paths=FarmPaths(Path("/Volumes/projects/comfyfarm/jobs"), MAPPINGS, workstation_os="macos",
                                     farm_os="linux"),
                     user="ann", now=NOON, token="beef")


def render_steps(template: dict) -> List[dict]:
    return [step for step in template["steps"] if step["name"] != "Finish"]


# ``openjd check`` for many templates in one interpreter (its start-up is most of a check's time): the CLI's own
# entry point (what ``python -m openjd`` calls), once per file; it prints its verdict and exits non-zero on failure.
CHECK_EACH = """
import sys
from openjd.cli._create_argparser import main
for path in sys.argv[1:]:
    try:
        main(["check", path])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    print(f"EXIT {code} {path}", flush=True)
"""


def openjd_check(*paths: Path) -> List[str]:
    """``openjd check`` on each template; the failures, with what openjd said."""
    result = subprocess.run([sys.executable, "-c", CHECK_EACH, *map(str, paths)], capture_output=True, text=True,
                            timeout=300)
    verdicts = [line for line in result.stdout.splitlines() if line.startswith("EXIT ")]
    assert len(verdicts) == len(paths), result.stdout + result.stderr
    failed = [line for line in verdicts if not line.startswith("EXIT 0 ")]
    return [f"{line}\n{result.stdout}{result.stderr}" for line in failed]


def test_openjd_check_passes_for_every_shipped_workflow_and_job_template(tmp_path: Path) -> None:
    needs_openjd()
    folders = []
    for workflow in WORKFLOWS:
        for template in TEMPLATES:
            for cpu in (False, True):
                options = BundleOptions(cpu=cpu, inbox="/Volumes/projects/comfyfarm/inbox" if cpu else None)
                folder = tmp_path / f"{workflow}-{template}-{'cpu' if cpu else 'gpu'}"
                build_bundle(plan(workflow, template), options).write(folder)
                folders.append(folder)
    assert len(folders) == len(WORKFLOWS) * len(TEMPLATES) * 2 and len(WORKFLOWS) >= 13
    failed = openjd_check(*(folder / "template.yaml" for folder in folders))
    assert not failed, "\n".join(failed)


def test_odd_frame_lists_still_pass_openjd_check(tmp_path: Path) -> None:
    needs_openjd()
    frames = tuple(range(-5, 3)) + (10, 12, 14, 16) + tuple(range(1001, 1011))  # negative, stepped, gapped
    folder = build_bundle(plan(frames=frames)).write(tmp_path / "odd")
    assert not openjd_check(folder / "template.yaml")
    (step,) = render_steps(yaml.safe_load((folder / "template.yaml").read_text()))
    assert step["parameterSpace"]["taskParameterDefinitions"][0]["range"] == "-5-2,10-16:2,1001-1010"


def test_the_default_bundle_matches_its_golden_files(tmp_path: Path) -> None:
    folder = build_bundle(plan()).write(tmp_path / "bundle")
    for name in ("template.yaml", "parameter_values.yaml"):
        text = (folder / name).read_text().replace(str(folder), "<bundle>")
        golden = GOLDEN / f"default_blur_{name}"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(exist_ok=True)
            golden.write_text(text)
        assert text == golden.read_text(), f"{golden} differs: rerun with UPDATE_GOLDEN=1 if the change is intended"


def test_frames_chunk_size_gpus_and_timeout_come_from_the_job_template() -> None:
    template = build_bundle(plan(template="heavy")).template
    assert template["specificationVersion"] == "jobtemplate-2023-09" and template["extensions"] == ["TASK_CHUNKING"]
    (step,) = render_steps(template)
    (frame,) = step["parameterSpace"]["taskParameterDefinitions"]
    assert frame == {"name": "Frame", "type": "CHUNK[INT]", "range": "1001-1048",
                     "chunks": {"defaultTaskCount": 1, "rangeConstraint": "CONTIGUOUS"}}
    assert step["hostRequirements"]["amounts"] == [{"name": "amount.worker.gpu", "min": 1}]
    run = step["script"]["actions"]["onRun"]
    assert run["timeout"] == 240 * 60
    assert run["cancelation"] == {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 30}
    two_gpus = build_bundle(plan(gpus_per_task=2)).template
    assert render_steps(two_gpus)[0]["hostRequirements"]["amounts"] == [{"name": "amount.worker.gpu", "min": 2}]


def test_a_cpu_bundle_asks_for_no_gpu_and_runs_comfyui_with_cpu() -> None:
    template = build_bundle(plan(), BundleOptions(cpu=True)).template
    assert "amounts" not in render_steps(template)[0]["hostRequirements"]
    comfyui_args = next(p for p in template["parameterDefinitions"] if p["name"] == "ComfyUIArgs")
    assert comfyui_args["default"] == "--cpu"


def test_comfyui_is_started_by_the_steps_environment_and_stopped_on_exit() -> None:
    (step,) = render_steps(build_bundle(plan()).template)
    (environment,) = step["stepEnvironments"]
    actions = environment["script"]["actions"]
    assert actions["onEnter"]["args"][:4] == ["-m", "farm_plugin.openjd", "env", "enter"]
    assert actions["onExit"]["args"][:4] == ["-m", "farm_plugin.openjd", "env", "exit"]
    assert step["script"]["actions"]["onRun"]["args"][:3] == ["-m", "farm_plugin.openjd", "task"]


def test_a_preview_template_renders_the_preview_step_first_then_the_rest_then_finishes() -> None:
    bundle = build_bundle(plan(template="preview"))
    preview, main, finish = bundle.template["steps"]
    assert [preview["name"], main["name"], finish["name"]] == ["Preview", "Render", "Finish"]
    assert main["dependencies"] == [{"dependsOn": "Preview"}]
    assert finish["dependencies"] == [{"dependsOn": "Preview"}, {"dependsOn": "Render"}]
    first = preview["parameterSpace"]["taskParameterDefinitions"][0]
    assert first["range"] == "1001-1041:10" and first["chunks"]["defaultTaskCount"] == 1
    values = {v["name"]: v["value"] for v in bundle.parameter_values}
    assert values["deadline:priority"] == 70  # the preview's priority: it goes first


def test_parameter_values_are_the_workstations_paths_and_the_templates_farm_settings(tmp_path: Path) -> None:
    bundle = build_bundle(plan(initial_status="Suspended", priority=80),
                          BundleOptions(inbox="/Volumes/projects/comfyfarm/inbox",
                                        job_parameters={"ComfyUIDir": "/opt/ComfyUI"}))
    folder = bundle.write(tmp_path / "bundle")
    assert read_values(folder) == {
        "JobRecord": "/Volumes/projects/comfyfarm/jobs/20261124-120000_sh010_plate_blur_beef/job.json",
        "InputDir": "/Volumes/projects/show/sh010",
        "OutputDir": "/Volumes/projects/show/sh010/comfy",
        "Inbox": "/Volumes/projects/comfyfarm/inbox",
        "ComfyUIDir": "/opt/ComfyUI",
    }
    values = {v["name"]: v["value"] for v in bundle.parameter_values}
    assert values["deadline:priority"] == 80 and values["deadline:targetTaskRunStatus"] == "SUSPENDED"
    assert values["deadline:maxRetriesPerTask"] == 2  # Deadline 10 fails a task at its 3rd error
    finish = bundle.template["steps"][-1]["script"]["actions"]["onRun"]["args"]
    assert "--inbox={{Param.Inbox}}" in finish


def test_an_unknown_job_parameter_is_refused_with_the_known_ones() -> None:
    with pytest.raises(BundleError, match="unknown job parameter.*ComfyUIDri.*ComfyUIDir"):
        build_bundle(plan(), BundleOptions(job_parameters={"ComfyUIDri": "/opt/ComfyUI"}))


def test_the_one_entry_point_names_its_steps() -> None:
    done = subprocess.run([sys.executable, "-m", "farm_plugin.openjd", "render"], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == ("python -m farm_plugin.openjd: 'render' is not a step: give one of env, task, "
                                   "finish (the job template runs them)")
    done = subprocess.run([sys.executable, "-m", "farm_plugin.openjd", "finish", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m farm_plugin.openjd finish")
