"""The ComfyUI Farm menu as each supported Flame version shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"
ACTIONS = ["Submit to Deadline...", "Run locally...", "Import finished renders", "Show farm jobs"]


@pytest.mark.parametrize("version", ["2023.1", "2024.2", "2025.2", "2026"])
def test_the_menu_on_each_flame_version(flame_session_factory, tmp_path: Path, version: str) -> None:
    session = flame_session_factory(version=version)
    hooks = session.load_hooks(HOOK)
    assert not hooks.touched_flame_at_import
    lib = session.workspace.create_library("Plates")
    clip = session.add_clip(lib, "sh010_plate", frames=range(1, 5))
    for_clip = {a.name: a.visible for a in hooks.actions("media_panel", selection=(clip,))}
    assert for_clip == {name: True for name in ACTIONS}
    for_library = {a.name: a.visible for a in hooks.actions("media_panel", selection=(lib,))}
    assert for_library == {"Submit to Deadline...": False, "Run locally...": False,
                           "Import finished renders": True, "Show farm jobs": True}
    assert all(not a.wait_cursor for a in hooks.actions("media_panel", selection=(clip,)))


def test_the_menu_is_hidden_before_the_supported_flame(flame_session_factory) -> None:
    session = flame_session_factory(version="2022.3", preset_version=11)
    hooks = session.load_hooks(HOOK)
    assert hooks.actions("media_panel", selection=()) == []
