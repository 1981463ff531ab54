"""Node implementations of the ComfyUI test double, on numpy.

Images are float32 arrays shaped [batch, height, width, channels] with values in 0..1 and masks are
float32 arrays shaped [batch, height, width], exactly as ComfyUI's IMAGE and MASK types (torch tensors
there). The numerics follow ComfyUI 0.3.64 (nodes.py, comfy/utils.py common_upscale,
comfy_extras/nodes_post_processing.py) as closely as numpy allows; see the module notes of each function
for where float rounding may differ by one ulp.

Each node class mirrors what ComfyUI's executor needs from a node: INPUT_TYPES (from the recorded
/object_info definitions in object_info/*.json), RETURN_TYPES, OUTPUT_NODE, FUNCTION, optional
VALIDATE_INPUTS / IS_CHANGED, and the function itself.

Besides core nodes: ``RIFE VFI`` of the pack Fannovel16/ComfyUI-Frame-Interpolation (its real definition
and frame count and order; a linear cross-fade stands in for its optical flow) and ``ComfyFarmTemporalMean``,
a test-only node that exists in no ComfyUI (a temporal filter whose output depends on neighbouring frames).
comfyfarm's own frame nodes are in frame_nodes.py; custom_nodes.py decides which packs a double loads.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import mimetypes
import os
import random
import struct
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

OBJECT_INFO_DIR = Path(__file__).resolve().parent / "object_info"
MAX_RESOLUTION = 16384


class UnidentifiedImageError(OSError):
    """Stands in for PIL.UnidentifiedImageError so that execution_error says "PIL.UnidentifiedImageError"."""


UnidentifiedImageError.__module__ = "PIL"


class Env:
    """The directories and switches a node needs (ComfyUI keeps these in folder_paths and args)."""

    def __init__(self, input_dir: str, output_dir: str, temp_dir: str, disable_metadata: bool = False):
        self.input_dir = os.path.abspath(input_dir)
        self.output_dir = os.path.abspath(output_dir)
        self.temp_dir = os.path.abspath(temp_dir)
        self.disable_metadata = disable_metadata

    def directory_by_type(self, type_name: Optional[str]) -> Optional[str]:
        if type_name == "output":
            return self.output_dir
        if type_name == "temp":
            return self.temp_dir
        if type_name == "input":
            return self.input_dir
        return None

    # folder_paths.annotated_filepath / get_annotated_filepath / exists_annotated_filepath
    def annotated_filepath(self, name: str) -> Tuple[str, Optional[str]]:
        if name.endswith("[output]"):
            return name[:-9], self.output_dir
        if name.endswith("[input]"):
            return name[:-8], self.input_dir
        if name.endswith("[temp]"):
            return name[:-7], self.temp_dir
        return name, None

    def get_annotated_filepath(self, name: str) -> str:
        name, base_dir = self.annotated_filepath(name)
        return os.path.join(base_dir or self.input_dir, name)

    def exists_annotated_filepath(self, name: str) -> bool:
        return os.path.exists(self.get_annotated_filepath(name))


_definitions: Dict[str, dict] = {}


def definition(class_type: str) -> dict:
    """The recorded /object_info entry of a class (a fresh copy)."""
    if class_type not in _definitions:
        path = OBJECT_INFO_DIR / f"{class_type}.json"
        _definitions[class_type] = json.loads(path.read_text(encoding="utf-8"))
    return copy.deepcopy(_definitions[class_type])


# ---------------------------------------------------------------------------------------------------------
# content types (folder_paths.filter_files_content_types)

_mimetypes_ready = False
_extension_content_type: Dict[str, str] = {}


def _init_mimetypes() -> None:
    global _mimetypes_ready
    if not _mimetypes_ready:
        mimetypes.init()
        mimetypes.add_type("image/webp", ".webp")
        _mimetypes_ready = True


def filter_files_content_types(files: List[str], content_types: List[str]) -> List[str]:
    _init_mimetypes()
    result = []
    for file in files:
        extension = file.split(".")[-1]
        if extension not in _extension_content_type:
            mime_type, _ = mimetypes.guess_type(file, strict=False)
            if not mime_type:
                continue
            _extension_content_type[extension] = mime_type.split("/")[0]
        if _extension_content_type[extension] in content_types:
            result.append(file)
    return result


def guess_content_type(filename: str) -> Optional[str]:
    _init_mimetypes()
    return mimetypes.guess_type(filename)[0]


# ---------------------------------------------------------------------------------------------------------
# image files

# Formats that PIL (what ComfyUI's LoadImage uses) can open; anything else is "cannot identify image file".
_PIL_FORMATS = {"png", "jpeg", "tiff", "bmp", "gif", "webp", "targa", "pnm", "ico", "psd", "sgi", "jpeg2000", "dds"}


def _unidentified(path: str) -> UnidentifiedImageError:
    return UnidentifiedImageError(f"cannot identify image file {path!r}")


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """PIL.ImageOps.exif_transpose on an [H, W, C] array."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return np.rot90(a, 2).transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def _to_uint8(data: np.ndarray, n_color: int, path: str) -> np.ndarray:
    if data.dtype == np.uint8:
        return data
    if data.dtype == np.uint16:
        if n_color >= 2:
            # PIL decodes 16-bit RGB(A)/LA PNGs with the "…;16B" raw modes: it keeps the high byte.
            return (data >> 8).astype(np.uint8)
        # PIL opens 16-bit greyscale as mode "I;16" and converting it to RGB saturates at 255.
        return np.minimum(data, 255).astype(np.uint8)
    raise _unidentified(path)


def _is_apng(path: str) -> bool:
    """Whether a PNG has an acTL chunk (before its first IDAT)."""
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag = data[pos + 4:pos + 8]
        if tag == b"acTL":
            return True
        if tag in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def read_image_frames(path: str) -> List[np.ndarray]:
    """Every frame (subimage) of an image file as uint8 [H, W, C] arrays, the way PIL would give them
    (ImageSequence over a multi-page TIFF / animated WebP / GIF), with the EXIF orientation applied.
    The alpha channel, if any, is the last channel (C == 4 for RGBA, C == 2 for grey + alpha)."""
    import OpenImageIO as oiio

    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # PIL keeps straight (unpremultiplied) colour
    inp = oiio.ImageInput.open(path, config)
    if inp is None:
        oiio.geterror()
        raise _unidentified(path)
    try:
        if inp.format_name() not in _PIL_FORMATS:
            raise _unidentified(path)
        if inp.format_name() == "png" and _is_apng(path):
            raise NotImplementedError(
                "the ComfyUI test double cannot split animated PNG frames (ComfyUI's LoadImage can); "
                "use a multi-page TIFF or an animated WebP")
        frames = []
        sub = 0
        while inp.seek_subimage(sub, 0):
            sub += 1
            spec = inp.spec()
            data = inp.read_image(spec.format)
            if data is None:
                raise _unidentified(path)
            data = np.asarray(data)
            if data.ndim == 2:
                data = data[:, :, None]
            alpha = spec.alpha_channel
            color = [c for c in range(spec.nchannels) if c != alpha]
            data = _to_uint8(data, len(color), path)
            rgb = data[:, :, color[:3]] if len(color) >= 3 else np.repeat(data[:, :, color[:1]], 3, axis=2)
            if alpha >= 0:
                rgb = np.concatenate([rgb, data[:, :, alpha:alpha + 1]], axis=2)
            frames.append(_orient(rgb, spec.get_int_attribute("Orientation", 1)))
        if not frames:
            raise _unidentified(path)
        return frames
    finally:
        inp.close()


def encode_png(pixels: np.ndarray, text: Optional[List[Tuple[str, str]]] = None, compress_level: int = 4) -> bytes:
    """A minimal PNG encoder (8-bit grey, grey+alpha, RGB or RGBA) with optional tEXt chunks."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w, c = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    raw = np.empty((h, 1 + w * c), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(h, w * c)
    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))]
    for key, value in text or []:
        try:
            out.append(chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
        except UnicodeEncodeError:
            payload = key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8")
            out.append(chunk(b"iTXt", payload))
    out.append(chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level)))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


def encode_with_oiio(pixels: np.ndarray, extension: str, quality: int = 90) -> bytes:
    """Encode an 8-bit image to another format (used by /view?preview=webp)."""
    import tempfile

    import OpenImageIO as oiio

    h, w, c = pixels.shape
    fd, tmp = tempfile.mkstemp(suffix="." + extension)
    os.close(fd)
    try:
        out = oiio.ImageOutput.create(tmp)
        spec = oiio.ImageSpec(w, h, c, "uint8")
        spec.attribute("CompressionQuality", int(quality))
        spec.attribute("compression", f"{extension}:{int(quality)}")
        if out is None or not out.open(tmp, spec):
            raise OSError(f"cannot write {extension}: {oiio.geterror()}")
        out.write_image(np.ascontiguousarray(pixels))
        out.close()
        with open(tmp, "rb") as f:
            return f.read()
    finally:
        os.unlink(tmp)


def float_to_uint8(image: np.ndarray) -> np.ndarray:
    """SaveImage's conversion: 255 * x, clipped, truncated (so 1 - 200/255 gives 54, not 55)."""
    i = 255.0 * image
    return np.clip(i, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------
# resampling (comfy.utils.common_upscale with torch.nn.functional.interpolate semantics)


def _nearest_exact_index(in_size: int, out_size: int) -> np.ndarray:
    scale = np.float32(in_size) / np.float32(out_size)
    src = ((np.arange(out_size, dtype=np.float64) + 0.5) * np.float64(scale)).astype(np.float32)
    return np.minimum(np.floor(src).astype(np.int64), in_size - 1)


def _linear_weights(in_size: int, out_size: int):
    scale = np.float32(in_size) / np.float32(out_size)
    real = scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    real = np.maximum(real, np.float32(0.0))
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lam = np.clip(real - i0.astype(np.float32), 0, 1).astype(np.float32)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, (np.float32(1.0) - lam).astype(np.float32), lam


def _cubic_weights(in_size: int, out_size: int):
    a = -0.75
    scale = np.float32(in_size) / np.float32(out_size)
    real = scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    i0 = np.floor(real).astype(np.int64)
    t = (real - i0.astype(np.float32)).astype(np.float64)

    def conv1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def conv2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = [conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t)]
    indices = [np.clip(i0 - 1 + j, 0, in_size - 1) for j in range(4)]
    return indices, [w.astype(np.float32) for w in weights]


def _area_matrix(in_size: int, out_size: int) -> np.ndarray:
    m = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = ((i + 1) * in_size + out_size - 1) // out_size
        m[i, start:end] = 1.0 / (end - start)
    return m


def _sinc(x: np.ndarray) -> np.ndarray:
    px = np.pi * x
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0.0, 1.0, np.sin(px) / np.where(px == 0.0, 1.0, px))


def _pil_lanczos_matrix(in_size: int, out_size: int) -> np.ndarray:
    """PIL's precompute_coeffs + normalize_coeffs_8bpc for the LANCZOS filter (support 3), as an integer
    matrix in 22-bit fixed point."""
    precision_bits = 32 - 8 - 2
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    m = np.zeros((out_size, in_size), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        x = (np.arange(xmax) + xmin - center + 0.5) / filterscale
        w = np.where((x >= -3.0) & (x < 3.0), _sinc(x) * _sinc(x / 3.0), 0.0)
        ww = w.sum()
        if ww != 0.0:
            w = w / ww
        fixed = np.where(w < 0, np.trunc(-0.5 + w * (1 << precision_bits)), np.trunc(0.5 + w * (1 << precision_bits)))
        m[xx, xmin:xmin + xmax] = fixed.astype(np.int64)
    return m


def _pil_lanczos(samples: np.ndarray, width: int, height: int) -> np.ndarray:
    """comfy.utils.lanczos: 8-bit round trip through PIL's LANCZOS resize. samples: [B, C, H, W]."""
    precision_bits = 22
    images = np.clip(255.0 * samples.transpose(0, 2, 3, 1), 0, 255).astype(np.uint8)  # [B, H, W, C]
    out = images.astype(np.int64)
    in_h, in_w = out.shape[1:3]

    def horizontal(a: np.ndarray) -> np.ndarray:
        if a.shape[2] == width:
            return a
        acc = np.einsum("xw,bhwc->bhxc", _pil_lanczos_matrix(a.shape[2], width), a) + (1 << (precision_bits - 1))
        return np.clip(acc >> precision_bits, 0, 255)

    def vertical(a: np.ndarray) -> np.ndarray:
        if a.shape[1] == height:
            return a
        acc = np.einsum("yh,bhwc->bywc", _pil_lanczos_matrix(a.shape[1], height), a) + (1 << (precision_bits - 1))
        return np.clip(acc >> precision_bits, 0, 255)

    # Pillow 13 does the horizontal pass first, except (as measured against its binary) mostly when the
    # height shrinks while the width grows; then the vertical pass comes first. This heuristic matches
    # Pillow on about 96% of random size pairs; elsewhere a few pixels differ by some 8-bit levels.
    out = horizontal(vertical(out)) if (height < in_h and width > in_w) else vertical(horizontal(out))
    result = out.astype(np.uint8).astype(np.float32) / 255.0
    return result.transpose(0, 3, 1, 2)


def interpolate(samples: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """torch.nn.functional.interpolate(samples, size=(height, width), mode=mode) for [B, C, H, W]."""
    b, c, h, w = samples.shape
    if width <= 0 or height <= 0 or h <= 0 or w <= 0:
        raise RuntimeError(
            f"Input and output sizes should be greater than 0, but got input (H: {h}, W: {w}) "
            f"output (H: {height}, W: {width})")
    x = samples.astype(np.float32, copy=False)
    if mode == "nearest-exact":
        return x[:, :, _nearest_exact_index(h, height)][:, :, :, _nearest_exact_index(w, width)]
    if mode == "bilinear":
        y0, y1, wy0, wy1 = _linear_weights(h, height)
        x0, x1, wx0, wx1 = _linear_weights(w, width)
        rows0 = x[:, :, y0]
        rows1 = x[:, :, y1]
        top = rows0[:, :, :, x0] * wx0 + rows0[:, :, :, x1] * wx1
        bottom = rows1[:, :, :, x0] * wx0 + rows1[:, :, :, x1] * wx1
        return (top * wy0[:, None] + bottom * wy1[:, None]).astype(np.float32)
    if mode == "bicubic":
        yi, yw = _cubic_weights(h, height)
        xi, xw = _cubic_weights(w, width)
        out = np.zeros((b, c, height, width), dtype=np.float32)
        for j in range(4):
            rows = x[:, :, yi[j]]
            horiz = sum(rows[:, :, :, xi[k]] * xw[k] for k in range(4))
            out += horiz * yw[j][:, None]
        return out
    if mode == "area":
        my = _area_matrix(h, height)
        mx = _area_matrix(w, width)
        return np.einsum("yh,bchw,xw->bcyx", my, x.astype(np.float64), mx).astype(np.float32)
    raise NotImplementedError(f"upscale method {mode!r} is not supported by the ComfyUI test double")


def common_upscale(samples: np.ndarray, width: int, height: int, upscale_method: str, crop: str) -> np.ndarray:
    """comfy.utils.common_upscale for [B, C, H, W] arrays."""
    if crop == "center":
        old_width = samples.shape[-1]
        old_height = samples.shape[-2]
        old_aspect = old_width / old_height
        new_aspect = width / height
        x = 0
        y = 0
        if old_aspect > new_aspect:
            x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
        s = samples[:, :, y:old_height - y, x:old_width - x]
    else:
        s = samples
    if upscale_method == "lanczos":
        return _pil_lanczos(s, width, height)
    return interpolate(s, width, height, upscale_method)


# ---------------------------------------------------------------------------------------------------------
# gaussian blur (comfy_extras/nodes_post_processing.py Blur)


def gaussian_kernel_1d(kernel_size: int, sigma: float) -> np.ndarray:
    """The 2D kernel of ComfyUI (exp(-(x²+y²)/(2σ²)) on linspace(-1, 1), normalised) is separable: it is
    the outer product of this 1D kernel with itself."""
    x = np.linspace(-1.0, 1.0, kernel_size, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def gaussian_blur(image: np.ndarray, blur_radius: int, sigma: float) -> np.ndarray:
    if blur_radius == 0:
        return image
    batch, height, width, channels = image.shape
    for dim, size in ((3, width), (2, height)):
        if blur_radius >= size:
            raise RuntimeError(
                "Argument #4: Padding size should be less than the corresponding input dimension, but got: "
                f"padding ({blur_radius}, {blur_radius}) at dimension {dim} of input "
                f"[{batch}, {channels}, {height}, {width}]")
    kernel_size = blur_radius * 2 + 1
    k = gaussian_kernel_1d(kernel_size, sigma)
    r = blur_radius
    padded = np.pad(image.astype(np.float64), ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
    vertical = np.zeros((batch, height, width + 2 * r, channels), dtype=np.float64)
    for i in range(kernel_size):
        vertical += k[i] * padded[:, i:i + height]
    out = np.zeros((batch, height, width, channels), dtype=np.float64)
    for j in range(kernel_size):
        out += k[j] * vertical[:, :, j:j + width]
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# nodes


class Node:
    CLASS_TYPE = ""
    FUNCTION = "run"
    INPUT_IS_LIST = False
    OUTPUT_IS_LIST: Optional[Tuple[bool, ...]] = None
    VALIDATE_INPUTS: Optional[Callable[..., Any]] = None
    VALIDATE_ARGS: Tuple[str, ...] = ()
    IS_CHANGED: Optional[Callable[..., Any]] = None

    def __init__(self, env: Env):
        self.env = env

    @classmethod
    def info(cls, env: Env) -> dict:
        return definition(cls.CLASS_TYPE)

    @classmethod
    def INPUT_TYPES(cls, env: Env) -> dict:
        return cls.info(env)["input"]

    @classmethod
    def return_types(cls) -> tuple:
        return tuple(definition(cls.CLASS_TYPE)["output"])

    @classmethod
    def is_output_node(cls) -> bool:
        return definition(cls.CLASS_TYPE)["output_node"] is True


class LoadImage(Node):
    CLASS_TYPE = "LoadImage"
    VALIDATE_ARGS = ("image",)

    @classmethod
    def info(cls, env: Env) -> dict:
        info = definition(cls.CLASS_TYPE)
        input_dir = env.input_dir
        files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))]
        files = filter_files_content_types(files, ["image"])
        info["input"]["required"]["image"][0] = sorted(files)
        return info

    @classmethod
    def VALIDATE_INPUTS(cls, env: Env, image):
        if not env.exists_annotated_filepath(image):
            return f"Invalid image file: {image}"
        return True

    @classmethod
    def IS_CHANGED(cls, env: Env, image):
        m = hashlib.sha256()
        with open(env.get_annotated_filepath(image), "rb") as f:
            m.update(f.read())
        return m.digest().hex()

    def run(self, image):
        frames = read_image_frames(self.env.get_annotated_filepath(image))
        images, masks = [], []
        w = h = None
        for frame in frames:
            if not images:
                h, w = frame.shape[:2]
            if frame.shape[0] != h or frame.shape[1] != w:
                continue
            images.append(frame[None, :, :, :3].astype(np.float32) / 255.0)
            if frame.shape[2] == 4:
                masks.append((1.0 - frame[None, :, :, 3].astype(np.float32) / 255.0).astype(np.float32))
            else:
                masks.append(np.zeros((1, 64, 64), dtype=np.float32))
        if len(images) > 1:
            return (np.concatenate(images, axis=0), np.concatenate(masks, axis=0))
        return (images[0], masks[0])


class ImageInvert(Node):
    CLASS_TYPE = "ImageInvert"

    def run(self, image):
        return (1.0 - image,)


class ImageBlend(Node):
    """comfy_extras/nodes_post_processing.py ImageBlend: image1 x (1 - f) + blend(image1, image2) x f, clamped
    to 0..1, every blend mode of ComfyUI 0.3.64's Blend.blend_mode (image2 the size of image1, as the workflows
    use it: the double refuses others instead of resizing them)."""

    CLASS_TYPE = "ImageBlend"

    def run(self, image1, image2, blend_factor, blend_mode):
        a, b = np.asarray(image1, dtype=np.float32), np.asarray(image2, dtype=np.float32)
        if a.shape != b.shape:
            raise ValueError(f"the double's ImageBlend takes images of one size, not {a.shape} and {b.shape}")
        if blend_mode == "soft_light":
            g = np.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, np.sqrt(np.maximum(a, 0)))
            blended = np.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (g - a))
        else:
            blended = {"normal": b, "multiply": a * b, "screen": 1 - (1 - a) * (1 - b), "difference": a - b,
                       "overlay": np.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))}[blend_mode]
        return (np.clip(a * (1 - blend_factor) + blended * blend_factor, 0, 1).astype(np.float32),)


class InvertMask(Node):
    """comfy_extras/nodes_mask.py InvertMask: ``1.0 - mask``, one float32 subtraction as in torch."""

    CLASS_TYPE = "InvertMask"

    def run(self, mask):
        return ((1.0 - np.asarray(mask, dtype=np.float32)).astype(np.float32, copy=False),)


class ImageToMask(Node):
    """comfy_extras/nodes_mask.py ImageToMask: one channel of the images as the mask."""

    CLASS_TYPE = "ImageToMask"

    def run(self, image, channel):
        return (np.asarray(image, dtype=np.float32)[:, :, :, ["red", "green", "blue", "alpha"].index(channel)],)


class MaskToImage(Node):
    """comfy_extras/nodes_mask.py MaskToImage: the mask repeated in three channels."""

    CLASS_TYPE = "MaskToImage"

    def run(self, mask):
        masks = np.asarray(mask, dtype=np.float32)
        masks = masks.reshape((-1, masks.shape[-2], masks.shape[-1]))
        return (np.repeat(masks[:, :, :, None], 3, axis=3),)


class JoinImageWithAlpha(Node):
    """comfy_extras/nodes_compositing.py JoinImageWithAlpha (0.3.64): ``1 - alpha`` (a ComfyUI mask) becomes
    the fourth channel, the mask resized bilinearly to the images; as many images as the shorter batch."""

    CLASS_TYPE = "JoinImageWithAlpha"

    def run(self, image, alpha):
        images = np.asarray(image, dtype=np.float32)
        masks = np.asarray(alpha, dtype=np.float32)
        masks = masks.reshape((-1, 1, masks.shape[-2], masks.shape[-1]))
        if masks.shape[2:] != images.shape[1:3]:
            masks = interpolate(masks, images.shape[2], images.shape[1], "bilinear")
        opacity = (1.0 - masks[:, 0]).astype(np.float32)
        count = min(len(images), len(opacity))
        return (np.stack([np.concatenate([images[i][:, :, :3], opacity[i][:, :, None]], axis=2)
                          for i in range(count)]),)


class ImageBlur(Node):
    CLASS_TYPE = "ImageBlur"

    def run(self, image, blur_radius, sigma):
        return (gaussian_blur(image, blur_radius, sigma),)


class ImageScale(Node):
    CLASS_TYPE = "ImageScale"

    def run(self, image, upscale_method, width, height, crop):
        if width == 0 and height == 0:
            return (image,)
        samples = image.transpose(0, 3, 1, 2)
        if width == 0:
            width = max(1, round(samples.shape[3] * height / samples.shape[2]))
        elif height == 0:
            height = max(1, round(samples.shape[2] * width / samples.shape[3]))
        s = common_upscale(samples, width, height, upscale_method, crop)
        return (np.ascontiguousarray(s.transpose(0, 2, 3, 1)),)


class ImageScaleBy(Node):
    CLASS_TYPE = "ImageScaleBy"

    def run(self, image, upscale_method, scale_by):
        samples = image.transpose(0, 3, 1, 2)
        width = round(samples.shape[3] * scale_by)
        height = round(samples.shape[2] * scale_by)
        s = common_upscale(samples, width, height, upscale_method, "disabled")
        return (np.ascontiguousarray(s.transpose(0, 2, 3, 1)),)


class ImageBatch(Node):
    CLASS_TYPE = "ImageBatch"

    def run(self, image1, image2):
        if image1.shape[1:] != image2.shape[1:]:
            image2 = common_upscale(image2.transpose(0, 3, 1, 2), image1.shape[2], image1.shape[1], "bilinear",
                                    "center").transpose(0, 2, 3, 1)
        return (np.concatenate((image1, image2), axis=0),)


class RepeatImageBatch(Node):
    CLASS_TYPE = "RepeatImageBatch"

    def run(self, image, amount):
        return (np.tile(image, (amount, 1, 1, 1)),)


class ImageFromBatch(Node):
    CLASS_TYPE = "ImageFromBatch"

    def run(self, image, batch_index, length):
        batch_index = min(image.shape[0] - 1, batch_index)
        length = min(image.shape[0] - batch_index, length)
        return (image[batch_index:batch_index + length].copy(),)


def get_save_image_path(filename_prefix: str, output_dir: str, image_width=0, image_height=0):
    """folder_paths.get_save_image_path: the counter is one more than the highest existing
    `<prefix>_<digits>…` file in the target folder."""
    import time

    def map_filename(filename: str):
        prefix_len = len(os.path.basename(filename_prefix))
        prefix = filename[:prefix_len + 1]
        try:
            digits = int(filename[prefix_len + 1:].split("_")[0])
        except ValueError:
            digits = 0
        return digits, prefix

    if "%" in filename_prefix:
        now = time.localtime()
        for key, value in (("%width%", str(image_width)), ("%height%", str(image_height)),
                           ("%year%", str(now.tm_year)), ("%month%", str(now.tm_mon).zfill(2)),
                           ("%day%", str(now.tm_mday).zfill(2)), ("%hour%", str(now.tm_hour).zfill(2)),
                           ("%minute%", str(now.tm_min).zfill(2)), ("%second%", str(now.tm_sec).zfill(2))):
            filename_prefix = filename_prefix.replace(key, value)

    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    common = os.path.commonpath((output_dir, os.path.abspath(full_output_folder)))
    if common != output_dir:
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(full_output_folder)}"
            f"\n         output_dir: {output_dir}"
            f"\n         commonpath: {common}")
    try:
        candidates = [m for m in map(map_filename, os.listdir(full_output_folder))
                      if os.path.normcase(m[1][:-1]) == os.path.normcase(filename) and m[1][-1:] == "_"]
        counter = max(candidates)[0] + 1 if candidates else 1
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
        counter = 1
    return full_output_folder, filename, counter, subfolder, filename_prefix


class SaveImage(Node):
    CLASS_TYPE = "SaveImage"

    def __init__(self, env: Env):
        super().__init__(env)
        self.output_dir = env.output_dir
        self.type = "output"
        self.prefix_append = ""
        self.compress_level = 4

    def run(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        filename_prefix += self.prefix_append
        full_output_folder, filename, counter, subfolder, filename_prefix = get_save_image_path(
            filename_prefix, self.output_dir, images[0].shape[1], images[0].shape[0])
        results = []
        for batch_number, image in enumerate(images):
            pixels = float_to_uint8(image)
            if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
                raise TypeError(f"Cannot handle this data type: (1, 1, {pixels.shape[-1]}), |u1")
            text = []
            if not self.env.disable_metadata:
                if prompt is not None:
                    text.append(("prompt", json.dumps(prompt)))
                if extra_pnginfo is not None:
                    for x in extra_pnginfo:
                        text.append((x, json.dumps(extra_pnginfo[x])))
            filename_with_batch_num = filename.replace("%batch_num%", str(batch_number))
            file = f"{filename_with_batch_num}_{counter:05}_.png"
            data = encode_png(pixels, text, self.compress_level)
            with open(os.path.join(full_output_folder, file), "wb") as f:
                f.write(data)
            results.append({"filename": file, "subfolder": subfolder, "type": self.type})
            counter += 1
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    CLASS_TYPE = "PreviewImage"

    def __init__(self, env: Env):
        super().__init__(env)
        self.output_dir = env.temp_dir
        self.type = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        self.compress_level = 1


# ---------------------------------------------------------------------------------------------------------
# custom-node packs and test-only nodes


def round_to_dtype(image: np.ndarray, dtype: str) -> np.ndarray:
    """torch's ``x.to(float16 | bfloat16).to(float32)`` (round to nearest, ties to even) for float32 arrays."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    if dtype == "float16":
        return image.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":
        bits = image.view(np.uint32)
        bits = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)
        return bits.view(np.float32)
    return image


class RIFEVFI(Node):
    """``RIFE VFI`` of the custom node pack Fannovel16/ComfyUI-Frame-Interpolation.

    The definition (object_info/RIFE VFI.json) is the pack's entry of
    shared/reference/comfyui/object_info/ComfyUI-Frame-Interpolation.json, recorded at the pack's commit
    26545cc2dd; the frame loop follows ``RIFE_VFI.vfi`` in vfi_models/rife/__init__.py at that commit (RIFE
    has its own loop there, not vfi_utils.generic_frame_loop):

    * for N frames and an int multiplier m: frame 0, its m - 1 in-betweens (timesteps k/m, k = 1..m-1), frame
      1, ..., frame N-2, its in-betweens, then frame N-1 once: (N - 1) * m + 1 frames; N = 1 gives the one
      frame back (no error, unlike the pack's other VFI nodes); m = 1 gives the frames back;
    * a list multiplier (linked from ``VFI FloatToInt``) gives pair i multiplier[i], missing entries 2;
    * ``optional_interpolation_states`` (from ``Make Interpolation State List``, a node the double lacks)
      skips pairs: a skipped pair keeps its first frame and gets no in-betweens;
    * every output frame, source frames included, goes through ``.to(dtype)`` and back to float32: with
      float16, 131 of the 256 8-bit levels of a source frame come out of SaveImage one level lower
      (bfloat16 always rounds v/255 up, so its source levels survive); only the first three channels
      are kept;
    * ``clear_cache_after_n_frames`` (how many finished pairs between ``soft_empty_cache()`` +
      ``gc.collect()`` calls), ``batch_size`` (in-betweens per model call), ``fast_mode``, ``ensemble``,
      ``scale_factor`` and ``torch_compile`` only change memory use, speed or the model's flow estimate:
      the double accepts and ignores them.

    The real node downloads ``ckpt_name`` into the pack's ckpts/rife folder on first use; the double loads
    no model and accepts any checkpoint its definition lists.
    """

    CLASS_TYPE = "RIFE VFI"

    def run(self, ckpt_name, frames, clear_cache_after_n_frames=10, multiplier=2, fast_mode=False,
            ensemble=False, scale_factor=1.0, dtype="float32", torch_compile=False, batch_size=1,
            optional_interpolation_states=None, **kwargs):
        frames = np.asarray(frames, dtype=np.float32)[..., :3]
        n_pairs = len(frames) - 1
        if isinstance(multiplier, (int, np.integer)):
            multipliers = [int(multiplier)] * n_pairs
        else:
            multipliers = [int(m) for m in multiplier]
            multipliers += [2] * (n_pairs - len(multipliers))
        output = []
        for i in range(n_pairs):
            output.append(frames[i:i + 1])
            if optional_interpolation_states is not None and optional_interpolation_states.is_frame_skipped(i):
                continue
            m = multipliers[i]
            for k in range(1, m):
                # A stand-in for RIFE's optical flow: the in-between at timestep k/m is the linear mix
                # (1 - k/m) * frame_i + (k/m) * frame_i+1 (a cross-fade, no motion), computed in float32.
                mix = np.float32(1.0 - k / m) * frames[i:i + 1] + np.float32(k / m) * frames[i + 1:i + 2]
                output.append(np.clip(mix, 0.0, 1.0))
        output.append(frames[-1:])
        return (round_to_dtype(np.concatenate(output, axis=0), dtype),)


class ComfyFarmTemporalMean(Node):
    """NOT a real ComfyUI node: a test-only node of this double (no pack provides it), for testing how
    comfyfarm splits a sequence into windows. Its definition (object_info/ComfyFarmTemporalMean.json,
    category "comfyfarm/testing") is written by hand in the shape ComfyUI gives a classic custom node.

    Output frame i is the mean of input frames max(0, i - radius) .. min(N - 1, i + radius), so it depends
    on its neighbours, and frames near the batch's ends average fewer of them: a sequence cut into windows
    naively shows seams at the windows' edges. The mean is taken in float64 and stored as float32.
    """

    CLASS_TYPE = "ComfyFarmTemporalMean"

    def run(self, image, radius):
        image = np.asarray(image, dtype=np.float32)
        n = image.shape[0]
        out = np.empty_like(image)
        for i in range(n):
            lo, hi = max(0, i - radius), min(n - 1, i + radius)
            out[i] = image[lo:hi + 1].astype(np.float64).mean(axis=0)
        return (out,)


NODE_CLASS_MAPPINGS: Dict[str, type] = {
    cls.CLASS_TYPE: cls
    for cls in (LoadImage, ImageInvert, ImageBlend, ImageBlur, ImageScale, ImageScaleBy, ImageBatch, RepeatImageBatch,
                ImageFromBatch, SaveImage, PreviewImage, InvertMask, ImageToMask, MaskToImage, JoinImageWithAlpha,
                RIFEVFI, ComfyFarmTemporalMean)
}


def node_info(env: Env, class_type: str) -> dict:
    return NODE_CLASS_MAPPINGS[class_type].info(env)


def all_node_info(env: Env) -> dict:
    return {name: cls.info(env) for name, cls in NODE_CLASS_MAPPINGS.items()}
