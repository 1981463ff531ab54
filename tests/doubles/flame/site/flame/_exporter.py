"""``flame.PyExporter``: records each export, checks the preset, calls the export hooks, writes real frames.

The preset XML drives the files: ``<preset version="N">`` must equal the emulated Flame's preset version
(otherwise Flame shows a dialog; the double records that dialog and raises RuntimeError, exporting
nothing); ``<video><fileType>`` (OpenEXR, Dpx, Png, Jpeg, Tiff) with ``<resize>`` bitsPerChannel /
floatingPoint / numChannels / width / height (0 = the clip's size); ``<video><namePattern>`` with the
tokens ``<name>`` (clip name), ``<shot name>``, ``<segment name>``, ``<width>``, ``<height>``, ``<YYYY>``,
``<YY>``, ``<MM>``, ``<DD>``, ``<hh>``, ``<mm>``, ``<ss>``, ``<frame>`` and ``<ext>`` (``<frame><ext>`` is
appended when the pattern lacks them: ``<name>.`` → ``plate.00086400.exr``); ``<name><framePadding>``; and
the numbering: ``<frameIndex>`` 0 (or ``<useTimecode>False``) numbers the first exported frame
``<startFrame>``, ``<frameIndex>`` 1 (or ``<useTimecode>True``) numbers each frame by its timecode as a
frame count; other frameIndex values are refused (their meaning is unconfirmed).

Background exports (Flame's default, ``foreground = False``) call every hook at submission, with
``isBackground`` True and a ``backgroundJobId``, and write nothing until the test finishes the Backburner
job (``FlameSession.finish_background_jobs()``).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import numpy as np

from . import _media, _objects, _state, _time
from ._attributes import _Checked, checked

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------
# Boost.Python-style enums: int subclasses with .name, and .values / .names on the enum type


class _BoostEnum(int):
    __module__ = "flame"
    values: ClassVar[Dict[int, _BoostEnum]] = {}
    names: ClassVar[Dict[str, _BoostEnum]] = {}
    name: str

    def __repr__(self) -> str:
        return f"flame.PyExporter.{type(self).__name__}.{self.name}"

    __str__ = __repr__


def _make_enum(enum_name: str, members: Dict[str, int]) -> type:
    cls = type(enum_name, (_BoostEnum,), {"__module__": "flame"})
    values: Dict[int, Any] = {}
    names: Dict[str, Any] = {}
    for member, number in members.items():
        obj = int.__new__(cls, number)
        obj.name = member
        setattr(cls, member, obj)
        values.setdefault(number, obj)
        names[member] = obj
    cls.values = values
    cls.names = names
    return cls


PresetVisibility = _make_enum(
    "PresetVisibility",
    {"User": 0, "Project": 1, "Autodesk": 2, "Shared": 3, "Shotgun": 4, "Flow_Production_Tracking": 5},
)
PresetType = _make_enum(
    "PresetType",
    {"Image_Sequence": 0, "Audio": 1, "Movie": 2, "Sequence_Publish": 3, "Distribution_Package": 4},
)
_TYPE_DIRS = {
    "Image_Sequence": "file_sequence",
    "Audio": "audio_file",
    "Movie": "movie_file",
    "Sequence_Publish": "sequence_publish",
    "Distribution_Package": "distribution_package",
}
_FILE_TYPES = {"openexr": "exr", "dpx": "dpx", "png": "png", "jpeg": "jpg", "tiff": "tif"}
_DATE_TOKENS = {"<YYYY>": "%Y", "<YY>": "%y", "<MM>": "%m", "<DD>": "%d", "<hh>": "%H", "<mm>": "%M", "<ss>": "%S"}
_TOKEN_RE = re.compile(r"<[^<>]+>")
_HOOKS = (
    ("preExport", "pre_export"),
    ("preExportSequence", "pre_export_sequence"),
    ("preExportAsset", "pre_export_asset"),
    ("postExportAsset", "post_export_asset"),
    ("postExportSequence", "post_export_sequence"),
    ("postExport", "post_export"),
)


def presets_base_dir(rt: Any, visibility: Any) -> str:
    if not isinstance(visibility, PresetVisibility):
        raise TypeError(f"preset_visibility must be a flame.PyExporter.PresetVisibility, not {visibility!r}")
    root = os.path.join(rt.root, "opt", "Autodesk")
    name = visibility.name
    if name == "Autodesk":
        return os.path.join(root, "presets", rt.version, "export", "presets", "flame")
    if name == "Shared":
        return os.path.join(root, "shared", "export", "presets")
    if name == "Project":
        return os.path.join(root, "project", rt.project_name, "export", "presets")
    if name == "User":
        return os.path.join(root, "user", rt.user_name, "export", "presets")
    return os.path.join(root, "shared", "export", "presets", "shotgun")


def presets_dir(rt: Any, visibility: Any, preset_type: Any) -> str:
    if not isinstance(preset_type, PresetType):
        raise TypeError(f"preset_type must be a flame.PyExporter.PresetType, not {preset_type!r}")
    return os.path.join(presets_base_dir(rt, visibility), _TYPE_DIRS[preset_type.name])


# ---------------------------------------------------------------------------------------------------------
# preset


@dataclass
class Preset:
    path: str
    version: int
    kind: str
    ext: str
    name_pattern: str
    bit_depth: int
    is_float: bool
    channels: int
    width: int
    height: int
    padding: int
    numbering: str  # "start_frame" or "timecode"
    start_frame: int
    quality: Optional[int]

    @property
    def depth_label(self) -> str:
        if self.is_float:
            return f"{self.bit_depth} fp"
        return f"{self.bit_depth}-bits"


def _text(node: Optional[ET.Element], tag: str) -> Optional[str]:
    if node is None:
        return None
    found = node.find(tag)
    return None if found is None else (found.text or "")


def _int(value: Optional[str], what: str, path: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise RuntimeError(f"Export preset {path}: {what} is not an integer ({value!r})") from None


def _flag(value: Optional[str]) -> bool:
    return str(value).strip().lower() == "true"


def parse_preset(path: str) -> Preset:
    if not isinstance(path, str):
        raise TypeError(f"preset_path must be a str, not {type(path).__name__}")
    if not os.path.isfile(path):
        raise RuntimeError(f"Export preset not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RuntimeError(f"Export preset {path} is not valid XML: {exc}") from exc
    if root.tag != "preset" or "version" not in root.attrib:
        raise RuntimeError(f"Export preset {path} has no <preset version=...> root")
    version = _int(root.attrib["version"], "<preset version>", path)
    kind = (_text(root, "type") or "").strip()
    if kind not in ("image", "sequence"):
        raise RuntimeError(f"Export preset {path}: <type>{kind}</type> is not emulated (image, sequence)")
    video = root.find("video")
    if video is None:
        raise RuntimeError(f"Export preset {path} has no <video> section")
    file_type = (_text(video, "fileType") or "").strip()
    ext = _FILE_TYPES.get(file_type.lower())
    if ext is None:
        raise RuntimeError(f"Export preset {path}: fileType {file_type!r} is not emulated ({', '.join(_FILE_TYPES)})")
    pattern = (_text(video, "namePattern") or "").strip()
    if not pattern:
        raise RuntimeError(f"Export preset {path}: an empty <video><namePattern> is not emulated")
    resize = video.find("resize")
    bits = _int(_text(resize, "bitsPerChannel"), "bitsPerChannel", path)
    is_float = _flag(_text(resize, "floatingPoint"))
    depths = _media.writable_bit_depths(ext)
    if bits not in depths or is_float != (depths[bits][0] in ("half", "float")):
        raise RuntimeError(f"Export preset {path}: {bits}-bit {'float ' if is_float else ''}{file_type} is invalid")
    names = root.find("name")
    padding = _int(_text(names, "framePadding") or "0", "framePadding", path)
    frame_index = _text(names, "frameIndex")
    use_timecode = _text(names, "useTimecode")
    if frame_index is not None:
        index = _int(frame_index, "frameIndex", path)
        if index not in (0, 1):
            raise RuntimeError(
                f"Export preset {path}: frameIndex {index} is not emulated (0: from startFrame, 1: from timecode)"
            )
        numbering = "timecode" if index == 1 else "start_frame"
    elif use_timecode is not None:
        numbering = "timecode" if _flag(use_timecode) else "start_frame"
    else:
        raise RuntimeError(f"Export preset {path}: <name> has neither <frameIndex> nor <useTimecode>")
    start = _text(names, "startFrame")
    if numbering == "start_frame" and start is None:
        raise RuntimeError(f"Export preset {path}: numbering from the start frame needs <startFrame>")
    quality = _text(video, "compressionQuality")
    return Preset(
        path=path,
        version=version,
        kind=kind,
        ext=ext,
        name_pattern=pattern,
        bit_depth=bits,
        is_float=is_float,
        channels=_int(_text(resize, "numChannels") or "3", "numChannels", path),
        width=_int(_text(resize, "width") or "0", "width", path),
        height=_int(_text(resize, "height") or "0", "height", path),
        padding=padding,
        numbering=numbering,
        start_frame=_int(start, "startFrame", path) if start is not None else 0,
        quality=_int(quality, "compressionQuality", path) if quality else None,
    )


def factory_preset_xml(version: int, file_type: str, bits: int, is_float: bool, comment: str) -> str:
    """A factory-style preset (numbered from the timecode, 8-digit padding, pattern ``<name>.``)."""
    return (
        '<?xml version="1.0"?>\n'
        f'<preset version="{version}">\n'
        "    <type>image</type>\n"
        f"    <comment>{comment}</comment>\n"
        "    <video>\n"
        f"        <fileType>{file_type}</fileType>\n"
        "        <namePattern>&lt;name&gt;.</namePattern>\n"
        "        <compressionQuality>100</compressionQuality>\n"
        "        <resize>\n"
        "            <width>0</width>\n"
        "            <height>0</height>\n"
        f"            <bitsPerChannel>{bits}</bitsPerChannel>\n"
        "            <numChannels>3</numChannels>\n"
        f"            <floatingPoint>{is_float}</floatingPoint>\n"
        "        </resize>\n"
        "    </video>\n"
        "    <name>\n"
        "        <framePadding>8</framePadding>\n"
        "        <startFrame>1</startFrame>\n"
        "        <frameIndex>1</frameIndex>\n"
        "    </name>\n"
        "</preset>\n"
    )


FACTORY_PRESETS: Tuple[Tuple[str, str, int, bool, str], ...] = (
    ("OpenEXR/OpenEXR (16-bit fp Uncompressed).xml", "OpenEXR", 16, True, "16-bit fp OpenEXR, uncompressed"),
    ("OpenEXR/OpenEXR (32-bit fp Uncompressed).xml", "OpenEXR", 32, True, "32-bit fp OpenEXR, uncompressed"),
    ("DPX/DPX (10-bit).xml", "Dpx", 10, False, "10-bit DPX"),
    ("PNG/PNG (8-bit).xml", "Png", 8, False, "8-bit PNG"),
    ("Jpeg/Jpeg (8-bit).xml", "Jpeg", 8, False, "8-bit Jpeg"),
)


def write_factory_presets(rt: Any) -> None:
    base = presets_dir(rt, PresetVisibility.Autodesk, PresetType.Image_Sequence)  # type: ignore[attr-defined]
    for rel, file_type, bits, is_float, comment in FACTORY_PRESETS:
        target = os.path.join(base, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(factory_preset_xml(rt.preset_version, file_type, bits, is_float, comment))


# ---------------------------------------------------------------------------------------------------------
# records


@dataclass
class ExportedAsset:
    """One exported clip: where its frames go and the info its postExportAsset hook received."""

    clip_name: str
    resolved_path: str
    paths: List[str]
    frame_numbers: List[int]
    info: Dict[str, Any]


@dataclass
class ExportRecord:
    """One PyExporter.export call: its arguments, the exporter's options and what came of it."""

    sources: List[Any]
    preset_path: str
    output_directory: str
    foreground: bool
    export_between_marks: bool
    use_top_video_track: bool
    background_job_settings: Any
    hooks: Any
    hooks_user_data: Any
    state: str = "refused"  # refused | aborted | written | queued | failed
    job_id: str = ""
    error: str = ""
    assets: List[ExportedAsset] = field(default_factory=list)
    hook_calls: List[str] = field(default_factory=list)

    @property
    def paths(self) -> List[str]:
        return [p for a in self.assets for p in a.paths]


@dataclass
class BackgroundJob:
    """A Backburner job holding an export's writes until the test finishes it."""

    job_id: str
    record: ExportRecord
    writes: List[Callable[[], None]]
    state: str = "queued"  # queued | completed


class BackgroundJobSettings(_Checked):
    """Object holding background export job settings (Backburner job name and description)."""

    __module__ = "flame"

    def __init__(self) -> None:
        super().__init__(_state.check("PyExporter.BackgroundJobSettings"))
        self._name = ""
        self._description = ""

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("BackgroundJobSettings.name takes a str")
        self._name = value

    @property
    def description(self) -> str:
        return self._description

    @description.setter
    def description(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("BackgroundJobSettings.description takes a str")
        self._description = value


# ---------------------------------------------------------------------------------------------------------
# the exporter


def _bool_option(name: str, default: bool, doc: str) -> property:
    def getter(self: Any) -> bool:
        return self._options.get(name, default)

    def setter(self: Any, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"PyExporter.{name} takes a bool, not {value!r}")
        self._options[name] = value

    return property(getter, setter, doc=doc)


class PyExporter(_Checked):
    """Object holding export settings."""

    __module__ = "flame"
    PresetVisibility = PresetVisibility
    PresetType = PresetType
    BackgroundJobSettings = BackgroundJobSettings

    foreground = _bool_option("foreground", False, "Set export option 'Foreground export'.")
    export_between_marks = _bool_option("export_between_marks", False, "Set export option 'Export between marks'.")
    use_top_video_track = _bool_option("use_top_video_track", False, "Set export option 'Use top video track'.")
    include_subtitles = _bool_option("include_subtitles", False, "Set export option 'Include Subtitles'.")
    export_all_subtitles = _bool_option("export_all_subtitles", False, "Set export option 'All Subtitles Tracks'.")
    export_subtitles_as_files = _bool_option("export_subtitles_as_files", False, "Subtitles 'Export As Files'.")
    keep_timeline_fx_renders = _bool_option("keep_timeline_fx_renders", False, "'Keep Timeline FX Renders'.")
    warn_on_mixed_colour_space = _bool_option("warn_on_mixed_colour_space", True, "'Warn on mixed colour space'.")
    warn_on_no_media = _bool_option("warn_on_no_media", True, "'Warn on no media'.")
    warn_on_pending_render = _bool_option("warn_on_pending_render", True, "'Warn on pending render'.")
    warn_on_reimport_unsupported = _bool_option("warn_on_reimport_unsupported", True, "'Warn on reimport unsupported'.")
    warn_on_unlinked = _bool_option("warn_on_unlinked", True, "'Warn on unlinked'.")
    warn_on_unrendered = _bool_option("warn_on_unrendered", True, "'Warn on unrendered'.")

    def __init__(self) -> None:
        super().__init__(_state.check("PyExporter"))
        self._options: Dict[str, bool] = {}

    @staticmethod
    def get_presets_base_dir(preset_visibility: Any) -> str:
        return presets_base_dir(_state.check("PyExporter.get_presets_base_dir"), preset_visibility)

    @staticmethod
    def get_presets_dir(preset_visibility: Any, preset_type: Any) -> str:
        return presets_dir(_state.check("PyExporter.get_presets_dir"), preset_visibility, preset_type)

    @checked
    def export(
        self,
        sources: Any,
        preset_path: str,
        output_directory: str,
        background_job_settings: Any = None,
        hooks: Any = None,
        hooks_user_data: Any = None,
    ) -> None:
        record = ExportRecord(
            sources=list(sources) if isinstance(sources, (list, tuple)) else [sources],
            preset_path=preset_path,
            output_directory=output_directory,
            foreground=self.foreground,
            export_between_marks=self.export_between_marks,
            use_top_video_track=self.use_top_video_track,
            background_job_settings=background_job_settings,
            hooks=hooks,
            hooks_user_data=hooks_user_data,
        )
        self._rt.exports.append(record)
        try:
            _Export(self._rt, record).run()
        except Exception as exc:
            if record.state in ("refused", "failed"):
                record.error = record.error or str(exc)
            raise


for _enum in (PresetVisibility, PresetType):  # Boost.Python's export_values(): PyExporter.Autodesk, ...
    for _member_name, _member in _enum.names.items():
        setattr(PyExporter, _member_name, _member)


# ---------------------------------------------------------------------------------------------------------


def _fps_label(rate: str) -> str:
    return rate.split(" ")[0]


def _frame_pixels(clip: Any, rel: int, channels: int) -> np.ndarray:
    offset = rel - 1
    for seg in clip._top_segments():
        if seg._rec_offset <= offset < seg._rec_offset + seg._length:
            if seg._media is None:
                return np.zeros((clip._height, clip._width, channels), dtype=np.float32)
            px = seg._media.pixels(seg._src_in + offset - seg._rec_offset)
            px = _media.fit_channels(px, channels)
            return _media.resize(px, clip._width, clip._height)
    raise AssertionError(f"relative frame {rel} outside {clip!r}")


@dataclass
class _Plan:
    clip: Any
    rels: List[int]
    numbers: List[int]
    width: int
    height: int
    resolved: str  # relative path with [first-last]
    paths: List[str] = field(default_factory=list)
    info: Dict[str, Any] = field(default_factory=dict)


class _Export:
    def __init__(self, rt: Any, record: ExportRecord) -> None:
        self.rt = rt
        self.record = record

    # -- validation -------------------------------------------------------------------------------------
    def _clips(self) -> List[Any]:
        clips: List[Any] = []

        def add(obj: Any) -> None:
            if isinstance(obj, _objects.PyClip):
                obj._check_member("export")
                clips.append(obj)
            elif isinstance(obj, (_objects.PyLibrary, _objects.PyFolder, _objects.PyReel, _objects.PyReelGroup)):
                for child in obj.children:
                    add(child)
            else:
                raise TypeError(f"PyExporter.export: cannot export {obj!r} (clips, sequences or containers)")

        for source in self.record.sources:
            add(source)
        if not clips:
            raise RuntimeError("PyExporter.export: nothing to export")
        return clips

    def _preset(self) -> Preset:
        preset = parse_preset(self.record.preset_path)
        if preset.version != self.rt.preset_version:
            message = (
                f"The export preset {os.path.basename(preset.path)} was saved by another version of Flame "
                f"(preset version {preset.version}; this Flame {self.rt.version} expects {self.rt.preset_version})."
            )
            self.rt.record_flame_dialog("Export", message, "warning")
            raise RuntimeError(
                f"{message} Flame shows a dialog here; the double refuses the export. Rewrite the preset's "
                "version from a factory preset (PyExporter.get_presets_base_dir(PresetVisibility.Autodesk))."
            )
        return preset

    def _range(self, clip: Any) -> List[int]:
        n = clip._length
        first, end = 1, n + 1
        if self.record.export_between_marks:
            first = clip._in if clip._in is not None else 1
            end = clip._out if clip._out is not None else n + 1
            if first >= end:
                raise RuntimeError(
                    f"PyExporter.export: the in mark ({first}) of {clip._values['name']!r} is not before its "
                    f"out mark ({end}, exclusive)"
                )
        return list(range(first, end))

    def _pattern(self, preset: Preset, clip: Any, width: int, height: int) -> str:
        pattern = preset.name_pattern
        if "<frame>" not in pattern:
            pattern += "<frame>"
        if "<ext>" not in pattern:
            pattern += "<ext>"
        segs = clip._top_segments()
        first_seg = next((s for s in segs if s._media is not None), None)
        now = datetime.datetime.now()
        values = {
            "<name>": clip._values["name"],
            "<shot name>": first_seg._values["shot_name"] if first_seg else "",
            "<segment name>": first_seg._values["name"] if first_seg else "",
            "<width>": str(width),
            "<height>": str(height),
            "<ext>": f".{preset.ext}",
        }
        values.update({token: now.strftime(fmt) for token, fmt in _DATE_TOKENS.items()})

        def substitute(m: re.Match) -> str:
            token = m.group(0)
            if token == "<frame>":
                return token
            if token not in values:
                raise RuntimeError(f"Export preset {preset.path}: name token {token} is not emulated")
            return values[token]

        resolved = _TOKEN_RE.sub(substitute, pattern)
        if resolved.startswith("/") or ".." in resolved.split("/"):
            raise RuntimeError(f"Export preset {preset.path}: namePattern must stay inside the output directory")
        return resolved

    def _plan(self, preset: Preset, clip: Any) -> _Plan:
        if clip._unrendered():
            raise RuntimeError(
                f"PyExporter.export: {clip._values['name']!r} has unrendered Timeline FX "
                f"({', '.join(fx._type for fx in clip._unrendered())}); render it first (clip.render())"
            )
        rels = self._range(clip)
        if preset.numbering == "timecode":
            numbers = [clip._start_tc + rel - 1 for rel in rels]
        else:
            numbers = [preset.start_frame + k for k in range(len(rels))]
        width = preset.width or clip._width
        height = preset.height or clip._height
        pattern = self._pattern(preset, clip, width, height)
        pad = preset.padding
        single = len(numbers) == 1
        frames_token = f"{numbers[0]:0{pad}d}" if single else f"[{numbers[0]:0{pad}d}-{numbers[-1]:0{pad}d}]"
        return _Plan(clip, rels, numbers, width, height, pattern.replace("<frame>", frames_token))

    def _paths(self, preset: Preset, plan: _Plan) -> List[str]:
        resolved = plan.info.get("resolvedPath", plan.resolved)
        if not isinstance(resolved, str):
            raise TypeError(f"info['resolvedPath'] must be a str, not {resolved!r}")
        pad = preset.padding
        base = self.record.output_directory
        if len(plan.numbers) == 1:
            return [os.path.join(base, resolved)]
        token = f"[{plan.numbers[0]:0{pad}d}-{plan.numbers[-1]:0{pad}d}]"
        if token not in resolved:
            raise RuntimeError(
                f"info['resolvedPath'] {resolved!r} lost the frame range {token}: Flame needs it to name the frames"
            )
        return [os.path.join(base, resolved.replace(token, f"{n:0{pad}d}")) for n in plan.numbers]

    # -- hooks ------------------------------------------------------------------------------------------
    def _call_hook(self, camel: str, info: Dict[str, Any], user_data: Any) -> None:
        hooks = self.record.hooks
        if hooks is not None:
            method = getattr(hooks, camel, None)
            if method is not None:
                self.record.hook_calls.append(camel)
                method(info, user_data)
            return
        snake = dict(_HOOKS)[camel]
        for module in self.rt.hook_modules:
            function = getattr(module, snake, None)
            if callable(function):
                self.record.hook_calls.append(f"{module.__name__}.{snake}")
                function(info, user_data)

    def _overwrite_ok(self, path: str) -> bool:
        hooks = self.record.hooks
        method = getattr(hooks, "exportOverwriteFile", None) if hooks is not None else None
        if method is None:
            raise RuntimeError(
                f"PyExporter.export: {path} exists; Flame would ask whether to overwrite it (the double refuses: "
                "export to a new directory, or pass hooks with exportOverwriteFile(path) returning 'overwrite')"
            )
        self.record.hook_calls.append("exportOverwriteFile")
        answer = method(path)
        if answer == "overwrite":
            return True
        raise RuntimeError(f"PyExporter.export cancelled: exportOverwriteFile({path!r}) returned {answer!r}")

    # -- run --------------------------------------------------------------------------------------------
    def run(self) -> None:
        record, rt = self.record, self.rt
        if record.background_job_settings is not None and not isinstance(
            record.background_job_settings, BackgroundJobSettings
        ):
            raise TypeError("background_job_settings must be a flame.PyExporter.BackgroundJobSettings")
        if not isinstance(record.output_directory, str):
            raise TypeError(f"output_directory must be a str, not {type(record.output_directory).__name__}")
        if not os.path.isdir(record.output_directory):
            raise RuntimeError(f"PyExporter.export: output directory {record.output_directory} does not exist")
        clips = self._clips()
        preset = self._preset()
        plans = [self._plan(preset, clip) for clip in clips]

        background = not record.foreground
        record.job_id = rt.new_job_id() if background else ""
        user_data = record.hooks_user_data if record.hooks_user_data is not None else {}
        base = {"destinationHost": "localhost", "destinationPath": record.output_directory}
        info = dict(base, presetPath=preset.path, isBackground=background, abort=False, abortMessage="")
        self._call_hook("preExport", info, user_data)
        if info.get("abort"):
            record.state, record.error = "aborted", str(info.get("abortMessage", ""))
            return
        writes: List[Callable[[], None]] = []
        for plan in plans:
            self._export_clip(preset, plan, base, background, user_data, writes)
        end_info = dict(base, presetPath=preset.path, isBackground=background, backgroundJobId=record.job_id)
        self._call_hook("postExport", end_info, user_data)
        if background:
            record.state = "queued"
            rt.background_jobs[record.job_id] = BackgroundJob(record.job_id, record, writes)
        else:
            record.state = "written"

    def _export_clip(
        self, preset: Preset, plan: _Plan, base: Dict[str, Any], background: bool, user_data: Any,
        writes: List[Callable[[], None]],
    ) -> None:
        clip, record = plan.clip, self.record
        name = clip._values["name"]
        segs = [s for s in clip._top_segments() if s._media is not None]
        shot_name = segs[0]._values["shot_name"] if segs else ""
        seq_info = dict(base, sequenceName=name, shotNames=[shot_name], isBackground=background, abort=False)
        self._call_hook("preExportSequence", seq_info, user_data)
        rate = clip._rate
        record_in = clip._start_tc + plan.rels[0] - 1
        plan.info = dict(
            base,
            namePattern=preset.name_pattern,
            resolvedPath=plan.resolved,
            assetName=name,
            sequenceName=name,
            shotName=shot_name,
            assetType="video",
            width=plan.width,
            height=plan.height,
            aspectRatio=plan.width / plan.height,
            depth=preset.depth_label,
            scanFormat="PROGRESSIVE",
            fps=_fps_label(rate),
            sequenceFps=_fps_label(rate),
            drop=_time.frame_rate(rate).drop,
            sequenceDrop=_time.frame_rate(rate).drop,
            sourceIn=plan.numbers[0],
            sourceOut=plan.numbers[-1] + 1,
            recordIn=record_in,
            recordOut=record_in + len(plan.rels),
            handleIn=0,
            handleOut=0,
            startFrame=plan.numbers[0],
            track="001",
            trackName="",
            segmentIndex=1,
            versionName="",
            versionNumber=0,
            colourSpace=clip._colour_space,
            isBackground=background,
            backgroundJobId="",
        )
        self._call_hook("preExportAsset", plan.info, user_data)
        plan.paths = self._paths(preset, plan)
        for path in plan.paths:
            if os.path.exists(path):
                self._overwrite_ok(path)
        write = self._writer(preset, plan)
        if background:
            writes.append(write)
        else:
            write()
        plan.info["backgroundJobId"] = record.job_id
        self._call_hook("postExportAsset", plan.info, user_data)
        record.assets.append(
            ExportedAsset(name, plan.info.get("resolvedPath", plan.resolved), plan.paths, plan.numbers, dict(plan.info))
        )
        self._call_hook("postExportSequence", dict(seq_info, backgroundJobId=record.job_id), user_data)

    def _writer(self, preset: Preset, plan: _Plan) -> Callable[[], None]:
        clip = plan.clip
        rate = clip._rate
        frames = [(rel, path) for rel, path in zip(plan.rels, plan.paths)]

        def write() -> None:
            for rel, path in frames:
                px = _frame_pixels(clip, rel, preset.channels)
                px = _media.resize(px, plan.width, plan.height)
                _media.write_pixels(
                    path, px, preset.ext, preset.bit_depth,
                    timecode_frame=clip._start_tc + rel - 1, frame_rate=rate, quality=preset.quality,
                )
            log.debug("exported %d frame(s) of %s", len(frames), clip._values["name"])

        return write
