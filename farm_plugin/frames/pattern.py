"""Frame-numbered path patterns: ``plate.####.exr``, ``plate.%04d.exr``, ``plate.$F4.exr``, ``plate.@@@@.exr``.

A pattern has exactly one frame number token, in the file name. Padding counts the digits, the minus
sign included, as printf, Nuke and Deadline do: frame -1 at padding 4 is ``-001``. ``%d`` and ``$F`` mean
no padding.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterable, List

from .errors import FramePatternError, MissingFramesError, PlateError
from .framelist import format_frame_list

logger = logging.getLogger(__name__)

PASS_SEPARATORS = "._-"  # what may stand between a name and its frame number: kept after a pass's name

# Longest forms first within each alternative; each group captures what sets the padding.
_TOKEN = re.compile(r"(?P<hashes>#+)|(?P<ats>@+)|%(?:0(?P<printf>\d+))?d|\$F(?P<houdini>\d*)")


@dataclass(frozen=True)
class FramePattern:
    """A frame-numbered path: ``directory/head`` + frame number padded to ``padding`` + ``tail``."""

    directory: str
    head: str
    padding: int
    tail: str

    @classmethod
    def parse(cls, text: str, *, role: str = "output") -> FramePattern:
        """Parse ``text``; ``role`` ("output", "source", …) names the pattern in error messages."""
        tokens = list(_TOKEN.finditer(text))
        if not tokens:
            raise FramePatternError(
                f"{role} pattern '{text}' has no frame number token: add #### (or %04d, $F4), e.g. {_with_hashes(text)}"
            )
        if len(tokens) > 1:
            found = ", ".join(token.group(0) for token in tokens)
            raise FramePatternError(
                f"{role} pattern '{text}' has {len(tokens)} frame number tokens ({found}): keep exactly one"
            )
        token = tokens[0]
        cut = max(text.rfind("/"), text.rfind(os.sep))
        name_start = cut + 1
        if token.start() < name_start:
            raise FramePatternError(
                f"{role} pattern '{text}' has its frame number token {token.group(0)} in the directory: "
                f"put it in the file name, e.g. {_with_hashes(text[name_start:])}"
            )
        return cls(
            directory=text[:cut] if cut > 0 else text[: cut + 1],
            head=text[name_start : token.start()],
            padding=_padding(token),
            tail=text[token.end() :],
        )

    @property
    def extension(self) -> str:
        """The file extension without its dot, as written: ``"exr"``; ``""`` when there is none."""
        return PurePath(self.head + "0" + self.tail).suffix[1:]

    def for_pass(self, name: str) -> FramePattern:
        """This pattern for the pass ``name`` of a several-pass job: ``_<name>`` ends the head, before the
        separator in front of the frame number: ``sh010.####.exr`` → ``sh010_depth.####.exr``,
        ``sh010_####.exr`` → ``sh010_depth_####.exr``, ``####.exr`` → ``depth.####.exr``."""
        base, separator = self.head, ""
        if base and base[-1] in PASS_SEPARATORS:
            base, separator = base[:-1], base[-1]
        head = f"{base}_{name}{separator}" if base else f"{name}{separator or '.'}"
        return FramePattern(directory=self.directory, head=head, padding=self.padding, tail=self.tail)

    def path(self, frame: int) -> str:
        """The path of ``frame``: ``plate.1001.exr``, and ``plate.-001.exr`` for frame -1."""
        return self._join(f"{self.head}{frame:0{self.padding}d}{self.tail}")

    def to_hashes(self) -> str:
        """The ``####`` form, for display and Deadline's ``OutputFilename``."""
        return self._join(f"{self.head}{'#' * self.padding}{self.tail}")

    def to_printf(self) -> str:
        """The ``%04d`` form (``%d`` without padding), for ffmpeg, Nuke and Flame."""
        token = f"%0{self.padding}d" if self.padding > 1 else "%d"
        return self._join(f"{self.head}{token}{self.tail}")

    def __str__(self) -> str:
        return self.to_hashes()

    def existing_frames(self) -> List[int]:
        """Frames whose file is in the directory, named exactly as ``path`` names them, sorted.

        ``plate.001.exr`` does not count for a padding of 4, nor do hidden temporary files. A missing
        directory (or a file where the directory should be) has no frames; one that cannot be listed raises
        ``PlateError``.
        """
        digits = re.compile(rf"{re.escape(self.head)}(-?\d+){re.escape(self.tail)}")
        frames = []
        try:
            with os.scandir(self.directory or ".") as entries:
                for entry in entries:
                    match = digits.fullmatch(entry.name)
                    if match is None:
                        continue
                    frame = int(match.group(1))
                    if f"{self.head}{frame:0{self.padding}d}{self.tail}" == entry.name and entry.is_file():
                        frames.append(frame)
        except (FileNotFoundError, NotADirectoryError):
            logger.debug("directory %s does not exist: no frames of %s", self.directory, self)
            return []
        except OSError as exc:
            raise PlateError(f"cannot list the folder {self.directory or '.'} of {self} ({exc.strerror or exc}): "
                             "check its permissions, and that its storage is mounted here",
                             path=self.directory or ".") from exc
        return sorted(frames)

    def missing_frames(self, frames: Iterable[int]) -> List[int]:
        """Those of ``frames`` that have no file, sorted and unique."""
        existing = set(self.existing_frames())
        return sorted(set(frames) - existing)

    def require_frames(self, frames: Iterable[int]) -> None:
        """Raise ``MissingFramesError`` unless every one of ``frames`` has a file."""
        wanted = sorted(set(frames))
        missing = self.missing_frames(wanted)
        if missing:
            raise MissingFramesError(
                f"{self} is missing {len(missing)} of {len(wanted)} frames: {format_frame_list(missing)}; "
                f"render or export them, or leave them out of the frame list",
                frames=missing,
            )

    def _join(self, name: str) -> str:
        if not self.directory:
            return name
        if self.directory.endswith(("/", os.sep)):
            return self.directory + name
        return f"{self.directory}/{name}"


def _padding(token: re.Match) -> int:
    if token.group("hashes"):
        return len(token.group("hashes"))
    if token.group("ats"):
        return len(token.group("ats"))
    digits = token.group("printf") if token.group("printf") is not None else token.group("houdini")
    return int(digits) if digits else 1


def _with_hashes(text: str) -> str:
    """``text`` with ``.####`` before its extension, as an example of a pattern."""
    directory, separator, name = text.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return f"{text}.####"
    return f"{directory}{separator}{stem}.####.{extension}"
