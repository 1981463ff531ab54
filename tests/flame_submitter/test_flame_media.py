"""Selections in the Flame double → the frames the farm processes: direct paths, exports, and refusals."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from farm_plugin.frames.image_io import probe
from flame_submitter.flame.media import SelectionError, describe, direct_pattern, export_source, preset_version


def shared_under(root: Path):
    return lambda path: str(path).startswith(str(root))


def test_a_clip_on_shared_storage_is_used_as_it_is(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1025), source_dir=tmp_path / "shared",
                                  timecode="01:00:00:00")
    (source,) = describe((clip,), flame_session.flame)
    assert source.name == "sh010_plate" and source.frames == tuple(range(1001, 1025))
    assert source.pattern == str(tmp_path / "shared" / "sh010_plate.####.exr")
    assert (source.width, source.height, source.fps) == (64, 36, 24.0)
    assert direct_pattern(source, shared_under(tmp_path / "shared")) == source.pattern
    assert direct_pattern(source, shared_under(tmp_path / "elsewhere")) is None  # the farm cannot read it
    assert flame_session.exports == []


def test_marks_narrow_the_frames(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1025), source_dir=tmp_path / "shared")
    clip.in_mark = 5
    clip.out_mark = 11  # exclusive
    (source,) = describe((clip,), flame_session.flame)
    assert source.frames == tuple(range(1005, 1011)) and source.marks == (5, 11)
    (whole,) = describe((clip,), flame_session.flame, use_marks=False)
    assert whole.frames == tuple(range(1001, 1025))


def test_media_inside_flame_is_exported_as_exr_numbered_from_the_start_frame(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh020_plate", frames=range(1001, 1013), timecode="01:00:00:00")
    (source,) = describe((clip,), flame_session.flame)
    assert source.needs_export
    pattern = export_source(flame_session.flame, source, tmp_path / "jobs" / "j1" / "input")
    assert pattern == str(tmp_path / "jobs" / "j1" / "input" / "sh020_plate.####.exr")
    written = sorted(p.name for p in (tmp_path / "jobs" / "j1" / "input").glob("*.exr"))
    assert written == [f"sh020_plate.{f}.exr" for f in range(1001, 1013)]
    info = probe(tmp_path / "jobs" / "j1" / "input" / "sh020_plate.1001.exr")
    assert (info.format, info.pixel_type) == ("openexr", "half")
    (record,) = flame_session.exports
    assert record.foreground is True


def test_an_export_between_marks_cleans_up_its_duplicate(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh030_plate", frames=range(1001, 1021))
    clip.in_mark = 3
    clip.out_mark = 7
    (source,) = describe((clip,), flame_session.flame)
    export_source(flame_session.flame, source, tmp_path / "input")
    assert sorted(p.name for p in (tmp_path / "input").glob("*.exr")) == [f"sh030_plate.{f}.exr"
                                                                         for f in range(1003, 1007)]
    assert [c.name.get_value() for c in lib.clips] == ["sh030_plate"]  # the duplicate is gone


def test_gaps_unrendered_fx_and_libraries_are_refused_with_the_fix(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Edits")
    a = flame_session.add_clip(lib, "a", frames=range(1, 11))
    b = flame_session.add_clip(lib, "b", frames=range(1, 11))
    gappy = flame_session.add_sequence(lib, "sh040_edit", [a, 5, b])
    with pytest.raises(SelectionError, match=r"'sh040_edit' has 1 gap\(s\) in its timeline: fill them"):
        describe((gappy,), flame_session.flame)
    fx = flame_session.add_clip(lib, "sh050_plate", frames=range(1, 11))
    flame_session.add_effect(fx, rendered=False)
    with pytest.raises(SelectionError, match="'sh050_plate' has unrendered Timeline FX: render them first"):
        describe((fx,), flame_session.flame)
    big = flame_session.add_clip(lib, "big", frames=range(1, 11), width=128, height=72)
    mixed = flame_session.add_sequence(lib, "sh060_edit", [a, big])
    with pytest.raises(SelectionError, match=r"'sh060_edit' mixes resolutions \(64x36, 128x72\)"):
        describe((mixed,), flame_session.flame)
    with pytest.raises(SelectionError, match="^nothing to send: select clips or sequences in the Media Panel, or "
                                             "segments in the timeline$"):
        describe((lib,), flame_session.flame)


@pytest.mark.parametrize(("version", "expected"), [("2024.2", 13), ("2099.1", 15), ("", 15), ("Flame 2025.2", 15)])
def test_without_a_factory_preset_the_version_follows_the_year_or_the_newest(version: str, expected: int) -> None:
    """No ``PyExporter`` (so no factory preset to read): the preset version comes from Flame's year, and a version
    string that does not start with one gives the newest instead of an error."""
    assert preset_version(SimpleNamespace(get_version=lambda: version)) == expected


def test_a_marked_clip_keeps_its_whole_range_and_its_timecode(flame_session, tmp_path: Path) -> None:
    """Flame's ``duration`` counts between the marks: "all frames" is still every frame of the clip, the marks
    stay where the artist set them, and the timecode comes from ``start_time`` (a PyAttribute)."""
    from flame_submitter.flame.submit import clip_summary

    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1049), source_dir=tmp_path / "shared",
                                  timecode="01:00:00:00")
    clip.in_mark = 5
    clip.out_mark = 11
    assert clip.duration.frame == 6
    (whole,) = describe((clip,), flame_session.flame, use_marks=False)
    assert whole.frames == tuple(range(1001, 1049)) and whole.clip_marks == (5, 11)
    assert whole.timecode == "01:00:00+00"
    summary = clip_summary(whole)
    assert (summary.first_frame, summary.last_frame, summary.mark_in, summary.mark_out) == (1001, 1048, 1005, 1010)
    clip.out_mark = None  # only an in mark: from it to the end
    (tail,) = describe((clip,), flame_session.flame)
    assert tail.frames == tuple(range(1005, 1049)) and tail.marks == (5, 49)


def test_a_marked_sequence_keeps_its_whole_length(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Edits")
    a = flame_session.add_clip(lib, "a", frames=range(1, 11))
    b = flame_session.add_clip(lib, "b", frames=range(1, 9))
    edit = flame_session.add_sequence(lib, "sh070_edit", [a, b], timecode="01:00:00:00")
    edit.in_mark = 3
    edit.out_mark = 9
    (whole,) = describe((edit,), flame_session.flame, use_marks=False)
    assert len(whole.frames) == 18 and whole.clip_marks == (3, 9) and whole.timecode == "01:00:00+00"
    (marked,) = describe((edit,), flame_session.flame)
    assert len(marked.frames) == 6
