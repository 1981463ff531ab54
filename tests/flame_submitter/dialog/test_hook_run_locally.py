"""Run locally… from the Flame double: run-local in the background, progress in the dialog, the render
imported into the library. Inside Flame ``sys.executable`` is Flame's binary and the environment holds Flame's
library and Python paths: the command runs with Flame's own Python, in an environment without them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import yaml

from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir
from tests.doubles.flame.harness import REAL_PYTHON
from tests.flame_submitter.dialog.conftest import click_and_wait_for_done

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


def local_config(tmp_path: Path, monkeypatch, flame_session, **extra: Any) -> None:
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({
        "comfyui_dir": str(make_fake_comfyui_dir(tmp_path / "ComfyUI")), "comfyui_python": REAL_PYTHON,
        "base_port": free_port(), "scratch_dir": str(tmp_path / "scratch"), "startup_timeout_s": 20,
        "comfyui_env": {"COMFYFARM_FAKE_FAULTS": '{"node_delay_s": 0.02}'}, **extra}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COMFYFARM_AUTODESK_ROOT", str(flame_session.autodesk_root))  # where Flame's Python is


def test_run_locally_renders_in_the_background_and_imports_the_result(qapp, flame_session, tmp_path: Path,
                                                                      monkeypatch) -> None:
    local_config(tmp_path, monkeypatch, flame_session)
    started: List[Dict[str, Any]] = []
    popen = subprocess.Popen

    def spy(command, **kwargs):  # type: ignore[no-untyped-def]
        started.append({"command": list(command), "env": dict(kwargs.get("env") or os.environ)})
        return popen(command, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1013), source_dir=tmp_path / "plates",
                                  timecode="01:00:00:00")
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Run locally...", selection=(clip,))
    assert dialog.windowTitle() == "ComfyUI Farm: Run locally"
    dialog._select_tree_item("invert")
    qapp.processEvents()
    assert dialog.submit_button.isEnabled(), dialog.problem_label.text()
    clicked = click_and_wait_for_done(dialog, flame_session, qapp, timeout_s=120)
    assert clicked < 2  # rendering happens in the background
    renders = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    folder = next(f for f in renders.folders if f.name.get_value() == "Invert")
    (imported,) = folder.clips
    assert imported.name.get_value() == "sh010_plate_invert_v001"
    assert imported.start_frame == 1001 and imported.duration.frame == 12
    (run,) = started
    assert run["command"][0] == str(flame_session.flame_python) != str(flame_session.flame_executable)
    assert run["command"][1] == "-c" and run["command"][3] == "run-local"
    install = str(flame_session.autodesk_root)
    assert "PYTHONPATH" not in run["env"]  # Flame's <root>/flame_<version>/python
    assert install not in run["env"].get("LD_LIBRARY_PATH", "")  # Flame's own libraries
    dialog.close()


def test_without_flames_python_or_the_command_run_locally_says_what_to_install(qapp, flame_session, tmp_path: Path,
                                                                             monkeypatch) -> None:
    local_config(tmp_path, monkeypatch, flame_session)
    monkeypatch.setenv("COMFYFARM_AUTODESK_ROOT", str(tmp_path / "elsewhere"))
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1005), source_dir=tmp_path / "plates")
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Run locally...", selection=(clip,))
    dialog._select_tree_item("invert")
    qapp.processEvents()
    dialog.submit_button.click()
    qapp.processEvents()
    assert not dialog.busy and dialog.submit_button.text() != "Running…"
    assert dialog.result_label.text() == (
        f"Cannot run comfyfarm from Flame {flame_session.version}: no comfyfarm command is installed (bash "
        f"install/install.sh workstation) and Flame's Python {tmp_path / 'elsewhere'}/python/{flame_session.version}"
        "/bin/python3 is not there (set COMFYFARM_AUTODESK_ROOT when Flame is installed elsewhere)")
    shot = os.environ.get("COMFYFARM_SCREENSHOTS")
    if shot:  # look at it: COMFYFARM_SCREENSHOTS=/tmp/shots pytest -k install
        Path(shot).mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(Path(shot) / "run_locally_cannot_start.png"))
    dialog.close()
