"""The user's configuration: ``~/.config/comfyfarm/config.yaml`` (or the file ``COMFYFARM_CONFIG`` names).

Command-line options win over the environment (``COMFYUI_DIR``, ``COMFYUI_PYTHON``, ``COMFYUI_URL``,
``COMFYUI_ARGS``), which wins over the file, which wins over the defaults below.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml

logger = logging.getLogger(__name__)

CONFIG_ENV = "COMFYFARM_CONFIG"


class ConfigError(Exception):
    """The configuration file is wrong: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Config:
    comfyui_dir: Optional[str] = None
    comfyui_python: Optional[str] = None
    comfyui_urls: Tuple[str, ...] = ()
    comfyui_args: Tuple[str, ...] = ()
    comfyui_env: Mapping[str, str] = field(default_factory=dict)
    base_port: int = 8188
    startup_timeout_s: float = 180.0
    idle_timeout_s: float = 900.0
    restart_limit: int = 2
    scratch_dir: Optional[str] = None
    workflows_dirs: Tuple[str, ...] = ()
    chunk_size: int = 10
    instances: int = 1
    ocio_config: str = "ocio://default"
    working_space: Optional[str] = None
    source: str = "defaults"

    @property
    def scratch(self) -> Path:
        if self.scratch_dir:
            return Path(self.scratch_dir).expanduser()
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"comfyfarm-{os.environ.get('USER', 'user')}"


_KEYS = {f.name for f in fields(Config)} - {"comfyui_urls", "source"} | {"comfyui_url"}


def default_config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "comfyfarm" / "config.yaml"


def _as_tuple(value: Any, key: str, path: Path) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(shlex.split(value)) if key == "comfyui_args" else tuple(v for v in value.split(",") if v)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    raise ConfigError(f"{path}: {key}: expected text or a list, got {value!r}")


def _read_file(path: Path) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected key: value lines at the top level")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}: the keys are {', '.join(sorted(_KEYS))}")
    return data


def load_config(path: Optional[Path] = None, *, environ: Optional[Mapping[str, str]] = None) -> Config:
    env = os.environ if environ is None else environ
    config_path = path or default_config_path()
    values: Dict[str, Any] = {}
    source = "defaults"
    if config_path.is_file():
        values = _read_file(config_path)
        source = str(config_path)
    elif path is not None or CONFIG_ENV in env:
        raise ConfigError(f"{config_path}: no such configuration file: create it or unset {CONFIG_ENV}")
    for key, var in (("comfyui_dir", "COMFYUI_DIR"), ("comfyui_python", "COMFYUI_PYTHON"),
                     ("comfyui_url", "COMFYUI_URL"), ("comfyui_args", "COMFYUI_ARGS")):
        if env.get(var):
            values[key] = env[var]
    urls = _as_tuple(values.pop("comfyui_url", None), "comfyui_url", config_path)
    for key in ("comfyui_args", "workflows_dirs"):
        if key in values:
            values[key] = _as_tuple(values[key], key, config_path)
    comfyui_env = values.get("comfyui_env") or {}
    if not isinstance(comfyui_env, dict):
        raise ConfigError(f"{config_path}: comfyui_env: expected KEY: value lines, got {comfyui_env!r}")
    values["comfyui_env"] = {str(k): str(v) for k, v in comfyui_env.items()}
    for key in ("base_port", "restart_limit", "chunk_size", "instances"):
        if key in values and (isinstance(values[key], bool) or not isinstance(values[key], int) or values[key] < 0):
            raise ConfigError(f"{config_path}: {key}: expected a whole number, got {values[key]!r}")
    try:
        return Config(**values, comfyui_urls=urls, source=source)
    except TypeError as exc:
        raise ConfigError(f"{config_path}: {exc}") from exc
