"""Run locally… with a several-pass workflow, from the Flame double: every pass comes into the library as its
own clip, one version for all; with "Passes as layers of one EXR" ticked, one multi-channel clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from farm_plugin.frames.image_io import probe
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir
from tests.doubles.flame.harness import REAL_PYTHON
from tests.flame_submitter.dialog.conftest import click_and_wait_for_done
from tests.flame_submitter.two_passes import two_pass_package

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


def run_locally_dialog(qapp: Any, flame_session: Any, tmp_path: Path, monkeypatch: Any) -> Any:
    """The Run locally dialog for a 6-frame EXR clip, with the two-pass workflow chosen and a ComfyUI double
    configured."""
    two_pass_package(tmp_path / "workflows" / "invert_passes")
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({
        "comfyui_dir": str(make_fake_comfyui_dir(tmp_path / "ComfyUI")), "comfyui_python": REAL_PYTHON,
        "base_port": free_port(), "scratch_dir": str(tmp_path / "scratch"), "startup_timeout_s": 20,
        "workflows_dirs": [str(tmp_path / "workflows")]}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COMFYFARM_AUTODESK_ROOT", str(flame_session.autodesk_root))  # where Flame's Python is
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1007), source_dir=tmp_path / "plates",
                                  timecode="01:00:00:00")
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Run locally...", selection=(clip,))
    dialog._select_tree_item("invert_passes")
    qapp.processEvents()
    return dialog


def test_run_locally_imports_every_pass_of_the_workflow(qapp, flame_session, tmp_path: Path, monkeypatch) -> None:
    dialog = run_locally_dialog(qapp, flame_session, tmp_path, monkeypatch)
    assert dialog.submit_button.isEnabled(), dialog.problem_label.text()
    click_and_wait_for_done(dialog, flame_session, qapp, timeout_s=120)
    renders = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    folder = next(f for f in renders.folders if f.name.get_value() == "Invert")
    assert [c.name.get_value() for c in folder.clips] == ["sh010_plate_invert_passes_inverted_v001",
                                                         "sh010_plate_invert_passes_original_v001"]
    assert all(c.start_frame == 1001 and c.duration.frame == 6 for c in folder.clips)
    imported = [i.path for i in flame_session.imports if i.error is None]
    assert [Path(p).name for p in imported] == ["sh010_plate_invert_passes_inverted.[1001-1006].exr",
                                                "sh010_plate_invert_passes_original.[1001-1006].exr"]
    assert ("Imported sh010_plate_invert_passes_inverted_v001, sh010_plate_invert_passes_original_v001 into ComfyUI "
            "Renders") in dialog.result_label.text()
    dialog.close()


def test_run_locally_with_passes_as_layers_imports_one_multi_channel_clip(qapp, flame_session, tmp_path: Path,
                                                                          monkeypatch) -> None:
    dialog = run_locally_dialog(qapp, flame_session, tmp_path, monkeypatch)
    assert dialog.format_combo.currentData() == "source" and dialog.layers_check.isEnabled()  # EXR plates
    dialog.layers_check.click()
    click_and_wait_for_done(dialog, flame_session, qapp, timeout_s=120)
    renders = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    folder = next(f for f in renders.folders if f.name.get_value() == "Invert")
    (rendered,) = folder.clips
    assert rendered.name.get_value() == "sh010_plate_invert_passes_v001"
    assert rendered.start_frame == 1001 and rendered.duration.frame == 6
    (imported,) = [i.path for i in flame_session.imports if i.error is None]
    assert Path(imported).name == "sh010_plate_invert_passes.[1001-1006].exr"
    first = Path(imported).parent / "sh010_plate_invert_passes.1001.exr"
    assert probe(first).channel_names == ("R", "G", "B", "original.R", "original.G", "original.B")
    assert ("Imported sh010_plate_invert_passes_v001 into ComfyUI Renders: a multi-channel clip with the passes "
            "inverted, original as layers") in dialog.result_label.text()
    dialog.close()
