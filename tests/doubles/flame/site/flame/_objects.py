"""Media Panel and timeline objects: projects, workspaces, libraries, folders, reels, clips, segments.

Member names and signatures follow Flame's introspected API (VSCODE-CONNECT-TO-FLAME ``stubs/flame.pyi``);
what each member returns where no source says is chosen in tests/doubles/flame/harness.py's docstring.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, List, Optional, Tuple

from . import _time
from ._attributes import BOOL, COLOUR, READ_ONLY, STR, STR_LIST, TIME, PyFlameObject, _Checked, checked
from ._media import Media
from ._time import PyTime, _is_int

log = logging.getLogger(__name__)

# H.273 code points returned by colour_primaries / transfer_characteristics (2 = unspecified)
_COLOUR_CODES = {
    "Rec.709 video": (1, 1),
    "scene-linear Rec 709/sRGB": (1, 8),
    "sRGB - Display": (1, 13),
    "ACEScg": (2, 8),
    "ACES2065-1": (2, 8),
}

EFFECT_TYPES = (
    "Colour Correct",
    "Colour Mgmt",
    "Source Colour Mgmt",
    "Image",
    "Action",
    "Timewarp",
    "Resize",
    "Blur",
    "Pybox",
)


# ---------------------------------------------------------------------------------------------------------
# media panel entries and containers


class PyArchiveEntry(PyFlameObject):
    """Class derived from PyFlameObject. Base class for any object displayed in the Media Panel."""

    __module__ = "flame"
    _ATTRS = {"name": STR, "colour": COLOUR, "uid": READ_ONLY}

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None) -> None:
        super().__init__(rt, parent)
        self._init_attr("name", name)
        self._init_attr("colour", None)
        self._init_attr("uid", rt.new_uid())
        self._wiretap_id = rt.new_wiretap_id()

    @checked
    def get_wiretap_node_id(self) -> str:
        """Return the Wiretap Node ID of the Flame object, but only if the object is in the Media Panel."""
        return self._wiretap_id

    @checked
    def get_wiretap_storage_id(self) -> str:
        return self._rt.wiretap_storage_id

    @checked
    def clear_colour(self) -> None:
        self._values["colour"] = None

    @checked
    def commit(self) -> None:
        return None

    def _library(self) -> Optional[PyLibrary]:
        node: Any = self
        while node is not None:
            if isinstance(node, PyLibrary):
                return node
            node = node._parent
        return None

    def _require_readable(self) -> None:
        lib = self._library()
        if lib is not None:
            lib._require_open()

    def _require_writable(self) -> None:
        lib = self._library()
        if lib is not None:
            lib._require_writable()


class _Container(PyArchiveEntry):
    _CHILD_TYPES: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None) -> None:
        super().__init__(rt, name, parent)
        self._items: List[Any] = []

    def _children(self, *types: type, exclude: Tuple[type, ...] = ()) -> list:
        self._require_readable()
        return [
            c for c in self._items
            if not c._deleted and (not types or isinstance(c, types)) and not (exclude and isinstance(c, exclude))
        ]

    def _add(self, child: Any) -> Any:
        if type(child).__name__ not in self._CHILD_TYPES:
            raise TypeError(f"A {type(child).__name__} cannot go into a {type(self).__name__}")
        self._require_writable()
        child._parent = self
        self._items.append(child)
        return child

    def _discard(self, child: Any) -> None:
        if child in self._items:
            self._items.remove(child)

    @property
    def children(self) -> list:
        """Return a list of the immediate children of the current object."""
        return self._children()


class _ClipHolder(_Container):
    @property
    def clips(self) -> list:
        """Return a list of Clip objects that are immediate children (sequences excluded: see sequences)."""
        return self._children(PyClip, exclude=(PySequence,))

    @property
    def sequences(self) -> list:
        """Return a list of Sequence objects that are immediate children of the current object."""
        return self._children(PySequence)


class _FolderLike(_ClipHolder):
    _ATTRS = {"expanded": BOOL}
    _CHILD_TYPES = ("PyFolder", "PyReel", "PyReelGroup", "PyClip", "PySequence", "PyDesktop", "PyBatch")

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None) -> None:
        super().__init__(rt, name, parent)
        self._init_attr("expanded", True)

    @property
    def folders(self) -> list:
        return self._children(PyFolder)

    @property
    def reels(self) -> list:
        return self._children(PyReel)

    @property
    def reel_groups(self) -> list:
        return self._children(PyReelGroup)

    @property
    def desktops(self) -> list:
        return self._children(PyDesktop)

    @property
    def batch_groups(self) -> list:
        return self._children(PyBatch)

    @property
    def batch_iterations(self) -> list:
        return []

    @checked
    def create_folder(self, name: str) -> PyFolder:
        _require_name(name)
        return self._add(PyFolder(self._rt, name))

    @checked
    def create_reel(self, name: str) -> PyReel:
        _require_name(name)
        return self._add(PyReel(self._rt, name))

    @checked
    def create_reel_group(self, name: str) -> PyReelGroup:
        _require_name(name)
        return self._add(PyReelGroup(self._rt, name))

    @checked
    def clear(self, confirm: bool = True) -> bool:
        self._require_writable()
        for child in list(self._items):
            self._rt.delete_object(child)
        return True


class PyFolder(_FolderLike):
    """Class derived from PyArchiveEntry. This class represents a Folder."""

    __module__ = "flame"


class PyLibrary(_FolderLike):
    """Class derived from PyArchiveEntry. This class represents a Library."""

    __module__ = "flame"

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None, shared: bool = False) -> None:
        super().__init__(rt, name, parent)
        self._opened = True
        self._shared = shared
        self._exclusive = False

    @property
    def opened(self) -> bool:
        """Return True if the Library is in the open state."""
        return self._opened

    @checked
    def open(self) -> bool:
        self._opened = True
        return True

    @checked
    def close(self) -> bool:
        self._opened = False
        return True

    @checked
    def acquire_exclusive_access(self) -> bool:
        if self._shared:
            self._exclusive = True
        return True

    @checked
    def release_exclusive_access(self) -> bool:
        if self._shared:
            self._exclusive = False
        return True

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError(f"Library {self._values['name']!r} is closed: call open() before using its content")

    def _require_writable(self) -> None:
        self._require_open()
        if self._shared and not self._exclusive:
            raise RuntimeError(
                f"Shared library {self._values['name']!r} is locked: call acquire_exclusive_access() before "
                "changing it (and release_exclusive_access() afterwards)"
            )


class PyReelGroup(_Container):
    """Object representing a Reel Group."""

    __module__ = "flame"
    _ATTRS = {"expanded": BOOL}
    _CHILD_TYPES = ("PyReel",)

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None) -> None:
        super().__init__(rt, name, parent)
        self._init_attr("expanded", True)

    @property
    def reels(self) -> list:
        return self._children(PyReel)

    @checked
    def create_reel(self, name: str, sequence: bool = False) -> PyReel:
        _require_name(name)
        return self._add(PyReel(self._rt, name, reel_type="Sequences" if sequence else "Reel"))

    @checked
    def save(self) -> bool:
        return True


class PyReel(_ClipHolder):
    """Object representing a Reel."""

    __module__ = "flame"
    _CHILD_TYPES = ("PyClip", "PySequence")

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None, reel_type: str = "Reel") -> None:
        super().__init__(rt, name, parent)
        self._reel_type = reel_type

    @property
    def type(self) -> str:
        """Return the Reel type (Reel, Schematic, Sequences, Shelf)."""
        return self._reel_type

    @checked
    def save(self) -> bool:
        return True


class PyBatch(PyArchiveEntry):
    """Class derived from PyFlameObject. This class represents a Batch Group."""

    __module__ = "flame"

    @property
    def nodes(self) -> list:
        return []

    @property
    def reels(self) -> list:
        return []


class PyDesktop(_Container):
    """Class derived from PyArchiveEntry. This class represents a Desktop."""

    __module__ = "flame"
    _CHILD_TYPES = ("PyReelGroup", "PyBatch")

    @property
    def reel_groups(self) -> list:
        return self._children(PyReelGroup)

    @property
    def batch_groups(self) -> list:
        return self._children(PyBatch)

    @checked
    def create_reel_group(self, name: str) -> PyReelGroup:
        _require_name(name)
        return self._add(PyReelGroup(self._rt, name))


class PyWorkspace(_Container):
    """Object representing a Workspace."""

    __module__ = "flame"
    _CHILD_TYPES = ("PyLibrary",)

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None) -> None:
        super().__init__(rt, name, parent)
        self._desktop = PyDesktop(rt, "Desktop", self)

    @property
    def desktop(self) -> PyDesktop:
        """Return the current Desktop."""
        return self._desktop

    @property
    def libraries(self) -> list:
        """Return the Workspace Libraries."""
        return self._children(PyLibrary)

    @checked
    def create_library(self, name: str) -> PyLibrary:
        _require_name(name)
        return self._add(PyLibrary(self._rt, name))


class PyProject(PyArchiveEntry):
    """Object representing a Project."""

    __module__ = "flame"
    _ATTRS = {"name": None}  # a plain property on PyProject

    def __init__(self, rt: Any, name: str, nickname: str, project_folder: str) -> None:
        super().__init__(rt, name, None)
        self._name = name
        self._nickname = nickname
        self._project_folder = project_folder
        self._workspace = PyWorkspace(rt, "Workspace", self)
        self._shared: List[PyLibrary] = []

    @property
    def name(self) -> str:
        """Return the Project name."""
        return self._name

    @property
    def project_name(self) -> str:
        """Deprecated / use name instead."""
        return self._name

    @property
    def nickname(self) -> str:
        return self._nickname

    @property
    def description(self) -> str:
        return ""

    @property
    def project_folder(self) -> str:
        """The path where the project is located."""
        return self._project_folder

    @property
    def media_folder(self) -> str:
        """The path where the project media is located."""
        return f"{self._project_folder}/media"

    @property
    def setups_folder(self) -> str:
        return f"{self._project_folder}/setups"

    @property
    def current_workspace(self) -> PyWorkspace:
        return self._workspace

    @property
    def workspaces_count(self) -> int:
        return 1

    @property
    def shared_libraries(self) -> list:
        """Return a list of Shared Libraries inside the Project."""
        return [lib for lib in self._shared if not lib._deleted]

    @checked
    def create_shared_library(self, name: str) -> PyLibrary:
        _require_name(name)
        lib = PyLibrary(self._rt, name, self, shared=True)
        self._shared.append(lib)
        return lib

    @checked
    def refresh_shared_libraries(self) -> bool:
        return True


def _require_name(name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")


# ---------------------------------------------------------------------------------------------------------
# clips, versions, tracks, segments


class PyTimelineFX(PyFlameObject):
    """Object representing a Timeline FX."""

    __module__ = "flame"
    _ATTRS = {"bypass": BOOL}

    def __init__(self, rt: Any, parent: Any, effect_type: str, rendered: bool) -> None:
        super().__init__(rt, parent)
        self._type = effect_type
        self._rendered = rendered
        self._init_attr("bypass", False)

    @property
    def type(self) -> str:
        """Return the type of the Timeline FX."""
        return self._type

    @property
    def has_maps_cache_media(self) -> bool:
        return False


class PyMarker(PyFlameObject):
    """Object representing a Marker."""

    __module__ = "flame"
    _ATTRS = {"name": STR, "comment": STR, "colour": COLOUR, "location": TIME, "duration": TIME}

    def __init__(self, rt: Any, parent: Any, clip: PyClip, location_rel: int) -> None:
        super().__init__(rt, parent)
        self._clip = clip
        self._location = location_rel
        self._duration = 1
        self._init_attr("name", "")
        self._init_attr("comment", "")
        self._init_attr("colour", (1.0, 0.0, 0.0))

    def _attr_get(self, name: str) -> Any:
        if name == "location":
            return self._clip._time_at(self._location)
        if name == "duration":
            return PyTime._duration(self._duration, self._clip._rate)
        return super()._attr_get(name)

    def _attr_set(self, name: str, value: Any) -> None:
        if name == "location":
            self._check_member(name)
            self._location = self._clip._relative_of(name, value, 1, self._clip._length)
        elif name == "duration":
            self._check_member(name)
            frames = value.relative_frame if isinstance(value, PyTime) else value
            if not _is_int(frames) or frames < 1:
                raise TypeError(f"PyMarker.duration takes a number of frames >= 1 or a PyTime, not {value!r}")
            self._duration = frames
        else:
            super()._attr_set(name, value)

    @property
    def has_annotations(self) -> bool:
        return False


class PySegment(PyFlameObject):
    """Object representing a Segment."""

    __module__ = "flame"
    _ATTRS = {"name": STR, "shot_name": STR, "comment": STR, "hidden": BOOL, "selected": BOOL, "colour": COLOUR}

    def __init__(
        self, rt: Any, track: PyTrack, media: Optional[Media], src_in: int, length: int, rec_offset: int, name: str
    ) -> None:
        super().__init__(rt, track)
        self._media = media
        self._src_in = src_in
        self._length = length
        self._rec_offset = rec_offset
        self._effects: List[PyTimelineFX] = []
        self._markers: List[PyMarker] = []
        self._start_frame = media.start_frame if media else 0
        self._init_attr("name", name)
        self._init_attr("shot_name", "")
        self._init_attr("comment", "")
        self._init_attr("hidden", False)
        self._init_attr("selected", False)
        self._init_attr("colour", None)

    def _clip(self) -> PyClip:
        return self._parent._parent._parent

    def _src(self) -> Media:
        if self._media is None:
            raise AssertionError("gap has no media")
        return self._media

    def _media_time(self, index: int) -> Optional[PyTime]:
        if self._media is None:
            return None
        return PyTime._make(self._media.start_tc + index, self._media.frame_rate, index + 1)

    @property
    def type(self) -> str:
        """Return the Segment type ("Gap" for gaps, "Video Segment" for media)."""
        return "Gap" if self._media is None else "Video Segment"

    @property
    def file_path(self) -> str:
        """Return the file path of the Segment's source ("" for media that lives inside Flame)."""
        return self._media.file_path if self._media else ""

    @property
    def source_name(self) -> str:
        return self._media.name if self._media else ""

    @property
    def tape_name(self) -> str:
        return self._media.tape_name if self._media else ""

    @property
    def source_uid(self) -> str:
        return self._media.uid if self._media else ""

    @property
    def source_in(self) -> Optional[PyTime]:
        return self._media_time(self._src_in)

    @property
    def source_out(self) -> Optional[PyTime]:
        """Return the source time out of the Segment (its last frame: inclusive)."""
        return self._media_time(self._src_in + self._length - 1)

    @property
    def source_duration(self) -> Optional[PyTime]:
        """Return the duration of the Segment's source (the whole source media)."""
        return PyTime._duration(self._media.length, self._media.frame_rate) if self._media else None

    @property
    def record_in(self) -> PyTime:
        return self._clip()._time_at(self._rec_offset + 1)

    @property
    def record_out(self) -> PyTime:
        """Return the record time out of the Segment (its last frame: inclusive)."""
        return self._clip()._time_at(self._rec_offset + self._length)

    @property
    def record_duration(self) -> PyTime:
        return PyTime._duration(self._length, self._clip()._rate)

    @property
    def head(self) -> int:
        return self._src_in if self._media else 0

    @property
    def tail(self) -> int:
        return self._media.length - self._src_in - self._length if self._media else 0

    @property
    def start_frame(self) -> int:
        return self._start_frame

    @property
    def source_width(self) -> int:
        return self._media.width if self._media else 0

    @property
    def source_height(self) -> int:
        return self._media.height if self._media else 0

    @property
    def source_bit_depth(self) -> int:
        return self._media.bit_depth if self._media else 0

    @property
    def source_frame_rate(self) -> str:
        return self._media.frame_rate if self._media else ""

    @property
    def source_ratio(self) -> float:
        return self._media.width / self._media.height if self._media else 0.0

    @property
    def effects(self) -> list:
        """Return a list of PyTimeline FX on the segment."""
        return [e for e in self._effects if not e._deleted]

    @property
    def effect_types(self) -> list:
        return list(EFFECT_TYPES)

    @property
    def markers(self) -> list:
        return list(self._markers)

    @checked
    def create_effect(self, effect_type: str, after_effect_type: str = "") -> PyTimelineFX:
        """Add an effect of effect_type on the Segment (unrendered until the clip is rendered)."""
        if effect_type not in EFFECT_TYPES:
            raise ValueError(f"Unknown effect type {effect_type!r}; known: {', '.join(EFFECT_TYPES)}")
        if self._media is None:
            raise RuntimeError("Cannot add a Timeline FX on a gap")
        fx = PyTimelineFX(self._rt, self, effect_type, rendered=False)
        self._effects.append(fx)
        return fx

    @checked
    def create_marker(self, location: Any) -> PyMarker:
        clip = self._clip()
        marker = PyMarker(self._rt, self, clip, clip._relative_of("location", location, 1, clip._length))
        self._markers.append(marker)
        return marker

    @checked
    def change_start_frame(self, start_frame: int, use_segment_connections: bool = True) -> None:
        if not _is_int(start_frame) or start_frame < 0:
            raise ValueError(f"start_frame must be an int >= 0, not {start_frame!r}")
        self._start_frame = start_frame

    @checked
    def get_colour_space(self, time: Optional[PyTime] = None) -> str:
        return self._media.colour_space if self._media else ""

    @checked
    def match(
        self,
        destination: Any,
        preserve_handle: bool = False,
        use_sequence_info: bool = True,
        include_nested_content: bool = False,
        include_timeline_fx: bool = False,
    ) -> PyClip:
        """Match out the media of the Segment to the destination; returns the new source PyClip.

        preserve_handle=False (the default) unrolls the handles: the clip shows the whole source media, no
        marks. True: the clip shows the segment's frames only (start frame and timecode those of the source
        in). use_sequence_info names the clip after the segment (else after its source) and keeps its shot
        name; include_timeline_fx copies its Timeline FX (rendered or not, as they are)."""
        if not isinstance(destination, (PyReel, PyFolder, PyLibrary)):
            raise TypeError(f"match: the destination must be a reel, folder or library, not {destination!r}")
        if include_nested_content:
            raise NotImplementedError("The Flame double does not emulate nested content (BFX, Matte Container)")
        if self._media is None:
            raise RuntimeError("match: a gap has no media to match out")
        media = self._media
        name = self._values["name"] if use_sequence_info and self._values["name"] else media.name
        clip = build_source_clip(self._rt, name, media)
        if preserve_handle:
            clip._start_tc = media.start_tc + self._src_in
            clip._start_frame = media.start_frame + self._src_in
            segment = clip._top_segments()[0]
            segment._src_in, segment._length = self._src_in, self._length
            segment._start_frame = clip._start_frame
        segment = clip._top_segments()[0]
        if use_sequence_info:
            segment._values["shot_name"] = self._values["shot_name"]
        if include_timeline_fx:
            segment._effects = [PyTimelineFX(self._rt, segment, fx._type, fx._rendered) for fx in self.effects]
        return destination._add(clip)


class PyTrack(PyFlameObject):
    """Object representing a Track."""

    __module__ = "flame"
    _ATTRS = {"name": STR, "hidden": BOOL}

    def __init__(self, rt: Any, version: PyVersion, name: str) -> None:
        super().__init__(rt, version)
        self._segments: List[PySegment] = []
        self._init_attr("name", name)
        self._init_attr("hidden", False)

    @property
    def segments(self) -> list:
        """Return a list of the Track's segments."""
        return list(self._segments)

    @property
    def transitions(self) -> list:
        return []


class PyVersion(PyFlameObject):
    """Object representing a Version."""

    __module__ = "flame"

    def __init__(self, rt: Any, clip: PyClip) -> None:
        super().__init__(rt, clip)
        self._tracks: List[PyTrack] = []

    @property
    def tracks(self) -> list:
        return list(self._tracks)

    @property
    def stereo(self) -> bool:
        return False


class PyClip(PyArchiveEntry):
    """CLass derived from PyArchiveEntry. This class represents a Clip."""

    __module__ = "flame"
    _ATTRS = {
        "in_mark": TIME,
        "out_mark": TIME,
        "current_time": TIME,
        "start_time": TIME,
        "selected": BOOL,
        "tags": STR_LIST,
        "colour_label": STR,
        "shot_name": STR,
    }
    _GATED = {"tags": "2025.1", "colour_label": "2025.1", "shot_name": "2026"}

    def __init__(
        self,
        rt: Any,
        name: str,
        rate: str,
        start_tc: int,
        width: int,
        height: int,
        bit_depth: int,
        start_frame: int,
        colour_space: str,
    ) -> None:
        super().__init__(rt, name, None)
        self._rate = _time.frame_rate(rate).name
        self._start_tc = start_tc
        self._width = width
        self._height = height
        self._bit_depth = bit_depth
        self._start_frame = start_frame
        self._colour_space = colour_space
        self._versions: List[PyVersion] = []
        self._markers: List[PyMarker] = []
        self._in: Optional[int] = None
        self._out: Optional[int] = None
        self._current = 1
        self._init_attr("selected", False)
        self._init_attr("tags", [])
        self._init_attr("colour_label", "")
        self._init_attr("shot_name", "")

    # -- internals --------------------------------------------------------------------------------------
    def _top_segments(self) -> List[PySegment]:
        return self._versions[0]._tracks[0]._segments if self._versions else []

    @property
    def _length(self) -> int:
        return sum(s._length for s in self._top_segments())

    def _time_at(self, relative: int) -> PyTime:
        return PyTime._make(self._start_tc + relative - 1, self._rate, relative)

    def _relative_of(self, name: str, value: Any, low: int, high: int) -> int:
        """Relative frame (1 = first frame) of an int relative frame or a PyTime; ValueError outside low..high."""
        if _is_int(value):
            rel = value
        elif isinstance(value, PyTime):
            if value._frame is not None:
                if value._rate != self._rate:
                    raise ValueError(
                        f"{name}: PyTime at {value._rate} does not match the clip's frame rate {self._rate}"
                    )
                rel = value._frame - self._start_tc + 1
            else:
                rel = value._relative
        else:
            raise TypeError(f"{name} takes an int (relative frame) or a PyTime, not {type(value).__name__}")
        if not low <= rel <= high:
            raise ValueError(
                f"{name} {rel} is outside the clip {self._values['name']!r} (relative frames {low}..{high})"
            )
        return rel

    def _attr_get(self, name: str) -> Any:
        if name == "in_mark":
            return None if self._in is None else self._time_at(self._in)
        if name == "out_mark":
            return None if self._out is None else self._time_at(self._out)
        if name == "current_time":
            return self._time_at(self._current)
        if name == "start_time":
            return self._time_at(1)
        return super()._attr_get(name)

    def _attr_set(self, name: str, value: Any) -> None:
        if name == "start_time":
            self._check_member(name)
            raise AttributeError(
                "PyClip.start_time cannot be set in the double (a source clip's timecode comes from its media)"
            )
        if name in ("in_mark", "out_mark") and value is None:  # clears the mark (logik-portal, Insert Slate)
            self._check_member(name)
            setattr(self, "_in" if name == "in_mark" else "_out", None)
            return
        if name in ("in_mark", "out_mark", "current_time"):
            self._check_member(name)
            n = self._length
            if name == "out_mark":
                self._out = self._relative_of(name, value, 2, n + 1)
            elif name == "in_mark":
                self._in = self._relative_of(name, value, 1, n)
            else:
                self._current = self._relative_of(name, value, 1, n)
            return
        super()._attr_set(name, value)

    def _media_list(self) -> List[Media]:
        return [s._media for v in self._versions for t in v._tracks for s in t._segments if s._media is not None]

    def _unrendered(self) -> List[PyTimelineFX]:
        return [
            fx for v in self._versions for t in v._tracks for s in t._segments for fx in s._effects
            if not fx._rendered and not fx._deleted
        ]

    # -- properties -------------------------------------------------------------------------------------
    @property
    def bit_depth(self) -> int:
        return self._bit_depth

    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def ratio(self) -> float:
        """Return the Clip's frame ratio (width / height: square pixels)."""
        return self._width / self._height

    @property
    def scan_mode(self) -> str:
        return "P"

    @property
    def frame_rate(self) -> str:
        """Return the Clip's frame rate, e.g. "23.976 fps"."""
        return self._rate

    @property
    def start_frame(self) -> int:
        return self._start_frame

    @property
    def duration(self) -> PyTime:
        """Return the Clip's duration: the frames between its marks when it has any (in mark included, out mark
        excluded; an unset mark stands for the clip's start or end), else all its frames. ``.frame`` and
        ``.relative_frame`` are that number of frames."""
        first = self._in if self._in is not None else 1
        end = self._out if self._out is not None else self._length + 1
        return PyTime._duration(max(0, end - first), self._rate)

    @property
    def versions(self) -> list:
        return list(self._versions)

    @property
    def markers(self) -> list:
        return list(self._markers)

    @property
    def source_uid(self) -> str:
        media = self._media_list()
        return media[0].uid if len(media) == 1 else ""

    @property
    def colour_primaries(self) -> int:
        return _COLOUR_CODES.get(self._colour_space, (2, 2))[0]

    @property
    def transfer_characteristics(self) -> int:
        return _COLOUR_CODES.get(self._colour_space, (2, 2))[1]

    @property
    def archive_date(self) -> str:
        return ""

    @property
    def cached(self) -> bool:
        return False

    @property
    def unlinked(self) -> bool:
        return False

    @property
    def audio_tracks(self) -> list:
        return []

    @property
    def subtitles(self) -> list:
        return []

    # -- methods ----------------------------------------------------------------------------------------
    @checked
    def change_start_frame(self, start_frame: int, use_segment_connections: bool = True) -> None:
        """Modify the start frame of a source Clip (its timecode does not change)."""
        if not _is_int(start_frame) or start_frame < 0:
            raise ValueError(f"start_frame must be an int >= 0, not {start_frame!r}")
        self._start_frame = start_frame
        for seg in self._top_segments():
            if seg._media is not None:
                seg._start_frame = start_frame

    @checked
    def get_colour_space(self, time: Optional[PyTime] = None) -> str:
        return self._colour_space

    @checked
    def is_rendered(self, top_only: bool = False, render_quality: str = "Full Resolution") -> bool:
        return not self._unrendered()

    @checked
    def render(
        self,
        render_mode: str = "All",
        render_option: str = "Foreground",
        render_quality: str = "Full Resolution",
        effect_type: str = "",
        effect_caching_mode: str = "Current",
        include_handles: bool = False,
    ) -> bool:
        """Render the Clip's Timeline FX (Foreground only in the double)."""
        if render_option != "Foreground":
            raise NotImplementedError("The Flame double renders in the Foreground only")
        for fx in self._unrendered():
            if not effect_type or fx._type == effect_type:
                fx._rendered = True
        self._rt.log_render(self)
        return True

    @checked
    def cache_media(self, mode: str = "current") -> bool:
        return True

    @checked
    def create_marker(self, location: Any) -> PyMarker:
        marker = PyMarker(self._rt, self, self, self._relative_of("location", location, 1, self._length))
        self._markers.append(marker)
        return marker


class PySequence(PyClip):
    """Object representing a Sequence."""

    __module__ = "flame"

    @property
    def groups(self) -> list:
        return []


# ---------------------------------------------------------------------------------------------------------
# batch nodes (isinstance-checkable; a batch selection holds these)


class PyNode(PyFlameObject):
    """Object representing a Node."""

    __module__ = "flame"
    _ATTRS = {"name": STR}

    def __init__(self, rt: Any, name: str, parent: Optional[Any] = None) -> None:
        super().__init__(rt, parent)
        self._init_attr("name", name)


class PyClipNode(PyNode):
    """Class derived from PyNode. This class represents a Clip node."""

    __module__ = "flame"

    def __init__(self, rt: Any, name: str, clip: PyClip, parent: Optional[Any] = None) -> None:
        super().__init__(rt, name, parent)
        self._clip_ref = clip

    @property
    def clip(self) -> PyClip:
        return self._clip_ref


# ---------------------------------------------------------------------------------------------------------
# builders used by the runtime and the harness


def build_source_clip(rt: Any, name: str, media: Media, clip_cls: type = PyClip) -> PyClip:
    """A source clip: one version, one track, one segment over the whole media."""
    clip = clip_cls(
        rt, name, media.frame_rate, media.start_tc, media.width, media.height, media.bit_depth,
        media.start_frame, media.colour_space,
    )
    version = PyVersion(rt, clip)
    track = PyTrack(rt, version, "")
    track._segments.append(PySegment(rt, track, media, 0, media.length, 0, name))
    version._tracks.append(track)
    clip._versions.append(version)
    return clip


def build_sequence(
    rt: Any, name: str, items: List[Tuple[Optional[Media], int, int, str]], rate: str, start_tc: int,
    width: int, height: int, bit_depth: int, start_frame: int, colour_space: str,
) -> PySequence:
    """A one-track sequence; items are (media or None for a gap, source index, length, segment name)."""
    seq = PySequence(rt, name, rate, start_tc, width, height, bit_depth, start_frame, colour_space)
    version = PyVersion(rt, seq)
    track = PyTrack(rt, version, "V1")
    offset = 0
    for media, src_in, length, seg_name in items:
        track._segments.append(PySegment(rt, track, media, src_in, length, offset, seg_name))
        offset += length
    version._tracks.append(track)
    seq._versions.append(version)
    return seq


def copy_clip(rt: Any, clip: PyClip) -> PyClip:
    """A duplicate: same media, name, marks and timing; new uid and wiretap id."""
    new = type(clip)(
        rt, clip._values["name"], clip._rate, clip._start_tc, clip._width, clip._height, clip._bit_depth,
        clip._start_frame, clip._colour_space,
    )
    for version in clip._versions:
        new_version = PyVersion(rt, new)
        for track in version._tracks:
            new_track = PyTrack(rt, new_version, track._values["name"])
            for seg in track._segments:
                new_seg = PySegment(
                    rt, new_track, seg._media, seg._src_in, seg._length, seg._rec_offset, seg._values["name"]
                )
                new_seg._values.update({k: v for k, v in seg._values.items() if k != "selected"})
                new_seg._values["selected"] = False
                new_seg._start_frame = seg._start_frame
                new_seg._effects = [PyTimelineFX(rt, new_seg, fx._type, fx._rendered) for fx in seg._effects]
                new_track._segments.append(new_seg)
            new_version._tracks.append(new_track)
        new._versions.append(new_version)
    new._in, new._out, new._current = clip._in, clip._out, clip._current
    for key in ("colour", "tags", "colour_label", "shot_name"):
        new._values[key] = clip._values[key]
    return new


# ---------------------------------------------------------------------------------------------------------
# the module's service objects


class PyProjectSelector(_Checked):
    """Object representing the Project manager."""

    __module__ = "flame"

    def __init__(self, rt: Any) -> None:
        super().__init__(rt)

    @property
    def current_project(self) -> PyProject:
        return self._rt.project


class PyUser(_Checked):
    """Object representing a User."""

    __module__ = "flame"

    def __init__(self, rt: Any, name: str) -> None:
        super().__init__(rt)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def nickname(self) -> str:
        return self._name


class PyUsers(_Checked):
    """Object representing the User manager."""

    __module__ = "flame"

    def __init__(self, rt: Any) -> None:
        super().__init__(rt)

    @property
    def current_user(self) -> PyUser:
        return self._rt.user


class PyMediaPanel(_Checked):
    """This class represents the media panel."""

    __module__ = "flame"

    def __init__(self, rt: Any) -> None:
        super().__init__(rt)

    @property
    def selected_entries(self) -> list:
        """A list of PyObject currently selected."""
        return [e for e in self._rt.media_panel_selection if not e._deleted]

    @property
    def visible(self) -> bool:
        return True

    @checked
    def copy(self, source_entries: Any, destination: Any, duplicate_action: str = "add") -> list:
        """Copy clips into a reel, folder or library; returns the copies."""
        entries = source_entries if isinstance(source_entries, (list, tuple)) else [source_entries]
        copies = []
        for entry in entries:
            if not isinstance(entry, PyClip):
                raise NotImplementedError(f"The Flame double copies clips only, not {type(entry).__name__}")
            copies.append(destination._add(copy_clip(self._rt, entry)))
        return copies


class PyMessages(_Checked):
    """Module handling message bar in application UI."""

    __module__ = "flame"

    def __init__(self, rt: Any) -> None:
        super().__init__(rt)

    @checked
    def show_in_console(self, message: str, type: str = "info", duration: int = -1) -> None:
        self._rt.show_in_console(message, type, duration)

    @checked
    def show_in_dialog(self, title: str, message: str, type: str, buttons: list, cancel_button: str = "") -> str:
        return self._rt.show_in_dialog(title, message, type, buttons, cancel_button)

    @checked
    def clear_console(self) -> None:
        self._rt.clear_console()


class PyTimeline(_Checked):
    """This class represents the Timeline."""

    __module__ = "flame"

    def __init__(self, rt: Any) -> None:
        super().__init__(rt)

    @property
    def clip(self) -> Optional[PyClip]:
        return self._rt.timeline_clip

    @property
    def current_segment(self) -> Optional[PySegment]:
        segments = self._rt.timeline_selection
        return segments[0] if segments else None

    @property
    def current_effect(self) -> None:
        return None

    @property
    def current_marker(self) -> None:
        return None

    @property
    def current_transition(self) -> None:
        return None
