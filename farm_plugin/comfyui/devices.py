"""What ComfyUI's Python sees of the GPUs, asked before a ComfyUI is started on them.

ComfyUI started without ``--cpu`` on a machine where torch sees no GPU dies at start-up with its own
``AssertionError: Torch not compiled with CUDA enabled`` (comfy/model_management.py,
``torch.cuda.current_device()``) or ``RuntimeError: Found no NVIDIA driver``. Asking the same Python, in
the same folder and environment, first lets the caller say what to do instead (``--cpu``, or the driver).
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from farm_plugin.comfyui.errors import ComfyUIStartError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 120.0  # a cold import of torch from network storage can take a minute

# Mirrors comfy/model_management.py's choice of device: CUDA (or ROCm, which torch reports as CUDA), Apple's
# MPS, Intel's XPU; anything else runs only with --cpu.
_PROBE = """
import json, torch
cuda = torch.cuda.is_available()
mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
xpu = bool(getattr(torch, "xpu", None) and torch.xpu.is_available())
print(json.dumps({"torch": str(torch.__version__), "cuda": bool(cuda),
                  "cuda_devices": torch.cuda.device_count() if cuda else 0, "mps": mps, "xpu": xpu}))
"""


@dataclass(frozen=True)
class TorchDevices:
    """What ``torch`` in ComfyUI's Python reports."""

    torch_version: str
    cuda: bool
    cuda_devices: int
    mps: bool = False
    xpu: bool = False

    @property
    def has_gpu(self) -> bool:
        return self.cuda or self.mps or self.xpu


def probe_devices(python: str, comfyui_dir: Path, env: Mapping[str, str],
                  timeout_s: float = PROBE_TIMEOUT_SECONDS) -> Optional[TorchDevices]:
    """Ask ``python`` (run in ``comfyui_dir`` with ``env``, as ComfyUI would be) which devices torch sees.

    Returns None when it gives no answer within ``timeout_s`` (ComfyUI's own start-up will then tell).
    Raises ``ComfyUIStartError`` when the Python cannot run or cannot import torch.
    """
    try:
        done = subprocess.run([python, "-c", _PROBE], cwd=str(comfyui_dir), env=dict(env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        logger.warning("ComfyUI's Python %s did not say within %g s which GPUs torch sees; starting ComfyUI anyway",
                       python, timeout_s)
        return None
    except OSError as exc:
        raise ComfyUIStartError(f"cannot run ComfyUI's Python '{python}': {exc.strerror or exc}: point "
                                "--comfyui-python (or comfyui_python: in the config) at the Python of ComfyUI's "
                                "venv") from exc
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise ComfyUIStartError(f"ComfyUI's Python {python} cannot import torch ({reason}): install ComfyUI's "
                                "requirements into it (pip install -r requirements.txt in its venv), or point "
                                "--comfyui-python at the Python of ComfyUI's venv")
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        devices = TorchDevices(torch_version=str(answer["torch"]), cuda=bool(answer["cuda"]),
                               cuda_devices=int(answer["cuda_devices"]), mps=bool(answer.get("mps")),
                               xpu=bool(answer.get("xpu")))
    except (IndexError, KeyError, TypeError, ValueError):
        logger.warning("ComfyUI's Python %s answered %r about its GPUs, which is not understood; starting "
                       "ComfyUI anyway", python, done.stdout.strip()[-200:])
        return None
    logger.debug("torch %s in %s: cuda=%s (%d device(s)) mps=%s xpu=%s", devices.torch_version, python,
                 devices.cuda, devices.cuda_devices, devices.mps, devices.xpu)
    return devices
