"""A studio for the Open Job Description tests: shared storage with a plate, a comfyfarm configuration, a
ComfyUI test double that counts its starts, ``comfyfarm submit --backend deadline-cloud`` and ``openjd run``
as a user types them (real subprocesses).

Tests that need the OpenJD runtime skip when it is not installed; CI installs it with the ``test`` extra
(``openjd-cli``, which brings ``openjd-model`` and ``openjd-sessions``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

from flame_submitter.cli.demo_plate import write_demo_plate
from flame_submitter.deadline_cloud.bundle import read_values
from tests.doubles.comfyui.harness import make_fake_comfyui_dir
from tests.doubles.flame.harness import REAL_PYTHON  # sys.executable is Flame's binary while a session is open
from tests.farm.conftest import quiet_base_port

REPO = Path(__file__).resolve().parents[2]
OPENJD_MISSING = "the OpenJD runtime is not installed: pip install openjd-cli (the test extra has it)"
STARTS_LOG = "starts.log"

_COUNTING_MAIN = '''"""Counts its starts in starts.log, then runs the ComfyUI test double (double_main.py)."""
import os
import pathlib
import runpy

here = pathlib.Path(__file__).resolve().parent
with open(here / "starts.log", "a") as log:
    log.write(f"{os.getpid()}\\n")
runpy.run_path(str(here / "double_main.py"), run_name="__main__")
'''


def needs_openjd() -> None:
    if importlib.util.find_spec("openjd.cli") is None:
        pytest.skip(OPENJD_MISSING)


def counting_comfyui_dir(path: Path) -> Path:
    """A fake ComfyUI folder whose main.py appends a line to ``starts.log`` each time it starts."""
    make_fake_comfyui_dir(path)
    (path / "main.py").rename(path / "double_main.py")
    (path / "main.py").write_text(_COUNTING_MAIN, encoding="utf-8")
    return path


def comfyui_starts(comfyui_dir: Path) -> int:
    log = comfyui_dir / STARTS_LOG
    return len(log.read_text().split()) if log.exists() else 0


@dataclass
class OpenJDRun:
    """What ``openjd run`` printed (its human-readable output: the JSON one leaves the logs out on failure)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> List[str]:
        """The log lines without their timestamps."""
        return messages_of(self.stdout)

    @property
    def chunks_run(self) -> int:
        return int(self.lines("Chunks run:")[-1])

    def lines(self, prefix: str) -> List[str]:
        return [m[len(prefix):].strip() for m in self.messages if m.startswith(prefix)]

    @property
    def chunks(self) -> List[str]:
        """The CHUNK[INT] values of the tasks run, in order."""
        return self.lines("Frame(CHUNK[INT]) =")

    def text(self) -> str:
        return "\n".join(self.messages) + "\n" + self.stderr


@dataclass
class BundleStudio:
    root: Path
    comfyui_dir: Path
    config: Path
    plate: str
    base_port: int

    @property
    def jobs_root(self) -> Path:
        return self.root / "comfyfarm" / "jobs"

    def environment(self, **extra: str) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYFARM_", "COMFYUI_"))}
        paths = [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        env.update(COMFYFARM_CONFIG=str(self.config), COMFYFARM_STUDIO_CONFIG=str(self.config),
                   PYTHONPATH=os.pathsep.join(paths))
        env.update(extra)
        return env

    def cli(self, *args: str, env: Optional[Dict[str, str]] = None,
            timeout_s: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([REAL_PYTHON, "-m", "flame_submitter.cli", *args], env=env or self.environment(),
                              capture_output=True, text=True, timeout=timeout_s, cwd=REPO)

    def export(self, bundle_dir: Path, *args: str, workflow: str = "invert", frames: str = "1001-1024",
               output: Optional[Path] = None) -> Path:
        """``comfyfarm submit --backend deadline-cloud --bundle-dir``; returns the bundle folder."""
        output = output or self.root / "sh010" / "comfy" / f"{Path(workflow).name}.####.exr"
        result = self.cli("submit", "--backend", "deadline-cloud", "--bundle-dir", str(bundle_dir), "--workflow",
                          workflow, "--input", self.plate, "--frames", frames, "--output", str(output), *args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(bundle_dir)]
        return bundle_dir

    def openjd_run(self, bundle_dir: Path, *params: str, env: Optional[Dict[str, str]] = None,
                   timeout_s: float = 180) -> OpenJDRun:
        """``openjd run template.yaml`` with the bundle's parameter values, this studio's ComfyUI, and ``params``."""
        command = openjd_run_command(bundle_dir, self, *params)
        result = subprocess.run(command, env=env or self.environment(), capture_output=True, text=True,
                                timeout=timeout_s, cwd=bundle_dir)
        return OpenJDRun(result.returncode, result.stdout, result.stderr)


def messages_of(stdout: str) -> List[str]:
    """``openjd run`` lines are ``<elapsed>\\t<message>``; the summary at the end has no timestamp."""
    return [line.split("\t", 1)[1] if "\t" in line else line for line in stdout.splitlines()]


def openjd_run_command(bundle_dir: Path, studio: BundleStudio, *params: str) -> List[str]:
    values = {**read_values(bundle_dir), "ComfyFarmPython": REAL_PYTHON, "ComfyUIDir": str(studio.comfyui_dir),
              "ComfyUIPython": REAL_PYTHON, "BasePort": str(studio.base_port), "StartupTimeoutSeconds": "30",
              "IdleTimeoutSeconds": "60"}
    command = [REAL_PYTHON, "-m", "openjd", "run", str(bundle_dir / "template.yaml")]
    for name, value in values.items():
        command += ["--job-param", f"{name}={value}"]
    for param in params:
        command += ["--job-param", param]
    return command


def make_bundle_studio(tmp_path: Path, *, frame_count: int = 24, inbox: bool = False) -> BundleStudio:
    root = tmp_path / "projects"
    plate = write_demo_plate(root / "sh010" / "plate", frame_count=frame_count, width=16, height=16)
    (root / "comfyfarm" / "jobs").mkdir(parents=True)
    settings = {"deadline_user": "ann", "jobs_root": str(root / "comfyfarm" / "jobs"), "shared_roots": [str(root)]}
    if inbox:
        (root / "comfyfarm" / "inbox").mkdir()
        settings["inbox_root"] = str(root / "comfyfarm" / "inbox")
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump(settings))
    return BundleStudio(root, counting_comfyui_dir(tmp_path / "ComfyUI"), config, plate, quiet_base_port())


@pytest.fixture
def bundle_studio(tmp_path: Path) -> BundleStudio:
    return make_bundle_studio(tmp_path)
