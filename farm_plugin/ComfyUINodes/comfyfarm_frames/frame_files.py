"""The frame files of comfyfarm's frame nodes, and the checks on their names: NumPy and the standard library.

No torch here, so that comfyfarm's ComfyUI test double runs this very code for its copies of the nodes
(tests/doubles/comfyui/frame_nodes.py); ``nodes.py`` adds what takes ComfyUI's tensors. The contract is
the pack's ``__init__.py`` docstring.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import List, Optional, Tuple

import numpy as np

FRAME_DTYPE: np.dtype[np.float32] = np.dtype("<f4")  # little-endian float32, whatever the machine


FRAME_CHANNELS = (3, 4)  # RGB, RGBA


PASS_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")


UI_KEY = "comfyfarm_frames"


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


def frame_pixels(image: np.ndarray, alpha: Optional[np.ndarray]) -> np.ndarray:
    """One frame's pixels: RGB as given, or RGBA with ``alpha`` (which replaces an alpha the image has)."""
    if alpha is None:
        return image
    pixels = np.empty(image.shape[:2] + (4,), dtype=np.float32)
    pixels[..., :3] = image[..., :3]
    pixels[..., 3] = alpha
    return pixels

