"""Checks that run before any work starts, each failing with the value and the fix in its message."""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath
from typing import Callable, Dict, List, Optional, Sequence

from farm_plugin.errors import BadInput
from farm_plugin.frames.colour import ColourPolicy
from farm_plugin.frames.errors import MissingFramesError, MixedResolutionError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.frames.image_io import (
    FLOAT_FORMATS,
    FORMATS_WITHOUT_ALPHA,
    PlateInfo,
    probe,
    read_pixels,
    writable_format,
)
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import WorkflowSpec

logger = logging.getLogger(__name__)

PREFLIGHT_READERS = 4

# Each format comfyfarm writes (OpenImageIO's name): how the user names it (--format, a job template's
# output_format), its usual file ending and how messages call it; in the order fixes offer them.
_FORMATS = {
    "openexr": ("exr", ".exr", "EXR"),
    "tiff": ("tiff", ".tif", "TIFF"),
    "png": ("png", ".png", "PNG"),
    "dpx": ("dpx", ".dpx", "DPX"),
    "jpeg": ("jpeg", ".jpg", "JPEG"),
}
_FLOAT_NAMES = {"half": "half-float", "float": "32-bit float", "double": "64-bit float"}


class PreflightError(BadInput):
    """Bad input found before any work started."""


def check_source(pattern: FramePattern, frames: Sequence[int], *, read_whole: bool = True) -> Dict[int, PlateInfo]:
    """Every frame exists, reads (whole, when ``read_whole``: a truncated file fails) and shares one size."""
    missing = pattern.missing_frames(frames)
    if missing:
        raise MissingFramesError(
            f"{len(missing)} frame(s) missing from {pattern.to_hashes()}: {format_frame_list(missing)}: "
            "render or export them, or pick a frame range that exists",
            frames=missing,
        )

    def read(frame: int) -> PlateInfo:
        path = pattern.path(frame)
        info = probe(path)
        if read_whole:
            read_pixels(path)
        return info

    with ThreadPoolExecutor(max_workers=PREFLIGHT_READERS) as pool:
        infos = dict(zip(frames, pool.map(read, frames)))
    sizes: Dict[tuple, List[int]] = {}
    for frame, info in infos.items():
        sizes.setdefault((info.width, info.height), []).append(frame)
    if len(sizes) > 1:
        described = "; ".join(f"{w}x{h}: frames {format_frame_list(f)}" for (w, h), f in sizes.items())
        first = infos[frames[0]]
        raise MixedResolutionError(
            f"{pattern.to_hashes()} mixes resolutions ({described}): conform the plate to one size",
            path=first.path,
        )
    return infos


def check_output_names(output: FramePattern, source: FramePattern, frames: Sequence[int]) -> None:
    """The output names an image format comfyfarm writes, and none of the source's frames."""
    if writable_format(output.path(frames[0] if frames else 1)) is None:
        extension = PurePath("0" + output.tail).suffix
        ending = f"'{extension}'" if extension else "no extension"
        raise PreflightError(
            f"output pattern '{output}' ends in {ending}, not an image format comfyfarm writes: end it in .exr, "
            ".dpx, .tif, .png or .jpg"
        )
    for frame in frames:
        target = output.path(frame)
        if os.path.exists(target) and os.path.samefile(target, source.path(frame)):
            raise PreflightError(
                f"the output {output} is the input plate {source}: the results would overwrite it: write them to "
                "another folder or under another name"
            )


def check_output(pattern: FramePattern) -> None:
    """The output folder exists or can be made, and a file can be written in it. Leaves no trace: the folders
    it made are removed again (the writer makes them with the first frame)."""
    folder = Path(pattern.directory or ".")
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe_path = tempfile.mkstemp(prefix=".comfyfarm-write-check-", dir=str(folder))
        os.close(handle)
        Path(probe_path).unlink()
    except OSError as exc:
        raise PreflightError(
            f"cannot write into the output folder {folder} ({exc.strerror or exc}): pick a folder you can write "
            "to, or fix its permissions"
        ) from exc
    finally:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                break


def check_clip(source: FramePattern, output: FramePattern, frames: Sequence[int], *,
               read_whole: bool = True) -> PlateInfo:
    """A clip ready to process: :func:`check_source`, :func:`check_output_names` and :func:`check_output`, in
    that order. Returns what the first frame's header says (its size, rate, timecode)."""
    infos = check_source(source, frames, read_whole=read_whole)
    check_output_names(output, source, frames)
    check_output(output)
    return infos[frames[0]]


def check_colour(plate: PlateInfo, *, config: str, plate_space: Optional[str] = None,
                 working_space: Optional[str] = None) -> None:
    """The colour spaces the user named exist in the OCIO ``config``, each with the other as the plate
    would default it; nothing to check when the user named neither."""
    if not plate_space and not working_space:
        return
    policy = ColourPolicy.default_for(plate, config=config)
    ColourPolicy(plate_space=plate_space or policy.plate_space, working_space=working_space or policy.working_space,
                 config=policy.config).validate()


def check_pass_formats(workflow: WorkflowSpec, output: FramePattern, plate: PlateInfo, *,
                       file_format: Optional[str] = None, exr_layers: bool = False) -> None:
    """The output format holds what the job writes into it, for every pass of ``workflow``.

    ``output`` is the job's output pattern as the user gave it (each pass of a several-pass job is written
    beside it under the same extension: ``FramePattern.for_pass``), ``plate`` the header of the clip's first
    frame, ``file_format`` the format asked for (``--format``, a job template's ``output_format``), which must
    agree with the extension. Refused, each before anything runs or reaches the farm:

    - a format that cannot hold the alpha a pass gives (a keyer's matte written to JPEG): the matte would be
      lost. A plate's own alpha carried through to a JPEG is dropped silently instead (``staging``): nobody
      asked for it;
    - a float plate (half or float EXR or TIFF) written to a format that cannot hold float (DPX, PNG, JPEG).
      Such a plate is scene-linear as a rule, with highlights above 1 and values below 0, and so is the
      result, converted back into the plate's space: an integer format would clip them to 0..1 without a
      word, and the deliverable would look right in a thumbnail while its highlights could never be graded
      back. The result's values are not known before the workflow runs, so the plate's type decides;
      whoever wants an integer deliverable converts the float result where the clipping is a visible
      choice (Flame's export, a grade);
    - ``exr_layers`` (the passes as the layers of one EXR per frame) with an output that is not EXR.
    """
    written = writable_format(output.path(0))
    if written is None:  # check_output_names says so
        return
    name, _, label = _FORMATS[written]
    if file_format is not None:
        wanted = writable_format(f"x.{file_format}")
        if wanted is None:
            raise PreflightError(f"output format '{file_format}' is not one of "
                                 f"{', '.join(user for user, _, _ in _FORMATS.values())}: choose one of those, or "
                                 "none to write the format that the output pattern's extension names")
        if wanted != written:
            raise PreflightError(f"output pattern '{output}' ends in .{output.extension} but the output format is "
                                 f"{file_format}: end it in {_FORMATS[wanted][1]}, or choose the output format {name}")
    if exr_layers and written != "openexr" and workflow.several_passes:
        raise PreflightError(
            f"output pattern '{output}': {label} has no layers to hold the {len(workflow.passes)} passes of workflow "
            f"{workflow.name} ({', '.join(spec.name for spec in workflow.passes)}) in one file: end it in .exr, or "
            "turn exr_layers off to write each pass as its own sequence"
        )
    with_alpha = [spec.name for spec in workflow.passes if spec.alpha is not None]
    if written in FORMATS_WITHOUT_ALPHA and with_alpha:
        raise PreflightError(
            f"output pattern '{output}': {label} cannot hold the alpha that the {with_alpha[0]} pass of workflow "
            f"{workflow.name} gives: end it in {_endings(lambda format_name: format_name not in FORMATS_WITHOUT_ALPHA)}"
        )
    if plate.is_float and written not in FLOAT_FORMATS:
        pixels = _FLOAT_NAMES.get(plate.pixel_type, plate.pixel_type)
        raise PreflightError(
            f"output pattern '{output}': {label} cannot hold the {pixels} pixels of the plate {plate.path}: its values "
            f"outside 0..1 would be clipped: end it in {_endings(lambda format_name: format_name in FLOAT_FORMATS)}"
        )


def _endings(holds: Callable[[str], bool]) -> str:
    """The endings of the formats that ``holds`` accepts, for a fix: ``.exr, .tif, .png or .dpx``."""
    endings = [ending for format_name, (_, ending, _) in _FORMATS.items() if holds(format_name)]
    return ", ".join(endings[:-1]) + f" or {endings[-1]}" if len(endings) > 1 else endings[0]
