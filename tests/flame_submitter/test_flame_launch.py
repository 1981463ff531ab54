"""How Flame starts the comfyfarm command (Run locally): the program, never Flame's own binary, and the
environment without Flame's paths; and the Qt binding the dialogs load, from Flame's version."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest, write_manifest
from flame_submitter.dialog import binding_for_flame, use_flame_binding
from flame_submitter.flame import launch
from tests.doubles.flame.harness import REAL_PYTHON


def test_the_environment_loses_flames_python_and_library_paths_and_keeps_the_rest(tmp_path: Path) -> None:
    """tk-flame's bootstrap prepends <root>/flame_<v>/python to PYTHONPATH and <root>/python/<v>/lib,
    <root>/lib64/<v> to LD_LIBRARY_PATH before Flame starts: the command gets none of it."""
    root = tmp_path / "Autodesk"
    flame_env = {
        "PATH": "/usr/local/bin:/usr/bin",
        "PYTHONPATH": f"{root}/flame_2025.2/python:/studio/pipeline",
        "PYTHONHOME": f"{root}/python/2025.2",
        "LD_LIBRARY_PATH": f"{root}/python/2025.2/lib:{root}/lib64/2025.2:/usr/local/cuda/lib64",
        "DYLD_FRAMEWORK_PATH": f"{root}/lib64/2025.2/framework",
        "QT_PLUGIN_PATH": "/opt/Autodesk/flame_2025.2/plugins",
        "COMFYFARM_AUTODESK_ROOT": str(root),
        "COMFYFARM_CONFIG": "/home/ann/.config/comfyfarm/config.yaml",
        "CUDA_VISIBLE_DEVICES": "0",
    }
    clean = launch.clean_environment(flame_env)
    assert clean == {
        "PATH": "/usr/local/bin:/usr/bin",
        "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
        "COMFYFARM_AUTODESK_ROOT": str(root),
        "COMFYFARM_CONFIG": "/home/ann/.config/comfyfarm/config.yaml",
        "CUDA_VISIBLE_DEVICES": "0",
    }


def test_flames_own_python_runs_the_command_with_this_comfyfarm(tmp_path: Path) -> None:
    """Flame's Python (<root>/python/<version>/bin/python3, as tk-flame and Autodesk's examples name it) with
    comfyfarm's folder first on its path: it answers ``--version`` with this comfyfarm."""
    python = tmp_path / "Autodesk" / "python" / "2025.2" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\nexec {REAL_PYTHON} \"$@\"\n")
    python.chmod(0o755)
    environ = {"COMFYFARM_AUTODESK_ROOT": str(tmp_path / "Autodesk")}
    command = launch.comfyfarm_command("2025.2", environ)
    assert command[:2] == [str(python), "-c"]
    ran = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60,
                         env=launch.clean_environment({"PATH": os.environ["PATH"]}), cwd=str(tmp_path))
    assert ran.returncode == 0, ran.stderr
    assert "comfyfarm" in ran.stdout + ran.stderr


def test_the_installed_command_comes_first(tmp_path: Path, monkeypatch) -> None:
    """A workstation installation records its ``comfyfarm`` command in its manifest; it is what Run locally
    runs, with Flame's Python behind it."""
    prefix = tmp_path / "shared" / "python" / "comfyfarm"
    command = tmp_path / "bin" / "comfyfarm"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    write_manifest(Manifest(role="workstation", version="0.1.0", details={"command": str(command)}),
                   layout.manifest_path("workstation", prefix))
    monkeypatch.setattr(layout, "running_prefix", lambda role: prefix if role == "workstation" else None)
    assert launch.comfyfarm_command("2025.2", {"COMFYFARM_AUTODESK_ROOT": str(tmp_path / "nowhere")}) == [
        str(command)]


def test_without_either_it_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(launch.LaunchError, match="no comfyfarm command is installed"):
        launch.comfyfarm_command("2024.2", {"COMFYFARM_AUTODESK_ROOT": str(tmp_path)})


@pytest.mark.parametrize(("version", "binding"), [("2023.1", "PySide2"), ("2024.2.1", "PySide2"),
                                                  ("2025", "PySide6"), ("2026.2", "PySide6"), ("", "PySide6")])
def test_the_qt_binding_follows_flames_version(version: str, binding: str) -> None:
    assert binding_for_flame(version) == binding


def test_flames_version_wins_over_a_binding_set_by_hand(caplog) -> None:
    environ = {"COMFYFARM_QT_BINDING": "PySide6"}
    assert use_flame_binding("2024.2", environ) == "PySide2"
    assert environ == {"COMFYFARM_QT_BINDING": "PySide2"}
    assert "COMFYFARM_QT_BINDING=PySide6 ignored: Flame 2024.2 runs PySide2" in caplog.text
