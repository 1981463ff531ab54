"""The two nodes of the pack; the contract is ``__init__.py``'s docstring, the frame files are ``frame_files``.

Runs inside ComfyUI's Python: the standard library, NumPy and torch only, nothing of comfyfarm. Every problem
is a ``ValueError`` whose text names the value and the fix: at validation ComfyUI shows it as
``custom_validation_failed``, while the prompt runs as its ``execution_error``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from .frame_files import (
    FRAME_CHANNELS,
    FRAME_DTYPE,
    UI_KEY,
    batch_shapes,
    check_names,
    file_fingerprint,
    frame_paths,
    frame_paths_or_none,
    frame_pixels,
    write_frame,
)

logger = logging.getLogger(__name__)

CATEGORY = "comfyfarm"


# -- the nodes ------------------------------------------------------------------------------------------------

class ComfyFarmLoadFrames:
    """Frame files into an IMAGE batch and its MASK (1 - alpha, as core LoadImage gives it)."""

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {
            "required": {
                "frames": ("STRING", {
                    "multiline": True,
                    "dynamicPrompts": False,
                    "default": "",
                    "tooltip": "One absolute path of a .npy float32 frame file (RGB or RGBA) per line, in batch "
                               "order. comfyfarm's runner writes these and fills this in.",
                }),
            },
        }

    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("IMAGE", "MASK")
    OUTPUT_TOOLTIPS = ("The frames as one batch, float values as they are (nothing clamped).",
                       "1 - alpha of each frame (0 where a frame has no alpha), as LoadImage gives its mask.")
    FUNCTION = "load_frames"
    CATEGORY = CATEGORY
    DESCRIPTION = "Loads comfyfarm's float32 frame files (RGB or RGBA) as an IMAGE batch and its MASK."

    def load_frames(self, frames: str) -> Tuple[torch.Tensor, torch.Tensor]:
        paths = frame_paths(frames)
        shapes = batch_shapes(paths)  # again: a linked input is not seen at validation, and files can change
        height, width = shapes[0][:2]
        images = torch.empty((len(paths), height, width, 3), dtype=torch.float32)
        masks = torch.zeros((len(paths), height, width), dtype=torch.float32)
        image_pixels, mask_pixels = images.numpy(), masks.numpy()  # the tensors' own memory: filled in place
        for index, (path, shape) in enumerate(zip(paths, shapes)):
            pixels = np.load(path, mmap_mode="r", allow_pickle=False)
            if pixels.shape != shape or pixels.dtype != FRAME_DTYPE:
                raise ValueError(f"frame file {path} changed while it was read: write frames before queueing "
                                 "the prompt, and never over a frame in use")
            image_pixels[index] = pixels[..., :3]
            if shape[2] == 4:
                np.subtract(np.float32(1.0), pixels[..., 3], out=mask_pixels[index])
            del pixels  # unmaps the file
        logger.debug("loaded %d frame(s) of %dx%d", len(paths), width, height)
        return images, masks

    @classmethod
    def IS_CHANGED(cls, frames: Optional[str] = None) -> Any:
        if frames is None:  # linked from another node: ComfyUI gives no value here, so always run
            return float("nan")
        return "\n".join(file_fingerprint(path) for path in frame_paths_or_none(frames))

    @classmethod
    def VALIDATE_INPUTS(cls, frames: Optional[str] = None) -> Any:
        if frames is None:  # linked from another node: checked when the node runs
            return True
        try:
            batch_shapes(frame_paths(frames))
        except ValueError as exc:
            return str(exc)
        return True


class ComfyFarmSaveFrames:
    """An IMAGE batch, and an optional MASK as its alpha, out as frame files."""

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to write (RGB, or RGBA that keeps its alpha), float "
                                                "values as they are."}),
                "directory": ("STRING", {
                    "default": "",
                    "tooltip": "The absolute folder to write into (created if missing). comfyfarm's runner "
                               "fills this in.",
                }),
                "prefix": ("STRING", {"default": "frame", "tooltip": "The start of each file name."}),
                "pass_name": ("STRING", {
                    "default": "rgba",
                    "tooltip": "The pass these images are (letters, digits, _ and -), as the workflow's "
                               "manifest names it: rgba, depth, normals, matte...",
                }),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "The alpha (1 = opaque, as keyers and background removal give it), "
                                             "of the images' size: one per image, or one for all."}),
            },
        }

    RETURN_TYPES = ()
    FUNCTION = "save_frames"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY
    DESCRIPTION = ("Writes images as comfyfarm's float32 frame files, <directory>/<prefix>.<pass_name>."
                   "<index>.npy: RGB, or RGBA with the mask as alpha.")

    def save_frames(self, images: torch.Tensor, directory: str, prefix: str, pass_name: str,
                    mask: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        check_names(directory, prefix, pass_name)
        if images.ndim != 4 or images.shape[-1] not in FRAME_CHANNELS:
            raise ValueError(f"images have the shape {tuple(images.shape)}, not (batch, height, width, 3 or 4): "
                             "give this node RGB or RGBA images")
        count, height, width = (int(n) for n in images.shape[:3])
        alphas = mask_batch(mask, count, height, width)
        os.makedirs(directory, exist_ok=True)
        written = []
        for index in range(count):
            rgb = images[index].detach().cpu().float().numpy()
            alpha = None if alphas is None else alphas[min(index, len(alphas) - 1)].detach().cpu().float().numpy()
            pixels = frame_pixels(rgb, alpha)
            path = os.path.join(directory, f"{prefix}.{pass_name}.{index:05d}.npy")
            write_frame(path, pixels)
            written.append({"path": path, "pass": pass_name, "index": index, "width": width, "height": height,
                            "channels": int(pixels.shape[2])})
        logger.debug("wrote %d %s frame(s) into %s", count, pass_name, directory)
        return {"ui": {UI_KEY: written}}

    @classmethod
    def IS_CHANGED(cls, **_inputs: Any) -> float:
        return float("nan")  # never equal to itself: ComfyUI runs the saver for every prompt


def mask_batch(mask: Optional[torch.Tensor], count: int, height: int, width: int) -> Optional[torch.Tensor]:
    """The mask as (masks, height, width), one per image or one for all; raises ValueError when it does not
    fit the images."""
    if mask is None:
        return None
    masks = mask.unsqueeze(0) if mask.ndim == 2 else mask
    if masks.ndim != 3:
        raise ValueError(f"mask has the shape {tuple(mask.shape)}, not (batch, height, width): give a MASK")
    if tuple(masks.shape[1:]) != (height, width):
        raise ValueError(f"mask is {masks.shape[2]}x{masks.shape[1]} but the images are {width}x{height}: give a "
                         "mask of the images' size (scale or crop it to them)")
    if len(masks) not in (1, count):
        raise ValueError(f"mask has {len(masks)} masks for {count} images: give one mask per image, or one "
                         "for all")
    return masks


NODE_CLASS_MAPPINGS = {
    "ComfyFarmLoadFrames": ComfyFarmLoadFrames,
    "ComfyFarmSaveFrames": ComfyFarmSaveFrames,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "ComfyFarmLoadFrames": "Load Frames (comfyfarm)",
    "ComfyFarmSaveFrames": "Save Frames (comfyfarm)",
}
