"""Where the recorded answers of a real ComfyUI live in the repository (tests/data/comfyui/README.md)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "comfyui"
CAPTURES = DATA / "captures"  # HTTP and WebSocket answers of ComfyUI 0.3.64, one experiment a file
OBJECT_INFO = DATA / "object_info"  # GET /object_info of core ComfyUI 0.3.64 and the custom-node packs
