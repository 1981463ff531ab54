from __future__ import annotations

import pytest

from farm_plugin.runner.units import Unit, plan_units
from farm_plugin.workflow.package import SequenceSettings


def test_per_frame_is_one_prompt_per_frame() -> None:
    assert plan_units([5, 6], "per_frame", None, range(1, 10)) == [Unit((5,), (5,)), Unit((6,), (6,))]


def test_sequence_windows_respect_context_and_take_clamped_handles() -> None:
    clip = list(range(1001, 1021))
    settings = SequenceSettings(context_frames=6, overlap_frames=1)
    units = plan_units(clip[:9], "sequence", settings, clip)
    assert [u.frames for u in units] == [(1001, 1002, 1003, 1004), (1005, 1006, 1007, 1008), (1009,)]
    assert [u.window for u in units] == [
        (1001, 1002, 1003, 1004, 1005),          # clamped at the clip's start
        (1004, 1005, 1006, 1007, 1008, 1009),
        (1008, 1009, 1010),
    ]
    assert all(len(u.window) <= settings.context_frames for u in units)


def test_frame_count_changes_are_refused_for_now() -> None:
    with pytest.raises(NotImplementedError, match="ratio 2"):
        plan_units([1], "sequence", SequenceSettings(context_frames=4, ratio=2.0), [1])
