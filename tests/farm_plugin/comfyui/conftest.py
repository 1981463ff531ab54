from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import numpy as np
import OpenImageIO as oiio
import pytest

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Target:
    """A ComfyUI to test against: the double (``fake`` set) or a real one."""

    kind: str
    url: str
    fake: Any = None


@pytest.fixture(params=["double", "real"])
def comfyui(request: pytest.FixtureRequest) -> Target:
    if request.param == "double":
        fake = request.getfixturevalue("fake_comfyui")
        return Target("double", fake.url, fake)
    real = request.getfixturevalue("real_comfyui")
    return Target("real", real.url)


def png_bytes(rgb: tuple, size: int = 8) -> bytes:
    """An 8-bit RGB PNG filled with ``rgb`` (0-255 values)."""
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[...] = rgb
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fill.png"
        out = oiio.ImageOutput.create(str(path))
        out.open(str(path), oiio.ImageSpec(size, size, 3, "uint8"))
        out.write_image(pixels)
        out.close()
        return path.read_bytes()


def decode_png(data: bytes, tmp_path: Path) -> np.ndarray:
    path = tmp_path / "decoded.png"
    path.write_bytes(data)
    buf = oiio.ImageBuf(str(path))
    return np.asarray(buf.get_pixels(oiio.UINT8))


def invert_graph(image: str, prefix: str) -> Dict[str, Any]:
    graph = json.loads((REPO / "workflows" / "invert" / "workflow.json").read_text())
    graph["1"]["inputs"]["image"] = image
    graph["3"]["inputs"]["filename_prefix"] = prefix
    return graph


def unique(name: str) -> str:
    """A name no earlier test used: a real ComfyUI keeps its files between test runs."""
    return f"{name}-{uuid.uuid4().hex[:10]}"
