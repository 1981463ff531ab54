"""Plates for the frame-node tests, NumPy only: imported by the tests here and by ``frame_nodes_cases.py``,
which runs in ComfyUI's Python (it finds this file beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plate(height: int = 6, width: int = 8, channels: int = 4, seed: int = 0) -> np.ndarray:
    """Scene-linear float32 pixels from -0.5 to 4.0 (both there); alpha in 0..1 as an EXR half plate holds it."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(-0.5, 4.0, (height, width, channels)).astype(np.float32)
    pixels.flat[0], pixels.flat[1] = -0.5, 4.0
    if channels == 4:
        pixels[..., 3] = rng.uniform(0.0, 1.0, (height, width)).astype(np.float16).astype(np.float32)
        pixels[0, 0, 3], pixels[0, 1, 3] = 0.0, 1.0
    return pixels


def write(path: Path, pixels: np.ndarray) -> str:
    """``pixels`` as a frame file at ``path``; its path as text."""
    np.save(path, pixels)
    return str(path)
