"""Timeline segments in the Flame double → the frames the farm processes: a segment's source media between
its source in and out, straight from disk or exported through a matched-out clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_submitter.flame.media import SelectionError, describe, direct_pattern, export_source
from flame_submitter.flame.submit import clip_summary


def shared_under(root: Path):
    return lambda path: str(path).startswith(str(root))


def edit(session, tmp_path: Path, *, on_disk: bool = True):
    """sh010 (frames 1001-1048) used from 1011 for 20 frames, then sh020 (2001-2024) whole: a trimmed edit."""
    lib = session.workspace.create_library("Edit")
    plates = tmp_path / "shared" / "plates" if on_disk else None
    a = session.add_clip(lib, "sh010_plate", frames=range(1001, 1049), source_dir=plates, timecode="01:00:00:00")
    b = session.add_clip(lib, "sh020_plate", frames=range(2001, 2025), source_dir=plates, timecode="02:00:00:00")
    sequence = session.add_sequence(lib, "cut_v1", [(a, 10, 20), b], timecode="10:00:00:00")
    first, second = sequence.versions[0].tracks[0].segments
    return lib, sequence, first, second


def test_a_segment_on_shared_storage_is_its_source_frames(flame_session, tmp_path: Path) -> None:
    _, sequence, first, second = edit(flame_session, tmp_path)
    flame_session.select_segments(first, second)
    assert flame_session.flame.timeline.clip is sequence
    one, two = describe((first, second), flame_session.flame)
    assert one.name == "sh010_plate" and one.frames == tuple(range(1011, 1031))
    assert one.pattern == str(tmp_path / "shared" / "plates" / "sh010_plate.####.exr")
    assert (one.width, one.height, one.fps, one.bit_depth) == (64, 36, 24.0, 16)
    assert one.timecode == "01:00:00+10"  # the source's timecode at the source in
    assert one.start_frame == 1011 and one.colour_space == "scene-linear Rec 709/sRGB"
    assert one.uid == first.source_uid and one.uid
    assert direct_pattern(one, shared_under(tmp_path / "shared")) == one.pattern
    assert two.frames == tuple(range(2001, 2025)) and two.timecode == "02:00:00+00"
    assert flame_session.exports == []


def test_marks_in_the_sequence_narrow_the_segment(flame_session, tmp_path: Path) -> None:
    _, sequence, first, second = edit(flame_session, tmp_path)
    sequence.in_mark = 16  # the cut's frames 16-25 (out exclusive): the first segment holds frames 1-20
    sequence.out_mark = 26
    (one,) = describe((first,), flame_session.flame)
    assert one.frames == tuple(range(1026, 1031)) and one.marks == (16, 21)
    (whole,) = describe((first,), flame_session.flame, use_marks=False)
    assert whole.frames == tuple(range(1011, 1031))
    summary = clip_summary(whole)
    assert (summary.first_frame, summary.last_frame, summary.mark_in, summary.mark_out) == (1011, 1030, 1026, 1030)
    (two,) = describe((second,), flame_session.flame)
    assert two.frames == tuple(range(2001, 2006))  # the sequence's frames 21-25


def test_a_segment_inside_flame_is_exported_through_a_matched_clip(flame_session, tmp_path: Path) -> None:
    lib, _, first, _ = edit(flame_session, tmp_path, on_disk=False)
    (source,) = describe((first,), flame_session.flame)
    assert source.needs_export and source.frames == tuple(range(1011, 1031))
    folder = tmp_path / "jobs" / "input" / "sh010"
    pattern = export_source(flame_session.flame, source, folder)
    assert pattern == str(folder / "sh010_plate.####.exr")
    written = sorted(folder.glob("*.exr"))
    assert [p.name for p in written] == [f"sh010_plate.{n}.exr" for n in range(1011, 1031)]
    assert [flame_session.frame_tag(p) for p in written] == [n % 1000 for n in range(1011, 1031)]  # those frames
    (record,) = flame_session.exports
    assert record.foreground and record.export_between_marks
    assert sorted(c.name.get_value() for c in lib.clips) == ["sh010_plate", "sh020_plate"]  # the match is gone
    assert [s.name.get_value() for s in lib.sequences] == ["cut_v1"]


def test_a_chosen_part_of_a_segment_is_exported_with_its_source_numbers(flame_session, tmp_path: Path) -> None:
    import dataclasses

    _, _, first, _ = edit(flame_session, tmp_path, on_disk=False)
    (source,) = describe((first,), flame_session.flame)
    part = dataclasses.replace(source, frames=tuple(range(1015, 1019)), marks=(5, 9))
    export_source(flame_session.flame, part, tmp_path / "part")
    written = sorted((tmp_path / "part").glob("*.exr"))
    assert [flame_session.frame_tag(p) for p in written] == [15, 16, 17, 18]
    assert [p.name for p in written] == [f"sh010_plate.{n}.exr" for n in range(1015, 1019)]


def test_plates_the_farm_cannot_read_are_exported(flame_session, tmp_path: Path) -> None:
    _, _, first, _ = edit(flame_session, tmp_path)
    (source,) = describe((first,), flame_session.flame)
    assert direct_pattern(source, shared_under(tmp_path / "elsewhere")) is None
    export_source(flame_session.flame, source, tmp_path / "exported")
    written = sorted((tmp_path / "exported").glob("*.exr"))
    assert len(written) == 20 and flame_session.frame_tag(written[0]) == 11


def test_timeline_fx_are_not_in_what_the_farm_gets(flame_session, tmp_path: Path) -> None:
    _, _, first, _ = edit(flame_session, tmp_path)
    flame_session.add_effect(first, "Colour Correct", rendered=False)
    (source,) = describe((first,), flame_session.flame)  # the source media, as Match Out gives it
    assert source.pattern is not None and source.frames[0] == 1011


def test_gaps_and_segments_that_cannot_be_matched_say_so(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Edit")
    a = flame_session.add_clip(lib, "sh010_plate", frames=range(1, 11))
    sequence = flame_session.add_sequence(lib, "gappy", [a, 5])
    clip_segment, gap = sequence.versions[0].tracks[0].segments
    with pytest.raises(SelectionError, match="^'segment' is a gap in the timeline: select segments with media$"):
        describe((gap,), flame_session.flame)
    shared = flame_session.project.create_shared_library("Shared Edits")  # locked unless acquired
    shared.acquire_exclusive_access()
    b = flame_session.add_clip(shared, "sh030_plate", frames=range(1, 11))
    locked = flame_session.add_sequence(shared, "locked_cut", [b])
    shared.release_exclusive_access()
    (source,) = describe((locked.versions[0].tracks[0].segments[0],), flame_session.flame)
    with pytest.raises(SelectionError, match="Flame could not match out 'sh030_plate' next to its sequence .*select "
                                             "its source clip in the Media Panel instead"):
        export_source(flame_session.flame, source, tmp_path / "never")


def test_two_segments_of_one_source_get_two_names(flame_session, tmp_path: Path) -> None:
    lib = flame_session.workspace.create_library("Edit")
    a = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1049))
    sequence = flame_session.add_sequence(lib, "cut", [(a, 0, 10), (a, 20, 10)])
    first, second = sequence.versions[0].tracks[0].segments
    names = [s.name for s in describe((first, second), flame_session.flame)]
    assert names == ["sh010_plate", "sh010_plate_2"]
