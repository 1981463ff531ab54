"""Source media behind clips: real image sequences on disk (read with OpenImageIO) or media that lives only
inside Flame (pixels generated on demand).

Generated pixels are a deterministic test pattern: R = (x + 0.5) / width, G = (y + 0.5) / height,
B = (frame_number % 1000) / 1000, A = 1. ``frame_tag(path)`` reads the frame number (mod 1000) back from the
B channel of a written float or 16-bit file, so tests can tell which source frame ended up in which output file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _time

log = logging.getLogger(__name__)

# file extension -> (OpenImageIO-writable bit depths, float?)
_FORMATS: Dict[str, Dict[int, Tuple[str, Optional[int]]]] = {
    # bit depth -> (OIIO data format, oiio:BitsPerSample or None)
    "exr": {16: ("half", None), 32: ("float", None)},
    "dpx": {8: ("uint8", None), 10: ("uint16", 10), 12: ("uint16", 12), 16: ("uint16", None)},
    "png": {8: ("uint8", None), 16: ("uint16", None)},
    "jpg": {8: ("uint8", None)},
    "tif": {8: ("uint8", None), 16: ("uint16", None), 32: ("float", None)},
}
_TIMECODE_FORMATS = {"exr", "dpx"}

_FRAME_FILE_RE = re.compile(r"^(?P<head>.*?)(?P<digits>\d+)(?P<tail>\.[A-Za-z0-9]+)$")


def writable_bit_depths(ext: str) -> Dict[int, Tuple[str, Optional[int]]]:
    if ext not in _FORMATS:
        raise ValueError(f"Unsupported image format {ext!r}; the double writes {', '.join(_FORMATS)}")
    return _FORMATS[ext]


def pack_timecode(frame: int, rate_name: str) -> int:
    """SMPTE 12M BCD timecode word (as in an EXR/DPX header) for an absolute frame."""
    fr = _time.frame_rate(rate_name)
    tc = _time.frame_to_timecode(frame, rate_name, separator=":")
    hh, mm, ss, ff = (int(p) for p in tc.split(":"))

    def bcd(v: int) -> int:
        return ((v // 10) << 4) | (v % 10)

    word = bcd(ff) | (bcd(ss) << 8) | (bcd(mm) << 16) | (bcd(hh) << 24)
    if fr.drop:
        word |= 1 << 6
    return word


def unpack_timecode(word: int) -> Tuple[str, bool]:
    """``("HH:MM:SS:FF", drop_frame)`` from a SMPTE BCD timecode word."""

    def unbcd(v: int) -> int:
        return (v >> 4) * 10 + (v & 0xF)

    ff = unbcd(word & 0x3F)
    ss = unbcd((word >> 8) & 0x7F)
    mm = unbcd((word >> 16) & 0x7F)
    hh = unbcd((word >> 24) & 0x3F)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}", bool(word & (1 << 6))


@dataclass
class FileSequence:
    """Frames on disk: ``directory/head + number padded to padding + tail`` for numbers first..last."""

    directory: str
    head: str
    tail: str
    padding: int  # 0: no padding
    first: int
    last: int
    numbered: bool = True  # False: one file without a frame number (head + tail is its name)

    def path(self, number: int) -> str:
        if not self.numbered:
            return os.path.join(self.directory, f"{self.head}{self.tail}")
        digits = f"{number:0{self.padding}d}" if self.padding else str(number)
        return os.path.join(self.directory, f"{self.head}{digits}{self.tail}")

    @property
    def numbers(self) -> range:
        return range(self.first, self.last + 1)

    def flame_pattern(self) -> str:
        """The ``/dir/name.[1001-1048].exr`` form that import_clips takes."""
        if not self.numbered:
            return self.path(self.first)
        pad = self.padding
        first = f"{self.first:0{pad}d}" if pad else str(self.first)
        last = f"{self.last:0{pad}d}" if pad else str(self.last)
        return os.path.join(self.directory, f"{self.head}[{first}-{last}]{self.tail}")

    def missing(self) -> List[str]:
        return [self.path(n) for n in self.numbers if not os.path.isfile(self.path(n))]


def split_frame_file(name: str) -> Optional[Tuple[str, str, str]]:
    """``plate.1001.exr`` → ("plate.", "1001", ".exr"); None when the name has no frame number."""
    m = _FRAME_FILE_RE.match(name)
    if not m:
        return None
    return m.group("head"), m.group("digits"), m.group("tail")


@dataclass
class Media:
    """One source: a file sequence or in-Flame media; shared by a clip, its duplicates and sequence segments."""

    uid: str
    name: str
    width: int
    height: int
    channels: int
    bit_depth: int
    frame_rate: str
    start_tc: int  # absolute frame (timecode) of media frame 0
    length: int
    start_frame: int  # frame number of media frame 0 (the first file's number for file media)
    colour_space: str
    tape_name: str = ""
    files: Optional[FileSequence] = None
    header: Dict[str, Any] = field(default_factory=dict)

    @property
    def file_path(self) -> str:
        """What PySegment.file_path shows: the first frame's path, or "" for media inside Flame."""
        return self.files.path(self.files.first) if self.files else ""

    def frame_number(self, index: int) -> int:
        return self.start_frame + index

    def pixels(self, index: int) -> np.ndarray:
        """Float32 (height, width, channels) pixels of media frame ``index`` (0-based)."""
        if not 0 <= index < self.length:
            raise IndexError(f"frame index {index} outside {self.name!r} (0..{self.length - 1})")
        if self.files is None:
            return pattern_pixels(self.width, self.height, self.channels, self.frame_number(index))
        return read_pixels(self.files.path(self.files.first + index))


def pattern_pixels(width: int, height: int, channels: int, frame_number: int) -> np.ndarray:
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    img = np.empty((height, width, channels), dtype=np.float32)
    img[:, :, 0] = xs[None, :]
    if channels > 1:
        img[:, :, 1] = ys[:, None]
    if channels > 2:
        img[:, :, 2] = (frame_number % 1000) / 1000.0
    if channels > 3:
        img[:, :, 3:] = 1.0
    return img


def _oiio() -> Any:
    import OpenImageIO as oiio  # imported lazily: only sessions that touch pixels pay for it

    return oiio


def read_header(path: str) -> Dict[str, Any]:
    """Size, channels, bit depth, timecode and frame rate from an image header; OSError when unreadable."""
    oiio = _oiio()
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise OSError(f"Cannot read {path}: {oiio.geterror()}")
    try:
        spec = inp.spec()
        fmt = str(spec.format)
        bits = spec.get_int_attribute("oiio:BitsPerSample", 0)
        if fmt == "half":
            bit_depth, is_float = 16, True
        elif fmt in ("float", "double"):
            bit_depth, is_float = 32, True
        elif fmt == "uint8":
            bit_depth, is_float = 8, False
        else:
            bit_depth, is_float = (bits if bits in (10, 12) else 16), False
        header: Dict[str, Any] = {
            "width": spec.width,
            "height": spec.height,
            "channels": spec.nchannels,
            "bit_depth": bit_depth,
            "float": is_float,
            "timecode": None,
            "drop_frame": False,
            "fps": None,
        }
        tc = spec.getattribute("smpte:TimeCode")
        if tc is not None:
            word = tc[0] if isinstance(tc, (tuple, list)) else int(tc)
            header["timecode"], header["drop_frame"] = unpack_timecode(int(word))
        fps = spec.getattribute("FramesPerSecond")
        if isinstance(fps, (tuple, list)) and len(fps) == 2 and fps[1]:
            header["fps"] = Fraction(int(fps[0]), int(fps[1]))
        elif isinstance(fps, (int, float)) and fps:
            header["fps"] = Fraction(fps).limit_denominator(1001)
        return header
    finally:
        inp.close()


def read_pixels(path: str) -> np.ndarray:
    oiio = _oiio()
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise OSError(f"Cannot read {path}: {oiio.geterror()}")
    try:
        data = inp.read_image("float")
    finally:
        inp.close()
    if data is None:
        raise OSError(f"Cannot read pixels of {path}: {oiio.geterror()}")
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def write_pixels(
    path: str,
    pixels: np.ndarray,
    ext: str,
    bit_depth: int,
    timecode_frame: Optional[int] = None,
    frame_rate: Optional[str] = None,
    quality: Optional[int] = None,
    write_frame_rate: bool = True,
) -> None:
    """Write one frame with OpenImageIO; EXR/DPX get the SMPTE timecode and frame rate in their headers."""
    oiio = _oiio()
    depths = writable_bit_depths(ext)
    if bit_depth not in depths:
        raise ValueError(f"Cannot write {bit_depth}-bit {ext}; supported: {sorted(depths)}")
    fmt, bits_per_sample = depths[bit_depth]
    height, width, channels = pixels.shape
    spec = oiio.ImageSpec(width, height, channels, fmt)
    if bits_per_sample:
        spec.attribute("oiio:BitsPerSample", bits_per_sample)
    if ext == "exr":
        spec.attribute("compression", "none")
    if quality is not None and ext == "jpg":
        spec.attribute("Compression", f"jpeg:{quality}")
    if frame_rate is not None:
        fr = _time.frame_rate(frame_rate)
        if write_frame_rate:
            spec.attribute("FramesPerSecond", oiio.TypeRational, (fr.rate.numerator, fr.rate.denominator))
        if timecode_frame is not None and ext in _TIMECODE_FORMATS:
            spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (pack_timecode(timecode_frame, frame_rate), 0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = oiio.ImageOutput.create(path)
    if out is None:
        raise OSError(f"Cannot write {path}: {oiio.geterror()}")
    try:
        if not out.open(path, spec):
            raise OSError(f"Cannot open {path} for writing: {out.geterror()}")
        data = np.clip(pixels, 0.0, 1.0) if fmt.startswith("uint") else pixels
        if not out.write_image(np.ascontiguousarray(data, dtype=np.float32)):
            raise OSError(f"Cannot write {path}: {out.geterror()}")
    finally:
        out.close()


def fit_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Drop or add channels (an added alpha is 1, added colour channels copy the last one)."""
    have = pixels.shape[2]
    if have == channels:
        return pixels
    if have > channels:
        return pixels[:, :, :channels]
    extra = [np.ones_like(pixels[:, :, :1]) if c == 3 else pixels[:, :, -1:] for c in range(have, channels)]
    return np.concatenate([pixels, *extra], axis=2)


def resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    if pixels.shape[1] == width and pixels.shape[0] == height:
        return pixels
    oiio = _oiio()
    src = oiio.ImageBuf(np.ascontiguousarray(pixels, dtype=np.float32))
    dst = oiio.ImageBufAlgo.resize(src, roi=oiio.ROI(0, width, 0, height, 0, 1, 0, pixels.shape[2]))
    return np.asarray(dst.get_pixels(oiio.FLOAT), dtype=np.float32)


def frame_tag(path: str) -> int:
    """The frame number (mod 1000) that the test pattern stored in a frame's B channel."""
    px = read_pixels(str(path))
    return int(round(float(px[px.shape[0] // 2, px.shape[1] // 2, 2]) * 1000)) % 1000
