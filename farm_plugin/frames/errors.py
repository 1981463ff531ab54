"""Errors raised by the frame layer: bad input (:class:`farm_plugin.errors.BadInput`), to comfyfarm's command line.

Every message names the bad value and says how to fix it::

    FrameError
     ├── FrameListError        a frame list or chunk size that cannot be used
     ├── FramePatternError     a path pattern without exactly one frame number token
     ├── MissingFramesError    frames a pattern should have on disk but does not
     ├── PlateError            a plate that cannot be read, written or verified
     │    └── MixedResolutionError   frames of one window that differ in size
     └── ColourSpaceError      an OCIO config or colour space that cannot be used
"""

from __future__ import annotations

from typing import Sequence

from farm_plugin.errors import BadInput


class FrameError(BadInput):
    """Base of every error raised by ``farm_plugin.frames``."""


class FrameListError(FrameError):
    """A frame list, range or chunk size that cannot be used."""


class FramePatternError(FrameError):
    """A frame path pattern without exactly one frame number token."""


class MissingFramesError(FrameError):
    """Frames that should exist on disk and do not; ``frames`` lists them, sorted."""

    def __init__(self, message: str, *, frames: Sequence[int]) -> None:
        super().__init__(message)
        self.frames = list(frames)


class PlateError(FrameError):
    """A plate that cannot be read, written or verified; ``path`` names the file."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class MixedResolutionError(PlateError):
    """Frames that must share one resolution (one staging window) do not."""


class ColourSpaceError(FrameError):
    """An OCIO config that cannot be loaded, or a colour space it does not define."""
