"""Contract tests: the Flame ``flame`` module double against shared/reference/flame.md (§8 point by point).

No product code: these tests drive the double the way a hook would, through ``import flame``. Where
flame.md is silent they pin the double's documented guesses (tests/doubles/flame/harness.py), so that a
change to one of them is deliberate.
"""

from __future__ import annotations

import os
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from tests.doubles.flame.harness import FlameHookError, FlameSession

EXR_PRESET = ("OpenEXR", "OpenEXR (16-bit fp Uncompressed).xml")


# ---------------------------------------------------------------------------------------------------------
# helpers


def factory_preset(flame: Any, *parts: str) -> str:
    base = flame.PyExporter.get_presets_dir(
        flame.PyExporter.PresetVisibility.Autodesk, flame.PyExporter.PresetType.Image_Sequence
    )
    return os.path.join(base, *parts)


def write_preset(path: Path, version: int, pattern: str = "<name>.", padding: int = 4,
                 start_frame: int = 1001, frame_index: int = 0) -> str:
    """A 16-bit fp OpenEXR image preset numbered from ``start_frame`` (frameIndex 0) or the timecode (1)."""
    pattern_xml = pattern.replace("<", "&lt;").replace(">", "&gt;")
    path.write_text(
        f'<?xml version="1.0"?>\n<preset version="{version}">\n  <type>image</type>\n  <video>\n'
        f"    <fileType>OpenEXR</fileType>\n    <namePattern>{pattern_xml}</namePattern>\n"
        "    <resize><width>0</width><height>0</height><bitsPerChannel>16</bitsPerChannel>"
        "<numChannels>3</numChannels><floatingPoint>True</floatingPoint></resize>\n  </video>\n"
        f"  <name><framePadding>{padding}</framePadding><startFrame>{start_frame}</startFrame>"
        f"<frameIndex>{frame_index}</frameIndex></name>\n</preset>\n",
        encoding="utf-8",
    )
    return str(path)


class RecordingHooks:
    """An export hooks object with the camelCase methods Flame calls."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, Dict[str, Any]]] = []

    def _record(self, name: str, info: Dict[str, Any], user_data: Any) -> None:
        self.calls.append((name, dict(info)))
        user_data.setdefault("seen", []).append(name)

    def preExport(self, info, userData, *args, **kwargs):  # noqa: N802 - Flame's hook names
        self._record("preExport", info, userData)

    def preExportSequence(self, info, userData, *args, **kwargs):  # noqa: N802
        self._record("preExportSequence", info, userData)

    def preExportAsset(self, info, userData, *args, **kwargs):  # noqa: N802
        self._record("preExportAsset", info, userData)

    def postExportAsset(self, info, userData, *args, **kwargs):  # noqa: N802
        self._record("postExportAsset", info, userData)

    def postExportSequence(self, info, userData, *args, **kwargs):  # noqa: N802
        self._record("postExportSequence", info, userData)

    def postExport(self, info, userData, *args, **kwargs):  # noqa: N802
        self._record("postExport", info, userData)

    def names(self) -> List[str]:
        return [name for name, _ in self.calls]

    def info(self, name: str) -> Dict[str, Any]:
        return next(info for hook, info in self.calls if hook == name)


def plate(session: FlameSession, tmp_path: Path, parent: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("frames", range(1001, 1011))
    kwargs.setdefault("timecode", "01:00:00:00")
    parent = parent if parent is not None else session.workspace.create_library("Plates")
    return session.add_clip(parent, kwargs.pop("name", "sh010_plate"), source_dir=tmp_path / "plates", **kwargs)


def write_hook(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / "hooks" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# module availability and session lifecycle


def test_flame_is_importable_only_while_a_session_is_open(tmp_path):
    assert "flame" not in sys.modules
    with pytest.raises(ImportError):
        import flame  # noqa: F401
    with FlameSession(root=tmp_path / "a") as session:
        import flame

        assert flame.get_version() == "2025.2"
        clip = session.add_clip(session.workspace.create_library("L"), "c")
    assert "flame" not in sys.modules
    with pytest.raises(RuntimeError, match="No Flame session"):
        flame.get_version()
    with pytest.raises(RuntimeError):
        clip.name.get_value()


def test_sessions_do_not_share_state(flame_session_factory):
    first = flame_session_factory(project="first")
    first.workspace.create_library("Only In First")
    second = flame_session_factory(project="second")
    import flame

    assert first.closed and not second.closed
    assert flame.projects.current_project.name == "second"
    assert [lib.name.get_value() for lib in flame.projects.current_project.current_workspace.libraries] == [
        "Default Library"
    ]


def test_a_session_that_fails_to_start_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match="preset_version"):
        FlameSession(version="2019.1", root=tmp_path / "a")
    with pytest.raises(ValueError, match="import_timecode"):
        FlameSession(import_timecode="guess", root=tmp_path / "b")
    assert "flame" not in sys.modules
    with FlameSession(version="2019.1", preset_version=9, root=tmp_path / "c") as session:
        assert session.preset_version == 9


def test_only_one_session_at_a_time(flame_session, tmp_path):
    with pytest.raises(RuntimeError, match="Another FlameSession is open"):
        FlameSession(root=tmp_path / "other")


def test_get_version_is_a_configurable_string(flame_session_factory):
    flame_session_factory(version="2024.2")
    import flame

    assert flame.get_version() == "2024.2"
    assert (flame.get_version_major(), flame.get_version_minor()) == ("2024", "2")


def test_project_tree_defaults(flame_session):
    import flame

    project = flame.projects.current_project
    assert isinstance(project, flame.PyProject)
    assert (project.name, project.nickname) == ("show_2026", "show_2026")
    assert project.project_folder.endswith("opt/Autodesk/project/show_2026")
    assert project.media_folder.startswith(project.project_folder)
    workspace = project.current_workspace
    assert isinstance(workspace.desktop, flame.PyDesktop)
    reels = workspace.desktop.reel_groups[0].reels
    assert [r.name.get_value() for r in reels] == ["Reel 1", "Reel 2", "Reel 3", "Reel 4", "Sequences"]
    assert reels[-1].type == "Sequences"
    assert flame.project.current_project is project
    assert flame.users.current_user.name == "ann"


# ---------------------------------------------------------------------------------------------------------
# PyAttribute


def test_pyattribute_get_set_assign_and_quoted_str(flame_session):
    import flame

    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "plate")
    assert isinstance(clip.name, flame.PyAttribute)
    assert clip.name.get_value() == "plate"
    assert str(clip.name) == '"plate"'
    assert f"{clip.name}" == '"plate"'
    assert str(lib.name)[1:-1] == "Plates"  # the logik-portal idiom
    clip.name = "renamed"
    assert clip.name.get_value() == "renamed"
    clip.name.set_value("again")
    assert clip.name.get_value() == "again"
    assert clip.name + "_v2" == "again_v2"  # Autodesk's export_current_frame.py concatenates like this
    lib.expanded = False
    assert lib.expanded.get_value() is False
    assert str(lib.expanded) == "False"
    clip.colour = (0.5, 0.25, 1.0)
    assert clip.colour.get_value() == (0.5, 0.25, 1.0)
    # properties are plain values
    assert clip.width == 64 and isinstance(clip.width, int)


def test_pyattribute_refuses_what_flame_may_not_do(flame_session):
    clip = flame_session.add_clip(flame_session.workspace.create_library("L"), "plate")
    with pytest.raises(TypeError, match="get_value"):
        _ = clip.name == "plate"
    with pytest.raises(TypeError, match="get_value"):
        bool(clip.selected)
    with pytest.raises(TypeError):
        clip.name = 42
    with pytest.raises(TypeError):
        clip.selected = 1
    with pytest.raises(AttributeError, match="read-only"):
        clip.uid = "x"
    with pytest.raises(AttributeError, match="can't set"):
        clip.width = 10
    with pytest.raises(AttributeError):
        clip.no_such_member = 1


# ---------------------------------------------------------------------------------------------------------
# PyTime


def test_pytime_three_constructors(flame_session):
    import flame

    by_tc = flame.PyTime("01:00:00:00", "24 fps")
    assert (by_tc.frame, by_tc.frame_rate, by_tc.timecode, str(by_tc)) == (86400, "24 fps", "01:00:00+00",
                                                                          "01:00:00+00")
    by_abs = flame.PyTime(86424, "25 fps")
    assert (by_abs.frame, by_abs.timecode) == (86424, "00:57:36+24")
    relative = flame.PyTime(12)
    assert relative.relative_frame == 12 and str(relative) == "12"
    with pytest.raises(RuntimeError, match="relative frame only"):
        _ = relative.frame
    with pytest.raises(RuntimeError, match="relative frame is not defined"):
        _ = by_tc.relative_frame
    assert (by_tc + 1).timecode == "01:00:00+01"
    assert flame.PyTime("00:01:00;02", "29.97 DF").frame == 1800
    assert str(flame.PyTime(1800, "29.97 DF")) == "00:01:00;02"
    with pytest.raises(ValueError, match="Unsupported frame rate"):
        flame.PyTime("01:00:00:00", "48 fps")
    with pytest.raises(TypeError):
        flame.PyTime(1.5)


def test_clip_times_marks_and_durations(flame_session, tmp_path):
    import flame

    clip = plate(flame_session, tmp_path, frames=range(1001, 1049), fps="23.976 fps")
    assert clip.frame_rate == "23.976 fps"
    assert clip.start_frame == 1001
    assert str(clip.start_time) == "01:00:00+00"
    assert clip.duration.frame == 48 and clip.duration.relative_frame == 48
    assert clip.in_mark.get_value() is None
    clip.in_mark = 5
    clip.out_mark = flame.PyTime(10)
    assert clip.in_mark.get_value().frame == 86400 + 4
    assert clip.in_mark.get_value().relative_frame == 5
    assert clip.out_mark.get_value().relative_frame == 10
    clip.current_time = 20
    clip.in_mark = clip.current_time.get_value()
    clip.out_mark = clip.current_time.get_value() + 1  # exclusive: one frame
    assert clip.out_mark.get_value().relative_frame - clip.in_mark.get_value().relative_frame == 1
    clip.out_mark = 49  # one past the last frame
    with pytest.raises(ValueError, match="outside the clip"):
        clip.in_mark = 49
    with pytest.raises(ValueError, match="outside the clip"):
        clip.out_mark = 1
    with pytest.raises(ValueError, match="frame rate"):
        clip.in_mark = flame.PyTime(86400, "24 fps")


def test_segment_members_of_a_file_backed_and_an_in_flame_clip(flame_session, tmp_path):
    import flame

    lib = flame_session.workspace.create_library("L")
    on_disk = plate(flame_session, tmp_path, parent=lib, shot_name="sh010", tape_name="A001")
    seg = on_disk.versions[0].tracks[0].segments[0]
    assert isinstance(seg, flame.PySegment) and isinstance(on_disk.versions[0], flame.PyVersion)
    assert isinstance(on_disk.versions[0].tracks[0], flame.PyTrack)
    assert seg.file_path == str(tmp_path / "plates" / "sh010_plate.1001.exr")
    assert os.path.isfile(seg.file_path)
    assert (seg.source_name, seg.tape_name, seg.type) == ("sh010_plate", "A001", "Video Segment")
    assert seg.shot_name.get_value() == "sh010"
    assert (str(seg.source_in), str(seg.source_out)) == ("01:00:00+00", "01:00:00+09")  # out is inclusive
    assert seg.source_out.frame - seg.source_in.frame + 1 == seg.record_duration.relative_frame == 10
    assert (seg.record_in.relative_frame, seg.start_frame, seg.head, seg.tail) == (1, 1001, 0, 0)
    assert (seg.source_width, seg.source_height, seg.source_bit_depth, seg.source_frame_rate) == (64, 36, 16,
                                                                                               "24 fps")
    assert seg.source_uid == on_disk.source_uid
    in_flame = flame_session.add_clip(lib, "matte", frames=range(1, 25))
    assert in_flame.versions[0].tracks[0].segments[0].file_path == ""
    on_disk.change_start_frame(1)
    assert on_disk.start_frame == 1 and seg.start_frame == 1
    assert str(on_disk.start_time) == "01:00:00+00"  # the timecode does not move


def test_sequence_is_a_clip_with_gaps(flame_session, tmp_path):
    import flame

    lib = flame_session.workspace.create_library("L")
    a = plate(flame_session, tmp_path, parent=lib, name="a", frames=range(1001, 1005))
    b = flame_session.add_clip(lib, "b", frames=range(1, 4))
    seq = flame_session.add_sequence(lib, "edit", [a, 2, b])
    assert isinstance(seq, flame.PySequence) and isinstance(seq, flame.PyClip)
    assert lib.sequences == [seq] and seq not in lib.clips
    segs = seq.versions[0].tracks[0].segments
    assert [s.type for s in segs] == ["Video Segment", "Gap", "Video Segment"]
    assert [s.record_in.relative_frame for s in segs] == [1, 5, 7]
    assert seq.duration.frame == 9


def test_a_trimmed_segment_and_its_handles(flame_session, tmp_path):
    lib = flame_session.workspace.create_library("L")
    a = plate(flame_session, tmp_path, parent=lib, name="a", frames=range(1001, 1049))
    seq = flame_session.add_sequence(lib, "edit", [(a, 10, 20)])
    (seg,) = seq.versions[0].tracks[0].segments
    assert (str(seg.source_in), str(seg.source_out)) == ("01:00:00+10", "01:00:01+05")
    assert (seg.head, seg.tail, seg.source_in.relative_frame, seg.start_frame) == (10, 18, 11, 1001)
    assert (seg.record_in.relative_frame, seg.record_duration.frame, seg.source_duration.frame) == (1, 20, 48)
    with pytest.raises(ValueError, match="outside"):
        flame_session.add_sequence(lib, "bad", [(a, 40, 10)])


def test_match_out_a_segment(flame_session, tmp_path):
    import flame

    lib = flame_session.workspace.create_library("L")
    a = plate(flame_session, tmp_path, parent=lib, name="a", frames=range(1001, 1049))
    seq = flame_session.add_sequence(lib, "edit", [(a, 10, 20), 5])
    seg, gap = seq.versions[0].tracks[0].segments
    seg.name = "sh010"
    flame_session.add_effect(seg, "Colour Correct", rendered=True)
    whole = seg.match(lib)  # preserve_handle=False: the whole source media, no marks
    assert isinstance(whole, flame.PyClip) and not isinstance(whole, flame.PySequence) and whole in lib.clips
    assert (whole.name.get_value(), whole.duration.frame, str(whole.start_time), whole.start_frame) == (
        "sh010", 48, "01:00:00+00", 1001)
    assert whole.in_mark.get_value() is None and whole.versions[0].tracks[0].segments[0].effects == []
    used = seg.match(lib, preserve_handle=True, use_sequence_info=False, include_timeline_fx=True)
    assert (used.name.get_value(), used.duration.frame, str(used.start_time), used.start_frame) == (
        "a", 20, "01:00:00+10", 1011)
    inner = used.versions[0].tracks[0].segments[0]
    assert (inner.head, inner.tail) == (10, 18) and [fx.type for fx in inner.effects] == ["Colour Correct"]
    with pytest.raises(RuntimeError, match="a gap has no media"):
        gap.match(lib)
    with pytest.raises(TypeError, match="destination must be a reel, folder or library"):
        seg.match(seq)
    shared = flame_session.project.create_shared_library("Shared")
    with pytest.raises(RuntimeError, match="is locked"):
        seg.match(shared)


# ---------------------------------------------------------------------------------------------------------
# version-gated members


def test_members_added_in_2025_1_are_absent_before(flame_session_factory):
    session = flame_session_factory(version="2024.2")
    clip = session.add_clip(session.workspace.create_library("L"), "c")
    assert not hasattr(clip, "tags")
    assert not hasattr(clip, "colour_label")
    with pytest.raises(AttributeError):
        clip.tags = ["x"]
    assert "tags" not in dir(clip)

    session = flame_session_factory(version="2025.2")
    clip = session.add_clip(session.workspace.create_library("L"), "c")
    clip.tags = ["comfy"]
    assert clip.tags.get_value() == ["comfy"]
    assert not hasattr(clip, "shot_name")  # PyClip.shot_name is 2026

    session = flame_session_factory(version="2026.0")
    clip = session.add_clip(session.workspace.create_library("L"), "c")
    clip.shot_name = "sh010"
    assert clip.shot_name.get_value() == "sh010"


# ---------------------------------------------------------------------------------------------------------
# main-thread rule


def test_flame_calls_from_another_thread_raise(flame_session):
    import flame

    clip = flame_session.add_clip(flame_session.workspace.create_library("L"), "c")
    get_version = flame.get_version
    rename = clip.name.set_value
    errors: List[str] = []

    def worker() -> None:
        for call in (lambda: flame.projects, lambda: clip.width, get_version, lambda: rename("x"),
                     lambda: flame.schedule_idle_event(lambda: None)):
            try:
                call()
            except RuntimeError as exc:
                errors.append(str(exc))

    thread = threading.Thread(target=worker, name="watcher")
    thread.start()
    thread.join()
    assert len(errors) == 5
    assert all("main thread" in e and "'watcher'" in e for e in errors)
    assert clip.name.get_value() == "c"
    assert flame_session.idle_queue == []


# ---------------------------------------------------------------------------------------------------------
# selection and Media Panel


def test_selection_is_a_list_in_the_media_panel_and_a_tuple_in_hooks(flame_session, tmp_path):
    import flame

    lib = flame_session.workspace.create_library("L")
    a = flame_session.add_clip(lib, "a")
    b = flame_session.add_clip(lib, "b")
    flame_session.select(a, b)
    assert flame.media_panel.selected_entries == [a, b]
    assert a.selected.get_value() is True
    hook = write_hook(tmp_path, "sel_hook", '''
seen = []

def get_media_panel_custom_ui_actions():
    def visible(selection):
        seen.append(selection)
        return len(selection) > 0
    return [{"name": "Farm", "actions": [{"name": "Submit", "isVisible": visible, "execute": seen.append}]}]
''')
    hooks = flame_session.load_hooks(hook)
    hooks.run_action("Submit")
    assert hooks.module.seen[-1] == (a, b)
    assert all(isinstance(s, tuple) for s in hooks.module.seen)


def test_find_delete_duplicate(flame_session):
    import flame

    lib = flame_session.workspace.create_library("Renders")
    folder = lib.create_folder("sh010")
    clip = flame_session.add_clip(folder, "sh010_comfy")
    assert flame.find_by_name("Renders") == [lib]
    assert flame.find_by_name("sh010_comfy") == [clip]
    assert flame.find_by_name("sh010_comfy", lib) == [clip]
    uid = clip.uid.get_value()
    assert flame.find_by_uid(uid) is clip
    assert flame.find_by_uid(clip.source_uid) is None  # uid, not source_uid
    assert flame.find_by_wiretap_node_id(clip.get_wiretap_node_id()) is clip
    dup = flame.duplicate(clip)
    assert dup is not clip and folder.clips == [clip, dup]
    assert dup.name.get_value() == "sh010_comfy" and dup.uid.get_value() != uid
    assert dup.source_uid == clip.source_uid
    assert flame.delete(dup) is True
    assert folder.clips == [clip]
    with pytest.raises(RuntimeError, match="deleted"):
        dup.name.get_value()
    assert flame.execute_shortcut("Rescan Python Hooks") is True
    assert flame.execute_shortcut("No Such Shortcut") is False
    assert [s.description for s in flame_session.shortcuts] == ["Rescan Python Hooks", "No Such Shortcut"]


def test_closed_and_shared_libraries(flame_session):
    import flame

    lib = flame_session.workspace.create_library("L")
    lib.close()
    assert lib.opened is False
    with pytest.raises(RuntimeError, match="closed"):
        _ = lib.clips
    lib.open()
    assert lib.clips == []
    shared = flame.projects.current_project.create_shared_library("Shared Renders")
    assert flame.projects.current_project.shared_libraries == [shared]
    with pytest.raises(RuntimeError, match="acquire_exclusive_access"):
        shared.create_folder("x")
    assert shared.acquire_exclusive_access() is True
    shared.create_folder("x")
    shared.release_exclusive_access()
    with pytest.raises(RuntimeError, match="locked"):
        flame_session.add_clip(shared, "c")


# ---------------------------------------------------------------------------------------------------------
# idle events


def test_idle_events_run_when_their_delay_has_passed(flame_session):
    import flame

    ran: List[Tuple[str, float]] = []
    flame.schedule_idle_event(lambda: ran.append(("now", flame_session.clock_seconds)))
    flame.schedule_idle_event(lambda: ran.append(("later", flame_session.clock_seconds)), delay=2)
    assert ran == []  # nothing runs until Flame is idle
    assert flame_session.pump_idle() == 1
    assert ran == [("now", 0.0)]
    assert flame_session.pump_idle(seconds=1.0) == 0
    assert flame_session.pump_idle(seconds=1.0) == 1
    assert ran[-1] == ("later", 2.0)
    with pytest.raises(TypeError, match="int number of seconds"):
        flame.schedule_idle_event(lambda: None, delay=0.5)
    with pytest.raises(TypeError, match="callable"):
        flame.schedule_idle_event("not callable")


def test_a_self_rescheduling_watcher(flame_session):
    import flame

    ticks: List[float] = []

    def watch() -> None:
        ticks.append(flame_session.clock_seconds)
        if len(ticks) < 4:
            flame.schedule_idle_event(watch, delay=1)

    flame.schedule_idle_event(watch)
    flame_session.pump_idle(seconds=10)
    assert ticks == [0.0, 1.0, 2.0, 3.0]

    def spin() -> None:
        flame.schedule_idle_event(spin)

    flame.schedule_idle_event(spin)
    with pytest.raises(RuntimeError, match="rescheduling itself"):
        flame_session.pump_idle(max_events=50)


def test_idle_callback_errors_propagate(flame_session):
    import flame

    def broken() -> None:
        raise ValueError("boom")

    flame.schedule_idle_event(broken)
    with pytest.raises(ValueError, match="boom"):
        flame_session.pump_idle()


# ---------------------------------------------------------------------------------------------------------
# messages


def test_show_in_dialog_returns_the_scripted_label(flame_session):
    import flame

    flame_session.answer_dialogs("Submit")
    assert flame.messages.show_in_dialog("ComfyUI", "Send 3 clips?", "question", ["Submit"], "Cancel") == "Submit"
    flame_session.answer_dialogs("Cancel")
    assert flame.messages.show_in_dialog("ComfyUI", "Again?", "question", ["Submit"], cancel_button="Cancel") == (
        "Cancel"
    )
    assert [(d.title, d.answer) for d in flame_session.dialogs] == [("ComfyUI", "Submit"), ("ComfyUI", "Cancel")]
    with pytest.raises(RuntimeError, match="answer_dialogs"):
        flame.messages.show_in_dialog("ComfyUI", "Unscripted", "info", ["Ok"])
    flame_session.answer_dialogs("Maybe")
    with pytest.raises(ValueError, match="not a button"):
        flame.messages.show_in_dialog("ComfyUI", "?", "question", ["Yes", "No"])
    flame_session.dialog_responder = lambda dialog: dialog.buttons[-1]
    assert flame.messages.show_in_dialog("ComfyUI", "?", "warning", ["Yes", "No"]) == "No"
    with pytest.raises(ValueError, match="type"):
        flame.messages.show_in_dialog("ComfyUI", "?", "fatal", ["Ok"])


def test_show_in_console_is_recorded(flame_session):
    import flame

    flame.messages.show_in_console("ComfyUI: job submitted", "info", 5)
    flame.messages.show_in_console("ComfyUI: 1 render failed", type="error")
    assert [(m.message, m.type, m.duration) for m in flame_session.console_messages] == [
        ("ComfyUI: job submitted", "info", 5),
        ("ComfyUI: 1 render failed", "error", -1),
    ]
    with pytest.raises(ValueError):
        flame.messages.show_in_console("x", "debug")


# ---------------------------------------------------------------------------------------------------------
# PyExporter


def test_presets_dirs_and_factory_presets(flame_session_factory):
    flame_session = flame_session_factory(version="2025.2")
    import flame

    exporter = flame.PyExporter
    vis, ptype = exporter.PresetVisibility, exporter.PresetType
    assert vis.values.get(2) is vis.Autodesk and ptype.values.get(0) is ptype.Image_Sequence
    base = exporter.get_presets_base_dir(vis.Autodesk)
    assert base.endswith("opt/Autodesk/presets/2025.2/export/presets/flame")
    assert exporter.get_presets_dir(vis.Autodesk, ptype.Image_Sequence) == os.path.join(base, "file_sequence")
    assert exporter.get_presets_dir(vis.Shared, ptype.Image_Sequence).endswith(
        "opt/Autodesk/shared/export/presets/file_sequence"
    )
    preset = factory_preset(flame, *EXR_PRESET)
    assert ET.parse(preset).getroot().attrib["version"] == str(flame_session.preset_version) == "14"
    assert not hasattr(flame, "PresetVisibility")  # nested in PyExporter, as in Flame
    with pytest.raises(TypeError):
        exporter.get_presets_dir(2, 0)


def test_export_defaults_to_background_and_writes_nothing_until_backburner_finishes(flame_session, tmp_path):
    import flame

    clip = plate(flame_session, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    assert exporter.foreground is False
    hooks = RecordingHooks()
    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out), hooks=hooks)
    record = flame_session.exports[-1]
    assert record.state == "queued" and record.job_id
    assert list(out.iterdir()) == []
    info = hooks.info("postExportAsset")
    assert info["isBackground"] is True and info["backgroundJobId"] == record.job_id
    assert not os.path.exists(os.path.join(info["destinationPath"], info["resolvedPath"].replace(
        "[00086400-00086409]", "00086400")))
    assert flame_session.pending_background_jobs == [record.job_id]
    written = flame_session.finish_background_jobs()
    assert len(written) == 10 and all(os.path.isfile(p) for p in written)
    assert record.state == "written" and flame_session.pending_background_jobs == []


def test_foreground_export_writes_real_frames_named_by_the_factory_preset(flame_session, tmp_path):
    import flame

    clip = plate(flame_session, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    exporter.foreground = True
    hooks = RecordingHooks()
    user_data: Dict[str, Any] = {}
    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out), hooks=hooks, hooks_user_data=user_data)
    # factory preset: "<name>." + 8-digit frame numbers from the timecode (01:00:00:00 @ 24 = 86400)
    names = sorted(os.listdir(out))
    assert names == [f"sh010_plate.{86400 + i:08d}.exr" for i in range(10)]
    assert hooks.names() == ["preExport", "preExportSequence", "preExportAsset", "postExportAsset",
                             "postExportSequence", "postExport"]
    assert user_data["seen"] == hooks.names()
    info = hooks.info("postExportAsset")
    for key in ("destinationPath", "resolvedPath", "namePattern", "assetName", "sequenceName", "shotName",
                "width", "height", "depth", "colourSpace", "fps", "sourceIn", "sourceOut", "recordIn", "recordOut",
                "handleIn", "handleOut", "startFrame", "isBackground", "backgroundJobId"):
        assert key in info, key
    assert info["resolvedPath"] == "sh010_plate.[00086400-00086409].exr"
    assert (info["width"], info["height"], info["depth"], info["fps"]) == (64, 36, "16 fp", "24")
    assert (info["sourceIn"], info["sourceOut"], info["isBackground"], info["backgroundJobId"]) == (86400, 86410,
                                                                                                  False, "")
    first = os.path.join(info["destinationPath"], names[0])
    assert FlameSession.frame_tag(first) == 1  # source frame 1001
    oiio = pytest.importorskip("OpenImageIO")
    spec = oiio.ImageInput.open(first).spec()
    assert str(spec.format) == "half" and spec.get_string_attribute("smpte:TimeCode") == "01:00:00:00"
    assert flame_session.exports[-1].state == "written"


def test_export_between_marks_with_a_custom_preset(flame_session, tmp_path):
    import flame

    clip = plate(flame_session, tmp_path, frames=range(1001, 1049))
    preset = write_preset(tmp_path / "p.xml", flame_session.preset_version, pattern="<name>/<name>_<frame><ext>",
                          padding=4, start_frame=1001, frame_index=0)
    out = tmp_path / "out"
    out.mkdir()
    dup = flame.duplicate(clip)  # Autodesk's export_current_frame.py pattern
    try:
        dup.name = clip.name + "_marks"
        dup.in_mark = 11
        dup.out_mark = 16  # exclusive: frames 11..15
        exporter = flame.PyExporter()
        exporter.foreground = True
        exporter.export_between_marks = True
        exporter.export(dup, preset, str(out))
    finally:
        flame.delete(dup)
    written = sorted((out / "sh010_plate_marks").iterdir())
    assert [p.name for p in written] == [f"sh010_plate_marks_{n}.exr" for n in range(1001, 1006)]
    assert [FlameSession.frame_tag(p) for p in written] == [11, 12, 13, 14, 15]  # source frames 1011..1015
    assert flame_session.exports[-1].export_between_marks is True


def test_export_of_in_flame_media_and_of_a_sequence_with_a_gap(flame_session, tmp_path):
    import flame

    lib = flame_session.workspace.create_library("L")
    matte = flame_session.add_clip(lib, "matte", frames=range(101, 104), timecode="00:00:10:00")
    seq = flame_session.add_sequence(lib, "edit", [matte, 1], timecode="01:00:00:00")
    preset = write_preset(tmp_path / "p.xml", flame_session.preset_version, padding=4, start_frame=1)
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    exporter.foreground = True
    exporter.export([matte, seq], preset, str(out))
    assert [FlameSession.frame_tag(out / f"matte.{n:04d}.exr") for n in (1, 2, 3)] == [101, 102, 103]
    assert [FlameSession.frame_tag(out / f"edit.{n:04d}.exr") for n in (1, 2, 3, 4)] == [101, 102, 103, 0]
    assert [a.clip_name for a in flame_session.exports[-1].assets] == ["matte", "edit"]


def test_export_refusals(flame_session, tmp_path):
    import flame

    clip = plate(flame_session, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    exporter.foreground = True
    old = write_preset(tmp_path / "old.xml", 9)
    with pytest.raises(RuntimeError, match="preset version 9"):
        exporter.export(clip, old, str(out))
    assert flame_session.dialogs[-1].origin == "flame"
    assert flame_session.exports[-1].state == "refused" and list(out.iterdir()) == []
    with pytest.raises(RuntimeError, match="does not exist"):
        exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(tmp_path / "missing"))
    flame_session.add_effect(clip, "Colour Correct")
    assert clip.is_rendered() is False
    with pytest.raises(RuntimeError, match="unrendered Timeline FX"):
        exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out))
    assert clip.render() is True and clip.is_rendered() is True
    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out))
    with pytest.raises(RuntimeError, match="exists"):
        exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out))

    class Overwrite(RecordingHooks):
        def exportOverwriteFile(self, path, *args, **kwargs):  # noqa: N802
            return "overwrite"

    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out), hooks=Overwrite())
    assert flame_session.exports[-1].state == "written"


def test_pre_export_asset_hook_can_redirect_the_frames(flame_session, tmp_path):
    import flame

    class Redirect(RecordingHooks):
        def preExportAsset(self, info, userData, *args, **kwargs):  # noqa: N802
            info["resolvedPath"] = "plates/v001/" + info["resolvedPath"]

    clip = plate(flame_session, tmp_path, frames=range(1001, 1003))
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    exporter.foreground = True
    hooks = Redirect()
    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out), hooks=hooks)
    assert sorted(p.name for p in (out / "plates" / "v001").iterdir()) == ["sh010_plate.00086400.exr",
                                                                            "sh010_plate.00086401.exr"]
    assert hooks.info("postExportAsset")["resolvedPath"] == "plates/v001/sh010_plate.[00086400-00086401].exr"


def test_pre_export_hook_can_abort(flame_session, tmp_path):
    import flame

    class Abort:
        def preExport(self, info, userData, *args, **kwargs):  # noqa: N802
            info["abort"] = True
            info["abortMessage"] = "artist said no"

    clip = plate(flame_session, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    exporter.foreground = True
    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out), hooks=Abort())
    assert flame_session.exports[-1].state == "aborted" and list(out.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# import_clips


def test_import_an_exr_sequence_into_a_library(flame_session_factory, tmp_path):
    session = flame_session_factory()
    source = plate(session, tmp_path, frames=range(1001, 1025), timecode="10:00:00:00", fps="25 fps")
    pattern = str(tmp_path / "plates" / "sh010_plate.[1001-1024].exr")
    session.close()

    session = flame_session_factory()
    import flame

    lib = session.workspace.create_library("ComfyUI Renders")
    clips = flame.import_clips(pattern, lib)
    assert isinstance(clips, list) and len(clips) == 1
    clip = clips[0]
    assert lib.clips == [clip]
    assert clip.name.get_value() == "sh010_plate"
    assert (clip.start_frame, clip.duration.frame, clip.frame_rate) == (1001, 24, "25 fps")
    assert str(clip.start_time) == "10:00:00+00"  # from the EXR header's smpte:TimeCode
    assert (clip.width, clip.height, clip.bit_depth) == (64, 36, 16)
    seg = clip.versions[0].tracks[0].segments[0]
    assert seg.file_path == str(tmp_path / "plates" / "sh010_plate.1001.exr")
    with pytest.raises(RuntimeError, match="closed"):
        source.name.get_value()  # the old session's clip is gone; its files remain
    clip.name.set_value("sh010_comfy_v001")
    assert session.imports[-1].clips == [clip] and session.imports[-1].error is None


def test_import_timecode_from_frame_numbers_when_asked_or_missing(flame_session_factory, tmp_path):
    session = flame_session_factory(import_timecode="frame_number")
    assert session.import_timecode == "frame_number"
    import flame

    plate(session, tmp_path, frames=range(1001, 1004))
    clip = flame.import_clips(str(tmp_path / "plates" / "sh010_plate.[1001-1003].exr"),
                              session.workspace.create_library("R"))[0]
    assert str(clip.start_time) == "00:00:41+17"  # frame 1001 at 24 fps

    session = flame_session_factory()
    import flame

    session.add_clip(session.workspace.create_library("S"), "notc", frames=range(1, 3),
                     source_dir=tmp_path / "notc", header_timecode=False, header_frame_rate=False)
    clip = flame.import_clips(str(tmp_path / "notc" / "notc.[0001-0002].exr"),
                              session.workspace.create_library("R"))[0]
    assert (str(clip.start_time), clip.frame_rate, clip.start_frame) == ("00:00:00+01", "24 fps", 1)


def test_import_failures_return_an_empty_list(flame_session, tmp_path):
    import flame

    lib = flame_session.workspace.create_library("R")
    plate(flame_session, tmp_path, frames=range(1001, 1004))
    assert flame.import_clips(str(tmp_path / "nothing.[1-3].exr"), lib) == []
    assert flame.import_clips(str(tmp_path / "plates" / "sh010_plate.[1001-1004].exr"), lib) == []  # 1004 missing
    assert "missing" in flame_session.imports[-1].error
    assert lib.clips == []
    with pytest.raises(TypeError, match="destination"):
        flame.import_clips(str(tmp_path / "plates" / "sh010_plate.[1001-1003].exr"))
    with pytest.raises(TypeError):
        flame.import_clips(tmp_path / "plates", lib)  # a Path, not a str


def test_import_a_folder_a_pattern_and_a_list(flame_session_factory, tmp_path):
    session = flame_session_factory()
    import flame

    lib = session.workspace.create_library("R")
    session.add_clip(lib, "a_v001", frames=range(1, 3), source_dir=tmp_path / "renders")
    session.add_clip(lib, "b_v002", frames=range(5, 7), source_dir=tmp_path / "renders")
    dest = session.workspace.create_library("Imports")
    from_folder = flame.import_clips(str(tmp_path / "renders"), dest)
    assert sorted(c.name.get_value() for c in from_folder) == ["a_v001", "b_v002"]
    from_pattern = flame.import_clips(str(tmp_path / "renders" / "{name}_v{version}.{frame}.{extension}"), dest)
    assert len(from_pattern) == 2
    from_list = flame.import_clips([str(tmp_path / "renders" / "a_v001.0001.exr"), str(tmp_path / "no.exr")], dest)
    assert [c.duration.frame for c in from_list] == [1]

    session = flame_session_factory(version="2023.1")
    import flame

    assert flame.import_clips(str(tmp_path / "renders"), session.workspace.create_library("R")) == []
    assert "2023.2" in session.imports[-1].error


# ---------------------------------------------------------------------------------------------------------
# hooks


CLEAN_HOOK = '''
import os


def _submit(selection):
    import flame
    flame.messages.show_in_console("submitted %d" % len(selection), "info")


def _is_clip(selection):
    import flame
    return len(selection) > 0 and all(isinstance(s, flame.PyClip) for s in selection)


def get_media_panel_custom_ui_actions():
    return [
        {
            "name": "ComfyUI Farm",
            "actions": [
                {"name": "Submit", "isVisible": _is_clip, "execute": _submit, "waitCursor": False},
                {"name": "Old only", "maximumVersion": "2024.9", "execute": _submit},
                {"name": "Nested", "hierarchy": ["ComfyUI"], "order": 1, "minimumVersion": "2023.2.0.0",
                 "execute": _submit},
            ],
        }
    ]


def get_timeline_custom_ui_actions():
    def segments_only(selection):
        import flame
        return all(isinstance(s, flame.PySegment) for s in selection)
    return [{"name": "ComfyUI Farm", "actions": [{"name": "Submit shots", "isEnabled": segments_only,
                                                  "execute": _submit}]}]


def app_initialized(project_name):
    import flame
    flame.schedule_idle_event(lambda: flame.messages.show_in_console("watching " + project_name, "info"))
'''


def test_loading_a_clean_hook_touches_nothing(flame_session, tmp_path):
    hooks = flame_session.load_hooks(write_hook(tmp_path, "comfy_clean_hook", CLEAN_HOOK))
    assert hooks.touched_flame_at_import is False
    assert flame_session.console_messages == [] and flame_session.idle_queue == []
    hooks.app_initialized()
    flame_session.pump_idle()
    assert flame_session.console_messages[-1].message == "watching show_2026"


@pytest.mark.parametrize(
    ("body", "expected_access"),
    [
        ("import flame\n\ndef get_media_panel_custom_ui_actions():\n    return []\n", ()),
        ("from flame import PyClip\n", ("PyClip",)),
        ("import flame\nVERSION = flame.get_version()\n", ("get_version",)),
    ],
)
def test_a_hook_that_uses_flame_at_import_time_is_detected(flame_session, tmp_path, body, expected_access):
    hooks = flame_session.load_hooks(write_hook(tmp_path, "comfy_dirty_hook", body))
    assert hooks.touched_flame_at_import is True
    assert hooks.import_time_access == expected_access
    if body.startswith("import flame"):
        assert hooks.modules_importing_flame == ("comfy_dirty_hook",)


def test_a_helper_module_importing_flame_at_top_level_is_detected(flame_session, tmp_path):
    write_hook(tmp_path, "comfy_helper_mod", "import flame\n")
    hooks = flame_session.load_hooks(write_hook(tmp_path, "comfy_uses_helper", "import comfy_helper_mod\n"))
    assert hooks.modules_importing_flame == ("comfy_helper_mod",)


def test_menu_versions_visibility_and_execute(flame_session_factory, tmp_path):
    session = flame_session_factory(version="2025.2")
    hook_path = write_hook(tmp_path, "comfy_menu_hook", CLEAN_HOOK)
    hooks = session.load_hooks(hook_path)
    lib = session.workspace.create_library("L")
    clip = session.add_clip(lib, "c")
    assert [a.name for a in hooks.media_panel_actions((clip,))] == ["Submit", "Nested"]
    submit = hooks.action("Submit", selection=(clip,))
    assert (submit.visible, submit.enabled, submit.wait_cursor) == (True, True, False)
    assert hooks.action("Submit", selection=(lib,)).visible is False
    session.select(clip)
    hooks.run_action("Submit")
    assert session.console_messages[-1].message == "submitted 1"
    session.select(lib)
    with pytest.raises(FlameHookError, match="not visible"):
        hooks.run_action("Submit")
    seg = clip.versions[0].tracks[0].segments[0]
    session.select_segments(seg)
    hooks.run_action("Submit shots", menu="timeline")
    assert hooks.action("Submit shots", menu="timeline", selection=(clip,)).enabled is False

    old = flame_session_factory(version="2023.1")
    old_hooks = old.load_hooks(hook_path)
    assert [a.name for a in old_hooks.media_panel_actions(())] == ["Submit", "Old only"]


def test_menu_contract_violations(flame_session_factory, tmp_path):
    session = flame_session_factory(version="2023.1")
    hooks = session.load_hooks(write_hook(tmp_path, "comfy_bad_menu", '''
def get_media_panel_custom_ui_actions():
    return [{"name": "G", "actions": [{"name": "A", "hierarchy": ["X"], "execute": print}]}]

def get_timeline_custom_ui_actions():
    return [{"name": "G", "actions": [{"name": "A", "isVisble": True, "execute": print}]}]

def get_main_menu_custom_ui_actions():
    return [{"name": "G", "actions": [{"name": "A", "isVisible": lambda s: None, "execute": print}]}]
'''))
    with pytest.raises(FlameHookError, match="2023.2"):
        hooks.media_panel_actions(())
    with pytest.raises(FlameHookError, match="isVisble"):
        hooks.timeline_actions(())
    with pytest.raises(FlameHookError, match="bool"):
        hooks.actions("main_menu", ())


def test_dialog_under_a_wait_cursor_is_warned(flame_session, tmp_path):
    hooks = flame_session.load_hooks(write_hook(tmp_path, "comfy_dialog_hook", '''
def _ask(selection):
    import flame
    return flame.messages.show_in_dialog("ComfyUI", "Submit?", "question", ["Submit"], "Cancel")

def get_media_panel_custom_ui_actions():
    return [{"name": "G", "actions": [{"name": "Ask", "execute": _ask}]}]
'''))
    flame_session.answer_dialogs("Cancel")
    assert hooks.run_action("Ask", selection=()) == "Cancel"
    assert "waitCursor" in flame_session.warnings[-1]


def test_hook_module_names_share_one_namespace(flame_session, tmp_path):
    flame_session.load_hooks(write_hook(tmp_path, "comfy_same_name", "X = 1\n"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "comfy_same_name.py").write_text("X = 2\n", encoding="utf-8")
    with pytest.raises(FlameHookError, match="one namespace"):
        flame_session.load_hooks(other / "comfy_same_name.py")


def test_export_without_hooks_object_calls_the_loaded_global_export_hooks(flame_session, tmp_path):
    hooks = flame_session.load_hooks(write_hook(tmp_path, "comfy_export_hook", '''
calls = []

def post_export_asset(info, userData, *args, **kwargs):
    calls.append(info["resolvedPath"])
'''))
    import flame

    clip = plate(flame_session, tmp_path, frames=range(1001, 1002))
    out = tmp_path / "out"
    out.mkdir()
    exporter = flame.PyExporter()
    exporter.foreground = True
    exporter.export(clip, factory_preset(flame, *EXR_PRESET), str(out))
    assert hooks.module.calls == ["sh010_plate.00086400.exr"]
    assert os.path.isfile(out / "sh010_plate.00086400.exr")


# ---------------------------------------------------------------------------------------------------------
# what real Flame does that an easy double would not (issue 18); each test names its evidence


def test_duration_counts_between_the_marks(flame_session, tmp_path):
    """logik-portal set_in_and_out_plus_one_frame.py clears a clip's marks before it reads ``duration.frame`` as
    the clip's full length; the issue's review of Autodesk's examples says the same. The segments' record times
    keep the whole clip."""
    clip = plate(flame_session, tmp_path, frames=range(1001, 1049))
    assert clip.duration.frame == 48
    clip.in_mark = 5
    clip.out_mark = 11
    assert (clip.duration.frame, clip.duration.relative_frame) == (6, 6)
    clip.out_mark = None  # clears it, as logik-portal and the Insert Slate hook do
    assert clip.out_mark.get_value() is None
    assert clip.duration.frame == 44  # from the in mark to the end
    clip.in_mark = None
    assert clip.duration.frame == 48
    (segment,) = clip.versions[0].tracks[0].segments
    assert segment.record_out.relative_frame == 48 and segment.record_duration.frame == 48


def test_start_time_is_a_pyattribute(flame_session, tmp_path):
    """``start_time`` is not among PyClip's properties (VSCODE-CONNECT-TO-FLAME stubs/flame.pyi lists duration,
    start_frame... but no start_time, as for in_mark and name); a Flame 2027 hook ("Insert Slate") reads it as
    ``clip.start_time.get_value()`` ("start_time is a PyAttribute - unwrap it"); Autodesk's export_selection.py
    formats it with ``"%s" % clip.start_time``."""
    import flame

    clip = plate(flame_session, tmp_path)
    assert isinstance(clip.start_time, flame.PyAttribute)
    assert "start_time" in clip.attributes
    value = clip.start_time.get_value()
    assert isinstance(value, flame.PyTime) and value.timecode == "01:00:00+00" and value.frame == 86400
    assert "%s" % clip.start_time == "01:00:00+00"  # noqa: UP031 - as Autodesk's example writes it
    with pytest.raises(AttributeError):
        _ = clip.start_time.frame  # what flame_segments used to read
    with pytest.raises(AttributeError):
        clip.start_time = flame.PyTime(1)


def test_messages_arrived_with_2023_1(flame_session_factory):
    """logik-portal refresh_python_hooks: "Message to Flame message window only shows up in Flame 2023.1+";
    shared/STYLE.md: ``flame.messages`` arrived in 2023.1."""
    import importlib

    old = flame_session_factory(version="2023.0")
    flame = importlib.import_module("flame")
    assert not hasattr(flame, "messages") and "messages" not in dir(flame)
    with pytest.raises(AttributeError, match="messages"):
        flame.messages.show_in_console("x", "info")
    assert flame.get_version() == "2023.0" and old.version == "2023.0"
    flame_session_factory(version="2023.1")
    flame = importlib.import_module("flame")
    flame.messages.show_in_console("x", "info", 1)


def test_a_closed_library_must_be_opened_before_it_is_read_or_written(flame_session, tmp_path):
    """stubs/flame.pyi: PyLibrary ``opened`` ("Return True if the Library is in the open state"), ``open()``,
    ``close()``; what a closed library refuses is the double's guess (RuntimeError)."""
    import flame

    lib = flame_session.workspace.create_library("ComfyUI Renders")
    lib.close()
    assert lib.opened is False and lib.name.get_value() == "ComfyUI Renders"  # its name still shows
    for use in (lambda: lib.folders, lambda: lib.create_folder("Invert"),
                lambda: flame.import_clips(str(tmp_path / "x.[0001-0002].exr"), lib)):
        with pytest.raises(RuntimeError, match="closed: call open"):
            use()
    assert lib.open() is True and lib.opened is True and lib.folders == []


def test_switching_projects_calls_the_hooks_and_retires_the_old_projects_objects(flame_session, tmp_path):
    """Autodesk's Python Hooks Reference (2018): appInitialized "is called whenever the project changes";
    projectChanged(Dict) "Called every time the project is changed ... includes the project selection on launch"
    (info keys flameProjectName, shotgunProjectName, as in the hook templates); tk-flame's sg_project_hook
    handles appInitialized while an engine already runs (a project switch)."""
    import flame

    calls: List[Tuple[str, Any]] = []
    hooks = flame_session.load_hooks(write_hook(tmp_path, "comfy_project_hook", (
        "CALLS = []\n"
        "def project_changed_dict(info):\n    CALLS.append(('changed', dict(info)))\n"
        "def app_initialized(project_name):\n    CALLS.append(('initialized', project_name))\n")))
    lib = flame_session.workspace.create_library("Plates")
    flame.schedule_idle_event(lambda: calls.append(("idle", flame.projects.current_project.name)), 1)
    new = flame_session.switch_project("show_b")
    assert hooks.module.CALLS == [("changed", {"flameProjectName": "show_b", "shotgunProjectName": ""}),
                                  ("initialized", "show_b")]
    assert flame.projects.current_project is new and new.name == "show_b"
    assert [lib.name.get_value() for lib in new.current_workspace.libraries] == ["Default Library"]
    with pytest.raises(RuntimeError, match="deleted"):
        _ = lib.clips
    flame_session.pump_idle(seconds=1)
    assert calls == [("idle", "show_b")]  # idle events scheduled before the switch still run


def test_rescan_python_hooks_imports_the_hook_files_again_and_calls_nothing(flame_session, tmp_path):
    """AYON (api/lib.py) and pyflame rescan with ``flame.execute_shortcut("Rescan Python Hooks")``; hooks such as
    flameTimewarpML call ``app_initialized`` themselves at import time after a rescan, because Flame does not;
    already imported packages stay in sys.modules (embr's hook helpers: "re-reads hook files, but already-imported
    packages ... can stay cached")."""
    import flame

    write_hook(tmp_path, "comfy_rescan_helper", "STATE = {'imports': 0}\n")
    path = write_hook(tmp_path, "comfy_rescan_hook", (
        "import comfy_rescan_helper\ncomfy_rescan_helper.STATE['imports'] += 1\nLOADS = []\n"
        "def app_initialized(project_name):\n    LOADS.append(project_name)\n"))
    hooks = flame_session.load_hooks(path)
    first = hooks.module
    assert flame.execute_shortcut("Rescan Python Hooks") is True
    assert hooks.module is not first and sys.modules["comfy_rescan_hook"] is hooks.module
    assert hooks.module.LOADS == [] and first.LOADS == []  # app_initialized is not called
    assert sys.modules["comfy_rescan_helper"].STATE == {"imports": 2}  # the helper module stays: one object
    assert flame_session.rescans == 1
    flame_session.rescan_hooks()
    assert flame_session.rescans == 2 and not hooks.touched_flame_at_import


def test_inside_flame_sys_executable_is_flame_and_the_environment_flames(flame_session):
    """tk-flame passes Flame's Python to its engine (TOOLKIT_FLAME_PYTHON_BINARY = <root>/python/<version>/bin/python)
    because the process is Flame's; its bootstrap prepends <root>/flame_<v>/python to PYTHONPATH and
    <root>/python/<v>/lib, <root>/lib64/<v> to LD_LIBRARY_PATH. flameTimewarpML and Autodesk's export_selection.py
    use /opt/Autodesk/python/<version>/bin/python3."""
    import subprocess

    from tests.doubles.flame.harness import REAL_PYTHON

    assert sys.executable == str(flame_session.flame_executable) != REAL_PYTHON
    refused = subprocess.run([sys.executable, "-m", "flame_submitter.cli", "--version"], capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode != 0 and "not a Python" in refused.stderr
    root = str(flame_session.autodesk_root)
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == f"{root}/flame_{flame_session.version}/python"
    assert os.environ["LD_LIBRARY_PATH"].split(os.pathsep)[:2] == [f"{root}/python/{flame_session.version}/lib",
                                                                  f"{root}/lib64/{flame_session.version}"]
    ran = subprocess.run([str(flame_session.flame_python), "-c", "print('python')"], capture_output=True, text=True,
                         timeout=30)
    assert ran.stdout == "python\n"
    flame_session.close()
    assert sys.executable == REAL_PYTHON and root not in os.environ.get("LD_LIBRARY_PATH", "")
    assert root not in os.environ.get("PYTHONPATH", "")


@pytest.mark.parametrize(("version", "binding", "refused"), [("2024.2", "PySide2", "PySide6"),
                                                              ("2025.1", "PySide6", "PySide2")])
def test_flames_qt_binding_follows_its_version(flame_session_factory, version, binding, refused):
    """reference/flame.md and docs/architecture.md: 2023-2024 Python 3.9 + PySide2, 2025+ Python 3.11 + PySide6
    (pyflame: "PySide6 (Pyside2 no longer supported), Autodesk Flame: 2025+"). The other binding cannot be
    imported fresh into that Flame's process."""
    session = flame_session_factory(version=version)
    assert session.qt_binding == binding
    cached = [name for name in sys.modules if name.split(".")[0] == refused]
    saved = {name: sys.modules.pop(name) for name in cached}
    try:
        with pytest.raises(ImportError, match=f"Flame {version} runs {binding}"):
            __import__(refused)
    finally:
        sys.modules.update(saved)
