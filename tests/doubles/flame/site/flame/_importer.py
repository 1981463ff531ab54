"""``flame.import_clips``: read real files on disk and add clips to a reel, folder or library.

What an imported clip gets (chosen, see harness.py): the name of the file sequence without frame number
and extension (``sh010_comp.[1001-1048].exr`` → ``sh010_comp``); ``start_frame`` = the first frame number;
size, channels and bit depth from the first file's header; the frame rate from the header's
FramesPerSecond, else the runtime's ``import_frame_rate``; the start timecode from the first file's
``smpte:TimeCode`` when ``import_timecode == "header"`` and the header has one, otherwise the first frame
number read as a frame count at the clip's rate (frame 1001 at 24 fps → 00:00:41:17).

Failures (missing path, a sequence with a missing frame, an unreadable header, an unsupported frame rate)
import nothing for that path: the call returns what did import (often ``[]``) and the failure is recorded
in the runtime's ``imports`` with its reason. Bad arguments (not a str or list of str, no destination or
one that cannot hold clips, a locked/closed library) raise.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from typing import Any, Dict, List, Tuple

from . import _media, _objects, _time
from ._attributes import version_at_least

log = logging.getLogger(__name__)

_BRACKET_RE = re.compile(r"^(?P<head>.*)\[(?P<first>\d+)-(?P<last>\d+)\](?P<tail>.*)$")
_PATTERN_TOKENS = {
    "{name}": r"(?P<name>.+?)",
    "{version}": r"(?P<version>\d+)",
    "{frame}": r"(?P<frame>\d+)",
    "{extension}": r"(?P<extension>[A-Za-z0-9]+)",
}


class ImportFailure(Exception):
    """One path could not be imported (recorded, not raised to the caller)."""


def import_clips(rt: Any, path: Any, destination: Any) -> List[Any]:
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    if not paths or not all(isinstance(p, str) for p in paths):
        raise TypeError(f"import_clips: path must be a str or a list of str, not {path!r}")
    if destination is None:
        raise TypeError(
            "import_clips: the Flame double needs a destination (a PyReel, PyFolder or PyLibrary); "
            "where Flame puts clips without one is not documented"
        )
    if not isinstance(destination, (_objects.PyReel, _objects.PyFolder, _objects.PyLibrary)):
        raise TypeError(f"import_clips: destination must be a PyReel, PyFolder or PyLibrary, not {destination!r}")
    destination._check_member("import_clips")
    destination._require_writable()

    imported: List[Any] = []
    for one in paths:
        try:
            sequences = _resolve(rt, one)
            clips = [_make_clip(rt, seq) for seq in sequences]
        except ImportFailure as exc:
            log.debug("import_clips(%s) failed: %s", one, exc)
            rt.record_import(one, destination, [], str(exc))
            continue
        for clip in clips:
            destination._add(clip)
        rt.record_import(one, destination, clips, None)
        imported.extend(clips)
    return imported


def _resolve(rt: Any, path: str) -> List[_media.FileSequence]:
    if "{" in path:
        return _resolve_pattern(path)
    directory, base = os.path.split(path)
    m = _BRACKET_RE.match(base)
    if m:
        first, last = m.group("first"), m.group("last")
        if int(last) < int(first):
            raise ImportFailure(f"bad frame range [{first}-{last}]")
        padding = len(first) if first.startswith("0") or len(first) == len(last) else 0
        seq = _media.FileSequence(directory, m.group("head"), m.group("tail"), padding, int(first), int(last))
        missing = seq.missing()
        if missing:
            raise ImportFailure(f"{len(missing)} frame(s) missing, first {missing[0]}")
        return [seq]
    if os.path.isdir(path):
        if not version_at_least(rt.version_tuple, (2023, 2)):
            raise ImportFailure("importing a folder needs Flame 2023.2 or later")
        return _scan_folder(path)
    if os.path.isfile(path):
        split = _media.split_frame_file(base)
        if split:
            head, digits, tail = split
            return [_media.FileSequence(directory, head, tail, len(digits), int(digits), int(digits))]
        stem, ext = os.path.splitext(base)
        return [_media.FileSequence(directory, stem, ext, 0, 0, 0, numbered=False)]
    raise ImportFailure(f"no such file or directory: {path}")


def _group_numbered(directory: str, names: List[str]) -> List[_media.FileSequence]:
    groups: Dict[Tuple[str, str, int], List[int]] = defaultdict(list)
    singles: List[str] = []
    for name in sorted(names):
        split = _media.split_frame_file(name)
        if split is None:
            singles.append(name)
            continue
        head, digits, tail = split
        groups[(head, tail, len(digits))].append(int(digits))
    sequences = []
    for (head, tail, padding), numbers in sorted(groups.items()):
        numbers.sort()
        # contiguous runs become separate clips, as a media browser would list them
        run = [numbers[0]]
        for n in numbers[1:]:
            if n == run[-1] + 1:
                run.append(n)
            else:
                sequences.append(_media.FileSequence(directory, head, tail, padding, run[0], run[-1]))
                run = [n]
        sequences.append(_media.FileSequence(directory, head, tail, padding, run[0], run[-1]))
    for name in singles:
        stem, ext = os.path.splitext(name)
        sequences.append(_media.FileSequence(directory, stem, ext, 0, 0, 0, numbered=False))
    return sequences


def _scan_folder(path: str) -> List[_media.FileSequence]:
    names = [n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)) and not n.startswith(".")]
    if not names:
        raise ImportFailure(f"folder {path} has no media files")
    return _group_numbered(path, names)


def _resolve_pattern(path: str) -> List[_media.FileSequence]:
    directory, base = os.path.split(path)
    regex = re.escape(base)
    for token, group in _PATTERN_TOKENS.items():
        regex = regex.replace(re.escape(token), group)
    if "{" in regex.replace("\\{", ""):
        raise ImportFailure(f"unknown token in pattern {base!r}; known: {', '.join(_PATTERN_TOKENS)}")
    if not os.path.isdir(directory):
        raise ImportFailure(f"no such directory: {directory}")
    matcher = re.compile(f"^{regex}$")
    names = [n for n in os.listdir(directory) if matcher.match(n)]
    if not names:
        raise ImportFailure(f"no file matches {path}")
    return _group_numbered(directory, names)


def _make_clip(rt: Any, seq: _media.FileSequence) -> Any:
    first_path = seq.path(seq.first)
    try:
        header = _media.read_header(first_path)
    except OSError as exc:
        raise ImportFailure(str(exc)) from exc
    rate = rt.import_frame_rate
    if header["fps"] is not None:
        rate = _time.frame_rate_from_fraction(header["fps"], header["drop_frame"])
        if rate is None:
            raise ImportFailure(f"unsupported frame rate {header['fps']} in {first_path}")
    first_number = seq.first if seq.numbered else 1
    if rt.import_timecode == "header" and header["timecode"]:
        try:
            start_tc = _time.timecode_to_frame(header["timecode"], rate)
        except ValueError as exc:
            raise ImportFailure(f"{first_path}: header timecode {header['timecode']} at {rate}: {exc}") from exc
    else:
        start_tc = seq.first if seq.numbered else 0
    name = seq.head.rstrip("._- ") or os.path.splitext(os.path.basename(first_path))[0]
    ext = seq.tail.lstrip(".").lower()
    media = _media.Media(
        uid=rt.new_uid(),
        name=name,
        width=header["width"],
        height=header["height"],
        channels=header["channels"],
        bit_depth=header["bit_depth"],
        frame_rate=rate,
        start_tc=start_tc,
        length=seq.last - seq.first + 1,
        start_frame=first_number,
        colour_space=rt.import_colour_spaces.get(ext, "Unknown"),
        files=seq,
        header=header,
    )
    return _objects.build_source_clip(rt, name, media)
