"""Fast colour conversion for transforms that act on each channel alone (transfer curves): table look-ups.

OpenColorIO, through OpenImageIO's ``colorconvert``, takes about 200 ms of CPU for a 2048x1080 RGB frame;
the default policy's conversions (scene-linear Rec.709 to sRGB-encoded and back) are one curve applied to R,
G and B alike, which a table does in a fraction of that. A :class:`ChannelCurve` is built from the exact
conversion itself, once per process and transform, and used only where it reproduces it:

- **half input**: a table of the exact result for each of the 65536 half values: bit-identical to the exact
  conversion;
- **float input**: the exact result at every 2^-11 step of each binade (2^20 points, interpolated
  linearly between them), accepted only where, at every midpoint between two points and on a probe of
  unrelated R, G and B values, it agrees with the exact conversion to ``TOLERANCE`` (relative): 1/50 of a half
  float's step, about OpenColorIO's own rounding (its CPU processor approximates ``pow``);
- values for which the table has no finite answer (inf, NaN, beyond 1e38) are converted exactly.

A transform with a matrix (ACEScg to sRGB) or a curve too steep for the table (ACEScct) fails the check:
``build_curve`` returns None and the caller converts exactly.

Building the tables takes a few tenths of a second of CPU per transform, which every farm task's process
would pay again before its first frame: :func:`save_curve` keeps them in a file (8.6 MB) and :func:`load_curve`
reads them back (milliseconds) only after checking them against the exact conversion on a probe of half
values and of unrelated R, G and B floats, so that a file from another OpenColorIO, a config whose LUTs
changed, or a damaged file is rebuilt rather than used.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from farm_plugin.atomic import atomic_path

logger = logging.getLogger(__name__)

Convert = Callable[[np.ndarray], np.ndarray]
"""The exact conversion: float32 (height, width, 3) in, float32 (height, width, 3) out."""

TOLERANCE = 2e-5
_FRACTION_BITS = 12  # float32 bits below the table's index: 23 - 12 = 11 mantissa bits index the table
_POINTS = 1 << (32 - _FRACTION_BITS)
_ROW = 1024  # pixels per row of the images handed to the exact conversion
_BLOCK_VALUES = 1 << 16  # values converted at once: their temporaries stay in the cache


@dataclass(frozen=True)
class ChannelCurve:
    """One transfer curve, the same for R, G and B, as tables (module docstring)."""

    exact: Convert
    half_table: np.ndarray  # float32 [65536]: the result for each half's bits
    points: np.ndarray  # float32 [2^20 + 1]: the result at each float32 whose low 12 bits are 0
    steps: np.ndarray  # float32 [2^20]: points[i + 1] - points[i]

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (height, width, 3), float16 or float32, converted: a new float32 array.

        Rows go through in blocks that stay in the processor's cache."""
        result = np.empty(rgb.shape, dtype=np.float32)
        rows = max(1, _BLOCK_VALUES // max(1, rgb.shape[1] * rgb.shape[2]))
        for top in range(0, rgb.shape[0], rows):
            self._apply_block(rgb[top:top + rows], result[top:top + rows])
        return result

    def _apply_block(self, rgb: np.ndarray, out: np.ndarray) -> None:
        if rgb.dtype == np.float16:
            np.take(self.half_table, rgb.view(np.uint16), out=out, mode="clip")
            return
        bits = np.ascontiguousarray(rgb, dtype=np.float32).view(np.uint32)
        index = bits >> np.uint32(_FRACTION_BITS)
        fraction = (bits & np.uint32((1 << _FRACTION_BITS) - 1)).astype(np.float32)
        fraction *= np.float32(1.0 / (1 << _FRACTION_BITS))
        np.take(self.steps, index, out=out, mode="clip")
        out *= fraction
        out += np.take(self.points, index, mode="clip")
        self._convert_non_finite(rgb, out)

    def _convert_non_finite(self, rgb: np.ndarray, result: np.ndarray) -> None:
        """Where the tables gave no finite value, the exact conversion's (NaN stays NaN)."""
        lost = ~np.isfinite(result)
        if lost.any():
            result[lost] = _convert_values(self.exact, np.asarray(rgb, dtype=np.float32)[lost])


def build_curve(exact: Convert) -> Optional[ChannelCurve]:
    """The tables of ``exact``, or None where it is not one curve on every channel within ``TOLERANCE``."""
    half_values = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    if not _acts_per_channel(exact):
        return None
    half_table = _convert_values(exact, half_values)
    point_bits = np.arange(_POINTS + 1, dtype=np.uint64) << np.uint64(_FRACTION_BITS)
    point_bits[-1] = point_bits[-2]  # past the last index: never used for a finite value
    points = _convert_values(exact, point_bits.astype(np.uint32).view(np.float32))
    with np.errstate(invalid="ignore", over="ignore"):
        steps = points[1:] - points[:-1]
    midpoints = ((np.arange(_POINTS, dtype=np.uint32) << np.uint32(_FRACTION_BITS))
                 | np.uint32(1 << (_FRACTION_BITS - 1))).view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        error = _relative_error(points[:-1] + np.float32(0.5) * steps, _convert_values(exact, midpoints))
    if error > TOLERANCE:
        logger.debug("colour curve not tabulated: interpolation error %.3g > %.3g", error, TOLERANCE)
        return None
    return ChannelCurve(exact, half_table, points, steps)


def save_curve(curve: ChannelCurve, path: Path) -> bool:
    """Keep ``curve``'s tables at ``path`` (written atomically, the folder made); False, with a debug line, where
    it cannot be written: the tables are only a shortcut."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npz") as temporary:
            np.savez(temporary, half_table=curve.half_table, points=curve.points, steps=curve.steps)
    except OSError as exc:
        logger.debug("colour tables not kept at %s: %s", path, exc)
        return False
    return True


def load_curve(path: Path, exact: Convert) -> Optional[ChannelCurve]:
    """The tables kept at ``path`` when they still reproduce ``exact`` (module docstring); None when there are
    none, they cannot be read, or they do not agree."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            half_table, points, steps = kept["half_table"], kept["points"], kept["steps"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.debug("colour tables at %s cannot be read: %s", path, exc)
        return None
    shapes = ((half_table, (1 << 16,)), (points, (_POINTS + 1,)), (steps, (_POINTS,)))
    if any(array.dtype != np.float32 or array.shape != shape for array, shape in shapes):
        logger.debug("colour tables at %s are not this version's", path)
        return None
    curve = ChannelCurve(exact, half_table, points, steps)
    if not _still_exact(curve):
        logger.debug("colour tables at %s no longer match the conversion: rebuilt", path)
        return None
    return curve


def _still_exact(curve: ChannelCurve) -> bool:
    """Whether ``curve`` gives the exact conversion's results: bit for bit on 4096 half values, within
    ``TOLERANCE`` on 16384 floats of unrelated R, G and B from -1 to 64."""
    generator = np.random.default_rng(29)
    halves = generator.integers(0, 1 << 16, (4, _ROW, 3), dtype=np.uint16).view(np.float16)
    halves[0, :4, 0] = np.array([0.0, 0.18, 1.0, 16.0], dtype=np.float16)
    finite = np.isfinite(halves)
    exact_half = curve.exact(halves.astype(np.float32))
    tabled_half = curve.apply(halves)
    if not np.array_equal(tabled_half[finite], exact_half[finite], equal_nan=True):
        return False
    floats = (np.float32(2.0) ** generator.uniform(-12.0, 6.0, (16, _ROW, 3))).astype(np.float32)
    floats *= np.where(generator.random(floats.shape) < 0.1, np.float32(-1.0), np.float32(1.0))
    with np.errstate(invalid="ignore", over="ignore"):
        return _relative_error(curve.apply(floats), curve.exact(floats)) <= TOLERANCE


def _acts_per_channel(exact: Convert) -> bool:
    """Whether ``exact`` converts each channel by itself: R, G and B drawn apart give what each gives alone."""
    probe = np.random.default_rng(17).uniform(-1.0, 8.0, (64, _ROW, 3)).astype(np.float32)
    together = exact(probe)
    alone = np.stack([_convert_values(exact, probe[..., channel]) for channel in range(3)], axis=-1)
    return bool(np.array_equal(together, alone, equal_nan=True))


def _convert_values(exact: Convert, values: np.ndarray) -> np.ndarray:
    """``exact`` applied to each of ``values`` (any shape, float32) as a grey pixel: the result's red."""
    flat = np.ravel(values).astype(np.float32)
    padded = np.zeros(-(-flat.size // _ROW) * _ROW, dtype=np.float32)
    padded[:flat.size] = flat
    grey = np.repeat(padded.reshape(-1, _ROW, 1), 3, axis=2)
    red = np.ascontiguousarray(exact(grey)[..., 0]).reshape(-1)  # contiguous: tables are read at random
    return red[:flat.size].reshape(np.shape(values))


def _relative_error(approximate: np.ndarray, exact: np.ndarray) -> float:
    """The largest |approximate - exact| / max(|exact|, 2^-24) where both are finite."""
    finite = np.isfinite(approximate) & np.isfinite(exact)
    if not finite.any():
        return 0.0
    difference = np.abs(approximate[finite] - exact[finite])
    return float(np.max(difference / np.maximum(np.abs(exact[finite]), np.float32(2.0 ** -24))))
