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


def test_port_is_base_plus_gpu_or_the_next_free(plugin, monkeypatch) -> None:
    taken = {8190}  # which ports are in use is the machine's business: here it is said, not raced for
    monkeypatch.setattr(plugin, "port_is_free", lambda port: port not in taken)
    assert plugin.choose_port(8188, [2], 0) == 8191
    assert plugin.choose_port(8188, [], 2) == 8191
    assert plugin.choose_port(8188, [1], 0) == 8189


def test_a_port_in_use_is_not_free(plugin) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert not plugin.port_is_free(port)
    assert plugin.port_is_free(port)


def test_task_frames_and_their_text(plugin) -> None:
    job_frames = list(range(1001, 1101, 10)) + [1105]
    assert plugin.frames_of_task(job_frames, 1001, 1041) == [1001, 1011, 1021, 1031, 1041]
    assert plugin.frames_of_task(list(range(1, 21)), 5, 8) == [5, 6, 7, 8]
    assert plugin.frame_list_text([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert plugin.frame_path("/out/x.####.exr", 12) == "/out/x.0012.exr"
    assert plugin.frame_path("/out/x.%05d.exr", 12) == "/out/x.00012.exr"
    assert plugin.frame_path("/out/x.$F3.exr", 12) == "/out/x.012.exr"
    assert plugin.quote("/a b/c") == '"/a b/c"' and plugin.quote("plain") == "plain"


@pytest.mark.parametrize("pattern", ["/o/sh010.####.exr", "/o/sh010_####.exr", "/o/sh010-%04d.exr", "/o/####.exr",
                                     "/o/sh.010.$F4.exr", "/o/v2/sh010####.exr", "/o/_####.exr"])
def test_pass_patterns_are_farm_plugins(plugin, pattern: str) -> None:
    """The plugin's copy of FramePattern.for_pass (Deadline's Python cannot import farm_plugin)."""
    from farm_plugin.frames.pattern import FramePattern

    for name in ("depth", "matte"):
        expected = FramePattern.parse(pattern).for_pass(name)
        assert [plugin.frame_path(plugin.pass_pattern(pattern, name), f) for f in (7, 1001)] == [
            expected.path(7), expected.path(1001)]


def test_pass_patterns_examples(plugin) -> None:
    assert plugin.pass_pattern("/o/sh010.####.exr", "depth") == "/o/sh010_depth.####.exr"
    assert plugin.pass_pattern("/o/sh010_####.exr", "depth") == "/o/sh010_depth_####.exr"
    assert plugin.pass_pattern("/o/####.exr", "depth") == "/o/depth.####.exr"


def test_output_patterns_one_per_pass_of_a_several_pass_job(plugin) -> None:
    record = {"workflow": {"passes": [{"name": "beauty", "node": "9"}, {"name": "depth", "node": "12"}]}}
    assert plugin.output_patterns(record, "/o/sh010.####.exr") == ["/o/sh010_beauty.####.exr",
                                                                  "/o/sh010_depth.####.exr"]
    one = {"workflow": {"passes": [{"name": "image", "node": "9"}]}}
    assert plugin.output_patterns(one, "/o/sh010.####.exr") == ["/o/sh010.####.exr"]
    older = {"workflow": {"output_node": "9"}}  # schema 1: no passes
    assert plugin.output_patterns(older, "/o/sh010.####.exr") == ["/o/sh010.####.exr"]


@pytest.mark.parametrize("ratio", [1, 2, 3, 0.5, 1 / 3])
def test_task_output_frames_are_retimes(plugin, ratio: float) -> None:
    """The plugin's copy of Retime.outputs_of: the output frames a task's source frames own."""
    from farm_plugin.frames.retime import Retime

    source = list(range(1001, 1011)) + list(range(1020, 1026))  # a list with a hole
    record = {"source": {"frames": source}, "workflow": {"sequence": {"context": 8, "overlap": 1, "ratio": ratio}}}
    retime = Retime(tuple(source), ratio)
    for task in (source[:4], source[4:11], source[11:]):
        assert plugin.task_output_frames(record, task) == retime.output_frames(task)
    assert plugin.task_output_frames({"source": {"frames": source}, "workflow": {}}, [1001, 1002]) == [1001, 1002]


def test_child_environment_scrubs_deadlines_folders_and_exempts_loopback_from_the_proxy(plugin) -> None:
    worker = {
        "LD_LIBRARY_PATH": "/opt/Thinkbox/Deadline10/bin:/opt/studio/lib::/opt/Thinkbox/Deadline10/lib",
        "DYLD_LIBRARY_PATH": "/Applications/Thinkbox/Deadline10/Resources/Libraries",
        "http_proxy": "http://proxy.studio.internal:3128",
        "no_proxy": ".studio.internal, render01",
        "PATH": "/usr/bin",
    }
    assert plugin.child_environment(worker) == {
        "LD_LIBRARY_PATH": "/opt/studio/lib",
        "DYLD_LIBRARY_PATH": "",
        "no_proxy": ".studio.internal,render01,127.0.0.1,localhost,::1",
        "NO_PROXY": ".studio.internal,render01,127.0.0.1,localhost,::1",
    }
    assert plugin.child_environment({"NO_PROXY": "localhost"}, ["comfy.studio.internal"])["no_proxy"] == (
        "localhost,127.0.0.1,::1,comfy.studio.internal")
    assert "LD_LIBRARY_PATH" not in plugin.child_environment({"LD_LIBRARY_PATH": "/opt/studio/lib"})
    assert "LD_LIBRARY_PATH" not in plugin.child_environment(worker, windows=True)


@pytest.mark.parametrize(("configured", "environ", "platform", "expected"), [
    ("/srv/state", {"COMFYFARM_SERVICE_DIR": "/x"}, "linux", "/srv/state"),
    ("", {"COMFYFARM_SERVICE_DIR": "/x"}, "linux", "/x"),
    ("", {}, "linux", "/home/w/.local/state/comfyfarm/service"),
    ("", {"XDG_STATE_HOME": "/var/w"}, "linux", "/var/w/comfyfarm/service"),
    ("", {"LOCALAPPDATA": "C:/Users/w/AppData/Local"}, "win32", "C:/Users/w/AppData/Local/comfyfarm/service"),
    ("", {}, "darwin", "/home/w/Library/Application Support/comfyfarm/service"),
])
def test_the_plugin_looks_for_the_service_where_it_writes_its_state(plugin, monkeypatch, configured, environ,
                                                                     platform, expected) -> None:
    """The plugin's copy of farm_plugin.service.state.default_state_dir (it imports nothing of comfyfarm)."""
    from farm_plugin.service import state

    assert plugin.service_state_dir(configured, environ, platform, "/home/w") == Path(expected)
    if configured:
        return
    monkeypatch.setattr(state.sys, "platform", platform)
    monkeypatch.setattr(state.Path, "home", classmethod(lambda cls: Path("/home/w")))
    for name in ("COMFYFARM_SERVICE_DIR", "XDG_STATE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert state.default_state_dir() == Path(expected)


def test_the_plugins_gpu_rules_are_the_runtimes(plugin) -> None:
    """The plugin's copy of farm_plugin.comfyui.gpu_failures' log rules (it imports nothing of comfyfarm)."""
    from farm_plugin.comfyui import gpu_failures

    runtime = [(gpu_failures.OUT_OF_MEMORY.headline, gpu_failures._OUT_OF_MEMORY_TEXTS, gpu_failures.OUT_OF_MEMORY.fix),
               (gpu_failures.LOST.headline, gpu_failures._LOST_TEXTS, gpu_failures.LOST.fix),
               (gpu_failures.DRIVER.headline, gpu_failures._DRIVER_TEXTS, gpu_failures.DRIVER.fix)]
    assert list(plugin.GPU_LOG_CAUSES) == runtime
    assert (gpu_failures.KILLED_OUTRIGHT.headline, gpu_failures.KILLED_OUTRIGHT.fix) == plugin.KILLED_CAUSE
    tail = "last lines of ComfyUI's log:\n  RuntimeError: Found no NVIDIA driver on your system."
    assert plugin.gpu_cause(tail, "ComfyUI exited while starting at http://127.0.0.1:8188") == (
        f"no usable GPU driver: ComfyUI exited while starting at http://127.0.0.1:8188: {gpu_failures.DRIVER.fix}")
    assert plugin.gpu_cause("last lines of ComfyUI's log:\n  got prompt", "it stopped") == "it stopped"
