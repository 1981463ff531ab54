"""Where a Worker's ComfyUI service says what it runs: one JSON state file per GPU.

``<state dir>/gpu-<gpu>.json`` (``gpu`` is the CUDA index, or ``cpu`` for a service started with ``--cpu``):
the ComfyUI's URL, process id and scratch folder (its ``--input-directory`` identifies it in
``/system_stats``), the service's control URL (``/status``, ``/restart``), how often it was started, and the
hygiene limits ``prepare`` applies between tasks. The state directory is ``COMFYFARM_SERVICE_DIR`` where set,
else the Worker user's state folder (``$XDG_STATE_HOME`` or ``~/.local/state`` on Linux,
``%LOCALAPPDATA%`` on Windows, ``~/Library/Application Support`` on macOS) ``/comfyfarm/service``: the
service and the Worker run as the same user, or both are given the same folder.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from farm_plugin.atomic import write_text_atomic
from farm_plugin.errors import ServiceError

logger = logging.getLogger(__name__)

STATE_SCHEMA = 1
SERVICE_DIR_ENV = "COMFYFARM_SERVICE_DIR"


class WorkerServiceError(ServiceError):
    """The Worker's ComfyUI service could not do what was asked: the message says what and how to fix it."""


class ServiceUnavailable(WorkerServiceError):
    """No service answers for this GPU on this machine: the caller starts its own ComfyUI."""


@dataclass(frozen=True)
class Limits:
    """Hygiene between tasks (0: no limit): restart ComfyUI once its resident memory passes ``max_rss_gb`` or it
    has run ``max_prompts`` prompts; free its models (``/free``) once less than ``min_free_vram_gb`` of GPU
    memory is free; ``free_after_job``: free them whenever a task of another job comes."""

    max_rss_gb: float = 0.0
    max_prompts: int = 0
    min_free_vram_gb: float = 0.0
    free_after_job: bool = False


@dataclass(frozen=True)
class GpuState:
    """What the service says of the ComfyUI of one GPU."""

    gpu: str
    url: str
    pid: int
    scratch: str
    control_url: str
    service_pid: int
    starts: int
    limits: Limits = field(default_factory=Limits)
    schema: int = STATE_SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> GpuState:
        values = dict(data)
        values["limits"] = Limits(**values.get("limits", {}))
        return cls(**values)


def default_state_dir() -> Path:
    """``COMFYFARM_SERVICE_DIR``, else this user's state folder's ``comfyfarm/service``."""
    explicit = os.environ.get(SERVICE_DIR_ENV)
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "comfyfarm" / "service"


def state_path(state_dir: Path, gpu: str) -> Path:
    return Path(state_dir) / f"gpu-{gpu}.json"


def write_state(state_dir: Path, state: GpuState) -> Path:
    """Write (or replace) the state file of ``state.gpu``, atomically."""
    path = state_path(state_dir, state.gpu)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, state.to_json(), mode=0o644)
    return path


def read_state(state_dir: Path, gpu: str) -> Optional[GpuState]:
    """The state of ``gpu``'s ComfyUI, or None where no service wrote one (or it cannot be read)."""
    path = state_path(state_dir, gpu)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("cannot read the service state %s (%s): going on as if no service ran", path, exc)
        return None
    if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
        logger.warning("service state %s is not of schema %d: going on as if no service ran", path, STATE_SCHEMA)
        return None
    try:
        return GpuState.from_dict(data)
    except TypeError as exc:
        logger.warning("service state %s is malformed (%s): going on as if no service ran", path, exc)
        return None


def service_gpus(state_dir: Path) -> List[str]:
    """The GPUs a service wrote a state file for in ``state_dir``."""
    return sorted(path.stem[len("gpu-"):] for path in Path(state_dir).glob("gpu-*.json"))


def remove_state(state_dir: Path, gpu: str, service_pid: int) -> None:
    """Remove ``gpu``'s state file if this service (``service_pid``) wrote it."""
    state = read_state(state_dir, gpu)
    if state is not None and state.service_pid == service_pid:
        state_path(state_dir, gpu).unlink(missing_ok=True)
