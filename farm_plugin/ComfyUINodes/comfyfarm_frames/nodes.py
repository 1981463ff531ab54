"""The two nodes of the pack and the frame files they read and write; the contract is ``__init__.py``'s docstring.

Runs inside ComfyUI's Python: the standard library, NumPy and torch only, nothing of comfyfarm. Every problem
is a ``ValueError`` whose text names the value and the fix: at validation ComfyUI shows it as
``custom_validation_failed``, while the prompt runs as its ``execution_error``.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

logger = logging.getLogger(__name__)

CATEGORY = "comfyfarm"
FRAME_DTYPE: np.dtype[np.float32] = np.dtype("<f4")  # little-endian float32, whatever the machine
FRAME_CHANNELS = (3, 4)  # RGB, RGBA
PASS_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
UI_KEY = "comfyfarm_frames"


# -- frame files ----------------------------------------------------------------------------------------------

def frame_paths(frames: str) -> List[str]:
    """The paths of a ``frames`` input: one a line, blank lines ignored. Raises ValueError unless there is
    at least one and every one is absolute."""
    paths = [line.strip() for line in frames.splitlines() if line.strip()]
    if not paths:
        raise ValueError("frames names no frame file: give one absolute path of a .npy frame file per line")
    for path in paths:
        if not os.path.isabs(path):
            raise ValueError(f"frame file path {path!r} is not absolute: give the full path of each frame file "
                             "(ComfyUI's working folder is not the job's)")
    return paths


def frame_paths_or_none(frames: str) -> List[str]:
    """The paths of ``frames`` as :func:`frame_paths` reads them, or none where it refuses them."""
    try:
        return frame_paths(frames)
    except ValueError:
        return []


def frame_shape(path: str) -> Tuple[int, int, int]:
    """``(height, width, channels)`` of a frame file, from its header alone; raises ValueError naming the file
    and what is wrong with it (missing, unreadable, not a .npy file, not float32 RGB/RGBA, cut short)."""
    try:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"frame file {path} is a .npy file of format {version[0]}.{version[1]}: "
                                 "write frame files in format 1.0 (numpy.save)")
            data_offset = stream.tell()
            file_size = os.fstat(stream.fileno()).st_size
    except FileNotFoundError:
        raise ValueError(f"frame file {path} does not exist: write every frame before queueing the prompt, "
                         "on the machine that runs this ComfyUI") from None
    except OSError as exc:
        raise ValueError(f"cannot read frame file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        if str(exc).startswith("frame file "):
            raise
        raise ValueError(f"frame file {path} is not a NumPy .npy file ({exc}): write frames with "
                         "numpy.save") from None
    if dtype != FRAME_DTYPE:
        raise ValueError(f"frame file {path} holds {dtype.str} pixels, not little-endian float32 ('<f4'): save "
                         "pixels.astype('<f4')")
    if len(shape) != 3 or shape[2] not in FRAME_CHANNELS or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"frame file {path} has the shape {tuple(shape)}, not (height, width, 3) for RGB or "
                         "(height, width, 4) for RGBA")
    if fortran_order:
        raise ValueError(f"frame file {path} is in Fortran order: save a C-ordered array "
                         "(numpy.ascontiguousarray)")
    height, width, channels = (int(n) for n in shape)
    expected_size = data_offset + height * width * channels * FRAME_DTYPE.itemsize
    if file_size != expected_size:
        raise ValueError(f"frame file {path} has {file_size} bytes where its header says {expected_size}: it "
                         "was cut short or written over; write it again")
    return height, width, channels


def batch_shapes(paths: List[str]) -> List[Tuple[int, int, int]]:
    """The shape of every frame file; raises ValueError naming the first file that is wrong, or the first
    of another size than the first frame."""
    shapes = [frame_shape(path) for path in paths]
    height, width = shapes[0][:2]
    for path, shape in zip(paths, shapes):
        if shape[:2] != (height, width):
            raise ValueError(f"frame file {path} is {shape[1]}x{shape[0]} but {paths[0]} is {width}x{height}: "
                             "every frame of one batch has the same size")
    return shapes


def write_frame(path: str, pixels: np.ndarray) -> None:
    """Write ``pixels`` (height, width, 3 or 4) as a frame file: under a hidden temporary name beside
    ``path``, renamed over it when complete, so that a file at ``path`` is always whole. No fsync: these are
    scratch files the runner reads at once on the same machine."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as stream:
            # C order always: a tensor's view may be in another, and a frame file's header says C order
            np.lib.format.write_array(stream, np.ascontiguousarray(pixels), version=(1, 0), allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def file_fingerprint(path: str) -> str:
    """What changes when a file is rewritten: size, modification time and inode (an atomic rewrite is a new
    file, even within one tick of the clock)."""
    try:
        status = os.stat(path)
    except OSError:
        return f"{path}: missing"
    return f"{path}: {status.st_size} {status.st_mtime_ns} {status.st_ino}"


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


def check_names(directory: str, prefix: str, pass_name: str) -> None:
    if not PASS_NAME.match(pass_name):
        raise ValueError(f"pass name {pass_name!r} is not letters, digits, _ and - only: name the pass as the "
                         "workflow's manifest does (rgba, depth, matte...)")
    if not prefix or prefix.startswith(".") or "/" in prefix or "\\" in prefix:
        raise ValueError(f"prefix {prefix!r} is not a file name's start: give one with no path separator that "
                         "does not begin with a dot")
    if not os.path.isabs(directory):
        raise ValueError(f"directory {directory!r} is not an absolute folder: give the full path "
                         "(ComfyUI's working folder is not the job's)")


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


def frame_pixels(image: np.ndarray, alpha: Optional[np.ndarray]) -> np.ndarray:
    """One frame's pixels: RGB as given, or RGBA with ``alpha`` (which replaces an alpha the image has)."""
    if alpha is None:
        return image
    pixels = np.empty(image.shape[:2] + (4,), dtype=np.float32)
    pixels[..., :3] = image[..., :3]
    pixels[..., 3] = alpha
    return pixels


NODE_CLASS_MAPPINGS = {
    "ComfyFarmLoadFrames": ComfyFarmLoadFrames,
    "ComfyFarmSaveFrames": ComfyFarmSaveFrames,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "ComfyFarmLoadFrames": "Load Frames (comfyfarm)",
    "ComfyFarmSaveFrames": "Save Frames (comfyfarm)",
}
