"""Staging: plates in, 8-bit images ComfyUI's core loaders take; ComfyUI's results out, back into plates.

``stage_frame`` writes one RGB PNG per frame (``LoadImage``); ``stage_window`` writes one multi-page TIFF
per window of a sequence workflow (``LoadImage`` reads every page of a TIFF into one batch). Both convert
to the policy's working space and clip to 0..1: values outside it (scene-linear highlights above 1) do not
survive an 8-bit display-referred image. Alpha is dropped. ``unstage_result`` converts a result back to the
plate's space and writes it in the plate's format and bit depth, with its header.
"""

from __future__ import annotations

import logging
import os
from typing import List, Optional, Sequence

import numpy as np

from .colour import ColourPolicy, from_working, to_working
from .errors import MixedResolutionError
from .image_io import PathLike, PlateInfo, probe, read_pixels, write_frame, write_pages

logger = logging.getLogger(__name__)


def stage_frame(source_path: PathLike, dest_png: PathLike, policy: Optional[ColourPolicy] = None) -> PlateInfo:
    """Write ``source_path`` as an 8-bit RGB PNG in the working space; return the source's header.

    ``policy`` defaults to ``ColourPolicy.default_for`` the source.
    """
    info = probe(source_path)
    write_frame(dest_png, _working_rgb(info, policy), bit_depth="uint8")
    return info


def stage_window(
    source_paths: Sequence[PathLike], dest_tiff: PathLike, policy: Optional[ColourPolicy] = None
) -> List[PlateInfo]:
    """Write the frames of one window as a multi-page 8-bit RGB TIFF, one page per frame, in order.

    Every frame must have the first one's resolution (``MixedResolutionError`` otherwise: ComfyUI would
    silently drop the odd pages from the batch). Returns the sources' headers.
    """
    infos = [probe(path) for path in source_paths]
    if infos:
        first = infos[0]
        for info in infos[1:]:
            if (info.width, info.height) != (first.width, first.height):
                raise MixedResolutionError(
                    f"frame '{info.path}' is {info.width}x{info.height} but '{first.path}' is "
                    f"{first.width}x{first.height}: a window's frames must share one resolution; "
                    f"conform the plates to one size",
                    path=info.path,
                )
    write_pages(dest_tiff, [_working_rgb(info, policy) for info in infos], bit_depth="uint8")
    return infos


def unstage_result(
    result_path: PathLike,
    dest_path: PathLike,
    *,
    source: PlateInfo,
    policy: Optional[ColourPolicy] = None,
    file_format: Optional[str] = None,
) -> PlateInfo:
    """Convert a ComfyUI result from the working space to ``source``'s space and write it to ``dest_path``.

    The result keeps its own resolution (an upscale stays upscaled) and its RGB channels; the format and
    bit depth default to the source's (``write_frame``), and the source's header (timecode, frame rate,
    …) is carried, with the plate space recorded as ``oiio:ColorSpace``. Returns the written header.
    """
    policy = policy or ColourPolicy.default_for(source)
    plate = from_working(_rgb(read_pixels(result_path)), policy)
    written = write_frame(
        dest_path,
        plate,
        like=source,
        file_format=file_format,
        metadata={"oiio:ColorSpace": policy.plate_space},
    )
    logger.debug("unstaged %s → %s", os.fspath(result_path), written.path)
    return written


def _working_rgb(info: PlateInfo, policy: Optional[ColourPolicy]) -> np.ndarray:
    """The plate's RGB in the working space, clipped to 0..1."""
    rgb = _rgb(read_pixels(info.path), info.channel_names)
    working = to_working(rgb, policy or ColourPolicy.default_for(info))
    return np.clip(working, 0.0, 1.0)


def _rgb(pixels: np.ndarray, channel_names: Sequence[str] = ()) -> np.ndarray:
    """Three channels: those named R, G, B when present, else the first three; grey repeated."""
    names = list(channel_names)
    if all(channel in names for channel in "RGB"):
        return pixels[:, :, [names.index(channel) for channel in "RGB"]]
    if pixels.shape[2] >= 3:
        return pixels[:, :, :3]
    return np.repeat(pixels[:, :, :1], 3, axis=2)
