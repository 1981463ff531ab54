"""The submit dialog's state without Qt: what the artist chose, what is wrong with it, and what it submits.

The Qt dialog (:mod:`flame_submitter.dialog.submit_dialog`) only mirrors this model: every widget writes
the value *as typed* into it (``"99"`` in a 1-31 spin box stays ``"99"``), and the dialog shows
:meth:`DialogModel.problems` under the Submit button, which stays disabled while there are any. On
Submit, :meth:`DialogModel.choice` builds the :class:`SubmitChoice` that the caller runs off Flame's main
thread; the dialog never submits anything itself.

Last choices are remembered per user in a small JSON file (:class:`ChoicesStore`, by default
``~/.config/comfyfarm/submit_dialog.json``): the workflow, its parameters and farm preset, the pool,
group and priority, the frame range mode and output format, whether a several-pass workflow's passes go
into one EXR as its layers, and the last pool and group lists the Deadline Web Service gave, so the dialog
still offers them when the farm cannot be reached.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from farm_plugin.atomic import write_text_atomic
from farm_plugin.errors import ComfyfarmError
from farm_plugin.frames.errors import FrameListError
from farm_plugin.frames.framelist import format_frame_list, parse_frame_list
from farm_plugin.runner.units import window_budget
from farm_plugin.workflow.package import (
    Parameter,
    WorkflowPackage,
    WorkflowPackageError,
    list_packages,
    load_package,
)
from farm_plugin.workflow.params import resolve_parameters
from flame_submitter.jobs.builder import whole_windows
from flame_submitter.jobs.templates import OUTPUT_FORMATS, JobTemplate, TemplateError, load_template, load_template_file
from flame_submitter.preview.request import PreviewSettings, preview_frames

logger = logging.getLogger(__name__)

FRAME_MODES = ("all", "marks", "custom")
OUTPUT_FORMAT_CHOICES = ("source",) + tuple(OUTPUT_FORMATS)
"""``source`` keeps each clip's own format and bit depth (the template's ``output_format: null``)."""

FARM_NUMBERS: Mapping[str, Tuple[str, int, int]] = {
    "chunk_size": ("Chunk size", 1, 100000),
    "priority": ("Priority", 0, 100),
    "gpus_per_task": ("GPUs per task", 0, 16),
}
"""The farm settings typed as numbers: label, lowest and highest value (the job templates' own bounds)."""

FARM_TEXTS = ("pool", "group")
FARM_ONLY = ("priority", "gpus_per_task", "pool", "group")
"""Fields that mean nothing to a local run (it uses the chunk size and the output format only)."""

CHOICES_SCHEMA = 1
CHOICES_FILE_NAME = "submit_dialog.json"

_FILE_WORDS = {"lut", "luts", "file", "files", "path", "filename", "filepath"}
_PROMPT_WORDS = {"prompt"}


# -- what the dialog is given and what it gives back ----------------------------------------------------


@dataclass(frozen=True)
class ClipSummary:
    """One clip being submitted, as the dialog shows it.

    Frame numbers are the clip's own (``first_frame`` is its start frame); ``mark_in`` and ``mark_out``
    are frame numbers in the same numbering, both included. ``fps`` 0 means unknown.
    """

    name: str
    first_frame: int
    last_frame: int
    has_marks: bool = False
    mark_in: Optional[int] = None
    mark_out: Optional[int] = None
    width: int = 0
    height: int = 0
    fps: float = 0.0
    source_format: str = ""  # what its results are with the output format "source": exr, dpx, png, tiff; "": unknown
    positioner: Optional[int] = None  # the frame under Flame's positioner, the preview's first choice

    @property
    def frame_count(self) -> int:
        return self.last_frame - self.first_frame + 1

    @property
    def marks(self) -> Optional[Tuple[int, int]]:
        """``(in, out)``, both included, when the clip has usable marks."""
        if not self.has_marks or self.mark_in is None or self.mark_out is None:
            return None
        low, high = max(self.first_frame, self.mark_in), min(self.last_frame, self.mark_out)
        return (low, high) if low <= high else None

    def frames(self, mode: str, custom: Sequence[int] = ()) -> List[int]:
        """The frames this clip sends in frame range ``mode``; a clip without marks sends all its frames."""
        if mode == "custom":
            return [f for f in custom if self.first_frame <= f <= self.last_frame]
        if mode == "marks" and self.marks is not None:
            return list(range(self.marks[0], self.marks[1] + 1))
        return list(range(self.first_frame, self.last_frame + 1))

    def describe(self) -> str:
        """``1920 x 1080, 23.976 fps`` (what is known of it)."""
        parts = []
        if self.width and self.height:
            parts.append(f"{self.width} x {self.height}")
        if self.fps:
            parts.append(f"{self.fps:g} fps")
        return ", ".join(parts)


@dataclass(frozen=True)
class SubmitChoice:
    """What the artist asked for: the caller turns it into jobs (or a local run) off Flame's main thread.

    ``parameters`` are resolved and checked (every parameter of the workflow, typed). The job template is
    ``load_template(template).with_overrides(template_overrides)`` (see :meth:`job_template`); for a local
    run only ``chunk_size``, ``output_format`` and ``exr_layers`` mean anything. ``output_format`` None keeps
    the source's. ``exr_layers``: the workflow's several passes as the layers of one EXR per frame (the job
    template's own, with the overrides applied).
    """

    workflow: str
    workflow_path: str
    parameters: Mapping[str, Any]
    template: str
    template_overrides: Mapping[str, Any]
    frame_mode: str
    custom_frames: str
    output_format: Optional[str]
    local: bool
    clips: Tuple[ClipSummary, ...] = ()
    exr_layers: bool = False

    def frames_for(self, clip: ClipSummary) -> List[int]:
        """The frames of ``clip`` to process: all, between its marks (all when it has none), or the custom list."""
        custom = parse_frame_list(self.custom_frames) if self.frame_mode == "custom" else ()
        return clip.frames(self.frame_mode, custom)

    def set_arguments(self) -> List[str]:
        """The parameters as ``KEY=VALUE`` texts, for ``comfyfarm run-local --set`` and ``farm submit --set``."""
        return set_arguments(self.parameters)

    def job_template(self, search_dirs: Sequence[str] = ()) -> JobTemplate:
        """The farm preset with the artist's changes applied (raises TemplateError when it is gone)."""
        return load_template(self.template, search_dirs).with_overrides(self.template_overrides,
                                                                         origin="the submit dialog")


@dataclass(frozen=True)
class PreviewChoice:
    """A preview the artist asked for: ``frame`` of ``clip`` (``frames``: what is rendered for it, a window for a
    sequence workflow) with ``settings``. ``choice`` is the submission of those frames with the same settings,
    for whoever must put them on disk first (an export, a farm job)."""

    settings: PreviewSettings
    clip: ClipSummary
    frame: int
    frames: Tuple[int, ...]
    choice: SubmitChoice


@dataclass(frozen=True)
class SubmitResult:
    """What became of a SubmitChoice, for :meth:`SubmitDialog.show_result`.

    ``error`` is for the artist (see :func:`artist_message`); ``message`` says what happened when it went
    well (for a local run, where the frames were written).
    """

    job_ids: Tuple[str, ...] = ()
    error: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def artist_message(error: BaseException) -> str:
    """An exception in words an artist can act on.

    comfyfarm's own errors already say what is wrong and how to fix it: their text is kept, as a sentence.
    Anything else is a bug or a broken installation, and says so rather than showing a bare traceback line.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, ComfyfarmError):
        return _sentence(text)
    return (f"Something unexpected went wrong ({type(error).__name__}: {text}). Nothing more was sent; the "
            "details are in Flame's shell output: please pass them on to your pipeline team.")


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# -- how each parameter is edited ----------------------------------------------------------------------


def _words(parameter: Parameter) -> set:
    key_words = set(parameter.key.lower().split("_"))
    label_words = set(re.findall(r"[a-z]+", parameter.label.lower()))
    return key_words | label_words


def widget_kind(parameter: Parameter) -> str:
    """How the dialog edits ``parameter``: text, prompt, file, int, seed, float, choice or bool.

    Manifests carry no widget hints: the kind follows from the type and the key and label words
    (``prompt``, ``negative_prompt`` → a multi-line prompt; ``lut``, ``file``, ``path`` → a file picker;
    an int named ``seed`` → a seed with a randomise button).
    """
    if parameter.type == "bool":
        return "bool"
    if parameter.type == "choice":
        return "choice"
    if parameter.type == "int":
        return "seed" if parameter.key.lower() == "seed" else "int"
    if parameter.type == "float":
        return "float"
    words = _words(parameter)
    if words & _FILE_WORDS:
        return "file"
    if words & _PROMPT_WORDS:
        return "prompt"
    return "text"


def comfyui_location(folder: str) -> str:
    """Where a manifest's model folder is in a ComfyUI install: ``luts`` → ``ComfyUI/models/luts``; a pack's
    own folder (``custom_nodes/…``) is under ComfyUI itself."""
    folder = folder.strip("/")
    return f"ComfyUI/{folder}" if folder.startswith("custom_nodes/") else f"ComfyUI/models/{folder}"


@dataclass(frozen=True)
class FileSpec:
    """What a file parameter holds: a bare file name in a ComfyUI models folder, or a full path."""

    name_only: bool
    folder: str = ""

    def hint(self) -> str:
        if self.name_only and self.folder:
            return (f"Only the file's name is sent: the same file must be in {comfyui_location(self.folder)} "
                    "on every worker.")
        if self.name_only:
            return "Only the file's name is sent: the same file must be installed in ComfyUI on every worker."
        return "A path the farm can read (on shared storage)."


def file_spec(package: WorkflowPackage, parameter: Parameter) -> FileSpec:
    """A parameter whose default is one of the workflow's model files, or that feeds a ComfyUI ``*_name``
    input (``lut_name``, ``ckpt_name``), names a file in a models folder; anything else is a path."""
    for model in package.requirements.models:
        if model.name == str(parameter.default):
            return FileSpec(name_only=True, folder=model.folder)
    return FileSpec(name_only=parameter.input.endswith("_name"))


def describe_allowed(parameter: Parameter) -> str:
    """``a whole number from 1 to 31``, ``a number from 0 to 1``, ``one of green, red``."""
    if parameter.type == "choice":
        return "one of " + ", ".join(map(str, parameter.choices))
    kind = "a whole number" if parameter.type == "int" else "a number"
    if parameter.min is not None and parameter.max is not None:
        return f"{kind} from {parameter.min:g} to {parameter.max:g}"
    if parameter.min is not None:
        return f"{kind} of at least {parameter.min:g}"
    if parameter.max is not None:
        return f"{kind} of at most {parameter.max:g}"
    return kind


def typed_value(parameter: Parameter, raw: Any, kind: Optional[str] = None) -> Tuple[Any, Optional[str]]:
    """``raw`` (as typed, or as remembered) in the parameter's type, and why it is not allowed (or None)."""
    kind = kind or widget_kind(parameter)
    if parameter.type in ("int", "float"):
        return _typed_number(parameter, raw)
    if parameter.type == "bool":
        return (raw, None) if isinstance(raw, bool) else (raw, "tick or untick it")
    if parameter.type == "choice":
        for choice in parameter.choices:
            if raw == choice or (isinstance(raw, str) and raw == str(choice)):
                return choice, None
        return raw, f"'{raw}' is not {describe_allowed(parameter)}"
    text = "" if raw is None else str(raw)
    if kind == "file" and not text.strip():
        return text, "choose a file"
    return text, None


def _typed_number(parameter: Parameter, raw: Any) -> Tuple[Any, Optional[str]]:
    whole = parameter.type == "int"
    if isinstance(raw, bool):
        return raw, f"enter {describe_allowed(parameter)}"
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = raw
        if whole and isinstance(raw, float):
            if not raw.is_integer():
                return raw, f"{raw:g} is not a whole number"
            value = int(raw)
    else:
        text = str(raw if raw is not None else "").strip()
        if not text:
            return raw, f"enter {describe_allowed(parameter)}"
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            return raw, f"'{text}' is not {describe_allowed(parameter)}"
    if parameter.min is not None and value < parameter.min:
        return value, f"{value:g} is less than the minimum, {parameter.min:g}"
    if parameter.max is not None and value > parameter.max:
        return value, f"{value:g} is more than the maximum, {parameter.max:g}"
    return (int(value) if whole else float(value)), None


def _farm_number(key: str, raw: Any) -> Tuple[Optional[int], Optional[str]]:
    label, low, high = FARM_NUMBERS[key]
    text = str(raw).strip() if not isinstance(raw, int) or isinstance(raw, bool) else str(raw)
    if not re.fullmatch(r"-?\d+", text):
        return None, f"{label}: enter a whole number from {low} to {high}"
    value = int(text)
    if not low <= value <= high:
        return value, f"{label}: {value} is not a whole number from {low} to {high}"
    return value, None


def set_arguments(parameters: Mapping[str, Any]) -> List[str]:
    """``parameters`` as ``KEY=VALUE`` texts, as the comfyfarm commands' ``--set`` reads them."""
    return [f"{key}={_text_of(value)}" for key, value in parameters.items()]


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- loading what the dialog offers ---------------------------------------------------------------------


def load_workflow_packages(folders: Iterable[Path]) -> Tuple[List[WorkflowPackage], List[str]]:
    """Every package in ``folders`` (the first of a name wins, as ``find_package`` looks them up), and the
    problems of those that could not be read (the dialog lists them instead of failing)."""
    packages: Dict[str, WorkflowPackage] = {}
    problems: List[str] = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for path in list_packages(folder):
            try:
                package = load_package(path)
            except WorkflowPackageError as exc:
                logger.warning("workflow package %s is not offered: %s", path, exc)
                problems.append(str(exc))
                continue
            packages.setdefault(package.name, package)
    return list(packages.values()), problems


def load_job_templates(folders: Iterable[Path]) -> Tuple[List[JobTemplate], List[str]]:
    """Every job template in ``folders`` (the first of a name wins), and the problems of broken ones."""
    templates: Dict[str, JobTemplate] = {}
    problems: List[str] = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                template = load_template_file(path)
            except TemplateError as exc:
                logger.warning("job template %s is not offered: %s", path, exc)
                problems.append(str(exc))
                continue
            templates.setdefault(template.name, template)
    return list(templates.values()), problems


# -- remembered choices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowMemory:
    """What was last chosen for one workflow."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    template: str = ""
    chunk_size: Optional[int] = None
    gpus_per_task: Optional[int] = None
    exr_layers: Optional[bool] = None  # a several-pass workflow's passes as EXR layers; None: the preset's


@dataclass(frozen=True)
class RememberedChoices:
    """The artist's last choices, and the last pool and group lists the farm gave."""

    workflow: str = ""
    frame_mode: str = "all"
    custom_frames: str = ""
    output_format: str = "source"
    pool: Optional[str] = None
    group: Optional[str] = None
    priority: Optional[int] = None
    workflows: Mapping[str, WorkflowMemory] = field(default_factory=dict)
    known_pools: Tuple[str, ...] = ()
    known_groups: Tuple[str, ...] = ()
    lists_saved_at: str = ""

    def to_json(self) -> Dict[str, Any]:
        return {
            "schema": CHOICES_SCHEMA,
            "workflow": self.workflow,
            "frame_mode": self.frame_mode,
            "custom_frames": self.custom_frames,
            "output_format": self.output_format,
            "farm": {"pool": self.pool, "group": self.group, "priority": self.priority},
            "workflows": {
                name: {"parameters": dict(memory.parameters), "template": memory.template,
                       "chunk_size": memory.chunk_size, "gpus_per_task": memory.gpus_per_task,
                       "exr_layers": memory.exr_layers}
                for name, memory in sorted(self.workflows.items())
            },
            "farm_lists": {"pools": list(self.known_pools), "groups": list(self.known_groups),
                           "saved_at": self.lists_saved_at},
        }

    @classmethod
    def from_json(cls, data: Any) -> RememberedChoices:
        """Whatever can be used of ``data``; anything malformed is left at its default."""
        if not isinstance(data, dict) or data.get("schema") != CHOICES_SCHEMA:
            return cls()
        farm, lists = data.get("farm"), data.get("farm_lists")
        farm = farm if isinstance(farm, dict) else {}
        lists = lists if isinstance(lists, dict) else {}
        workflows = {}
        for name, raw in (data.get("workflows") or {}).items():
            if isinstance(name, str) and isinstance(raw, dict):
                workflows[name] = WorkflowMemory(
                    parameters=dict(raw.get("parameters") or {}) if isinstance(raw.get("parameters"), dict) else {},
                    template=_str(raw.get("template")),
                    chunk_size=_int_or_none(raw.get("chunk_size")),
                    gpus_per_task=_int_or_none(raw.get("gpus_per_task")),
                    exr_layers=raw.get("exr_layers") if isinstance(raw.get("exr_layers"), bool) else None,
                )
        mode = _str(data.get("frame_mode"))
        output = _str(data.get("output_format"))
        return cls(
            workflow=_str(data.get("workflow")),
            frame_mode=mode if mode in FRAME_MODES else "all",
            custom_frames=_str(data.get("custom_frames")),
            output_format=output if output in OUTPUT_FORMAT_CHOICES else "source",
            pool=_str(farm.get("pool")) or None,
            group=_str(farm.get("group")) or None,
            priority=_int_or_none(farm.get("priority")),
            workflows=workflows,
            known_pools=_names(lists.get("pools")),
            known_groups=_names(lists.get("groups")),
            lists_saved_at=_str(lists.get("saved_at")),
        )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int_or_none(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _names(value: Any) -> Tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def default_choices_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """``$XDG_CONFIG_HOME/comfyfarm/submit_dialog.json``, else ``~/.config/comfyfarm/submit_dialog.json``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "comfyfarm" / CHOICES_FILE_NAME


class ChoicesStore:
    """Reads and writes the remembered choices; a missing or broken file is an empty memory, and a file
    that cannot be written is logged, never raised: remembering is a convenience."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path) if path is not None else default_choices_path()

    def load(self) -> RememberedChoices:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return RememberedChoices()
        except OSError as exc:
            logger.warning("cannot read the remembered submit choices %s: %s", self.path, exc)
            return RememberedChoices()
        try:
            return RememberedChoices.from_json(json.loads(text))
        except ValueError as exc:
            logger.warning("the remembered submit choices %s are not valid JSON (%s): starting afresh", self.path, exc)
            return RememberedChoices()

    def save(self, choices: RememberedChoices) -> bool:
        """Write atomically (temporary file, then rename); False when it could not be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(choices.to_json(), indent=2, sort_keys=True))
        except OSError as exc:
            logger.warning("cannot save the submit choices to %s: %s", self.path, exc)
            return False
        logger.debug("saved the submit choices to %s", self.path)
        return True


# -- the model ------------------------------------------------------------------------------------------


def sequence_own_frames(package: WorkflowPackage) -> int:
    """Frames a sequence workflow keeps per window (its context less the handles), 0 for per-frame ones."""
    if package.mode != "sequence" or package.sequence is None:
        return 0
    return window_budget(package.sequence)


class DialogModel:
    """The dialog's state. Setters take values as typed; :meth:`problems` says what is wrong with them."""

    def __init__(
        self,
        packages: Sequence[WorkflowPackage],
        templates: Sequence[JobTemplate],
        clips: Sequence[ClipSummary],
        *,
        local: bool = False,
        remembered: Optional[RememberedChoices] = None,
    ) -> None:
        self.packages: Dict[str, WorkflowPackage] = {p.name: p for p in packages}
        self.templates: Dict[str, JobTemplate] = {t.name: t for t in templates}
        self.clips: Tuple[ClipSummary, ...] = tuple(clips)
        self.local = local
        self.memory = remembered or RememberedChoices()
        self.workflow: Optional[WorkflowPackage] = None
        self.raw_values: Dict[str, Any] = {}
        self._session_values: Dict[str, Dict[str, Any]] = {}
        self.template_name = self._first_template("default")
        base = self.templates.get(self.template_name) or JobTemplate(name="default")
        self.farm: Dict[str, Any] = {"chunk_size": base.chunk_size, "gpus_per_task": base.gpus_per_task,
                                     "priority": base.priority, "pool": base.pool, "group": base.group}
        for key in ("pool", "group", "priority"):
            if getattr(self.memory, key) is not None:
                self.farm[key] = getattr(self.memory, key)
        self.frame_mode = self.memory.frame_mode
        if self.frame_mode == "marks" and not self.any_marks:
            self.frame_mode = "all"
        self.custom_frames = self.memory.custom_frames
        self.output_format = self.memory.output_format
        self.exr_layers = base.exr_layers  # as asked; it applies where exr_layers_available() says so
        self.known_pools: Tuple[str, ...] = self.memory.known_pools
        self.known_groups: Tuple[str, ...] = self.memory.known_groups
        self.lists_live = False
        if self.memory.workflow in self.packages:
            self.select_workflow(self.memory.workflow)

    # -- what is offered ------------------------------------------------------------------------------

    @property
    def any_marks(self) -> bool:
        return any(clip.marks is not None for clip in self.clips)

    def categories(self) -> List[Tuple[str, List[WorkflowPackage]]]:
        """The workflows by category, categories and titles in alphabetical order."""
        grouped: Dict[str, List[WorkflowPackage]] = {}
        for package in self.packages.values():
            grouped.setdefault(package.category, []).append(package)
        return [(name, sorted(grouped[name], key=lambda p: p.title.lower())) for name in sorted(grouped)]

    @property
    def template(self) -> Optional[JobTemplate]:
        return self.templates.get(self.template_name)

    def _first_template(self, preferred: str) -> str:
        if preferred in self.templates:
            return preferred
        if "default" in self.templates:
            return "default"
        return next(iter(self.templates), preferred)

    # -- setters (values as typed) --------------------------------------------------------------------

    def select_workflow(self, name: str) -> None:
        """Choose a workflow: its values from this session, else remembered ones, else its defaults; its
        preset and chunk size from memory, else from the workflow's preferred template."""
        package = self.packages[name]
        if self.workflow is not None:
            self._session_values[self.workflow.name] = dict(self.raw_values)
        self.workflow = package
        memory = self.memory.workflows.get(name, WorkflowMemory())
        values: Dict[str, Any] = {p.key: p.default for p in package.parameters}
        for parameter in package.parameters:
            if parameter.key in memory.parameters:
                value, problem = typed_value(parameter, memory.parameters[parameter.key])
                if problem is None:
                    values[parameter.key] = value
                else:
                    logger.info("remembered %s=%r of %s no longer fits (%s): using the default",
                                parameter.key, memory.parameters[parameter.key], name, problem)
        values.update(self._session_values.get(name, {}))
        self.raw_values = values
        self.template_name = self._first_template(memory.template if memory.template in self.templates
                                                  else package.template)
        template = self.template
        if template is not None:
            self.farm["chunk_size"] = self.suggested_chunk_size(template)
            self.farm["gpus_per_task"] = template.gpus_per_task
            self.exr_layers = template.exr_layers
        for key in ("chunk_size", "gpus_per_task"):
            remembered = getattr(memory, key)
            if remembered is not None and _farm_number(key, remembered)[1] is None:
                self.farm[key] = remembered
        if memory.exr_layers is not None:
            self.exr_layers = memory.exr_layers

    def suggested_chunk_size(self, template: JobTemplate) -> int:
        """The template's chunk size; for a sequence workflow the nearest whole number of windows, as the job
        builder gives it (a chunk of 1, the heavy preset's, would render a whole window for one frame)."""
        own = sequence_own_frames(self.workflow) if self.workflow else 0
        return whole_windows(template.chunk_size, own) if own else template.chunk_size

    def set_value(self, key: str, raw: Any) -> None:
        if self.workflow is None:
            raise ValueError("choose a workflow before setting its parameters")
        self.workflow.parameter(key)  # raises KeyError naming the known keys
        self.raw_values[key] = raw

    def select_template(self, name: str) -> None:
        """Choose a farm preset: its chunk size, priority, pool, group, GPUs per task and passes as EXR layers
        replace the fields."""
        template = self.templates[name]
        self.template_name = name
        self.farm.update(chunk_size=self.suggested_chunk_size(template), priority=template.priority,
                         pool=template.pool, group=template.group, gpus_per_task=template.gpus_per_task)
        self.exr_layers = template.exr_layers
        if template.output_format is not None:
            self.output_format = template.output_format

    def set_farm(self, key: str, raw: Any) -> None:
        if key not in FARM_NUMBERS and key not in FARM_TEXTS:
            raise KeyError(f"'{key}' is not a farm setting: use {', '.join([*FARM_NUMBERS, *FARM_TEXTS])}")
        self.farm[key] = raw

    def set_frame_mode(self, mode: str) -> None:
        if mode not in FRAME_MODES:
            raise ValueError(f"frame range mode '{mode}' is not one of {', '.join(FRAME_MODES)}")
        self.frame_mode = mode

    def set_custom_frames(self, text: str) -> None:
        self.custom_frames = text

    def set_output_format(self, output_format: str) -> None:
        if output_format not in OUTPUT_FORMAT_CHOICES:
            raise ValueError(f"output format '{output_format}' is not one of {', '.join(OUTPUT_FORMAT_CHOICES)}")
        self.output_format = output_format

    def set_exr_layers(self, on: bool) -> None:
        """Ask for the workflow's passes as the layers of one EXR per frame (or each as its own sequence)."""
        self.exr_layers = bool(on)

    def exr_layers_available(self) -> Tuple[bool, str]:
        """Whether the passes can be the layers of one EXR: a workflow with several passes and an EXR output (the
        output format OpenEXR, or "source" where every clip's results are EXR); else why not, in words."""
        if self.workflow is None:
            return False, "Choose a workflow with several passes first."
        if len(self.workflow.outputs) < 2:
            return False, f"{self.workflow.title} writes one pass: there is nothing to put in layers."
        if self.output_format == "exr":
            return True, ""
        if self.output_format != "source":
            label = "TIFF" if self.output_format == "tiff" else self.output_format.upper()
            return False, f"{label} files hold no layers: choose OpenEXR as the output format."
        others = [clip.name for clip in self.clips if clip.source_format != "exr"]
        if others:
            one = len(others) == 1
            return False, (f"{', '.join(others)} {'keeps its' if one else 'keep their'} own format, not EXR, with "
                           "'Same as the source': choose OpenEXR as the output format.")
        return True, ""

    @property
    def effective_exr_layers(self) -> bool:
        """Whether the job writes the passes as EXR layers: asked for, and available."""
        return self.exr_layers and self.exr_layers_available()[0]

    def set_farm_lists(self, pools: Sequence[str], groups: Sequence[str], *, live: bool) -> None:
        """The pools and groups to offer; ``live`` when they come from the Web Service just now."""
        self.known_pools, self.known_groups, self.lists_live = tuple(pools), tuple(groups), live
        if live:
            self.memory = replace(self.memory, known_pools=self.known_pools, known_groups=self.known_groups,
                                  lists_saved_at=time.strftime("%Y-%m-%d %H:%M"))

    # -- checks ---------------------------------------------------------------------------------------

    def parameter_problems(self) -> Dict[str, str]:
        """Parameter key → what is wrong with its value (``Radius (pixels): 99 is more than …``)."""
        problems = {}
        for parameter in self.workflow.parameters if self.workflow else ():
            _, problem = typed_value(parameter, self.raw_values.get(parameter.key, parameter.default))
            if problem:
                problems[parameter.key] = f"{parameter.label}: {problem}"
        return problems

    def custom_frame_list(self) -> Tuple[List[int], Optional[str]]:
        """The custom frames, and what is wrong with them (or None)."""
        try:
            frames = parse_frame_list(self.custom_frames)
        except FrameListError as exc:
            return [], f"Custom frames: {exc}"
        for clip in self.clips:
            outside = [f for f in frames if not clip.first_frame <= f <= clip.last_frame]
            if outside:
                return frames, (f"Custom frames: {format_frame_list(outside)} "
                                f"{'is' if len(outside) == 1 else 'are'} not in clip '{clip.name}' "
                                f"({clip.first_frame}-{clip.last_frame})")
        return frames, None

    def farm_problems(self) -> List[str]:
        problems = []
        for key in FARM_NUMBERS:
            if self.local and key in FARM_ONLY:
                continue
            problem = _farm_number(key, self.farm.get(key))[1]
            if problem:
                problems.append(problem)
        if self.local:
            return problems
        if self.template is None:
            installed = ", ".join(self.templates) or "none found"
            problems.append(f"Farm preset '{self.template_name}' is not installed: choose one of {installed}")
        for key, known in (("pool", self.known_pools), ("group", self.known_groups)):
            value = str(self.farm.get(key) or "")
            if not value:
                problems.append(f"{key.capitalize()}: choose one")
            elif self.lists_live and known and value not in known:
                problems.append(f"{key.capitalize()} '{value}' does not exist on the farm: choose one of "
                                f"{', '.join(known)}")
        return problems

    def problems(self) -> List[str]:
        """Every reason Submit is disabled, in the order the dialog reads (clips, workflow, farm, frames)."""
        problems: List[str] = []
        if not self.clips:
            problems.append("No clips to send: select clips, sequences or segments in Flame first")
        if self.workflow is None:
            problems.append("Choose a workflow in the list")
        else:
            problems.extend(self.parameter_problems().values())
        problems.extend(self.farm_problems())
        if self.frame_mode == "marks" and not self.any_marks:
            problems.append("Between marks: no clip has in and out marks; choose All frames or Custom")
        if self.frame_mode == "custom":
            problem = self.custom_frame_list()[1]
            if problem:
                problems.append(problem)
        return problems

    def hints(self) -> List[str]:
        """Advice that does not stop a submission."""
        hints = []
        own = sequence_own_frames(self.workflow) if self.workflow else 0
        chunk = _farm_number("chunk_size", self.farm.get("chunk_size"))[0]
        template = self.template
        if (own and chunk == own and template is not None and template.chunk_size < own and not self.local
                and self.workflow is not None):
            hints.append(f"Chunk size {own} instead of the preset's {template.chunk_size}: {self.workflow.title} "
                         f"keeps {own} frames of each window it renders, so a smaller chunk would waste GPU time.")
        if own and chunk and chunk % own and self.workflow and self.workflow.sequence:
            sequence = self.workflow.sequence
            hints.append(f"{self.workflow.title} renders {sequence.context_frames}-frame windows and keeps {own} "
                         f"frames of each: a chunk size of {own} (or a multiple) wastes no GPU time.")
        available, why = self.exr_layers_available()
        if self.exr_layers and not available and self.workflow is not None and len(self.workflow.outputs) > 1:
            hints.append(f"Each pass of {self.workflow.title} is written as its own sequence, not as a layer of one "
                         f"EXR. {why}")
        if self.frame_mode == "marks":
            unmarked = [clip.name for clip in self.clips if clip.marks is None]
            if unmarked:
                hints.append(f"No marks on {', '.join(unmarked)}: all {'its' if len(unmarked) == 1 else 'their'} "
                             "frames are sent.")
        return hints

    def frames_for(self, clip: ClipSummary) -> List[int]:
        """The frames ``clip`` sends with the current frame range (none while the custom list is invalid)."""
        if self.frame_mode == "custom":
            frames, problem = self.custom_frame_list()
            return [] if problem else clip.frames("custom", frames)
        return clip.frames(self.frame_mode)

    # -- what Submit produces -------------------------------------------------------------------------

    def resolved_parameters(self) -> Dict[str, Any]:
        """Every parameter of the workflow, typed and checked (raises ParameterError or ValueError)."""
        if self.workflow is None:
            raise ValueError("no workflow chosen")
        typed = {}
        for parameter in self.workflow.parameters:
            value, problem = typed_value(parameter, self.raw_values.get(parameter.key, parameter.default))
            if problem:
                raise ValueError(f"{parameter.label}: {problem}")
            typed[parameter.key] = value
        return resolve_parameters(self.workflow, typed)

    def template_overrides(self) -> Dict[str, Any]:
        """The farm fields that differ from the chosen preset (only chunk size and format for a local run)."""
        template = self.template or JobTemplate(name=self.template_name)
        overrides: Dict[str, Any] = {}
        for key in FARM_NUMBERS:
            if self.local and key in FARM_ONLY:
                continue
            value, problem = _farm_number(key, self.farm.get(key))
            if problem is None and value != getattr(template, key):
                overrides[key] = value
        if not self.local:
            for key in FARM_TEXTS:
                text = str(self.farm.get(key) or "")
                if text != getattr(template, key):
                    overrides[key] = text
        output_format = None if self.output_format == "source" else self.output_format
        if output_format != template.output_format:
            overrides["output_format"] = output_format
        if self.effective_exr_layers != template.exr_layers:
            overrides["exr_layers"] = self.effective_exr_layers
        template.with_overrides(overrides, origin="the submit dialog")  # the templates' own checks
        return overrides

    def choice(self) -> SubmitChoice:
        """The SubmitChoice for the current state; ValueError listing the problems while there are any."""
        problems = self.problems()
        if problems or self.workflow is None:
            raise ValueError("cannot submit yet: " + "; ".join(problems))
        return SubmitChoice(
            workflow=self.workflow.name,
            workflow_path=str(self.workflow.path),
            parameters=self.resolved_parameters(),
            template=self.template_name,
            template_overrides=self.template_overrides(),
            frame_mode=self.frame_mode,
            custom_frames=self.custom_frames.strip() if self.frame_mode == "custom" else "",
            output_format=None if self.output_format == "source" else self.output_format,
            local=self.local,
            clips=self.clips,
            exr_layers=self.effective_exr_layers,
        )

    # -- the preview ----------------------------------------------------------------------------------------

    def preview_settings(self) -> Optional[PreviewSettings]:
        """What a preview renders with now (the settings a submission would get), or None while the workflow's
        settings are not valid. Its ``key`` changes exactly when the picture would."""
        if self.workflow is None or self.parameter_problems():
            return None
        parameters = self.resolved_parameters()
        return PreviewSettings(workflow_path=str(self.workflow.path), parameters=parameters,
                               set_arguments=tuple(set_arguments(parameters)),
                               output_format=None if self.output_format == "source" else self.output_format,
                               exr_layers=self.effective_exr_layers)

    def preview_problems(self) -> List[str]:
        """Why no preview can be rendered now (no clip, no workflow, a setting that is not valid)."""
        problems: List[str] = []
        if not self.clips:
            problems.append("No clips to preview: select clips, sequences or segments in Flame first")
        if self.workflow is None:
            problems.append("Choose a workflow in the list")
        else:
            problems.extend(self.parameter_problems().values())
        return problems

    def default_preview_frame(self, clip: ClipSummary) -> int:
        """The frame a preview of ``clip`` starts on: under Flame's positioner, else the first frame to send."""
        if clip.positioner is not None and clip.first_frame <= clip.positioner <= clip.last_frame:
            return clip.positioner
        frames = self.frames_for(clip)
        return frames[0] if frames else clip.first_frame

    def preview_choice(self, clip_index: int, frame: int) -> PreviewChoice:
        """The preview of ``frame`` of the ``clip_index``-th clip with the current settings. Raises ValueError
        listing the problems, or PreviewError for a frame outside the clip."""
        problems = self.preview_problems()
        settings = self.preview_settings()
        if problems or settings is None or self.workflow is None:
            raise ValueError("cannot preview yet: " + "; ".join(problems))
        clip = self.clips[clip_index]
        frames = preview_frames(self.workflow, frame, clip.first_frame, clip.last_frame)
        choice = SubmitChoice(workflow=self.workflow.name, workflow_path=settings.workflow_path,
                              parameters=dict(settings.parameters), template=self.template_name,
                              template_overrides={"chunk_size": len(frames)}, frame_mode="custom",
                              custom_frames=format_frame_list(list(frames)), output_format=settings.output_format,
                              local=self.local, clips=(clip,), exr_layers=settings.exr_layers)
        return PreviewChoice(settings=settings, clip=clip, frame=frame, frames=frames, choice=choice)

    def remember(self) -> RememberedChoices:
        """The memory updated with the current choices (valid values only), for :meth:`ChoicesStore.save`."""
        memory = self.memory
        workflows = dict(memory.workflows)
        if self.workflow is not None:
            parameters = {}
            for parameter in self.workflow.parameters:
                value, problem = typed_value(parameter, self.raw_values.get(parameter.key, parameter.default))
                if problem is None:
                    parameters[parameter.key] = value
            previous = workflows.get(self.workflow.name, WorkflowMemory())
            chunk = _farm_number("chunk_size", self.farm.get("chunk_size"))
            gpus = _farm_number("gpus_per_task", self.farm.get("gpus_per_task"))
            workflows[self.workflow.name] = WorkflowMemory(
                parameters=parameters,
                template=previous.template if self.local else self.template_name,
                chunk_size=chunk[0] if chunk[1] is None else previous.chunk_size,
                gpus_per_task=previous.gpus_per_task if self.local or gpus[1] else gpus[0],
                exr_layers=self.exr_layers if len(self.workflow.outputs) > 1 else previous.exr_layers,
            )
        pool, group, priority = memory.pool, memory.group, memory.priority  # a local run keeps the farm's
        if not self.local:
            number = _farm_number("priority", self.farm.get("priority"))
            pool = str(self.farm.get("pool") or "") or None
            group = str(self.farm.get("group") or "") or None
            priority = number[0] if number[1] is None else memory.priority
        return replace(
            memory,
            workflow=self.workflow.name if self.workflow else memory.workflow,
            frame_mode=self.frame_mode,
            custom_frames=self.custom_frames,
            output_format=self.output_format,
            workflows=workflows,
            pool=pool,
            group=group,
            priority=priority,
        )
