"""Staging: plates in, images ComfyUI's loaders take; ComfyUI's results out, back into plates.

Two paths. **Full precision**, through comfyfarm's own nodes (farm_plugin/ComfyUINodes/comfyfarm_frames):
``stage_frame_files`` writes each plate as a frame file, raw float32 in the working space with its alpha,
nothing clamped; ``read_frame_file`` and ``unstage_pixels`` bring a result back. **8-bit**, through core
``LoadImage``/``SaveImage``, for a ComfyUI without comfyfarm's nodes: ``stage_frame`` writes one RGB PNG per
frame; ``stage_window`` one multi-page TIFF per window of a sequence workflow (``LoadImage`` reads every page
of a TIFF into one batch). Both convert to the working space and clip to 0..1: values outside it
(scene-linear highlights above 1) do not survive an 8-bit display-referred image, and alpha is dropped.
``unstage_result`` converts such a result back to the plate's space and writes it in the plate's format and
bit depth, with its header.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from farm_plugin.atomic import atomic_path

from .colour import ColourPolicy, from_working, to_working
from .errors import MixedResolutionError, PlateError
from .image_io import (
    FORMATS_WITHOUT_ALPHA,
    PathLike,
    PlateInfo,
    probe,
    read_pixels,
    writable_format,
    write_frame,
    write_pages,
)
from .layers import layer_channel_names

logger = logging.getLogger(__name__)

_LOAD_LOCK = threading.Lock()
RAW_COLOUR_SPACE = "data"  # not colour: OpenImageIO writes it as the EXR's colorInteropID "data" (OCIO's "Raw")


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
    infos = _same_size([probe(path) for path in source_paths])
    write_pages(dest_tiff, [_working_rgb(info, policy) for info in infos], bit_depth="uint8")
    return infos


def stage_frame_files(source_paths: Sequence[PathLike], dest_dir: PathLike, name: str,
                      policy: Optional[ColourPolicy] = None) -> Tuple[List[Path], List[PlateInfo]]:
    """Write each plate as a frame file ``<dest_dir>/<name>.<index>.npy`` for ``ComfyFarmLoadFrames``.

    float32 (height, width, 3), or 4 with the plate's alpha, in the working space, unclamped. The frames
    of one call must share one resolution (``MixedResolutionError``). Returns the files and the headers.
    """
    infos = _same_size([probe(path) for path in source_paths])
    Path(dest_dir).mkdir(parents=True, exist_ok=True)
    files = []
    for index, info in enumerate(infos):
        working = to_working(_rgba(read_pixels(info.path, keep_half=True), info.channel_names),
                             policy or ColourPolicy.default_for(info))
        target = Path(dest_dir) / f"{name}.{index:05d}.npy"
        with atomic_path(target) as temp, open(temp, "wb") as stream:
            np.save(stream, np.ascontiguousarray(working, dtype="<f4"))
        files.append(target)
    return files, infos


def load_frame_file(path: PathLike, *, mmap: bool = False) -> np.ndarray:
    """``numpy.load`` of a frame file (``mmap``: mapped read-only), one thread at a time: it parses the header
    with ``ast.literal_eval``, which CPython 3.11.7 and earlier can fail on when threads call it at once
    ("AST constructor recursion depth mismatch", CPython gh-106905)."""
    with _LOAD_LOCK:
        return np.load(os.fspath(path), allow_pickle=False, mmap_mode="r" if mmap else None)


def read_frame_file(path: PathLike) -> np.ndarray:
    """A frame file that ``ComfyFarmSaveFrames`` wrote: float32 (height, width, 3 or 4); ``PlateError``
    where it is missing or not one."""
    text = os.fspath(path)
    try:
        pixels = load_frame_file(text)
    except (OSError, ValueError) as exc:
        raise PlateError(f"cannot read ComfyUI's result '{text}': {exc}: the file is missing or damaged; run "
                         "the frame again", path=text) from exc
    if pixels.dtype != np.float32 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise PlateError(f"ComfyUI's result '{text}' holds {pixels.dtype} pixels of shape {pixels.shape}, not "
                         "float32 (height, width, 3 or 4): run the frame again", path=text)
    return pixels


def unstage_pixels(
    pixels: np.ndarray,
    dest_path: PathLike,
    *,
    source: PlateInfo,
    policy: Optional[ColourPolicy] = None,
    file_format: Optional[str] = None,
    straight_alpha: bool = False,
    data: bool = False,
) -> PlateInfo:
    """Write a full-precision result (working space, RGB or RGBA) as a plate, like ``unstage_result``.

    Alpha is kept where the result has it; the plate's own format, depth and header apply. Colour is
    never multiplied by alpha nor divided by it. ``straight_alpha``: the colour is not multiplied by this
    alpha (a keyer's plate colour and its matte), so a format that says which (PNG, TIFF) says straight.
    ``data``: the pass holds values (depth, normals, AO), written as the workflow gave them, tagged raw.
    """
    policy = policy or ColourPolicy.default_for(source)
    fitted = _fit_channels(pixels, dest_path, file_format)
    plate = np.ascontiguousarray(fitted, dtype=np.float32) if data else from_working(fitted, policy)
    written = write_frame(dest_path, plate, like=source, file_format=file_format,
                          metadata=_plate_metadata(policy, straight_alpha and plate.shape[2] == 4, data=data))
    logger.debug("unstaged %d-channel result → %s", pixels.shape[2], written.path)
    return written


def unstage_result(
    result_path: PathLike,
    dest_path: PathLike,
    *,
    source: PlateInfo,
    policy: Optional[ColourPolicy] = None,
    file_format: Optional[str] = None,
    data: bool = False,
) -> PlateInfo:
    """Convert a ComfyUI result from the working space to ``source``'s space and write it to ``dest_path``
    (``data``: as ComfyUI gave it, see ``unstage_pixels``).

    The result keeps its own resolution (an upscale stays upscaled) and its RGB channels, with its alpha
    where it has one (an 8-bit RGBA result of a workflow that gives its alpha); the format and
    bit depth default to the source's (``write_frame``), and the source's header (timecode, frame rate,
    …) is carried, with the plate space recorded as ``oiio:ColorSpace``. Returns the written header.
    """
    policy = policy or ColourPolicy.default_for(source)
    fitted = _fit_channels(read_result_image(result_path), dest_path, file_format)
    plate = fitted if data else from_working(fitted, policy)
    written = write_frame(dest_path, plate, like=source, file_format=file_format,
                          metadata=_plate_metadata(policy, plate.shape[2] == 4, data=data))
    logger.debug("unstaged %s → %s", os.fspath(result_path), written.path)
    return written


def read_result_image(result_path: PathLike) -> np.ndarray:
    """An image ComfyUI saved (8-bit path): its RGB, or RGBA where it has an alpha, straight as ComfyUI
    writes it (``JoinImageWithAlpha``), in the working space."""
    pixels = read_pixels(result_path, straight_alpha=True)
    return pixels if pixels.shape[2] == 4 else _rgb(pixels)


def unstage_layers(layers: Sequence[Tuple[str, np.ndarray]], dest_path: PathLike, *, source: PlateInfo,
                   policy: Optional[ColourPolicy] = None, data: Sequence[str] = ()) -> PlateInfo:
    """Write several passes' results (name, working-space RGB or RGBA pixels; the first pass first) as the
    layers of one EXR (``layers``), in the plate's depth and with its header; the passes named in ``data``
    as the workflow gave them (``unstage_pixels``). The file's colour space is the first pass's (``data`` when
    it is a data pass): it names the R, G, B. Every pass must have the first one's size (``PlateError``
    naming both otherwise)."""
    policy = policy or ColourPolicy.default_for(source)
    first_name, first = layers[0]
    for name, pixels in layers[1:]:
        if pixels.shape[:2] != first.shape[:2]:
            raise PlateError(
                f"cannot write '{dest_path}': the {name} pass is {pixels.shape[1]}x{pixels.shape[0]} but the "
                f"{first_name} pass is {first.shape[1]}x{first.shape[0]}: the layers of one EXR share one size; "
                "write the passes as separate sequences (exr_layers off)", path=os.fspath(dest_path))
    converted = [np.ascontiguousarray(pixels, dtype=np.float32) if name in data else from_working(pixels, policy)
                 for name, pixels in layers]
    names = layer_channel_names([(name, pixels.shape[2]) for (name, _), pixels in zip(layers, converted)])
    # one colour space names the file's R, G, B, which are the first pass's: data when that pass is data
    written = write_frame(dest_path, np.concatenate(converted, axis=2), like=source, file_format="exr",
                          channel_names=names, metadata=_plate_metadata(policy, False, data=first_name in data))
    logger.debug("unstaged %d passes as layers → %s", len(layers), written.path)
    return written


def _plate_metadata(policy: ColourPolicy, straight_alpha: bool, *, data: bool = False) -> Dict[str, Any]:
    metadata: Dict[str, Any] = {"oiio:ColorSpace": RAW_COLOUR_SPACE if data else policy.plate_space}
    if straight_alpha:
        metadata["oiio:UnassociatedAlpha"] = 1  # OpenImageIO would otherwise divide a PNG's colour by alpha
    return metadata


def _fit_channels(pixels: np.ndarray, dest_path: PathLike, file_format: Optional[str]) -> np.ndarray:
    """``pixels`` without their alpha where the output format holds none (JPEG). A workflow that gives an
    alpha is refused such an output before it runs (``check_pass_formats``); this drops a plate's alpha
    carried through, which nobody asked for."""
    if pixels.shape[2] == 4 and _holds_no_alpha(dest_path, file_format):
        return pixels[:, :, :3]
    return pixels


def _holds_no_alpha(dest_path: PathLike, file_format: Optional[str]) -> bool:
    return writable_format(f"x.{file_format}" if file_format else dest_path) in FORMATS_WITHOUT_ALPHA


def _working_rgb(info: PlateInfo, policy: Optional[ColourPolicy]) -> np.ndarray:
    """The plate's RGB in the working space, clipped to 0..1."""
    rgb = _rgb(read_pixels(info.path), info.channel_names)
    working = to_working(rgb, policy or ColourPolicy.default_for(info))
    return np.clip(working, 0.0, 1.0)


def _same_size(infos: List[PlateInfo]) -> List[PlateInfo]:
    """``infos``, once every frame is known to have the first one's resolution."""
    for info in infos[1:]:
        first = infos[0]
        if (info.width, info.height) != (first.width, first.height):
            raise MixedResolutionError(
                f"frame '{info.path}' is {info.width}x{info.height} but '{first.path}' is "
                f"{first.width}x{first.height}: a window's frames must share one resolution; "
                f"conform the plates to one size",
                path=info.path,
            )
    return infos


def _rgba(pixels: np.ndarray, channel_names: Sequence[str]) -> np.ndarray:
    """RGB (``_rgb``) and the alpha where there is one (``_alpha``): the pixels themselves where they are
    already R, G, B(, A) in this order."""
    names = list(channel_names)
    if names in (["R", "G", "B"], ["R", "G", "B", "A"]) or (not names and pixels.shape[2] in (3, 4)):
        return pixels
    rgb = _rgb(pixels, names)
    alpha = _alpha(pixels, names)
    return rgb if alpha is None else np.concatenate([rgb, alpha], axis=2)


def _alpha(pixels: np.ndarray, channel_names: Sequence[str]) -> Optional[np.ndarray]:
    """The channel named A (or a fourth channel of four), as (height, width, 1); None without one."""
    names = list(channel_names)
    if "A" in names:
        index = names.index("A")
    elif pixels.shape[2] == 4 and not names:
        index = 3
    else:
        return None
    return pixels[:, :, index:index + 1]


def _rgb(pixels: np.ndarray, channel_names: Sequence[str] = ()) -> np.ndarray:
    """Three channels: those named R, G, B when present, else the first three; grey repeated."""
    names = list(channel_names)
    if all(channel in names for channel in "RGB"):
        return pixels[:, :, [names.index(channel) for channel in "RGB"]]
    if pixels.shape[2] >= 3:
        return pixels[:, :, :3]
    return np.repeat(pixels[:, :, :1], 3, axis=2)
