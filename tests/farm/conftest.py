"""A studio for the farm tests: shared storage, the real ComfyUI plugin installed on the emulated farm,
ComfyUI doubles for the Workers' GPUs, and `comfyfarm submit` pointed at the Web Service double."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from flame_submitter.cli.demo_plate import write_demo_plate
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir
from tests.farm_emulator.farm import Farm

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "farm_plugin" / "ComfyUI"
PYTHON = sys.executable  # the test Python, whatever a Flame double makes of sys.executable during a test


@dataclass
class Studio:
    farm: Farm
    root: Path
    comfyui_dir: Path
    config: Path
    plate: str

    def configure(self, *, faults: str = "", **values: object) -> None:
        """Configure Plugins > ComfyUI, with ComfyUI doubles behind it (``faults`` for every start)."""
        environment = f"COMFYFARM_FAKE_FAULTS={faults}" if faults else ""
        settings = {
            "ComfyUIDirectory": str(self.comfyui_dir),
            "PythonExecutable": PYTHON,
            "BasePort": str(quiet_base_port()),
            "StartupTimeoutSeconds": "30",
            "IdleTimeoutSeconds": "60",
            "ScratchDirectory": str(self.root.parent / "worker-scratch"),
            "ExtraEnvironment": environment,
            # no comfyfarm service unless a test starts one there (never one of the machine running the tests)
            "ServiceDirectory": str(self.root.parent / "service-state"),
        }
        settings.update({k: str(v) for k, v in values.items()})
        self.farm.configure_plugin("ComfyUI", **settings)

    def submit(self, *args: str, frames: str = "1001-1096", workflow: str = "invert") -> str:
        """Submit ``workflow`` (a name or a package folder); the output is named after it."""
        output = self.root / "sh010" / "comfy" / f"{Path(workflow).name}.####.exr"
        result = subprocess.run(
            [PYTHON, "-m", "flame_submitter.cli", "submit", "--workflow", workflow, "--input", self.plate,
             "--frames", frames, "--output", str(output), *args],
            env=self.environment(), capture_output=True, text=True, timeout=120, cwd=REPO)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-1]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-m", "flame_submitter.cli", *args], env=self.environment(),
                              capture_output=True, text=True, timeout=120, cwd=REPO)

    def hand_back(self) -> Path:
        """Give the studio an inbox: each job's hand-back job (the ComfyUI plugin's finish mode, on a Worker,
        once the job ended) writes its completion record there. Returns the inbox."""
        inbox = self.root / "comfyfarm" / "inbox"
        inbox.mkdir(exist_ok=True)
        settings = yaml.safe_load(self.config.read_text())
        settings["inbox_root"] = str(inbox)
        self.config.write_text(yaml.safe_dump(settings))
        return inbox

    def submitted(self) -> List[Dict[str, object]]:
        """What the Web Service received, in order: ``{"job_id", "JobInfo", "PluginInfo", "AuxFiles"}``."""
        return self.farm.fake.submissions()

    def hand_back_job(self, job_id: str) -> str:
        """The id of the hand-back job of the job ``job_id``."""
        (found,) = [s["job_id"] for s in self.submitted() if s["PluginInfo"].get("FinishesJob") == job_id]
        return str(found)

    def record(self, inbox: Path, job_id: str, timeout_s: float = 90) -> Dict[str, object]:
        """The completion record of ``job_id`` once its hand-back job wrote it into ``inbox``."""
        path = inbox / f"{job_id}.json"
        self.farm.wait_for_job(self.hand_back_job(job_id), timeout_s=timeout_s)
        assert path.is_file(), f"no record {path}\n{self.farm.describe(self.hand_back_job(job_id))}"
        return json.loads(path.read_text())

    def environment(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYFARM_", "COMFYUI_"))}
        env.update(COMFYFARM_CONFIG=str(self.config), COMFYFARM_STUDIO_CONFIG=str(self.config))
        return env

    def outputs(self, workflow: str = "invert") -> List[str]:
        """The frames in the output folder (and anything left there but the hand-back's contact sheet)."""
        folder = self.root / "sh010" / "comfy"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.endswith("_contact.jpg"))

    def comfyui_processes(self) -> List[int]:
        """PIDs of ComfyUI doubles started from this studio's ComfyUI folder."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "cwd") == str(self.comfyui_dir):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids


def quiet_base_port(span: int = 40) -> int:
    """A base port below Linux's ephemeral range (32768+), where client sockets do not land, with ``span``
    free ports after it: one per emulated GPU."""
    for _ in range(200):
        base = random.randrange(20000, 30000 - span)
        if all(port_is_free(port) for port in range(base, base + span)):
            return base
    return free_port()


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def make_studio(farm: Farm, tmp_path: Path, *, frame_count: int = 96) -> Studio:
    root = tmp_path / "projects"
    plate = write_demo_plate(root / "sh010" / "plate", frame_count=frame_count, width=16, height=16)
    (root / "comfyfarm" / "jobs").mkdir(parents=True)
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_url": farm.url, "deadline_user": "ann",
                                      "jobs_root": str(root / "comfyfarm" / "jobs"), "shared_roots": [str(root)]}))
    farm.install_plugin(PLUGIN, "ComfyUI")
    studio = Studio(farm, root, make_fake_comfyui_dir(tmp_path / "ComfyUI"), config, plate)
    studio.configure()
    return studio


@pytest.fixture
def studio(farm: Farm, tmp_path: Path) -> Studio:
    return make_studio(farm, tmp_path)


def worker_lines(farm, names: List[str], needle: str) -> Dict[str, List[str]]:
    return {name: [line for line in farm.worker_log(name).splitlines() if needle in line] for name in names}


def done_frames(farm, names: List[str]) -> List[int]:
    frames: List[int] = []
    for lines in worker_lines(farm, names, "comfyfarm: frame ").values():
        frames.extend(int(line.split("comfyfarm: frame ")[1].split()[0]) for line in lines if line.endswith("done"))
    return frames
