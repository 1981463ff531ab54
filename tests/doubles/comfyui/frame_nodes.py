"""comfyfarm's own frame nodes in the ComfyUI double: ``ComfyFarmLoadFrames`` and ``ComfyFarmSaveFrames``.

The real nodes are the custom-node pack farm_plugin/ComfyUINodes/comfyfarm_frames (its ``__init__.py``
docstring is their contract; they run on torch inside ComfyUI). These are the same nodes on numpy: the same
frame files read and written byte for byte (NumPy's own .npy reader and writer, format 1.0), the same
float32 arithmetic (``1 - alpha`` is one IEEE float32 subtraction in torch and in numpy alike), the same
``ValueError`` texts, the same ``IS_CHANGED`` values (so the same caching) and the same UI output.
tests/doubles/test_fake_comfyui_frame_nodes.py runs one contract against this double and, in the real
tier, against a real ComfyUI with the pack loaded.

The pack is a custom-node folder: the double registers these classes only where a ``custom_nodes`` path
holds a ``comfyfarm_frames`` folder (custom_nodes.py).
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .nodes import Env, Node

FRAME_DTYPE = np.dtype("<f4")
FRAME_CHANNELS = (3, 4)
PASS_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
UI_KEY = "comfyfarm_frames"


# -- frame files (the pack's frame_paths, frame_shape, batch_shapes, write_frame, file_fingerprint) ------------


def frame_paths(frames: str) -> List[str]:
    paths = [line.strip() for line in frames.splitlines() if line.strip()]
    if not paths:
        raise ValueError("frames names no frame file: give one absolute path of a .npy frame file per line")
    for path in paths:
        if not os.path.isabs(path):
            raise ValueError(f"frame file path {path!r} is not absolute: give the full path of each frame file "
                             "(ComfyUI's working folder is not the job's)")
    return paths


def frame_shape(path: str) -> Tuple[int, int, int]:
    """(height, width, channels) from the header alone, or the pack's ValueError naming the file."""
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
    shapes = [frame_shape(path) for path in paths]
    height, width = shapes[0][:2]
    for path, shape in zip(paths, shapes):
        if shape[:2] != (height, width):
            raise ValueError(f"frame file {path} is {shape[1]}x{shape[0]} but {paths[0]} is {width}x{height}: "
                             "every frame of one batch has the same size")
    return shapes


def write_frame(path: str, pixels: np.ndarray) -> None:
    """A hidden ``.<name>.<8 hex>.tmp`` beside ``path``, renamed over it when complete; removed on failure."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as stream:
            np.lib.format.write_array(stream, np.ascontiguousarray(pixels), version=(1, 0), allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def file_fingerprint(path: str) -> str:
    try:
        status = os.stat(path)
    except OSError:
        return f"{path}: missing"
    return f"{path}: {status.st_size} {status.st_mtime_ns} {status.st_ino}"


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


def frame_pixels(image: np.ndarray, alpha: Optional[np.ndarray]) -> np.ndarray:
    if alpha is None:
        return image
    pixels = np.empty(image.shape[:2] + (4,), dtype=np.float32)
    pixels[..., :3] = image[..., :3]
    pixels[..., 3] = alpha
    return pixels


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
