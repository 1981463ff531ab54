"""The ComfyUI Farm menu as each supported Flame version shows it, in the Media Panel and in the timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"
ACTIONS = ["Submit to Deadline...", "Run locally...", "Import finished renders", "Show farm jobs", "Settings..."]
FOR_ANY_SELECTION = {"Import finished renders": True, "Show farm jobs": True, "Settings...": True}
VERSIONS = ["2023.1", "2023.2", "2024.2", "2025.2", "2026"]


def shown(actions):
    """The menu as the artist sees it: ordered (2023.2+), separators as lines."""
    ordered = sorted(actions, key=lambda a: a.order or 0)
    lines = []
    for action in ordered:
        if action.separator == "above":
            lines.append("---")
        lines.append(action.name)
    return lines


@pytest.mark.parametrize("version", VERSIONS)
def test_the_menu_on_each_flame_version(flame_session_factory, version: str) -> None:
    session = flame_session_factory(version=version)
    hooks = session.load_hooks(HOOK)
    assert not hooks.touched_flame_at_import
    lib = session.workspace.create_library("Plates")
    clip = session.add_clip(lib, "sh010_plate", frames=range(1, 5))
    for_clip = hooks.actions("media_panel", selection=(clip,))
    assert [a.name for a in for_clip] == ACTIONS
    assert {a.name: a.visible for a in for_clip} == {name: True for name in ACTIONS}
    assert {a.group for a in for_clip} == {"ComfyUI Farm"}
    for_library = {a.name: a.visible for a in hooks.actions("media_panel", selection=(lib,))}
    assert for_library == {"Submit to Deadline...": False, "Run locally...": False, **FOR_ANY_SELECTION}
    assert all(not a.wait_cursor for a in for_clip)  # every action opens a dialog or a message


@pytest.mark.parametrize("version", VERSIONS)
def test_the_timeline_menu_takes_segments(flame_session_factory, version: str) -> None:
    session = flame_session_factory(version=version)
    hooks = session.load_hooks(HOOK)
    lib = session.workspace.create_library("Edit")
    clip = session.add_clip(lib, "sh010_plate", frames=range(1, 5))
    sequence = session.add_sequence(lib, "cut", [clip])
    session.select_segments(sequence.versions[0].tracks[0].segments[0])
    for_segment = hooks.actions("timeline")
    assert {a.name: a.visible for a in for_segment} == {name: True for name in ACTIONS}
    assert all(not a.wait_cursor for a in for_segment)
    for_nothing = {a.name: a.visible for a in hooks.actions("timeline", selection=())}
    assert for_nothing == {"Submit to Deadline...": False, "Run locally...": False, **FOR_ANY_SELECTION}


def test_before_2023_2_the_menu_has_no_structure(flame_session_factory) -> None:
    session = flame_session_factory(version="2023.1")
    hooks = session.load_hooks(HOOK)  # hierarchy, order or separator here would raise in the double
    for menu in ("media_panel", "timeline"):
        actions = hooks.actions(menu, selection=())
        assert [(a.order, a.separator, a.hierarchy) for a in actions] == [(None, None, ())] * len(ACTIONS)


@pytest.mark.parametrize("version", ["2023.2", "2025.2", "2026"])
def test_from_2023_2_the_menu_is_ordered_and_grouped(flame_session_factory, version: str) -> None:
    session = flame_session_factory(version=version)
    hooks = session.load_hooks(HOOK)
    for menu in ("media_panel", "timeline"):
        assert shown(hooks.actions(menu, selection=())) == [
            "Submit to Deadline...", "Run locally...", "---", "Import finished renders", "Show farm jobs", "---",
            "Settings..."]


def test_the_menu_is_hidden_before_the_supported_flame(flame_session_factory) -> None:
    session = flame_session_factory(version="2022.3", preset_version=11)
    hooks = session.load_hooks(HOOK)
    assert hooks.actions("media_panel", selection=()) == []
    assert hooks.actions("timeline", selection=()) == []
