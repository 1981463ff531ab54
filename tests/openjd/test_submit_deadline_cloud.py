"""``comfyfarm submit --backend deadline-cloud`` as a user runs it: the bundle written, or submitted with the
Deadline Cloud CLI. The CLI here is a test double on PATH, following the documented commands
(aws-deadline/deadline-cloud ``cli/_groups/config_group.py``, ``bundle_group.py``), that records its calls."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from farm_plugin.jobrecord import read_job_record

from .conftest import BundleStudio

FAKE_DEADLINE = '''#!{python}
"""A stand-in for AWS Deadline Cloud's CLI: ``deadline config get KEY`` and ``deadline bundle submit``."""
import importlib.util
import json
import os
import pathlib
import secrets
import sys

import yaml

calls = pathlib.Path({calls!r})
with calls.open("a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if args[:2] == ["config", "get"]:
    print({{"defaults.farm_id": os.environ.get("FAKE_FARM_ID", ""),
           "defaults.queue_id": os.environ.get("FAKE_QUEUE_ID", "")}}.get(args[2], ""))
    sys.exit(0)
if args[:2] != ["bundle", "submit"]:
    print(f"Usage: deadline [OPTIONS] COMMAND [ARGS]...\\nError: No such command {{args[0]!r}}.", file=sys.stderr)
    sys.exit(2)
bundle = pathlib.Path(args[-1])
template = yaml.safe_load((bundle / "template.yaml").read_text())
values = yaml.safe_load((bundle / "parameter_values.yaml").read_text())["parameterValues"]
if importlib.util.find_spec("openjd.model") is not None:  # CreateJob validates the template, strictly
    from openjd.model import decode_job_template
    decode_job_template(template=template, supported_extensions=["TASK_CHUNKING"])
if os.environ.get("FAKE_REFUSE"):
    print(f"Error: Failed to submit the job bundle to AWS Deadline Cloud:\\n{{os.environ['FAKE_REFUSE']}}",
          file=sys.stderr)
    sys.exit(1)
print("Submitting to Queue: Fake queue")
print("Waiting for Job to be created...")
print("Submitted job bundle:")
print(f"   {{bundle}}")
print("Job creation completed successfully")
print(f"job-{{secrets.token_hex(16)}}")
'''


@pytest.fixture
def fake_deadline(tmp_path: Path) -> Path:
    """A ``deadline`` executable in a folder of its own; returns the folder (put it on PATH)."""
    folder = tmp_path / "deadline-cli"
    folder.mkdir()
    cli = folder / "deadline"
    cli.write_text(FAKE_DEADLINE.format(python=sys.executable, calls=str(folder / "calls.jsonl")))
    cli.chmod(0o755)
    return folder


def calls(folder: Path) -> List[List[str]]:
    path = folder / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def environment(studio: BundleStudio, cli_folder: Path, **extra: str) -> Dict[str, str]:
    path = os.pathsep.join([str(cli_folder), os.path.dirname(sys.executable), "/usr/bin", "/bin"])
    return studio.environment(PATH=path, **extra)


def submit(studio: BundleStudio, env: Dict[str, str], *args: str):
    return studio.cli("submit", "--backend", "deadline-cloud", "--workflow", "invert", "--input", studio.plate,
                      "--output", str(studio.root / "sh010" / "comfy" / "invert.####.exr"), "--chunk-size", "6",
                      *args, env=env)


def test_without_the_deadline_cli_it_says_how_to_install_and_configure_it(bundle_studio: BundleStudio,
                                                                          tmp_path: Path) -> None:
    empty = tmp_path / "no-cli"
    empty.mkdir()
    result = submit(bundle_studio, environment(bundle_studio, empty))
    assert result.returncode == 2
    assert ("comfyfarm: the Deadline Cloud CLI ('deadline') is not installed here: pip install deadline, then deadline "
            "config set defaults.farm_id farm-… and deadline config set defaults.queue_id queue-… (or deadline config "
            "gui); or write the bundle with --bundle-dir DIR and submit it where the CLI is set up (deadline bundle "
            "submit DIR)") in result.stderr
    assert result.stdout == "" and not any(bundle_studio.jobs_root.iterdir())


def test_an_unconfigured_deadline_cli_is_named_with_the_settings_to_set(bundle_studio: BundleStudio,
                                                                       fake_deadline: Path) -> None:
    result = submit(bundle_studio, environment(bundle_studio, fake_deadline, FAKE_FARM_ID="farm-" + "a" * 32))
    assert result.returncode == 2
    assert "has no default queue: deadline config set defaults.farm_id farm-…" in result.stderr
    assert not any(bundle_studio.jobs_root.iterdir())


def test_the_bundle_is_submitted_with_the_deadline_cli_from_the_job_folder(bundle_studio: BundleStudio,
                                                                          fake_deadline: Path) -> None:
    env = environment(bundle_studio, fake_deadline, FAKE_FARM_ID="farm-" + "a" * 32, FAKE_QUEUE_ID="queue-" + "b" * 32)
    result = submit(bundle_studio, env, "--priority", "65", "--job-param", "ComfyUIDir=/opt/ComfyUI")
    assert result.returncode == 0, result.stderr
    (job_id,) = result.stdout.split()
    assert job_id.startswith("job-") and len(job_id) == 36
    assert f"→ Deadline Cloud job {job_id} (farm farm-aaaa" in result.stderr
    (job_folder,) = bundle_studio.jobs_root.iterdir()
    bundle = job_folder / "bundle"
    assert calls(fake_deadline) == [
        ["config", "get", "defaults.farm_id"],
        ["config", "get", "defaults.queue_id"],
        ["bundle", "submit", "--yes", "--name", "plate - Invert", "--priority", "65", "--max-retries-per-task", "2",
         str(bundle)],
    ]
    values = {v["name"]: v["value"] for v in yaml.safe_load((bundle / "parameter_values.yaml").read_text())[
        "parameterValues"]}
    assert values["JobRecord"] == str(job_folder / "job.json") and values["ComfyUIDir"] == "/opt/ComfyUI"
    record = read_job_record(job_folder / "job.json")
    assert record.source.frames == tuple(range(1001, 1025)) and record.workflow.name == "invert"


def test_a_refused_bundle_leaves_nothing_behind(bundle_studio: BundleStudio, fake_deadline: Path) -> None:
    env = environment(bundle_studio, fake_deadline, FAKE_FARM_ID="farm-" + "a" * 32, FAKE_QUEUE_ID="queue-" + "b" * 32,
                      FAKE_REFUSE="AccessDeniedException: not authorized to perform deadline:CreateJob")
    result = submit(bundle_studio, env)
    assert result.returncode == 1
    assert "comfyfarm: nothing was submitted: deadline bundle submit refused the bundle" in result.stderr
    assert "AccessDeniedException: not authorized to perform deadline:CreateJob" in result.stderr
    assert not any(bundle_studio.jobs_root.iterdir())


def test_bundle_options_need_the_deadline_cloud_backend(bundle_studio: BundleStudio, tmp_path: Path) -> None:
    result = bundle_studio.cli("submit", "--workflow", "invert", "--input", bundle_studio.plate, "--output",
                               str(tmp_path / "out" / "invert.####.exr"), "--bundle-dir", str(tmp_path / "b"), "--cpu")
    assert result.returncode == 2
    assert "comfyfarm: --bundle-dir, --cpu only go with --backend deadline-cloud" in result.stderr


def test_a_folder_that_holds_a_bundle_is_not_overwritten(bundle_studio: BundleStudio, tmp_path: Path) -> None:
    taken = tmp_path / "bundle"
    taken.mkdir()
    (taken / "template.yaml").write_text("specificationVersion: jobtemplate-2023-09\n")
    result = bundle_studio.cli("submit", "--backend", "deadline-cloud", "--bundle-dir", str(taken), "--workflow",
                               "invert", "--input", bundle_studio.plate, "--output",
                               str(bundle_studio.root / "out" / "invert.####.exr"))
    assert result.returncode == 2
    assert f"comfyfarm: {taken} already holds a job bundle (template.yaml): choose a new folder" in result.stderr
    assert not any(bundle_studio.jobs_root.iterdir())


def test_a_dry_run_prints_the_bundle_and_writes_nothing(bundle_studio: BundleStudio) -> None:
    result = bundle_studio.cli("submit", "--backend", "deadline-cloud", "--dry-run", "--cpu", "--workflow", "invert",
                               "--input", bundle_studio.plate, "--output",
                               str(bundle_studio.root / "out" / "invert.####.exr"))
    assert result.returncode == 0, result.stderr
    (bundle,) = json.loads(result.stdout)["bundles"]
    assert [step["name"] for step in bundle["template"]["steps"]] == ["Render", "Finish"]
    assert "amounts" not in bundle["template"]["steps"][0]["hostRequirements"]
    assert not any(bundle_studio.jobs_root.iterdir())
