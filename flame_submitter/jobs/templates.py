"""Job templates: farm presets in ``job_templates/*.yaml`` (pool, group, priority, chunk size, …).

A workflow manifest names its preferred template; the user may override any field. A template with a
mistake fails with the file, the key and the fix.

The fields (``job_templates/default.yaml`` lists each with its default): ``description``; the Deadline job's
``plugin``, ``pool``, ``secondary_pool``, ``group``, ``priority`` (0-100), ``chunk_size`` (frames per task),
``concurrent_tasks``, ``machine_limit``, ``limit_groups``, ``task_timeout_minutes``, ``failure_detection``
(``{task_errors, job_errors}``), ``on_complete``, ``initial_status`` and ``gpus_per_task``; the output's
``output_format`` (exr, dpx, png, tiff, or null for the source's) and ``exr_layers`` (true: a workflow with
several passes writes them as the layers of one EXR per frame at the output pattern, the first pass as R, G,
B(, A), each other as ``<pass>.R`` …, and Flame imports it as one multi-channel clip; false, the default: each
pass is its own sequence beside the output, ``sh010.####.exr`` → ``sh010_depth.####.exr``; true needs an EXR
output and changes nothing for a one-pass workflow); ``preview_every`` (N > 0: every Nth frame first, as a job
of its own) and ``finish_group`` (the hand-back jobs' group).

Model-aware scheduling (docs/farm_scheduling.md), both off unless a template says so: ``gpu_groups`` maps GPU
memory classes in GB to Deadline groups (``{16: gpu16, 24: gpu24, 48: gpu48}``): a job whose template names no
group (``none``) and whose workflow declares ``requirements.vram_gb`` goes to the group of the smallest class that
holds it (``jobs.builder.scheduling``). ``family_limits``: ``true`` puts a job whose workflow declares
``requirements.model_family`` under the Deadline Limit ``comfyfarm-<family>`` (``FAMILY_LIMIT_PREFIX``), a
mapping ``{family: Limit}`` under the Limit it names for the families it lists only; ``false`` (the default): none.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from farm_plugin.errors import BadInput
from farm_plugin.yaml_text import yaml_error_text

logger = logging.getLogger(__name__)

ON_COMPLETE = ("Nothing", "Delete", "Archive")
INITIAL_STATUS = ("Active", "Suspended")
OUTPUT_FORMATS = ("exr", "dpx", "png", "tiff")
FAMILY_LIMIT_PREFIX = "comfyfarm-"  # family_limits: true → the Limit comfyfarm-<family>
_FAMILY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # as a manifest's requirements.model_family
_GPU_GROUPS_EXAMPLE = "{16: gpu16, 24: gpu24, 48: gpu48}"
_FAMILY_LIMITS_EXAMPLE = "{flux: flux-gpu, sdxl: sdxl-gpu}"


class TemplateError(BadInput):
    """A job template is wrong or missing: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class FailureDetection:
    task_errors: int = 0  # 0: Deadline's repository default
    job_errors: int = 0


@dataclass(frozen=True)
class FamilyLimits:
    """``family_limits``: which model families run under a Deadline Limit, and its name."""

    every: bool = False  # true: every family, under comfyfarm-<family>
    names: Tuple[Tuple[str, str], ...] = ()  # a mapping: these families only, under these Limits

    def limit_for(self, family: str) -> str:
        """The Limit a workflow of ``family`` runs under ("" for none)."""
        if not family:
            return ""
        if self.every:
            return f"{FAMILY_LIMIT_PREFIX}{family}"
        return dict(self.names).get(family, "")


@dataclass(frozen=True)
class JobTemplate:
    name: str
    description: str = ""
    plugin: str = "ComfyUI"
    pool: str = "none"
    secondary_pool: str = ""
    group: str = "none"
    priority: int = 50
    chunk_size: int = 10
    concurrent_tasks: int = 1
    machine_limit: int = 0
    limit_groups: Tuple[str, ...] = ()
    task_timeout_minutes: int = 0
    failure_detection: FailureDetection = field(default_factory=FailureDetection)
    on_complete: str = "Nothing"
    initial_status: str = "Active"
    gpus_per_task: int = 1
    output_format: Optional[str] = None
    exr_layers: bool = False  # several passes as the layers of one EXR per frame (needs an EXR output)
    gpu_groups: Tuple[Tuple[float, str], ...] = ()  # (GB, group), smallest first: the group by the workflow's vram_gb
    family_limits: FamilyLimits = field(default_factory=FamilyLimits)  # a Limit per model family
    preview_every: int = 0  # >0: a first job with every Nth frame, then the rest
    finish_group: str = ""  # the hand-back jobs' group ("": the job's): Workers with comfyfarm's runtime
    path: str = ""

    def with_overrides(self, overrides: Mapping[str, Any], *, origin: str = "command line") -> JobTemplate:
        """A copy with some fields replaced; values are checked as in a template file."""
        checked = _check_fields(dict(overrides), origin)
        return replace(self, **checked)


_FIELDS = {f.name: f for f in fields(JobTemplate)}
_EDITABLE = set(_FIELDS) - {"name", "path"}
_TRUE = ("true", "yes", "on")
_FALSE = ("false", "no", "off")
_INT_RANGES = {
    "priority": (0, 100),
    "chunk_size": (1, 100000),
    "concurrent_tasks": (1, 16),
    "machine_limit": (0, 100000),
    "task_timeout_minutes": (0, 100000),
    "gpus_per_task": (0, 16),
    "preview_every": (0, 100000),
}


def _check_fields(data: Dict[str, Any], origin: str) -> Dict[str, Any]:
    unknown = sorted(set(data) - _EDITABLE)
    if unknown:
        keys = ", ".join(sorted(_EDITABLE))
        raise TemplateError(f"{origin}: unknown key(s) {', '.join(unknown)}: the keys are {keys}")
    checked: Dict[str, Any] = {}
    for key, value in data.items():
        if key in _INT_RANGES:
            low, high = _INT_RANGES[key]
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise TemplateError(f"{origin}: {key}: {value!r} is not a whole number from {low} to {high}")
        elif key == "on_complete" and value not in ON_COMPLETE:
            raise TemplateError(f"{origin}: on_complete: '{value}' is not one of {', '.join(ON_COMPLETE)}")
        elif key == "initial_status" and value not in INITIAL_STATUS:
            raise TemplateError(f"{origin}: initial_status: '{value}' is not one of {', '.join(INITIAL_STATUS)}")
        elif key == "output_format" and value is not None and value not in OUTPUT_FORMATS:
            raise TemplateError(f"{origin}: output_format: '{value}' is not one of {', '.join(OUTPUT_FORMATS)} "
                                "(or null for the source's format)")
        elif key == "exr_layers":
            value = _flag(key, value, origin)
        elif key == "limit_groups":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TemplateError(f"{origin}: limit_groups: expected a list of limit names, got {value!r}")
            value = tuple(value)
        elif key == "failure_detection":
            value = _failure_detection(value, origin)
        elif key == "gpu_groups":
            value = _gpu_groups(value, origin)
        elif key == "family_limits":
            value = _family_limits(value, origin)
        elif key in ("plugin", "pool", "secondary_pool", "group", "finish_group", "description"):
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise TemplateError(f"{origin}: {key}: expected text, got {value!r}")
            if key == "plugin" and not value:
                raise TemplateError(f"{origin}: plugin: is required: use ComfyUI")
        checked[key] = value
    return checked


def _flag(key: str, value: Any, origin: str) -> bool:
    """A true/false field: YAML's booleans, or their words as text (``--farm exr_layers=true``)."""
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if not isinstance(value, bool):
        raise TemplateError(f"{origin}: {key}: {value!r} is not true or false: use true to write a workflow's several "
                            "passes as the layers of one EXR per frame, or false to write each pass as its own "
                            "sequence")
    return value


def _gpu_groups(value: Any, origin: str) -> Tuple[Tuple[float, str], ...]:
    """``gpu_groups``: ``{GB: group}`` in YAML, or ``16:gpu16,24:gpu24`` as text (``--farm``); smallest first."""
    if value is None:
        return ()
    if isinstance(value, str):
        pairs = [item.partition(":") for item in value.split(",") if item.strip()]
        if any(not sep for _key, sep, _group in pairs):
            raise TemplateError(f"{origin}: gpu_groups: {value!r} is not GB:group pairs: write e.g. "
                                "16:gpu16,24:gpu24,48:gpu48")
        value = {key.strip(): group.strip() for key, _sep, group in pairs}
    if not isinstance(value, dict):
        raise TemplateError(f"{origin}: gpu_groups: expected the GPU memory in GB of each class and its Deadline "
                            f"group, e.g. {_GPU_GROUPS_EXAMPLE}, got {value!r}")
    classes: Dict[float, str] = {}
    for key, group in value.items():
        memory = _gigabytes(key)
        if memory is None:
            raise TemplateError(f"{origin}: gpu_groups: {key!r} is not a GPU memory in GB (a number above 0): "
                                f"write each class as GB: group, e.g. {_GPU_GROUPS_EXAMPLE}")
        if not isinstance(group, str) or not group.strip() or group.strip().lower() == "none" or any(
                c in group for c in ", "):
            raise TemplateError(f"{origin}: gpu_groups: {key}: {group!r} is not a Deadline group name: name the "
                                "group whose Workers have that much GPU memory (no comma or space; not none)")
        if memory in classes:
            raise TemplateError(f"{origin}: gpu_groups: {key!r}: the {memory:g} GB class is given twice: keep one")
        classes[memory] = group.strip()
    return tuple(sorted(classes.items()))


def _gigabytes(key: Any) -> Optional[float]:
    if isinstance(key, bool):
        return None
    if isinstance(key, str):
        text = key.strip().lower()
        text = text[:-2].strip() if text.endswith("gb") else text
        try:
            key = float(text)
        except ValueError:
            return None
    if not isinstance(key, (int, float)) or not 0 < key < 10000:
        return None
    return float(key)


def _family_limits(value: Any, origin: str) -> FamilyLimits:
    """``family_limits``: true/false, ``{family: Limit}``, or ``flux:flux-gpu,sdxl:sdxl-gpu`` as text."""
    if value is None:
        return FamilyLimits()
    if isinstance(value, bool):
        return FamilyLimits(every=value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return FamilyLimits(every=value.strip().lower() in _TRUE)
    if isinstance(value, str) and ":" in value:
        value = {family.strip(): limit.strip() for family, _sep, limit in
                 (item.partition(":") for item in value.split(",") if item.strip())}
    if not isinstance(value, dict) or not value:
        raise TemplateError(f"{origin}: family_limits: expected true (every model family under the Limit "
                            f"{FAMILY_LIMIT_PREFIX}<family>), false, or the Limit of each family, e.g. "
                            f"{_FAMILY_LIMITS_EXAMPLE}, got {value!r}")
    names = []
    for family, limit in value.items():
        if not isinstance(family, str) or not _FAMILY.fullmatch(family):
            raise TemplateError(f"{origin}: family_limits: {family!r} is not a model family: write the family as a "
                                "workflow's requirements.model_family names it (lower-case letters, digits, _ and -), "
                                f"e.g. {_FAMILY_LIMITS_EXAMPLE}")
        if not isinstance(limit, str) or not limit.strip() or any(c in limit for c in ", "):
            raise TemplateError(f"{origin}: family_limits: {family}: {limit!r} is not a Deadline Limit name: name the "
                                "Limit (no comma or space) that caps how many Workers run this family at once")
        names.append((family, limit.strip()))
    return FamilyLimits(names=tuple(names))


def _failure_detection(value: Any, origin: str) -> FailureDetection:
    if value is None:
        return FailureDetection()
    if not isinstance(value, dict) or set(value) - {"task_errors", "job_errors"}:
        raise TemplateError(f"{origin}: failure_detection: expected {{task_errors: N, job_errors: N}}, got {value!r}")
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise TemplateError(f"{origin}: failure_detection.{key}: expected a whole number >= 0, got {number!r}")
    return FailureDetection(**value)


def bundled_templates_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "job_templates"


def template_dirs(extra: Sequence[str] = ()) -> List[Path]:
    return [Path(d).expanduser() for d in extra] + [bundled_templates_dir()]


def load_template_file(path: Path) -> JobTemplate:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML ({yaml_error_text(exc)}): fix that line") from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise TemplateError(f"{path}: cannot read the job template ({reason}): give a YAML file") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected key: value lines at the top level")
    return JobTemplate(name=path.stem, path=str(path), **_check_fields(data, str(path)))


def load_template(name_or_path: str, search_dirs: Sequence[str] = ()) -> JobTemplate:
    """A template by file path, or by name from the configured folders then the bundled ``job_templates/``."""
    direct = Path(name_or_path).expanduser()
    if direct.suffix in (".yaml", ".yml") and direct.is_file():
        return load_template_file(direct)
    folders = template_dirs(search_dirs)
    for folder in folders:
        for suffix in (".yaml", ".yml"):
            candidate = folder / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return load_template_file(candidate)
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.y*ml")})
    raise TemplateError(f"no job template '{name_or_path}': use one of {', '.join(known) or 'none'} "
                        f"(looked in {', '.join(map(str, folders))})")
