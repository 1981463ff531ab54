"""comfyfarm's own frame nodes in the ComfyUI double: ``ComfyFarmLoadFrames`` and ``ComfyFarmSaveFrames``.

The real nodes are the custom-node pack farm_plugin/ComfyUINodes/comfyfarm_frames (its ``__init__.py``
docstring is their contract; they run on torch inside ComfyUI). These are the same nodes on numpy, over the
pack's own ``frame_files`` module (frame files read and written, names checked: the real code), the same
float32 arithmetic (``1 - alpha`` is one IEEE float32 subtraction in torch and in numpy alike), the same
``ValueError`` texts, the same ``IS_CHANGED`` values (so the same caching) and the same UI output.
tests/doubles/test_fake_comfyui_frame_nodes.py runs one contract against this double and, in the real
tier, against a real ComfyUI with the pack loaded.

The pack is a custom-node folder: the double registers these classes only where a ``custom_nodes`` path
holds a ``comfyfarm_frames`` folder (custom_nodes.py).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .nodes import Env, Node

# The pack's own frame-file code (NumPy and the standard library only), loaded from the folder comfyfarm ships,
# as ComfyUI would load it: the files read and written, their checks and error texts are the real ones.
_FRAME_FILES = (Path(__file__).resolve().parents[3] / "farm_plugin" / "ComfyUINodes" / "comfyfarm_frames"
                / "frame_files.py")
_spec = importlib.util.spec_from_file_location("comfyfarm_frames_frame_files", _FRAME_FILES)
assert _spec is not None and _spec.loader is not None
frame_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(frame_files)
FRAME_CHANNELS = frame_files.FRAME_CHANNELS
FRAME_DTYPE = frame_files.FRAME_DTYPE
UI_KEY = frame_files.UI_KEY
batch_shapes = frame_files.batch_shapes
check_names = frame_files.check_names
file_fingerprint = frame_files.file_fingerprint
frame_paths = frame_files.frame_paths
frame_pixels = frame_files.frame_pixels
write_frame = frame_files.write_frame


# -- the nodes -----------------------------------------------------------------------------------------------


class ComfyFarmLoadFrames(Node):
    """IMAGE (batch, height, width, 3) and MASK (batch, height, width) = 1 - alpha (0 without alpha)."""

    CLASS_TYPE = "ComfyFarmLoadFrames"
    VALIDATE_ARGS = ("frames",)

    @classmethod
    def VALIDATE_INPUTS(cls, env: Env, frames: Optional[str] = None) -> Any:
        if frames is None:  # linked: ComfyUI gives validation no value
            return True
        try:
            batch_shapes(frame_paths(frames))
        except ValueError as exc:
            return str(exc)
        return True

    @classmethod
    def IS_CHANGED(cls, env: Env, frames: Optional[str] = None) -> Any:
        if frames is None:
            return float("nan")
        # the pack fingerprints each line as written (not stripped), so this value is the pack's
        return "\n".join(file_fingerprint(path) for path in frames.splitlines() if path.strip())

    def run(self, frames: str) -> Tuple[np.ndarray, np.ndarray]:
        paths = frame_paths(frames)
        shapes = batch_shapes(paths)
        height, width = shapes[0][:2]
        images = np.empty((len(paths), height, width, 3), dtype=np.float32)
        masks = np.zeros((len(paths), height, width), dtype=np.float32)
        for index, (path, shape) in enumerate(zip(paths, shapes)):
            pixels = np.load(path, mmap_mode="r", allow_pickle=False)
            if pixels.shape != shape or pixels.dtype != FRAME_DTYPE:
                raise ValueError(f"frame file {path} changed while it was read: write frames before queueing "
                                 "the prompt, and never over a frame in use")
            images[index] = pixels[..., :3]
            if shape[2] == 4:
                np.subtract(np.float32(1.0), pixels[..., 3], out=masks[index])
            del pixels
        return images, masks


def mask_batch(mask: Optional[np.ndarray], count: int, height: int, width: int) -> Optional[np.ndarray]:
    if mask is None:
        return None
    masks = mask[None] if mask.ndim == 2 else mask
    if masks.ndim != 3:
        raise ValueError(f"mask has the shape {tuple(mask.shape)}, not (batch, height, width): give a MASK")
    if tuple(masks.shape[1:]) != (height, width):
        raise ValueError(f"mask is {masks.shape[2]}x{masks.shape[1]} but the images are {width}x{height}: give a "
                         "mask of the images' size (scale or crop it to them)")
    if len(masks) not in (1, count):
        raise ValueError(f"mask has {len(masks)} masks for {count} images: give one mask per image, or one "
                         "for all")
    return masks


class ComfyFarmSaveFrames(Node):
    """Writes ``<directory>/<prefix>.<pass_name>.<index:05d>.npy`` per image; UI output ``comfyfarm_frames``."""

    CLASS_TYPE = "ComfyFarmSaveFrames"

    @classmethod
    def IS_CHANGED(cls, env: Env, **_inputs: Any) -> float:
        # a new NaN for every prompt, never equal to the last one: the saver never answers from the cache
        return float("nan")

    def run(self, images: np.ndarray, directory: str, prefix: str, pass_name: str,
            mask: Optional[np.ndarray] = None) -> Dict[str, Any]:
        check_names(directory, prefix, pass_name)
        if images.ndim != 4 or images.shape[-1] not in FRAME_CHANNELS:
            raise ValueError(f"images have the shape {tuple(images.shape)}, not (batch, height, width, 3 or 4): "
                             "give this node RGB or RGBA images")
        count, height, width = (int(n) for n in images.shape[:3])
        alphas = mask_batch(mask, count, height, width)
        os.makedirs(directory, exist_ok=True)
        written = []
        for index in range(count):
            rgb = np.asarray(images[index], dtype=np.float32)
            alpha = None if alphas is None else np.asarray(alphas[min(index, len(alphas) - 1)], dtype=np.float32)
            pixels = frame_pixels(rgb, alpha)
            path = os.path.join(directory, f"{prefix}.{pass_name}.{index:05d}.npy")
            write_frame(path, pixels)
            written.append({"path": path, "pass": pass_name, "index": index, "width": width, "height": height,
                            "channels": int(pixels.shape[2])})
        return {"ui": {UI_KEY: written}}


FRAME_NODES = (ComfyFarmLoadFrames, ComfyFarmSaveFrames)
