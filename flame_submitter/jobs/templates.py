"""Job templates: farm presets in ``job_templates/*.yaml`` (pool, group, priority, chunk size, …).

A workflow manifest names its preferred template; the user may override any field. A template with a
mistake fails with the file, the key and the fix.
"""

from __future__ import annotations

import logging
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


class TemplateError(BadInput):
    """A job template is wrong or missing: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class FailureDetection:
    task_errors: int = 0  # 0: Deadline's repository default
    job_errors: int = 0


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
    preview_every: int = 0  # >0: a first job with every Nth frame, then the rest
    finish_group: str = ""  # the hand-back jobs' group ("": the job's): Workers with comfyfarm's runtime
    path: str = ""

    def with_overrides(self, overrides: Mapping[str, Any], *, origin: str = "command line") -> JobTemplate:
        """A copy with some fields replaced; values are checked as in a template file."""
        checked = _check_fields(dict(overrides), origin)
        return replace(self, **checked)


_FIELDS = {f.name: f for f in fields(JobTemplate)}
_EDITABLE = set(_FIELDS) - {"name", "path"}
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
        elif key == "limit_groups":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TemplateError(f"{origin}: limit_groups: expected a list of limit names, got {value!r}")
            value = tuple(value)
        elif key == "failure_detection":
            value = _failure_detection(value, origin)
        elif key in ("plugin", "pool", "secondary_pool", "group", "finish_group", "description"):
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise TemplateError(f"{origin}: {key}: expected text, got {value!r}")
            if key == "plugin" and not value:
                raise TemplateError(f"{origin}: plugin: is required: use ComfyUI")
        checked[key] = value
    return checked


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
