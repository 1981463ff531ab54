"""One version for the whole product: the command, the packages, the Deadline plugins, the hook, the installer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from farm_plugin import __version__
from farm_plugin.jobrecord import OLDEST_READABLE_SCHEMA, SCHEMA_VERSION
from tests.doubles.deadline_runtime import plugin_module

from .conftest import REPO

sys.path.insert(0, str(REPO / "install"))
from comfyfarm_install.product import product_version, requirements  # noqa: E402


def constant(path: Path, name: str = "COMFYFARM_VERSION") -> str:
    match = re.search(rf'^{name}\s*=\s*"([^"]+)"', path.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{path} has no {name}"
    return match.group(1)


@pytest.fixture(scope="module")
def plugin():
    with plugin_module(REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.py") as module:
        yield module


def test_every_part_says_the_same_version() -> None:
    assert constant(REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.py") == __version__
    assert constant(REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py") == __version__
    assert f"(comfyfarm {__version__})" in (REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.param").read_text()
    assert product_version() == __version__
    command = subprocess.run([sys.executable, "-m", "flame_submitter.cli", "--version"], capture_output=True,
                             text=True, cwd=str(REPO))
    assert command.stdout == f"comfyfarm {__version__}\n"


def test_the_plugin_reads_the_job_record_schemas_the_runtime_reads(plugin) -> None:
    assert plugin.JOB_RECORD_SCHEMAS == (OLDEST_READABLE_SCHEMA, SCHEMA_VERSION)


def test_the_plugin_says_why_it_refuses_a_job_record(plugin) -> None:
    assert plugin.record_refusal({"schema": SCHEMA_VERSION, "created_by": __version__}, "/jobs/a/job.json") is None
    assert plugin.record_refusal({"schema": 0, "created_by": "0.0.1"}, "/jobs/a/job.json", "0.3.0", (1, 2)) == (
        "the job record /jobs/a/job.json was written by comfyfarm 0.0.1 (job record schema 0), older than this farm's "
        "comfyfarm 0.3.0 reads (schema 1 and later): resubmit the job from comfyfarm 0.3.0")
    assert plugin.record_refusal(["not", "a", "record"], "/jobs/a/job.json") == (
        "/jobs/a/job.json is not a comfyfarm job record (it has no schema version): check Job Record in Job "
        "Properties > Plugin")


def test_the_installer_installs_pyprojects_requirements() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert requirements() == project["dependencies"]


def test_the_installer_needs_nothing_but_the_standard_library() -> None:
    # -S: no site-packages at all, as on a machine where comfyfarm's requirements are not installed yet.
    result = subprocess.run([sys.executable, "-S", "-E", str(REPO / "install" / "run_installer.py"), "install",
                             "repository", "--repository", str(REPO / "no-such-repository")], capture_output=True,
                            text=True)
    assert result.returncode == 1
    assert result.stderr == (f"install.sh repository: no Deadline repository at {REPO / 'no-such-repository'}: pass "
                             "--repository DIR (the folder with custom/, plugins/ and settings/), mounted on this "
                             "machine\n")


def test_without_its_requirements_comfyfarm_still_says_its_version_and_what_is_missing() -> None:
    # -S: no site-packages, as with a Flame Python that comfyfarm was installed into with --no-deps.
    def comfyfarm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                               "from flame_submitter.cli import main; sys.exit(main(sys.argv[2:]))", str(REPO), *args],
                              capture_output=True, text=True)

    version = comfyfarm("--version")
    assert (version.returncode, version.stdout) == (0, f"comfyfarm {__version__}\n")
    doctor = comfyfarm("doctor")
    assert doctor.returncode == 2
    assert doctor.stderr == (
        f"comfyfarm {__version__}: this Python ({sys.executable}) lacks the package 'yaml' that comfyfarm needs: "
        "install comfyfarm's requirements into it (bash install/install.sh workstation or worker, without "
        "--no-deps)\n")
