"""The plugin's own helpers (GPU choice, ports, task frames), loaded from the real plugin file."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.doubles.deadline_runtime import plugin_module

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin():
    with plugin_module(REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.py") as module:
        yield module


@pytest.mark.parametrize(
    ("override", "affinity", "thread", "per_task", "explicit", "expected"),
    [
        (False, [], 0, 1, [], [0]),
        (False, [], 1, 1, [], [1]),
        (False, [], 1, 2, [], [2, 3]),
        (False, [], 0, 0, [], []),               # no GPU requested: ComfyUI sees all of them
        (False, [], 3, 1, [5, 6], [5, 6]),       # explicit devices win
        (True, [2, 3], 0, 1, [], [2]),
        (True, [2, 3], 1, 1, [], [3]),
        (True, [2, 3], 2, 1, [], [2]),           # wraps around the affinity
        (True, [0, 1, 2, 3], 1, 2, [], [2, 3]),
        (True, [2, 3], 0, 0, [], [2, 3]),
        (True, [2, 3], 0, 1, [3], [3]),
    ],
)
def test_gpus_the_redshift_way(plugin, override, affinity, thread, per_task, explicit, expected) -> None:
    gpus, warnings = plugin.select_gpus(override, affinity, thread, per_task, explicit)
    assert gpus == expected and warnings == []


def test_explicit_gpus_outside_the_affinity_are_dropped_with_a_warning(plugin) -> None:
    gpus, warnings = plugin.select_gpus(True, [2, 3], 0, 1, [1, 3])
    assert gpus == [3]
    assert warnings == ["GPU(s) [1] are outside this Worker's GPU affinity [2, 3]: not used"]


def test_devices_text(plugin) -> None:
    assert plugin.parse_devices(" 0, 2;3 ") == [0, 2, 3]
    assert plugin.parse_devices("") == []
    with pytest.raises(ValueError, match="SelectGPUDevices: 'gpu1' is not a GPU index: write indices like 0,1"):
        plugin.parse_devices("gpu1")


def test_port_is_base_plus_gpu_or_the_next_free(plugin) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert plugin.choose_port(port - 2, [2], 0) == port + 1
        assert plugin.choose_port(port - 2, [], 2) == port + 1
    assert plugin.choose_port(port - 2, [1], 0) == port - 1


def test_task_frames_and_their_text(plugin) -> None:
    job_frames = list(range(1001, 1101, 10)) + [1105]
    assert plugin.frames_of_task(job_frames, 1001, 1041) == [1001, 1011, 1021, 1031, 1041]
    assert plugin.frames_of_task(list(range(1, 21)), 5, 8) == [5, 6, 7, 8]
    assert plugin.frame_list_text([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert plugin.frame_path("/out/x.####.exr", 12) == "/out/x.0012.exr"
    assert plugin.frame_path("/out/x.%05d.exr", 12) == "/out/x.00012.exr"
    assert plugin.frame_path("/out/x.$F3.exr", 12) == "/out/x.012.exr"
    assert plugin.quote("/a b/c") == '"/a b/c"' and plugin.quote("plain") == "plain"
