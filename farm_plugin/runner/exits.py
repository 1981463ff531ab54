"""The exit codes of comfyfarm's worker processes (the chunk runner and the OpenJD adapters): a protocol.

They are defined once, with the command line's, in :mod:`farm_plugin.errors`; this module names the ones
the workers use. The Deadline plugin (farm_plugin/ComfyUI/ComfyUI.py) cannot import comfyfarm and repeats
the three it reads; tests/farm_plugin/test_errors.py keeps its copy equal.

- ``EXIT_OK`` (0): every frame written and verified;
- ``EXIT_FAILED`` (1): the chunk failed: the ERROR line says why;
- ``EXIT_BAD_INPUT`` (2): bad arguments, or a job record this runtime cannot read;
- ``EXIT_COMFYUI_LOST`` (3): ComfyUI stopped, hung or cannot be reached: its owner may restart it and rerun;
- ``EXIT_CANCELLED`` (130): SIGTERM or SIGINT: prompts withdrawn, no partial file.
"""

from __future__ import annotations

from farm_plugin.errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_COMFYUI_LOST, EXIT_FAILED, EXIT_OK

__all__ = ["EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_COMFYUI_LOST", "EXIT_FAILED", "EXIT_OK"]
