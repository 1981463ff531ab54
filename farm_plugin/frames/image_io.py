"""Read and write plates with OpenImageIO: EXR (half, float), DPX (8–16 bit), TIFF, PNG, JPEG.

Writes are atomic: the image goes to a hidden temporary file beside the target (``.<name>.<random>.tmp.<ext>``,
which no frame pattern matches) and is renamed over the target once complete. The header attributes
listed in ``CARRIED_ATTRIBUTES`` (timecode, frame rate, colour space, dates, credits, pixel aspect) are
carried from the source plate into what is written, in the names each format uses.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np
import OpenImageIO as oiio

from farm_plugin.atomic import atomic_path

from .errors import PlateError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

# Header attributes worth carrying from a source plate into a result, under OpenImageIO's names.
# OpenImageIO renames EXR's capDate, owner and comments to DateTime, Copyright and ImageDescription
# when it reads a file, and back when it writes one; they are listed for files read otherwise.
CARRIED_ATTRIBUTES = (
    "smpte:TimeCode",
    "FramesPerSecond",
    "oiio:ColorSpace",
    "DateTime",
    "Artist",
    "Copyright",
    "ImageDescription",
    "DocumentName",
    "HostComputer",
    "PixelAspectRatio",
    "capDate",
    "owner",
    "comments",
    "utcOffset",
    "smpte:KeyCode",
)
# Where writers put the frame rate and the timecode, in the order they are trusted: OpenImageIO's own names,
# OpenEXR's standard attributes (Nuke, Flame, Resolve), DPX's TV and film headers, then text that other
# writers (and Nuke's metadata pass-through) leave.
FRAME_RATE_ATTRIBUTES = ("FramesPerSecond", "framesPerSecond", "dpx:FrameRate", "dpx:TemporalFrameRate",
                         "nuke/input/frame_rate", "input/frame_rate")
TIMECODE_ATTRIBUTES = ("smpte:TimeCode", "timeCode", "TimeCode", "timecode", "dpx:TimeCode",
                       "nuke/input/timecode", "input/timecode")
MAX_FRAME_RATE = 1000
_ATTRIBUTE_TYPES = {
    "smpte:TimeCode": "timecode",
    "smpte:KeyCode": "keycode",
    "FramesPerSecond": "rational",
    "PixelAspectRatio": "float",
    "utcOffset": "float",
}

# File format: OpenImageIO's name for it, from an extension or a name a user may write.
_FORMAT_NAMES = {
    "exr": "openexr",
    "openexr": "openexr",
    "dpx": "dpx",
    "tif": "tiff",
    "tiff": "tiff",
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
}
FORMATS_WITHOUT_ALPHA = ("jpeg",)  # OpenImageIO's names of the formats that cannot hold an alpha channel
FLOAT_FORMATS = ("openexr", "tiff")  # … and of those that can hold float pixels
_EXTENSIONS = {"openexr": "exr", "dpx": "dpx", "tiff": "tif", "png": "png", "jpeg": "jpg"}

# Bit depth: OpenImageIO pixel type and bits per sample.
_BIT_DEPTHS = {
    "uint8": ("uint8", 8),
    "uint10": ("uint16", 10),
    "uint12": ("uint16", 12),
    "uint16": ("uint16", 16),
    "half": ("half", 16),
    "float": ("float", 32),
}
_FORMAT_BIT_DEPTHS = {
    "openexr": ("half", "float"),
    "dpx": ("uint8", "uint10", "uint12", "uint16"),
    "tiff": ("uint8", "uint16", "half", "float"),
    "png": ("uint8", "uint16"),
    "jpeg": ("uint8",),
}
# Without a source of the same format: the format's usual depth for plates, never below 10 bits where
# the format allows more (a scene-linear plate written to PNG or TIFF would band at 8 bits).
DEFAULT_BIT_DEPTHS = {"openexr": "half", "dpx": "uint10", "tiff": "uint16", "png": "uint16", "jpeg": "uint8"}
_COMPRESSION = {"openexr": "zip", "tiff": "zip", "jpeg": "jpeg:95"}


@dataclass(frozen=True)
class PlateInfo:
    """What a plate's header says: size, channels, format, pixel type and carried metadata.

    ``format`` is OpenImageIO's name ("openexr", "dpx", "tiff", "png", "jpeg"); ``pixel_type`` how
    samples are stored ("half", "float", "uint8", "uint16"); ``bits_per_sample`` the bits used (10 for a
    10-bit DPX stored as uint16). ``metadata`` holds the ``CARRIED_ATTRIBUTES`` found, with the frame
    rate as ``FramesPerSecond`` (numerator, denominator) and the timecode as ``smpte:TimeCode``
    (SMPTE BCD, user bits) whatever the format called them.
    """

    path: str
    width: int
    height: int
    channels: int
    channel_names: Tuple[str, ...]
    format: str
    pixel_type: str
    bits_per_sample: int
    metadata: Dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def bit_depth(self) -> str:
        """``pixel_type`` with the bits a DPX really uses: "uint10", "uint12", else ``pixel_type``."""
        if self.pixel_type == "uint16" and self.bits_per_sample in (10, 12):
            return f"uint{self.bits_per_sample}"
        return self.pixel_type

    @property
    def is_float(self) -> bool:
        return self.pixel_type in ("half", "float", "double")

    @property
    def timecode(self) -> Optional[str]:
        """``"HH:MM:SS:FF"`` (``;`` before the frames when drop-frame), or None."""
        timecode = parse_timecode(self.metadata.get("smpte:TimeCode"))
        return None if timecode is None else timecode_text(timecode[0])

    @property
    def fps(self) -> Optional[float]:
        rate = parse_frame_rate(self.metadata.get("FramesPerSecond"))
        return None if rate is None else rate[0] / rate[1]


def probe(path: PathLike) -> PlateInfo:
    """Read ``path``'s header (not its pixels)."""
    text = os.fspath(path)
    image_input = _open_input(text)
    try:
        return _plate_info(text, image_input.format_name(), image_input.spec())
    finally:
        image_input.close()


def read_pixels(path: PathLike, *, straight_alpha: bool = False, keep_half: bool = False) -> np.ndarray:
    """The pixels of ``path``'s first image as float32 (height, width, channels), integers scaled to 0..1.

    OpenImageIO gives colour multiplied by alpha (it premultiplies a PNG's straight colour as it reads);
    ``straight_alpha`` keeps the colour as the file stores it (an RGBA PNG that ComfyUI wrote).
    ``keep_half``: a file of half floats gives float16, as stored (half the memory, no conversion).

    A truncated or damaged file raises ``PlateError``, also where the decoder returned partial pixels
    with a warning (libjpeg's "Premature end of JPEG file").
    """
    text = os.fspath(path)
    image_input = _open_input(text, straight_alpha=straight_alpha)
    try:
        spec = image_input.spec()
        channels = spec.nchannels
        half = keep_half and all(channel_format == oiio.HALF
                                 for channel_format in (spec.channelformats or (spec.format,)))
        pixels = image_input.read_image("half" if half else "float")
        error = image_input.geterror()
    finally:
        image_input.close()
    if pixels is None or error:
        raise PlateError(
            f"cannot read the pixels of plate '{text}': {_one_line(error) or 'no pixels returned'}: the file is "
            f"incomplete or damaged; export or render it again",
            path=text,
        )
    dtype = np.float16 if half else np.float32
    return np.ascontiguousarray(pixels, dtype=dtype).reshape(pixels.shape[0], pixels.shape[1], channels)


def write_frame(
    path: PathLike,
    pixels: np.ndarray,
    *,
    like: Optional[PlateInfo] = None,
    file_format: Optional[str] = None,
    bit_depth: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    channel_names: Optional[Sequence[str]] = None,
) -> PlateInfo:
    """Write ``pixels`` (height, width, channels; floats in 0..1 for integer formats) to ``path`` atomically.

    The format is the one ``path``'s extension names; ``file_format`` ("exr", "dpx", "tiff", "png",
    "jpeg"), when given, must agree with it. The bit depth is ``bit_depth`` ("uint8", "uint10",
    "uint12", "uint16", "half", "float"), else ``like``'s when ``like`` has the same format, else float
    when ``like`` is float and the format holds float (``FLOAT_FORMATS``: a half EXR plate's result in TIFF
    is a float TIFF, not a 16-bit integer one), else ``DEFAULT_BIT_DEPTHS``. ``like``'s carried metadata
    and channel names go into the header, updated by ``metadata``; ``channel_names`` names the channels
    instead. Before the file takes ``path``'s name its first and last scanlines are decoded (a full disk can
    cut it short without the writer noticing). On failure nothing at ``path`` changes and no temporary file
    is left. Returns the header of the written file.
    """
    target = Path(path)
    image = _image_array(pixels, target)
    format_name = _resolve_format(target, file_format)
    depth = _resolve_bit_depth(target, format_name, bit_depth, like)
    carried = dict(like.metadata) if like is not None else {}
    carried.update(metadata or {})
    spec = _output_spec(image, format_name, depth, carried)
    if channel_names is not None:
        if len(channel_names) != spec.nchannels:
            raise PlateError(f"cannot write '{target}': {len(channel_names)} channel names for {spec.nchannels} "
                             "channels", path=str(target))
        spec.channelnames = tuple(channel_names)
        if "A" in channel_names:
            spec.alpha_channel = list(channel_names).index("A")
    elif like is not None and like.channels == spec.nchannels:
        spec.channelnames = like.channel_names
    if depth == "half":
        with np.errstate(over="ignore"):  # beyond half's range is inf, as OpenImageIO writes it
            image = image.astype(np.float16)  # rounded as OpenImageIO rounds, in a third of its time
    with _atomic_path(target) as temp:
        _write_images(temp, target, format_name, [(spec, image)])
        _check_complete(temp, target)
    logger.debug("wrote %s (%s %s, %dx%d)", target, format_name, depth, spec.width, spec.height)
    return probe(target)


def write_pages(path: PathLike, pages: Sequence[np.ndarray], *, bit_depth: str = "uint8") -> None:
    """Write ``pages`` (same-size float arrays) as one multi-page TIFF, in order, atomically."""
    target = Path(path)
    format_name = _resolve_format(target, "tiff")
    depth = _resolve_bit_depth(target, format_name, bit_depth, None)
    if not pages:
        raise PlateError(f"cannot write '{target}': no pages given: pass at least one image", path=str(target))
    images = [_image_array(page, target) for page in pages]
    specs = [_output_spec(image, format_name, depth, {}) for image in images]
    for spec in specs:
        # Without this OpenImageIO reports "failed TIFFWriteCustomDirectory() of the Exif data" for
        # every appended page.
        spec.attribute("tiff:write_exif", 0)
    with _atomic_path(target) as temp:
        _write_images(temp, target, format_name, list(zip(specs, images)))
    logger.debug("wrote %s (%d pages)", target, len(images))


def verify_frame(path: PathLike, *, width: int, height: int, channels: int, check_pixels: bool = True) -> None:
    """Raise ``PlateError`` unless ``path`` is a complete image of this size and channel count.

    ``check_pixels`` decodes the whole image, which is what finds a truncated file.
    """
    info = probe(path)
    differences = []
    if (info.width, info.height) != (width, height):
        differences.append(f"it is {info.width}x{info.height}, expected {width}x{height}")
    if info.channels != channels:
        differences.append(f"it has {info.channels} channels, expected {channels}")
    if differences:
        raise PlateError(
            f"frame '{info.path}' is not what was rendered: {'; '.join(differences)}: delete it so that "
            f"its task renders it again",
            path=info.path,
        )
    if check_pixels:
        read_pixels(path)


def timecode_text(bcd: int) -> str:
    """An SMPTE BCD timecode (as in EXR ``timeCode`` and DPX headers) as ``"HH:MM:SS:FF"``."""
    hours = ((bcd >> 28) & 0x3) * 10 + ((bcd >> 24) & 0xF)
    minutes = ((bcd >> 20) & 0x7) * 10 + ((bcd >> 16) & 0xF)
    seconds = ((bcd >> 12) & 0x7) * 10 + ((bcd >> 8) & 0xF)
    frames = ((bcd >> 4) & 0x3) * 10 + (bcd & 0xF)
    separator = ";" if bcd & 0x40 else ":"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{frames:02d}"


def timecode_after(start: str, frames: int, fps: int) -> str:
    """The non-drop-frame timecode ``frames`` frames after ``start`` (``"HH:MM:SS:FF"``) at ``fps`` whole frames a
    second, wrapping at 24 hours; ``ValueError`` where ``start`` is not one or ``fps`` is not above 0."""
    parts = start.split(":")
    if fps <= 0 or len(parts) != 4 or not all(part.isdigit() for part in parts):
        raise ValueError(f"cannot count on from timecode '{start}' at {fps} frames a second")
    hours, minutes, seconds, frame = (int(part) for part in parts)
    count = (((hours * 60 + minutes) * 60 + seconds) * fps + frame + frames) % (24 * 3600 * fps)
    return f"{count // (3600 * fps):02d}:{count // (60 * fps) % 60:02d}:{count // fps % 60:02d}:{count % fps:02d}"


def timecode_bcd(text: str) -> int:
    """``"HH:MM:SS:FF"`` (or ``;`` for drop-frame) as SMPTE BCD; ``ValueError`` if it is not one."""
    parts = text.strip().replace(";", ":").split(":")
    if len(parts) != 4 or not all(part.isdigit() and len(part) <= 2 for part in parts):
        raise ValueError(f"timecode '{text}' is not HH:MM:SS:FF")
    values = [int(part) for part in parts]
    if any(value >= limit for value, limit in zip(values, (24, 60, 60, 40))):
        raise ValueError(f"timecode '{text}' is out of range: HH below 24, MM and SS below 60, FF below 40")
    bcd = 0
    for value in values:
        bcd = (bcd << 8) | ((value // 10) << 4) | (value % 10)
    return bcd | (0x40 if ";" in text else 0)


def _open_input(text: str, *, straight_alpha: bool = False) -> oiio.ImageInput:
    if not Path(text).exists():
        raise PlateError(
            f"plate '{text}' does not exist: check the path and that its storage is mounted here", path=text
        )
    config = oiio.ImageSpec()
    if straight_alpha:
        config.attribute("oiio:UnassociatedAlpha", 1)
    image_input = oiio.ImageInput.open(text, config)
    if image_input is None:
        raise PlateError(
            f"cannot read plate '{text}': {_one_line(oiio.geterror()) or 'unknown error'}: check that it is an image "
            f"file OpenImageIO reads (EXR, DPX, TIFF, PNG, JPEG) and that it is complete",
            path=text,
        )
    return image_input


def _plate_info(path: str, format_name: str, spec: oiio.ImageSpec) -> PlateInfo:
    pixel_type = str(spec.format)
    bits = spec.get_int_attribute("oiio:BitsPerSample", 0) or spec.format.size() * 8
    return PlateInfo(
        path=path,
        width=spec.width,
        height=spec.height,
        channels=spec.nchannels,
        channel_names=tuple(spec.channelnames),
        format=format_name,
        pixel_type=pixel_type,
        bits_per_sample=bits,
        metadata=_carried_metadata(path, spec),
    )


def _carried_metadata(path: str, spec: oiio.ImageSpec) -> Dict[str, Any]:
    metadata = {}
    for name in CARRIED_ATTRIBUTES:
        value = spec.getattribute(name)
        if value is not None and name not in ("FramesPerSecond", "smpte:TimeCode"):
            metadata[name] = value
    rate = _first_readable(path, spec, FRAME_RATE_ATTRIBUTES, parse_frame_rate, "a frame rate")
    if rate is not None:
        metadata["FramesPerSecond"] = rate
    timecode = _first_readable(path, spec, TIMECODE_ATTRIBUTES, parse_timecode, "a timecode")
    if timecode is not None:
        metadata["smpte:TimeCode"] = timecode
    return metadata


def _first_readable(path: str, spec: oiio.ImageSpec, names: Sequence[str],
                    parse: Callable[[Any], Optional[Tuple[int, int]]], what: str) -> Optional[Tuple[int, int]]:
    """The first of the header's attributes ``names`` that ``parse`` understands; each one before it that it
    does not understand is said once (``what`` it is not)."""
    for name, value in _header_values(spec, names):
        parsed = parse(value)
        if parsed is not None:
            return parsed
        _warn_unreadable(path, name, value, what)
    return None


def _header_values(spec: oiio.ImageSpec, names: Sequence[str]) -> Iterator[Tuple[str, Any]]:
    """The header's attributes of these names, in this order, each once (OpenImageIO's names ignore case)."""
    found: Dict[str, Tuple[str, Any]] = {}
    for attribute in spec.extra_attribs:
        found.setdefault(attribute.name.lower(), (attribute.name, attribute.value))
    for key in dict.fromkeys(name.lower() for name in names):
        if key in found:
            yield found[key]


def parse_frame_rate(value: Any) -> Optional[Tuple[int, int]]:
    """A header's frame rate in any form writers use, as (numerator, denominator); None if it is not one.

    Rational or two integers ``(24000, 1001)``, a number (``24``, ``23.976``, NTSC rates made exact), or
    text (``"24/1"``, ``"24000/1001"``, ``"23.976"``, ``"25 fps"``).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        text = text[:-3].strip() if text.endswith("fps") else text
        numerator_text, slash, denominator_text = text.partition("/")
        try:
            value = (int(numerator_text), int(denominator_text)) if slash else float(text)
        except ValueError:
            return None
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(part, int) for part in value):
        numerator, denominator = int(value[0]), int(value[1])
        if denominator <= 0 or not 0 < numerator / denominator <= MAX_FRAME_RATE:
            return None
        fraction = Fraction(numerator, denominator)
        return fraction.numerator, fraction.denominator
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_FRAME_RATE:
        return _rational(float(value))
    return None


def parse_timecode(value: Any) -> Optional[Tuple[int, int]]:
    """A header's timecode in any form writers use, as (SMPTE BCD, user bits); None if it is not one.

    The typed value (BCD and user bits, as EXR ``timeCode`` and DPX headers hold it), a lone BCD integer,
    or text ``"HH:MM:SS:FF"`` (``;`` or ``.`` before the frames for drop-frame).
    """
    if isinstance(value, str):
        try:
            return timecode_bcd(value.replace(".", ";")), 0
        except ValueError:
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, 0)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(part, int) for part in value):
        bcd = int(value[0]) & 0xFFFFFFFF
        if _valid_bcd(bcd):
            return bcd, int(value[1]) & 0xFFFFFFFF
    return None


def _valid_bcd(bcd: int) -> bool:
    digits = [(bcd >> shift) & 0xF for shift in range(0, 32, 4)]
    if any(digit > 9 for digit in digits):
        return False
    try:
        timecode_bcd(timecode_text(bcd))
    except ValueError:
        return False
    return True


_warned: Set[Tuple[str, str, str]] = set()
_warned_lock = threading.Lock()


def _warn_unreadable(path: str, name: str, value: Any, what: str) -> None:
    """Say once per folder, attribute and value that a header value was not understood."""
    key = (os.path.dirname(path), name, repr(value))
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
        logger.warning("plate '%s': header attribute %s holds %r, which is not %s: going on without it", path, name,
                       value, what)


def _rational(rate: float) -> Tuple[int, int]:
    """A frame rate as a rational, with NTSC rates exact: 23.976 → (24000, 1001)."""
    nominal = round(rate * 1.001)
    if nominal and abs(rate - nominal * 1000 / 1001) < 0.0015 and abs(rate - round(rate)) > 0.001:
        return nominal * 1000, 1001
    fraction = Fraction(rate).limit_denominator(1001)
    return fraction.numerator, fraction.denominator


def _image_array(pixels: np.ndarray, target: Path) -> np.ndarray:
    image = np.asarray(pixels)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or 0 in image.shape:
        raise PlateError(
            f"cannot write '{target}': pixels have shape {image.shape}, expected (height, width, channels)",
            path=str(target),
        )
    return np.ascontiguousarray(image, dtype=np.float32)


def writable_format(path: PathLike) -> Optional[str]:
    """The format ``write_frame`` writes for ``path``'s extension ("openexr", "dpx", …), or None for none."""
    return _FORMAT_NAMES.get(Path(path).suffix[1:].lower())


def _resolve_format(target: Path, file_format: Optional[str]) -> str:
    extension = target.suffix[1:].lower()
    from_extension = _FORMAT_NAMES.get(extension)
    if from_extension is None:
        raise PlateError(
            f"cannot write '{target}': '{target.suffix or 'no extension'}' is not a plate format; "
            f"name it .exr, .dpx, .tif, .png or .jpg",
            path=str(target),
        )
    if file_format is None:
        return from_extension
    wanted = _FORMAT_NAMES.get(file_format.lower())
    if wanted is None:
        raise PlateError(
            f"cannot write '{target}': file format '{file_format}' is not one of exr, dpx, tiff, png, jpeg",
            path=str(target),
        )
    if wanted != from_extension:
        raise PlateError(
            f"cannot write '{target}' as {file_format}: its extension says {from_extension}; "
            f"name it {target.stem}.{_EXTENSIONS[wanted]}",
            path=str(target),
        )
    return wanted


def _resolve_bit_depth(target: Path, format_name: str, bit_depth: Optional[str], like: Optional[PlateInfo]) -> str:
    allowed = _FORMAT_BIT_DEPTHS[format_name]
    if bit_depth is None:
        if like is not None and like.format == format_name and like.bit_depth in allowed:
            return like.bit_depth
        if like is not None and like.is_float and format_name in FLOAT_FORMATS:
            return _float_bit_depth(format_name, like)
        return DEFAULT_BIT_DEPTHS[format_name]
    if bit_depth not in allowed:
        raise PlateError(
            f"cannot write '{target}': bit depth '{bit_depth}' is not available for "
            f"{_EXTENSIONS[format_name]}; use {' or '.join(allowed)}",
            path=str(target),
        )
    return bit_depth


def _float_bit_depth(format_name: str, like: PlateInfo) -> str:
    """The depth of a float plate's result in another format that holds float: half in EXR from a half
    plate, else float. A TIFF is float even from a half plate: OpenImageIO writes a half TIFF as float all
    the same (unless ``tiff:half``), since few other applications read half TIFFs, and float holds every
    half value exactly."""
    if format_name == "tiff" or like.pixel_type in ("float", "double"):
        return "float"
    return "half"


def _output_spec(image: np.ndarray, format_name: str, depth: str, metadata: Mapping[str, Any]) -> oiio.ImageSpec:
    height, width, channels = image.shape
    pixel_type, bits = _BIT_DEPTHS[depth]
    spec = oiio.ImageSpec(width, height, channels, pixel_type)
    if format_name in ("dpx", "tiff"):
        spec.attribute("oiio:BitsPerSample", bits)
    if format_name in _COMPRESSION:
        spec.attribute("compression", _COMPRESSION[format_name])
    for name, value in metadata.items():
        if name != "FramesPerSecond":
            _set_attribute(spec, name, value)
    rate = metadata.get("FramesPerSecond")
    if rate is None:
        return spec
    if format_name == "openexr":
        # OpenImageIO would write "FramesPerSecond" as is; Nuke and Flame read OpenEXR's framesPerSecond.
        spec.attribute("framesPerSecond", oiio.TypeDesc("rational"), tuple(rate))
    elif format_name == "dpx":
        # The DPX writer ignores FramesPerSecond; its header field is dpx:FrameRate.
        spec.attribute("dpx:FrameRate", float(rate[0]) / float(rate[1]))
    else:
        _set_attribute(spec, "FramesPerSecond", rate)
    return spec


def _set_attribute(spec: oiio.ImageSpec, name: str, value: Any) -> None:
    type_name = _ATTRIBUTE_TYPES.get(name)
    if type_name == "float":
        spec.attribute(name, float(value))
    elif type_name is not None:
        spec.attribute(name, oiio.TypeDesc(type_name), tuple(value))
    elif isinstance(value, (str, int, float)):
        spec.attribute(name, value)
    else:
        logger.debug("not carrying header attribute %s=%r: unknown type", name, value)


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """A hidden temporary path beside ``target`` (``.<name>.<random>.tmp.<ext>``: OpenImageIO picks the format
    by the extension), renamed to ``target`` when the block succeeds and removed when it fails."""
    if not target.parent.is_dir():
        raise PlateError(
            f"cannot write '{target}': directory '{target.parent}' does not exist: create it first",
            path=str(target),
        )
    try:
        with atomic_path(target, suffix=target.suffix) as temp:
            yield temp
    except OSError as exc:
        raise PlateError(
            f"cannot write '{target}': {exc}: check the directory's permissions and free space", path=str(target)
        ) from exc


def _check_complete(temp: Path, target: Path) -> None:
    """Raise unless ``temp`` reads back whole: OpenEXR's writer can lose a short write on a full disk.

    A file cut short loses its end: its header and its first and last scanlines are read (the whole image
    in formats that decode from the start, PNG and JPEG; a few kilobytes of an EXR, DPX or TIFF)."""
    try:
        _read_ends(temp)
    except PlateError as exc:
        raise PlateError(
            f"cannot write '{target}': the file came out incomplete, so the disk (or your quota) is probably full: "
            "free some space, or write elsewhere",
            path=str(target),
        ) from exc


def _read_ends(path: Path) -> None:
    """Decode the first and the last scanline of ``path``; ``PlateError`` where either fails."""
    text = os.fspath(path)
    image_input = _open_input(text)
    try:
        spec = image_input.spec()
        ends = sorted({spec.y, spec.y + spec.height - 1})
        pixels = [image_input.read_scanlines(0, 0, y, y + 1, spec.z, 0, spec.nchannels, "float") for y in ends]
        error = image_input.geterror()
    finally:
        image_input.close()
    if error or any(scanline is None for scanline in pixels):
        raise PlateError(f"cannot read '{text}': {_one_line(error) or 'no pixels returned'}", path=text)


def _write_images(temp: Path, target: Path, format_name: str, images: List[Tuple[oiio.ImageSpec, np.ndarray]]) -> None:
    output = oiio.ImageOutput.create(format_name)
    if output is None:
        raise _write_error(target, oiio.geterror())
    try:
        specs = [spec for spec, _ in images]
        if not output.open(str(temp), specs if len(specs) > 1 else specs[0]):
            raise _write_error(target, output.geterror())
        for index, (spec, image) in enumerate(images):
            if index and not output.open(str(temp), spec, "AppendSubimage"):
                raise _write_error(target, output.geterror())
            if not output.write_image(image):
                raise _write_error(target, output.geterror())
    finally:
        closed = output.close()
    if not closed:
        raise _write_error(target, output.geterror())


def _one_line(error: str) -> str:
    """OpenImageIO's error text, which repeats itself over several lines, as one line."""
    return "; ".join(dict.fromkeys(line.strip() for line in (error or "").splitlines() if line.strip()))


def _write_error(target: Path, message: str) -> PlateError:
    return PlateError(
        f"cannot write '{target}': {_one_line(message) or 'unknown OpenImageIO error'}: check that the directory is "
        f"writable and has free space, and that the format takes these pixels",
        path=str(target),
    )
