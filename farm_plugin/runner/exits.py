"""The exit codes of comfyfarm's worker processes (the chunk runner and the OpenJD adapters).

The Deadline plugin (farm_plugin/ComfyUI/ComfyUI.py) cannot import comfyfarm and repeats the three it reads.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the chunk failed: the ERROR line says why
EXIT_BAD_INPUT = 2  # bad arguments, or a job record this runtime cannot read
EXIT_COMFYUI_LOST = 3  # ComfyUI stopped, hung or cannot be reached: its owner may restart it and rerun
EXIT_CANCELLED = 130  # SIGTERM or SIGINT: prompts withdrawn, no partial file
