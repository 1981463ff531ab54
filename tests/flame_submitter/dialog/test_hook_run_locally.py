"""Run locally… from the Flame double: run-local in the background, progress in the dialog, the render
imported into the library."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir
from tests.flame_submitter.dialog.conftest import click_and_wait_for_done

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


def test_run_locally_renders_in_the_background_and_imports_the_result(qapp, flame_session, tmp_path: Path,
                                                                      monkeypatch) -> None:
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({
        "comfyui_dir": str(make_fake_comfyui_dir(tmp_path / "ComfyUI")), "comfyui_python": sys.executable,
        "base_port": free_port(), "scratch_dir": str(tmp_path / "scratch"), "startup_timeout_s": 20,
        "comfyui_env": {"COMFYFARM_FAKE_FAULTS": '{"node_delay_s": 0.02}'}}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
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
    dialog.close()
