"""Colour: which space the plates are in, which space the workflow sees, and the conversions between them.

Conversions run through OpenColorIO inside OpenImageIO (``ImageBufAlgo.colorconvert``) with the config the
policy names; ``ocio://default`` is OpenImageIO's built-in ACES studio config. Names may be any colour
space name, alias or role the config defines ("ACEScg", "lin_rec709", "scene_linear", …). A conversion that
is one curve on each channel (the default policy's) runs from tables built from OpenColorIO's own results
(``curves``) on frames of ``TABLE_MIN_PIXELS`` or more, kept between processes in ``tables_folder()``
(``COMFYFARM_CACHE_DIR``, else ``$XDG_CACHE_HOME/comfyfarm``, else ``~/.cache/comfyfarm``; an empty
``COMFYFARM_CACHE_DIR`` keeps none), each checked against the exact conversion before it is used.
"""

from __future__ import annotations

import atexit
import difflib
import functools
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import OpenImageIO as oiio

from .curves import ChannelCurve, build_curve, load_curve, save_curve
from .errors import ColourSpaceError
from .image_io import PlateInfo

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "ocio://default"
SCENE_LINEAR_REC709 = "Linear Rec.709 (sRGB)"
"""Scene-linear with Rec.709/sRGB primaries: what an EXR plate holds unless its header says otherwise."""
SRGB_ENCODED_REC709 = "sRGB Encoded Rec.709 (sRGB)"
"""sRGB-encoded Rec.709: what an 8-bit image is, and what ComfyUI's loaders and models expect."""
TABLE_MIN_PIXELS = 512 * 512
"""Frames of at least this many pixels are converted by table where the conversion is a curve (``curves``):
building the tables costs about as much as converting 1.5 million pixels exactly, once per process."""


@dataclass(frozen=True)
class ColourPolicy:
    """Plates are in ``plate_space``; the workflow sees ``working_space``; names come from ``config``."""

    plate_space: str
    working_space: str = SRGB_ENCODED_REC709
    config: str = DEFAULT_CONFIG

    @classmethod
    def default_for(cls, info: PlateInfo, *, config: str = DEFAULT_CONFIG) -> ColourPolicy:
        """The policy a plate gets unless the user says otherwise.

        A colour space the header declares (``oiio:ColorSpace``) and the config knows wins. Otherwise
        half/float plates are scene-linear Rec.709, converted to sRGB for the workflow and back; integer
        plates (PNG, JPEG, TIFF, DPX at 8–16 bits) are already display-referred sRGB and pass unconverted.
        """
        declared = info.metadata.get("oiio:ColorSpace")
        if isinstance(declared, str) and declared and _load_config(config).getColorSpaceIndex(declared) >= 0:
            return cls(plate_space=declared, config=config)
        if info.is_float:
            return cls(plate_space=SCENE_LINEAR_REC709, config=config)
        return cls(plate_space=SRGB_ENCODED_REC709, config=config)

    @property
    def converts(self) -> bool:
        """Whether staging changes the pixels' colour (the two spaces differ)."""
        if self.plate_space == self.working_space:
            return False
        config = _load_config(self.config)
        return config.resolve(self.plate_space) != config.resolve(self.working_space)

    def validate(self) -> None:
        """Raise ``ColourSpaceError`` unless the config loads and defines both spaces."""
        config = _load_config(self.config)
        for role, name in (("plate", self.plate_space), ("working", self.working_space)):
            if config.getColorSpaceIndex(name) < 0:
                raise ColourSpaceError(
                    f"{role} colour space '{name}' is not in OCIO config '{self.config}': use one of "
                    f"{_suggestions(config, name)}"
                )


def to_working(pixels: np.ndarray, policy: ColourPolicy) -> np.ndarray:
    """``pixels`` (height, width, 3 or 4 channels; float16 or float32) from the plate space to the working
    space, as float32."""
    return _convert(pixels, policy, policy.plate_space, policy.working_space)


def from_working(pixels: np.ndarray, policy: ColourPolicy) -> np.ndarray:
    """``pixels`` (height, width, 3 or 4 channels; float16 or float32) from the working space back to the plate
    space, as float32."""
    return _convert(pixels, policy, policy.working_space, policy.plate_space)


def _convert(pixels: np.ndarray, policy: ColourPolicy, source: str, target: str) -> np.ndarray:
    """``pixels`` (float16 or float32) from ``source`` to ``target``: float32, a new array or ``pixels``."""
    policy.validate()
    if not policy.converts:
        return np.ascontiguousarray(pixels, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ColourSpaceError(
            f"cannot convert pixels of shape {pixels.shape} from '{source}' to '{target}': colour conversion "
            f"needs (height, width, 3) RGB or (height, width, 4) RGBA"
        )
    # With four channels the fourth is alpha, and only the colour is converted: alpha is never multiplied
    # in or divided out (colorconvert would unpremultiply and premultiply again), so a keyer's straight colour
    # and its matte come out as they went in, and a plate's colour survives where its alpha is 0.
    curve = _curve(policy.config, source, target) if pixels.shape[0] * pixels.shape[1] >= TABLE_MIN_PIXELS else None
    if curve is not None:
        converted = curve.apply(pixels[:, :, :3])
    else:
        converted = _convert_exact(np.ascontiguousarray(pixels[:, :, :3], dtype=np.float32), policy.config,
                                   source, target)
    if pixels.shape[2] == 3:
        return converted
    result = np.empty(pixels.shape, dtype=np.float32)
    result[:, :, :3] = converted
    result[:, :, 3] = pixels[:, :, 3]
    return result


def _convert_exact(rgb: np.ndarray, config: str, source: str, target: str) -> np.ndarray:
    """OpenColorIO's conversion of float32 (height, width, 3) ``rgb``, through OpenImageIO."""
    # OpenImageIO caches its colour processors only for the default config: naming that config
    # explicitly would rebuild the processor on every frame (about 20 ms each).
    if _is_default_config(config):
        result = oiio.ImageBufAlgo.colorconvert(oiio.ImageBuf(rgb), source, target)
    else:
        result = oiio.ImageBufAlgo.colorconvert(oiio.ImageBuf(rgb), source, target, colorconfig=config)
    if result.has_error:
        raise ColourSpaceError(
            f"cannot convert from '{source}' to '{target}' with OCIO config '{config}': "
            f"{result.geterror()}: check the config and colour space names"
        )
    return np.asarray(result.get_pixels(oiio.FLOAT), dtype=np.float32).reshape(rgb.shape)


_curves: Dict[Tuple[str, str, str], Optional[ChannelCurve]] = {}
_curves_lock = threading.Lock()


CACHE_ENV = "COMFYFARM_CACHE_DIR"
TABLES_VERSION = 1  # of the tables' file: a change of their layout gives new file names


def tables_folder(environ: Optional[Dict[str, str]] = None) -> Optional[Path]:
    """Where colour tables are kept between processes (module docstring); None when the user keeps none."""
    environ = dict(os.environ) if environ is None else environ
    if CACHE_ENV in environ:
        return Path(environ[CACHE_ENV]).expanduser() / "colour" if environ[CACHE_ENV] else None
    base = environ.get("XDG_CACHE_HOME") or str(Path("~").expanduser() / ".cache")
    return Path(base) / "comfyfarm" / "colour"


def _tables_path(folder: Path, config: str, source: str, target: str) -> Path:
    """A file name for this conversion with this OpenImageIO (and its OpenColorIO) and this config file."""
    identity = [str(TABLES_VERSION), oiio.__version__, config, source, target]
    if os.path.isfile(config):
        status = os.stat(config)
        identity += [os.path.realpath(config), str(status.st_size), str(status.st_mtime_ns)]
    digest = hashlib.sha256("\0".join(identity).encode("utf-8")).hexdigest()[:24]
    return folder / f"curve-{digest}.npz"


def _curve(config: str, source: str, target: str) -> Optional[ChannelCurve]:
    """The tables of this conversion (``curves``): from memory, else the kept file when it still matches, else
    built (and kept); None where it is not a curve."""
    key = (config, source, target)
    with _curves_lock:  # the staging thread and the writers ask at once: build once
        if key not in _curves:
            exact = functools.partial(_convert_exact, config=config, source=source, target=target)
            folder = tables_folder()
            path = _tables_path(folder, config, source, target) if folder is not None else None
            curve = load_curve(path, exact) if path is not None else None
            how = "tables kept from an earlier process"
            if curve is None:
                curve = build_curve(exact)
                how = "tabulated" if curve is not None else "converted by OpenColorIO"
                if curve is not None and path is not None:
                    save_curve(curve, path)
            _curves[key] = curve
            logger.debug("colour %s -> %s: %s", source, target, how)
        return _curves[key]


def _is_default_config(path: str) -> bool:
    """Whether ``path`` is the config OpenImageIO uses when none is named ($OCIO, else its built-in)."""
    return path == os.environ.get("OCIO", DEFAULT_CONFIG)


@functools.lru_cache(maxsize=8)
def _load_config(path: str) -> oiio.ColorConfig:
    """A loaded config, kept: OpenImageIO parses a config on first use (about 20 ms). The cache is emptied
    at exit, before OpenImageIO's bindings report configs still alive as leaks."""
    atexit.register(_load_config.cache_clear)
    config = oiio.ColorConfig(path)
    error = config.geterror()
    if error or config.getNumColorSpaces() == 0:
        raise ColourSpaceError(
            f"OCIO config '{path}' cannot be loaded ({error or 'no colour spaces'}): name an existing "
            f"config.ocio file, or {DEFAULT_CONFIG} for the built-in ACES config"
        )
    return config


def _suggestions(config: oiio.ColorConfig, name: str) -> str:
    """A few of ``config``'s colour space names, the closest to ``name`` first."""
    names: List[str] = list(config.getColorSpaceNames())
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
    preferred = [n for n in (SCENE_LINEAR_REC709, SRGB_ENCODED_REC709, "ACEScg") if n in names]
    shown = list(dict.fromkeys(close + preferred))[:5]
    return ", ".join(f"'{n}'" for n in shown) + f" ({len(names)} in all)"
