"""GPU failures named with their fix: out of memory, a lost GPU, no driver, a ComfyUI killed outright.

The ComfyUI double raises the exceptions with the texts PyTorch and CUDA give (torch's OutOfMemoryError, CUDA
runtime error strings as cudaGetErrorString returns them) through ComfyUI's own ``execution_error`` (the OOM
tips are ComfyUI 0.3.64's execution.py), or kills itself with SIGKILL, as the kernel's out-of-memory killer
does; the chunk's error (what Deadline's error report shows) names the cause first and ends with the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from farm_plugin.comfyui.errors import ComfyUIStartError
from farm_plugin.comfyui.gpu_failures import (
    DRIVER,
    KILLED_OUTRIGHT,
    LOST,
    OUT_OF_MEMORY,
    classify_error,
    classify_exit,
    classify_log,
)
from farm_plugin.comfyui.server import ComfyUIServer, ExternalServer, ServerConfig
from farm_plugin.runner.chunk import ChunkFailed, ChunkRunner
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir

from .conftest import FRAMES, make_record, write_plate

OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.65 GiB of which "
               "1.12 GiB is free. Including non-PyTorch memory, this process has 22.51 GiB memory in use.")
ILLEGAL_ACCESS = ("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be "
                  "asynchronously reported at some other API call, so the stacktrace below might be incorrect.")
NO_DRIVER = ("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a "
             "driver from http://www.nvidia.com/Download/index.aspx")


@pytest.mark.parametrize(("exception_type", "message", "expected"), [
    ("torch.OutOfMemoryError", OOM_MESSAGE, OUT_OF_MEMORY),
    ("torch.cuda.OutOfMemoryError", OOM_MESSAGE, OUT_OF_MEMORY),  # torch before 2.5
    ("RuntimeError", "Allocation on device 0 would exceed allowed memory. (out of memory)", OUT_OF_MEMORY),
    ("torch.AcceleratorError", ILLEGAL_ACCESS, LOST),  # torch 2.8 and later
    ("RuntimeError", "CUDA error: unspecified launch failure", LOST),
    ("RuntimeError", "CUDA error: uncorrectable ECC error encountered", LOST),
    ("RuntimeError", NO_DRIVER, DRIVER),
    ("RuntimeError", "The NVIDIA driver on your system is too old (found version 11040).", DRIVER),
    ("RuntimeError", "CUDA driver version is insufficient for CUDA runtime version", DRIVER),
    ("ValueError", "expected 4 channels, got 3", None),  # a workflow's own mistake: no GPU advice
    ("RuntimeError", "Error(s) in loading state_dict for UNet: size mismatch", None),
])
def test_each_failure_is_told_apart(exception_type: str, message: str, expected) -> None:
    assert classify_error(exception_type, message) is expected


def test_a_killed_process_and_a_log_that_shows_the_gpu_failed() -> None:
    assert classify_exit(-9) is KILLED_OUTRIGHT and classify_exit(137) is KILLED_OUTRIGHT
    assert classify_exit(1) is None and classify_exit(-15) is None and classify_exit(None) is None
    assert classify_log(["got prompt", "RuntimeError: CUDA error: an illegal memory access was encountered",
                         "Exception in thread"]) is LOST
    assert classify_log(["got prompt", "Prompt executed in 0.2 seconds"]) is None


def run_failing(fake_comfyui, tmp_path: Path, exception_type: str, message: str) -> str:
    fake_comfyui.set_faults(fail_node={"class_type": "ImageInvert", "exception_type": exception_type,
                                       "message": message})
    plate = write_plate(tmp_path / "plate")
    runner = ChunkRunner(make_record(plate, str(tmp_path / "out" / "inv.####.exr")), ExternalServer(fake_comfyui.url),
                         scratch_dir=tmp_path / "s")
    with pytest.raises(ChunkFailed) as raised:
        runner.run(FRAMES[:2])
    return str(raised.value)


def test_out_of_memory_names_the_cause_and_the_fix(fake_comfyui, tmp_path: Path) -> None:
    assert run_failing(fake_comfyui, tmp_path, "torch.OutOfMemoryError", OOM_MESSAGE) == (
        f"GPU out of memory: ComfyUI node 2 (ImageInvert) failed: torch.OutOfMemoryError: {OOM_MESSAGE} (frames "
        f"1001, 1002): {OUT_OF_MEMORY.fix}")


def test_a_lost_gpu_says_to_restart_and_blacklist_the_worker(fake_comfyui, tmp_path: Path) -> None:
    text = run_failing(fake_comfyui, tmp_path, "torch.AcceleratorError", ILLEGAL_ACCESS)
    assert text == (f"GPU failure: ComfyUI node 2 (ImageInvert) failed: torch.AcceleratorError: CUDA error: an "
                    f"illegal memory access was encountered (frames 1001, 1002): {LOST.fix}")
    assert "blacklist the Worker" in text


def test_a_workflow_error_is_reported_as_comfyui_said_it(fake_comfyui, tmp_path: Path) -> None:
    assert run_failing(fake_comfyui, tmp_path, "ValueError", "expected 4 channels, got 3") == (
        "ComfyUI node 2 (ImageInvert) failed: ValueError: expected 4 channels, got 3 (frames 1001, 1002)")


def test_a_comfyui_killed_by_the_system_is_named_as_such(managed_fake, tmp_path: Path) -> None:
    server = managed_fake(runtime_faults={"kill_on_prompt": 2})
    plate = write_plate(tmp_path / "plate")
    with pytest.raises(ChunkFailed) as raised:
        ChunkRunner(make_record(plate, str(tmp_path / "out" / "inv.####.exr")), server, scratch_dir=tmp_path / "s",
                    restart_limit=0).run(FRAMES[:3])
    assert str(raised.value).startswith(
        "ComfyUI was killed (SIGKILL): ComfyUI stopped during frames 1002-1003 and was restarted 0 time(s), the "
        f"limit: {KILLED_OUTRIGHT.fix}\nlast lines of ComfyUI's log:")


def test_no_driver_at_start_is_named_with_its_fix(tmp_path: Path) -> None:
    server = ComfyUIServer(ServerConfig(
        comfyui_dir=make_fake_comfyui_dir(tmp_path / "ComfyUI"), python=sys.executable, port=free_port(),
        scratch_dir=tmp_path / "scratch", startup_timeout_s=20, port_in_use="next",
        extra_env={"COMFYFARM_FAKE_FAULTS": f'{{"refuse_start": "RuntimeError: {NO_DRIVER}"}}'}))
    with pytest.raises(ComfyUIStartError) as raised:
        server.start()
    first_line = str(raised.value).splitlines()[0]
    assert first_line.startswith("no usable GPU driver: ComfyUI exited with code 1 while starting on port ")
    assert first_line.endswith(f": {DRIVER.fix}")
