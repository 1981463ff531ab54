"""Starting, stopping and attaching to ComfyUI: against the double's fake checkout and a real ComfyUI."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import ComfyUIStartError, ComfyUIUnreachable
from farm_plugin.comfyui.server import ComfyUIServer, ServerConfig, attach
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir
from tests.real_comfyui import REAL_SKIP_REASON, real_comfyui_config


def fake_config(tmp_path: Path, **overrides) -> ServerConfig:
    values = dict(comfyui_dir=make_fake_comfyui_dir(tmp_path / "ComfyUI"), python=sys.executable,
                  port=free_port(), scratch_dir=tmp_path / "scratch", startup_timeout_s=20)
    values.update(overrides)
    return ServerConfig(**values)


def environ_of(pid: int) -> dict:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_start_binds_loopback_with_its_gpu_and_folders_then_stops_without_orphans(tmp_path: Path) -> None:
    config = fake_config(tmp_path, gpu_devices="1", extra_args=("--lowvram",), extra_env={"STUDIO": "x"})
    server = ComfyUIServer(config)
    server.start()
    try:
        assert server.url == f"http://127.0.0.1:{config.port}"
        argv = ComfyUIClient(server.url).system_stats()["system"]["argv"]
        assert argv[argv.index("--listen") + 1] == "127.0.0.1"
        assert argv[argv.index("--port") + 1] == str(config.port)
        assert argv[argv.index("--input-directory") + 1] == str(tmp_path / "scratch" / "input")
        assert "--lowvram" in argv
        env = environ_of(server.process.pid)
        assert (env["CUDA_VISIBLE_DEVICES"], env["STUDIO"]) == ("1", "x")
        assert all((tmp_path / "scratch" / d).is_dir() for d in ("input", "output", "temp"))
        pgid = server.process.pid
    finally:
        server.stop()
    assert server.process is None
    assert group_is_gone(pgid)
    assert not ComfyUIClient(f"http://127.0.0.1:{config.port}").is_healthy(timeout_s=1)


def test_slow_start_within_the_timeout_is_waited_for(tmp_path: Path) -> None:
    config = fake_config(tmp_path, extra_env={"COMFYFARM_FAKE_FAULTS": '{"startup_delay_s": 1.5}'})
    with ComfyUIServer(config) as server:
        assert ComfyUIClient(server.url).is_healthy()


def test_start_timeout_stops_the_process_and_shows_its_log(tmp_path: Path) -> None:
    config = fake_config(tmp_path, startup_timeout_s=1,
                         extra_env={"COMFYFARM_FAKE_FAULTS": '{"startup_delay_s": 30}'})
    server = ComfyUIServer(config)
    with pytest.raises(ComfyUIStartError) as caught:
        server.start()
    message = str(caught.value)
    assert message.startswith(f"ComfyUI did not answer on http://127.0.0.1:{config.port} within 1 s: raise the "
                              "start-up timeout, or see why in its log")
    assert "last lines of ComfyUI's log:" in message
    assert server.process is None


def test_refusing_to_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    config = fake_config(tmp_path, extra_env={
        "COMFYFARM_FAKE_FAULTS": '{"refuse_start": "RuntimeError: Found no NVIDIA driver on your system."}'})
    with pytest.raises(ComfyUIStartError) as caught:
        ComfyUIServer(config).start()
    message = str(caught.value)
    assert message.startswith(f"no usable GPU driver: ComfyUI exited with code 1 while starting on port {config.port}: "
                              "install or repair the NVIDIA driver")  # named first (gpu_failures), with the fix
    assert "RuntimeError: Found no NVIDIA driver on your system." in message


def test_port_in_use_is_an_error_or_the_next_free_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ComfyUIStartError) as caught:
            ComfyUIServer(fake_config(tmp_path, port=port)).start()
        assert str(caught.value) == (
            f"port {port} on 127.0.0.1 is already in use (another ComfyUI, or another Worker's GPU?): stop what "
            "holds it, choose another base port, or allow the next free port")
        with ComfyUIServer(fake_config(tmp_path, port=port, port_in_use="next")) as server:
            assert server.port > port
            assert ComfyUIClient(server.url).is_healthy()


def test_not_a_comfyui_folder(tmp_path: Path) -> None:
    with pytest.raises(ComfyUIStartError, match="is not a ComfyUI folder \\(no main.py\\)"):
        ComfyUIServer(ServerConfig(comfyui_dir=tmp_path, scratch_dir=tmp_path / "s")).start()


def test_restart_after_a_crash_keeps_the_port(tmp_path: Path) -> None:
    with ComfyUIServer(fake_config(tmp_path)) as server:
        port, pid = server.port, server.process.pid
        os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        assert not server.is_running()
        server.restart()
        assert (server.port, server.is_running()) == (port, True)
        assert server.process.pid != pid
        assert server.starts == 2


def test_attach_checks_that_the_server_answers(fake_comfyui) -> None:
    attached = attach(fake_comfyui.url, timeout_s=5)
    assert attached.client().is_healthy()
    attached.stop()  # not ours: still running
    assert ComfyUIClient(fake_comfyui.url).is_healthy()
    started = time.monotonic()
    with pytest.raises(ComfyUIUnreachable, match="no answer on /system_stats within 1 s"):
        attach(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    assert time.monotonic() - started < 5


def test_real_comfyui_starts_from_its_folder_and_stops_cleanly(tmp_path: Path) -> None:
    config = real_comfyui_config(tmp_path / "scratch", port=free_port())
    if config is None:
        pytest.skip(REAL_SKIP_REASON)
    server = ComfyUIServer(config)
    server.start()
    try:
        stats = ComfyUIClient(server.url).system_stats()
        assert stats["system"]["comfyui_version"]
        assert str(tmp_path / "scratch" / "output") in stats["system"]["argv"]
        pgid = server.process.pid
    finally:
        server.stop()
    assert group_is_gone(pgid)
