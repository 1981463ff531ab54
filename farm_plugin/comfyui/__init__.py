"""Talking to ComfyUI: the HTTP + WebSocket client and the server's lifecycle on a worker.

``client`` makes the HTTP calls, ``events`` follows prompts on a WebSocket session, ``prompts`` holds the
data both share (queued prompts, events, results); ``server`` starts, watches and stops a ComfyUI,
``devices`` asks it which GPUs it sees, ``errors`` draws the ComfyUI error tree and ``gpu_failures`` tells
GPU failures apart (out of memory, a lost GPU, no driver, a process killed outright).
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "client": ("ComfyUIClient",),
    "devices": ("TorchDevices", "probe_devices"),
    "errors": (
        "ComfyUIError", "ComfyUIStartError", "ComfyUITimeout", "ComfyUIUnreachable", "ConnectionLost",
        "PromptExecutionError",
    ),
    "events": ("PromptSession",),
    "gpu_failures": ("OUT_OF_MEMORY", "GpuFailure", "classify_error", "classify_exit", "classify_log"),
    "prompts": ("OutputFile", "PromptEvent", "PromptResult"),
    "server": (
        "ATTACH_TIMEOUT_SECONDS", "FRAME_NODES_DIR", "ComfyUIServer", "ExternalServer", "ServerConfig",
        "default_python",
        "read_log_tail",
    ),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
