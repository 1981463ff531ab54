"""EXR files laid out byte by byte, the way writers other than OpenImageIO leave them.

OpenImageIO's own writer normalises what it is given (it drops a text ``timeCode``, renames attributes),
so it cannot make the headers that other tools write. This writer follows the OpenEXR file layout
(openexr.com, "OpenEXR File Layout": magic number, version field, header attributes as name, type name,
size and value, an offset table, then uncompressed scan-line blocks) and puts any attribute, under any
name and any of these types, into the header:

``string``, ``int``, ``float``, ``double``, ``rational`` (int numerator, unsigned denominator),
``timecode`` (time-and-flags BCD, user data), ``v2i``.

Pixels are written uncompressed as HALF, one scan line per block, channels in alphabetical order as the
format requires.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Sequence, Tuple

import numpy as np

MAGIC = 20000630
HALF = 1

Attribute = Tuple[str, str, Any]  # name, OpenEXR type name, value

_PACKERS = {
    "int": lambda value: struct.pack("<i", value),
    "float": lambda value: struct.pack("<f", value),
    "double": lambda value: struct.pack("<d", value),
    "rational": lambda value: struct.pack("<iI", *value),
    "timecode": lambda value: struct.pack("<II", *value),
    "v2i": lambda value: struct.pack("<ii", *value),
    "string": lambda value: value.encode("utf-8"),
}


def _attribute(name: str, type_name: str, payload: bytes) -> bytes:
    return name.encode() + b"\0" + type_name.encode() + b"\0" + struct.pack("<i", len(payload)) + payload


def write_exr(path: Path, pixels: np.ndarray, attributes: Sequence[Attribute] = ()) -> Path:
    """Write ``pixels`` (height, width, channels of R, G, B[, A]) with ``attributes`` in the header."""
    height, width, channels = pixels.shape
    names = "RGBA"[:channels]
    order = sorted(range(channels), key=lambda index: names[index])
    chlist = b"".join(names[index].encode() + b"\0" + struct.pack("<iB3xii", HALF, 0, 1, 1) for index in order)
    box = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    header = b"".join([
        _attribute("channels", "chlist", chlist + b"\0"),
        _attribute("compression", "compression", b"\0"),
        _attribute("dataWindow", "box2i", box),
        _attribute("displayWindow", "box2i", box),
        _attribute("lineOrder", "lineOrder", b"\0"),
        _attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
        _attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
        *(_attribute(name, type_name, _PACKERS[type_name](value)) for name, type_name, value in attributes),
    ]) + b"\0"
    start = 8 + len(header) + 8 * height
    blocks = []
    for y in range(height):
        row = b"".join(pixels[y, :, index].astype("<f2").tobytes() for index in order)
        blocks.append(struct.pack("<ii", y, len(row)) + row)
    offsets, position = [], start
    for block in blocks:
        offsets.append(position)
        position += len(block)
    path.write_bytes(struct.pack("<ii", MAGIC, 2) + header + struct.pack(f"<{height}Q", *offsets) + b"".join(blocks))
    return path
