from __future__ import annotations

from farm_plugin.runner.units import Unit, plan_units, window_budget
from farm_plugin.workflow.package import SequenceSettings

CLIP = list(range(1001, 1021))


def test_per_frame_is_one_prompt_per_frame() -> None:
    assert plan_units([5, 6], "per_frame", None, range(1, 10)) == [Unit((5,), (5,), (5,), (5,)),
                                                                   Unit((6,), (6,), (6,), (6,))]


def test_sequence_windows_respect_context_and_take_clamped_handles() -> None:
    settings = SequenceSettings(context_frames=6, overlap_frames=1)
    units = plan_units(CLIP[:9], "sequence", settings, CLIP)
    # 9 frames, 4 kept per 6-frame window: three windows of nearly equal length, not 4 + 4 + 1
    assert [u.frames for u in units] == [(1001, 1002, 1003), (1004, 1005, 1006), (1007, 1008, 1009)]
    assert [u.window for u in units] == [
        (1001, 1002, 1003, 1004),  # clamped at the clip's start
        (1003, 1004, 1005, 1006, 1007),
        (1006, 1007, 1008, 1009, 1010),  # the right handle comes from the next chunk's frames
    ]
    assert all(len(u.window) <= settings.context_frames for u in units)
    assert [u.outputs for u in units] == [u.frames for u in units]
    assert all(u.fade_in == () and u.handoff == () and u.boundary is None for u in units)  # blend: none


def test_the_plan_of_a_chunk_does_not_depend_on_the_other_chunks() -> None:
    settings = SequenceSettings(context_frames=8, overlap_frames=2, blend="crossfade")
    whole = plan_units(CLIP[4:12], "sequence", settings, CLIP)
    assert len(whole) == 2
    assert whole == plan_units(CLIP[4:12], "sequence", settings, CLIP)


def test_crossfade_fades_in_the_first_overlap_frames_after_every_edge() -> None:
    settings = SequenceSettings(context_frames=8, overlap_frames=2, blend="crossfade")
    first_chunk = plan_units(CLIP[:8], "sequence", settings, CLIP)
    second_chunk = plan_units(CLIP[8:16], "sequence", settings, CLIP)
    assert [u.frames for u in first_chunk] == [tuple(range(1001, 1005)), tuple(range(1005, 1009))]
    head, tail = first_chunk
    assert head.boundary is None and head.fade_in == ()  # the clip's start: nothing before
    assert head.handoff == (1005, 1006)
    assert tail.boundary == 1005 and tail.fade_in == (1005, 1006) and tail.direct == (1007, 1008)
    assert tail.handoff == (1009, 1010)  # the next chunk's first frames, computed here for its fade
    nxt = second_chunk[0]
    assert nxt.boundary == 1009 and nxt.fade_in == (1009, 1010)
    assert set(nxt.fade_in) <= set(tail.window)


def test_a_chunk_shorter_than_the_overlap_is_all_faded_in() -> None:
    settings = SequenceSettings(context_frames=12, overlap_frames=4, blend="crossfade")
    (short,) = plan_units(CLIP[8:10], "sequence", settings, CLIP)
    assert short.fade_in == (1009, 1010) and short.direct == ()
    assert short.handoff == (1011, 1012, 1013, 1014)


def test_interpolation_windows_take_the_next_chunks_first_frame_and_number_the_in_betweens() -> None:
    settings = SequenceSettings(context_frames=5, overlap_frames=0, ratio=2.0)
    assert window_budget(settings) == 4
    chunk = plan_units(CLIP[:4], "sequence", settings, CLIP)
    assert [u.window for u in chunk] == [(1001, 1002, 1003, 1004, 1005)]
    (unit,) = chunk
    assert unit.results == tuple(range(1001, 1010))  # (5 - 1) x 2 + 1 images
    assert unit.outputs == tuple(range(1001, 1009))  # 1009 is source frame 1005's: the next chunk writes it
    last = plan_units(CLIP[16:], "sequence", settings, CLIP)
    assert last[-1].window[-1] == 1020 and last[-1].outputs[-1] == 1001 + 19 * 2  # nothing after the last


def test_4x_interpolation_numbering() -> None:
    settings = SequenceSettings(context_frames=3, overlap_frames=0, ratio=4.0)
    units = plan_units(CLIP[:5], "sequence", settings, CLIP[:5])
    assert [u.window for u in units] == [(1001, 1002, 1003), (1003, 1004, 1005)]  # 1005 rides along
    assert [u.outputs for u in units] == [tuple(range(1001, 1009)), tuple(range(1009, 1018))]
    assert units[1].results == tuple(range(1009, 1018))
    (alone,) = plan_units(CLIP[4:5], "sequence", settings, CLIP[:5])  # a chunk of the last frame only
    assert alone.window == (1004, 1005) and alone.outputs == (1017,)


def test_decimation_windows_start_on_a_kept_frame() -> None:
    settings = SequenceSettings(context_frames=6, overlap_frames=0, ratio=0.5)
    units = plan_units(CLIP[3:9], "sequence", settings, CLIP)
    assert all((CLIP.index(u.window[0])) % 2 == 0 for u in units)
    assert [o for u in units for o in u.outputs] == [1003, 1004, 1005]  # sources 1005, 1007, 1009 (positions 4, 6, 8)
    for unit in units:
        assert len(unit.results) == len(range(0, len(unit.window), 2))
