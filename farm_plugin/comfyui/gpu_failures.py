"""GPU failures told apart: what went wrong with the GPU (or the machine), and what to do about it.

A task that fails on the GPU should say which of these it was, since each has another fix, and Deadline's
error report lists tasks by their first line:

- ``gpu_out_of_memory``: the workflow needed more GPU memory than was free (``torch.OutOfMemoryError``,
  "CUDA out of memory", ComfyUI's "Allocation on device"): fewer frames at once, a lighter setting, or a
  GPU with more memory;
- ``gpu_lost``: the GPU or its driver failed under the work (an illegal memory access, an unspecified launch
  failure, an uncorrectable ECC error, a GPU fallen off the bus): the Worker needs a restart, and a Worker
  that keeps doing it a look (blacklist it for the job meanwhile);
- ``gpu_driver``: no usable driver (none installed, one too old for this torch, a driver/library mismatch
  after an update without a reboot): fix the driver, or keep the Worker off GPU jobs;
- ``killed``: ComfyUI was killed outright (SIGKILL), on Linux usually by the kernel's out-of-memory killer
  when the machine's RAM ran out: fewer ComfyUI instances or concurrent tasks per machine, smaller chunks.

The texts are PyTorch's and CUDA's own (``cudaGetErrorString``), as ComfyUI passes them on in its
``execution_error`` message (``exception_type`` is ComfyUI's ``full_type_name`` of the exception) or prints
them while starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

GPU_OUT_OF_MEMORY = "gpu_out_of_memory"
GPU_LOST = "gpu_lost"
GPU_DRIVER = "gpu_driver"
KILLED = "killed"


@dataclass(frozen=True)
class GpuFailure:
    """One kind of failure: ``headline`` starts the task's error, ``fix`` ends it."""

    kind: str
    headline: str
    fix: str

    def describe(self, detail: str) -> str:
        """``headline: detail: fix``, one message."""
        return f"{self.headline}: {detail.rstrip()}: {self.fix}"


OUT_OF_MEMORY = GpuFailure(
    GPU_OUT_OF_MEMORY, "GPU out of memory",
    "give the workflow less to hold at once (a smaller resolution or batch, fewer frames per window where the "
    "workflow has a window setting), or send it to Workers with more GPU memory (a group or Limit for heavy "
    "workflows)")
LOST = GpuFailure(
    GPU_LOST, "GPU failure",
    "the GPU or its driver failed under load: restart this Worker (and its GPU), and if it happens again "
    "blacklist the Worker for this job and have the GPU checked (nvidia-smi, the kernel log's Xid errors)")
DRIVER = GpuFailure(
    GPU_DRIVER, "no usable GPU driver",
    "install or repair the NVIDIA driver on this Worker (one that supports this torch's CUDA; reboot after a "
    "driver update), or keep the Worker out of the group that runs comfyfarm's GPU jobs")
KILLED_OUTRIGHT = GpuFailure(
    KILLED, "ComfyUI was killed (SIGKILL)",
    "on Linux this is usually the kernel's out-of-memory killer (see `dmesg` or the journal for 'Out of "
    "memory: Killed process'): the machine ran out of RAM; run fewer ComfyUI instances or concurrent tasks "
    "on it, or smaller chunks")

_SIGKILL = 9  # POSIX's number; the signal module has no SIGKILL on Windows
_OUT_OF_MEMORY_TYPES = ("OutOfMemoryError",)  # torch.OutOfMemoryError, torch.cuda.OutOfMemoryError
_OUT_OF_MEMORY_TEXTS = ("cuda out of memory", "hip out of memory", "mps backend out of memory",
                        "allocation on device", "cudnn_status_alloc_failed", "cublas_status_alloc_failed")
_LOST_TEXTS = (
    "an illegal memory access was encountered",  # cudaErrorIllegalAddress
    "unspecified launch failure",  # cudaErrorLaunchFailure
    "uncorrectable ecc error",  # cudaErrorECCUncorrectable
    "gpu is lost",  # NVML: "Unable to determine the device handle for GPU ...: GPU is lost"
    "fallen off the bus",
    "the launch timed out and was terminated",  # cudaErrorLaunchTimeout
    "cuda error: unknown error",  # cudaErrorUnknown, as a lost device reports itself
    "cuda-capable device(s) is/are busy or unavailable",  # cudaErrorDevicesUnavailable
)
_DRIVER_TEXTS = (
    "found no nvidia driver on your system",  # torch without a driver
    "cuda driver version is insufficient for cuda runtime version",  # cudaErrorInsufficientDriver
    "the nvidia driver on your system is too old",  # torch's own check
    "driver/library version mismatch",  # NVML after a driver update without a reboot
    "system has unsupported display driver / cuda driver combination",  # cudaErrorSystemDriverMismatch
    "no cuda-capable device is detected",  # cudaErrorNoDevice
)


def classify_error(exception_type: str, message: str) -> Optional[GpuFailure]:
    """The kind of GPU failure a node's exception is (ComfyUI's ``exception_type`` and message), or None."""
    text = message.lower()
    if exception_type.endswith(_OUT_OF_MEMORY_TYPES) or any(t in text for t in _OUT_OF_MEMORY_TEXTS):
        return OUT_OF_MEMORY
    if any(t in text for t in _LOST_TEXTS):
        return LOST
    if any(t in text for t in _DRIVER_TEXTS):
        return DRIVER
    return None


def classify_log(lines: Iterable[str]) -> Optional[GpuFailure]:
    """The kind of GPU failure ComfyUI's log (its last lines, e.g. after it stopped) shows, or None."""
    for line in reversed(list(lines)):
        found = classify_error("", line)
        if found is not None:
            return found
    return None


def classify_exit(returncode: Optional[int]) -> Optional[GpuFailure]:
    """``KILLED_OUTRIGHT`` for a process that ended by SIGKILL (``subprocess``'s -9, a shell's 137)."""
    if returncode is not None and returncode in (-_SIGKILL, 128 + _SIGKILL):
        return KILLED_OUTRIGHT
    return None
