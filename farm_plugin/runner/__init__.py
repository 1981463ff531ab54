"""The worker's core: run a chunk of a job's frames through a ComfyUI and write the results."""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "binding": ("LOADER", "SAVER"),
    "chunk": ("DEFAULT_IDLE_TIMEOUT_SECONDS",),
    "exits": ("EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_COMFYUI_LOST", "EXIT_FAILED", "EXIT_OK"),
    "joins": ("finish_joins",),
    "local": ("LocalRun", "LocalRunReport", "LocalServer"),
    "output": ("OutputWriter",),
    "preflight": ("check_clip", "check_colour", "check_output", "check_pass_formats"),
    "progress": ("ProgressSink", "parse_progress_line"),
    "units": ("window_budget",),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
