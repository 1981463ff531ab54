"""The contact sheet of a finished job, and the thumbnail of a pass's latest frame.

The hand-back writes ``<output folder>/<output name>_contact.jpg`` beside the job's first pass (``sh010.####.exr``
gives ``sh010_contact.jpg``): one row per pass, the pass's first, middle and last frame in its columns, each with
its frame number and timecode burnt in under it (the frame's header timecode, else the job's source timecode
counted on), the pass's name over the row. JPEG, ``SHEET_WIDTH`` pixels wide, quality ``JPEG_QUALITY``, written
atomically; the completion record names it (``contact_sheet``) in the artist's path.

What a thumbnail shows: a colour pass converted from its colour space (the job's plate space where the job names
one, else what the frame's header says: ``ColourPolicy.default_for``) to sRGB for viewing; a pass marked ``data``
(depth, normals, AO) its values as they are; both clipped to 0..1. A pass written as a layer of the job's one EXR
per frame (``exr_layers``) shows its layer's channels; one channel shows as grey, alpha is left out. Frames are
reduced in their own space (scene-linear for an EXR), then converted.

Text is drawn with OpenImageIO's ``render_text`` (its wheels carry fonts); where OpenImageIO finds no font the
frame numbers and timecodes are drawn with a small bitmap font of digits and the pass names are left out.

A sheet that cannot be made never fails the hand-back: ``add_contact_sheet`` returns the record without the field
and a warning line that says why.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import OpenImageIO as oiio

from farm_plugin.completion.record import CompletionRecord, PassOutput, artist_path
from farm_plugin.errors import ComfyfarmError
from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.errors import FrameError
from farm_plugin.frames.image_io import probe, read_pixels, timecode_after, write_frame
from farm_plugin.frames.layers import pass_channels
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, layered, pass_patterns

logger = logging.getLogger(__name__)

SHEET_WIDTH = 1200
JPEG_QUALITY = 85
CONTACT_SUFFIX = "_contact.jpg"
COLUMNS = 3  # first, middle, last
GAP = 8  # pixels between thumbnails and around the sheet
HEADER = 24  # the pass's name over its row
CAPTION = 24  # frame number and timecode under each thumbnail
FONT_SIZE = 16
BACKGROUND = 0.12
TEXT = (0.92, 0.92, 0.92)


class ContactSheetError(FrameError):
    """A contact sheet (or a thumbnail) cannot be made: the message says which frame or file, and why."""


@dataclass(frozen=True)
class Cell:
    """One thumbnail of a sheet: the pass, the frame, its timecode (or None), where it is on the sheet (x, y, width,
    height: the thumbnail itself, not the caption under it)."""

    pass_name: str
    frame: int
    timecode: Optional[str]
    box: Tuple[int, int, int, int]


@dataclass(frozen=True)
class ContactSheet:
    path: Path  # as this machine sees it
    cells: Tuple[Cell, ...]
    labels: bool  # whether the pass names are on it (False: no font; the numbers are drawn in the bitmap digits)


def sheet_frames(frames: Sequence[int]) -> List[int]:
    """The first, middle and last of ``frames`` (fewer when there are fewer), in order."""
    ordered = sorted(frames)
    if not ordered:
        return []
    return list(dict.fromkeys((ordered[0], ordered[(len(ordered) - 1) // 2], ordered[-1])))


def contact_sheet_path(record: JobRecord, output_pattern: Optional[str] = None) -> Path:
    """``<output folder>/<output name>_contact.jpg``, beside the job's frames (``output_pattern``: where this machine
    sees them); the job's name where the pattern's name has nothing before its frame number."""
    pattern = FramePattern.parse(output_pattern or record.output.pattern)
    stem = pattern.head.rstrip("._- ") or re.sub(r"[^A-Za-z0-9._-]+", "_", record.name).strip("_") or "job"
    return Path(pattern.directory or ".") / f"{stem}{CONTACT_SUFFIX}"


def add_contact_sheet(completion: CompletionRecord, record: JobRecord, *,
                      output_pattern: Optional[str] = None) -> Tuple[CompletionRecord, str]:
    """``completion`` with its ``contact_sheet`` (the artist's path), and a line for the log; never raises. A job
    that is not complete gets none, and no line (the relink imports nothing of it); a sheet that cannot be made is
    a warning line, and the record names none."""
    if not completion.complete:
        return completion, ""
    try:
        sheet = make_contact_sheet(record, completion.passes, output_pattern=output_pattern)
    except ContactSheetError as exc:
        return completion, f"comfyfarm relink: warning: no contact sheet: {exc}"
    except Exception as exc:  # never the hand-back's failure: whatever OpenImageIO or the disk says is a warning
        logger.exception("contact sheet")
        return completion, f"comfyfarm relink: warning: no contact sheet: {type(exc).__name__}: {exc}"
    farm_path = str(sheet.path)
    mapped = artist_path(record, farm_path)
    line = f"comfyfarm relink: contact sheet {farm_path}"
    if not sheet.labels:
        line += " (no font: frame numbers and timecodes in bitmap digits, pass names left out)"
    return dataclasses.replace(completion, contact_sheet=mapped), line


def make_contact_sheet(record: JobRecord, passes: Sequence[PassOutput], *, output_pattern: Optional[str] = None,
                       target: Optional[Path] = None) -> ContactSheet:
    """Write the contact sheet of ``passes`` (their names and verified frames; the files are read at
    ``pass_patterns(record, output_pattern)``) to ``target`` (default ``contact_sheet_path``). Raises
    ContactSheetError when a frame cannot be read or the sheet cannot be written; nothing is left then."""
    patterns = pass_patterns(record, output_pattern)
    specs = {spec.name: spec for spec in record.workflow.passes}
    names = [spec.name for spec in record.workflow.passes]
    rows = [(item, sheet_frames(item.frames)) for item in passes if item.frames]
    if not rows:
        raise ContactSheetError("the job has no frames to show")
    cell_w = (SHEET_WIDTH - GAP * (COLUMNS + 1)) // COLUMNS
    images: List[Tuple[PassOutput, int, List[Tuple[int, Optional[str], np.ndarray]]]] = []
    for item, frames in rows:
        pattern = patterns.get(item.name)
        if pattern is None:
            raise ContactSheetError(f"the job has no pass {item.name}")
        spec = specs.get(item.name)
        thumbs: List[Tuple[int, Optional[str], np.ndarray]] = []
        cell_h = 0
        for frame in frames:
            path = pattern.path(frame)
            try:
                info = probe(path)
                if not cell_h:
                    cell_h = int(min(cell_w, max(cell_w // 4, round(cell_w * info.height / max(1, info.width)))))
                pixels = display_pixels(path, pass_name=item.name, pass_names=names, layers=layered(record),
                                        data=bool(spec and spec.data), plate_space=record.colour.plate_space,
                                        config=record.colour.config, size=(cell_w, cell_h))
            except ComfyfarmError as exc:
                raise ContactSheetError(f"frame {frame} of the {item.name} pass cannot be read ({exc})") from exc
            thumbs.append((frame, info.timecode or source_timecode(record, frame), pixels))
        images.append((item, cell_h, thumbs))
    height = GAP + sum(HEADER + cell_h + CAPTION + GAP for _, cell_h, _ in images)
    sheet = np.full((height, SHEET_WIDTH, 3), BACKGROUND, np.float32)
    cells: List[Cell] = []
    texts: List[Tuple[int, int, str]] = []  # x, baseline, text: pass names and captions
    captions: List[Tuple[int, int, str]] = []  # the frame numbers and timecodes among them
    top = GAP
    for item, cell_h, thumbs in images:
        spec = specs.get(item.name)
        note = "  (data: its values as they are)" if spec and spec.data else ""
        texts.append((GAP, top + HEADER - 7, item.name + note))
        for column, (frame, timecode, pixels) in enumerate(thumbs):
            x = GAP + column * (cell_w + GAP) + (cell_w - pixels.shape[1]) // 2
            y = top + HEADER + (cell_h - pixels.shape[0]) // 2
            sheet[y:y + pixels.shape[0], x:x + pixels.shape[1]] = pixels
            cells.append(Cell(item.name, frame, timecode, (x, y, pixels.shape[1], pixels.shape[0])))
            captions.append((GAP + column * (cell_w + GAP), top + HEADER + cell_h + CAPTION - 7,
                             f"{frame}   {timecode}" if timecode else str(frame)))
            texts.append(captions[-1])
        top += HEADER + cell_h + CAPTION + GAP
    labelled = _draw_texts(sheet, texts)
    if not labelled:
        logger.warning("OpenImageIO has no font here: frame numbers and timecodes in bitmap digits, no pass names")
        for x, baseline, text in captions:
            _bitmap_text(sheet, x, baseline, text)
    destination = target or contact_sheet_path(record, output_pattern)
    try:
        write_frame(destination, sheet, file_format="jpeg", bit_depth="uint8",
                    metadata={"compression": f"jpeg:{JPEG_QUALITY}"})
    except (ComfyfarmError, OSError) as exc:
        raise ContactSheetError(f"cannot write {destination} ({exc})") from exc
    return ContactSheet(destination, tuple(cells), labelled)


def display_pixels(path: str, *, pass_name: str, pass_names: Sequence[str], layers: bool, data: bool,
                   plate_space: Optional[str], config: str, size: Tuple[int, int]) -> np.ndarray:
    """``path``'s pass ``pass_name`` as a viewer shows it, fitted into ``size`` (width, height) with its aspect kept:
    float32 (height, width, 3) in 0..1, sRGB for a colour pass, the values for a data pass. Raises the frame's
    PlateError, or ColourSpaceError."""
    info = probe(path)
    pixels = read_pixels(path)
    channels = list(info.channel_names) or [str(index) for index in range(info.channels)]
    if layers:
        wanted = pass_channels(channels, pass_names)[pass_name]
        if not wanted:
            raise ContactSheetError(f"'{path}' has no layer {pass_name}")
        pixels = pixels[:, :, [channels.index(name) for name in wanted]]
        channels = wanted
    colour = [index for index, name in enumerate(channels) if name.rpartition(".")[2] != "A"] or [0]
    rgb = pixels[:, :, colour[:3]]
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    elif rgb.shape[2] == 2:
        rgb = np.concatenate([rgb, np.zeros_like(rgb[:, :, :1])], axis=2)
    rgb = np.nan_to_num(np.ascontiguousarray(rgb, dtype=np.float32), nan=0.0, posinf=1e4, neginf=-1e4)
    width, height = size
    scale = min(width / info.width, height / info.height)
    fit_w, fit_h = max(1, round(info.width * scale)), max(1, round(info.height * scale))
    resized = oiio.ImageBufAlgo.resize(oiio.ImageBuf(rgb), roi=oiio.ROI(0, fit_w, 0, fit_h, 0, 1, 0, 3))
    if resized.has_error:
        raise ContactSheetError(f"cannot reduce '{path}' to a thumbnail: {resized.geterror()}")
    small = np.asarray(resized.get_pixels(oiio.FLOAT), dtype=np.float32).reshape(fit_h, fit_w, 3)
    if not data:
        space = plate_space or ColourPolicy.default_for(info, config=config).plate_space
        small = to_working(small, ColourPolicy(plate_space=space, config=config))  # the working space: sRGB
    return np.clip(small, 0.0, 1.0)


def write_thumbnail(path: str, target: Path, *, pass_name: str, pass_names: Sequence[str], layers: bool, data: bool,
                    plate_space: Optional[str], config: str, width: int = 320) -> Path:
    """A JPEG of ``path``'s pass ``pass_name`` (``display_pixels``), ``width`` pixels wide at most, written atomically
    to ``target``. Raises ContactSheetError."""
    try:
        info = probe(path)
        height = max(1, round(width * info.height / max(1, info.width)))
        pixels = display_pixels(path, pass_name=pass_name, pass_names=pass_names, layers=layers, data=data,
                                plate_space=plate_space, config=config, size=(width, height))
        write_frame(target, pixels, file_format="jpeg", bit_depth="uint8",
                    metadata={"compression": f"jpeg:{JPEG_QUALITY}"})
    except ContactSheetError:
        raise
    except (ComfyfarmError, OSError) as exc:
        raise ContactSheetError(f"no thumbnail of {path} ({exc})") from exc
    return target


def source_timecode(record: JobRecord, frame: int) -> Optional[str]:
    """The timecode of output ``frame`` counted on from the job's source timecode at its first source frame, at its
    frame rate (non-drop); None where the job has neither, or where its output is retimed."""
    source = record.source
    sequence = record.workflow.sequence
    if not source.timecode or not source.fps or not source.frames or (sequence and sequence.ratio != 1):
        return None
    try:  # a drop-frame timecode (';') is not counted on here
        return timecode_after(source.timecode, frame - min(source.frames), round(source.fps))
    except ValueError:
        return None


def _draw_texts(sheet: np.ndarray, texts: Sequence[Tuple[int, int, str]]) -> bool:
    """Draw ``texts`` onto ``sheet`` with OpenImageIO; False (and ``sheet`` unchanged) where it has no font."""
    buffer = oiio.ImageBuf(sheet)
    for x, baseline, text in texts:
        if not oiio.ImageBufAlgo.render_text(buffer, x, baseline, text, FONT_SIZE, "", TEXT):
            logger.debug("render_text: %s", buffer.geterror() or oiio.geterror())
            return False
    sheet[...] = np.asarray(buffer.get_pixels(oiio.FLOAT), dtype=np.float32).reshape(sheet.shape)
    return True


# A 3x5 bitmap of each character a frame number and a timecode use, row by row (1: ink).
_DIGITS: Dict[str, str] = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ":": "000010000010000", ";": "000010000010100",
    "-": "000000111000000", " ": "000000000000000",
}
_SCALE = 2


def _bitmap_text(sheet: np.ndarray, x: int, baseline: int, text: str) -> None:
    """Draw ``text`` (digits, ``:``, ``;``, ``-``, spaces; other characters are skipped) at ``x``, its bottom at
    ``baseline``, in the bitmap digits."""
    top = baseline - 5 * _SCALE
    for char in text:
        glyph = _DIGITS.get(char)
        if glyph is None:
            continue
        for index, ink in enumerate(glyph):
            if ink == "1":
                row, column = divmod(index, 3)
                y0, x0 = top + row * _SCALE, x + column * _SCALE
                sheet[max(0, y0):y0 + _SCALE, max(0, x0):x0 + _SCALE] = TEXT
        x += 4 * _SCALE


