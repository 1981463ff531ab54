"""comfyfarm's configuration, in layers: defaults < studio file < user file < environment < options.

- Studio file: ``COMFYFARM_STUDIO_CONFIG``, else ``/etc/comfyfarm/config.yaml`` (when present).
- User file: ``COMFYFARM_CONFIG``, else ``~/.config/comfyfarm/config.yaml`` (when present).
- Environment: ``COMFYUI_DIR``, ``COMFYUI_PYTHON``, ``COMFYUI_URL``, ``COMFYUI_ARGS``,
  ``COMFYFARM_DEADLINE_URL``, ``COMFYFARM_DEADLINE_USER``, ``COMFYFARM_DEADLINE_PASSWORD``,
  ``COMFYFARM_JOBS_ROOT``, ``COMFYFARM_INBOX_ROOT``.

Secrets (the Deadline password) are never logged; ``Config.describe()`` masks them.
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from farm_plugin.errors import BadInput
from farm_plugin.paths import PathMapping, PathMappingError, current_os
from farm_plugin.web_address import http_address_problem
from farm_plugin.yaml_text import yaml_error_text

# What other packages may use (tests/test_public_api.py keeps it true): this module's names, and the Settings
# dialog's model and checks, imported from their modules on first use (they import this module).
_SUBMODULE_NAMES = {
    "settings_checks": ("Check", "check_url"),
    "settings_model": ("FIELDS", "SECTIONS", "SettingField", "SettingsModel"),
}
__all__ = ["STUDIO_CONFIG_PATH", "Config", "ConfigError", "default_config_path", "load_config"] + sorted(
    name for names in _SUBMODULE_NAMES.values() for name in names)

logger = logging.getLogger(__name__)

CONFIG_ENV = "COMFYFARM_CONFIG"
STUDIO_CONFIG_ENV = "COMFYFARM_STUDIO_CONFIG"
STUDIO_CONFIG_PATH = Path("/etc/comfyfarm/config.yaml")
SECRET_KEYS = ("deadline_password",)
ENVIRONMENT = {
    "COMFYUI_DIR": "comfyui_dir",
    "COMFYUI_PYTHON": "comfyui_python",
    "COMFYUI_URL": "comfyui_url",
    "COMFYUI_ARGS": "comfyui_args",
    "COMFYFARM_DEADLINE_URL": "deadline_url",
    "COMFYFARM_DEADLINE_USER": "deadline_user",
    "COMFYFARM_DEADLINE_PASSWORD": "deadline_password",
    "COMFYFARM_JOBS_ROOT": "jobs_root",
    "COMFYFARM_INBOX_ROOT": "inbox_root",
}


class ConfigError(BadInput):
    """The configuration is wrong: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Config:
    # ComfyUI (local mode)
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
    gpus: Tuple[str, ...] = ()  # Run locally from Flame: one ComfyUI per listed GPU (instances is then ignored)
    ocio_config: str = "ocio://default"
    working_space: Optional[str] = None
    # The farm
    deadline_url: Optional[str] = None
    deadline_user: Optional[str] = None
    deadline_password: Optional[str] = field(default=None, repr=False)
    deadline_ca_file: Optional[str] = None
    deadline_insecure: bool = False
    deadline_timeout_s: float = 30.0
    jobs_root: Optional[str] = None
    inbox_root: Optional[str] = None
    shared_roots: Tuple[str, ...] = ()
    path_mappings: Tuple[PathMapping, ...] = ()
    workstation_os: str = field(default_factory=current_os)
    farm_os: str = "linux"
    job_templates_dirs: Tuple[str, ...] = ()
    # Flame
    flame_library: str = "ComfyUI Renders"
    relink_poll_s: float = 5.0
    # Where each value came from: key -> file path or environment variable
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def source(self) -> str:
        files = sorted({o for o in self.origins.values() if not o.startswith("$")})
        return ", ".join(files) if files else "defaults"

    @property
    def scratch(self) -> Path:
        if self.scratch_dir:
            return Path(self.scratch_dir).expanduser()
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"comfyfarm-{os.environ.get('USER', 'user')}"

    def describe(self) -> Dict[str, Any]:
        """Every setting with its value (secrets masked) and where it came from."""
        shown: Dict[str, Any] = {}
        for item in fields(self):
            if item.name == "origins":
                continue
            value = getattr(self, item.name)
            if item.name in SECRET_KEYS and value:
                value = "********"
            elif item.name == "path_mappings":
                value = [dict(m.prefixes) for m in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            shown[item.name] = {"value": value, "from": self.origins.get(item.name, "default")}
        return shown


_FILE_KEYS = ({f.name for f in fields(Config)} - {"comfyui_urls", "origins"}) | {"comfyui_url"}
_INT_KEYS = ("base_port", "restart_limit", "chunk_size", "instances")
_FLOAT_KEYS = ("startup_timeout_s", "idle_timeout_s", "deadline_timeout_s", "relink_poll_s")
_LIST_KEYS = ("comfyui_args", "workflows_dirs", "shared_roots", "job_templates_dirs", "comfyui_url", "gpus")


def default_config_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "comfyfarm" / "config.yaml"


def studio_config_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The studio file: ``COMFYFARM_STUDIO_CONFIG``, else /etc/comfyfarm/config.yaml (it may not exist)."""
    env = os.environ if environ is None else environ
    return Path(env[STUDIO_CONFIG_ENV]) if env.get(STUDIO_CONFIG_ENV) else STUDIO_CONFIG_PATH


def check_value(key: str, value: Any, origin: str = "value") -> Any:
    """``value`` as the configuration would hold it for ``key``; ConfigError when it is not allowed."""
    if key not in _FILE_KEYS:
        raise ConfigError(f"{origin}: unknown key {key}")
    return _typed(key, value, origin)


def _read_file(path: Path) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({yaml_error_text(exc)}): fix that line") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (it is not UTF-8): point at the YAML configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected key: value lines at the top level")
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}: the keys are {', '.join(sorted(_FILE_KEYS))}")
    return data


def _as_list(value: Any, key: str, origin: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(shlex.split(value)) if key == "comfyui_args" else tuple(v.strip() for v in value.split(",") if v)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    raise ConfigError(f"{origin}: {key}: expected text or a list, got {value!r}")


def _typed(key: str, value: Any, origin: str) -> Any:
    if key in _LIST_KEYS:
        items = _as_list(value, key, origin)
        if key == "comfyui_url":
            _check_addresses(key, items, origin, "http://127.0.0.1:8188")
        return items
    if key == "deadline_url" and value:
        _check_addresses(key, (str(value),), origin, "http://deadline:8081")
    if key in _INT_KEYS:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{origin}: {key}: expected a whole number, got {value!r}")
        return value
    if key in _FLOAT_KEYS:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {key}: expected a number of seconds, got {value!r}") from None
        if number <= 0:
            raise ConfigError(f"{origin}: {key}: must be more than 0 seconds, got {value!r}")
        return number
    if key == "deadline_insecure":
        if isinstance(value, str):
            value = value.strip().lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(f"{origin}: {key}: expected true or false, got {value!r}")
        return value
    if key == "comfyui_env":
        if not isinstance(value, dict):
            raise ConfigError(f"{origin}: comfyui_env: expected KEY: value lines, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if key == "path_mappings":
        if not isinstance(value, list):
            raise ConfigError(f"{origin}: path_mappings: expected a list of {{linux: …, macos: …, windows: …}}")
        try:
            return tuple(PathMapping.from_dict(item if isinstance(item, dict) else {}, where=f"path_mappings[{i}]")
                         for i, item in enumerate(value))
        except PathMappingError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
    if key in ("workstation_os", "farm_os") and value not in ("linux", "macos", "windows"):
        raise ConfigError(f"{origin}: {key}: '{value}' is not an OS: use linux, macos or windows")
    return value if value is None or isinstance(value, (str, int, float)) else str(value)


def _check_addresses(key: str, urls: Tuple[str, ...], origin: str, example: str) -> None:
    for url in urls:
        problem = http_address_problem(url, example=example)
        if problem:
            raise ConfigError(f"{origin}: {key}: {problem}")


def load_config(path: Optional[Path] = None, *, environ: Optional[Mapping[str, str]] = None,
                studio_path: Optional[Path] = None) -> Config:
    env = os.environ if environ is None else environ
    layers: List[Tuple[str, Dict[str, Any]]] = []
    studio = studio_path or studio_config_path(env)
    if studio.is_file():
        layers.append((str(studio), _read_file(studio)))
    elif STUDIO_CONFIG_ENV in env and studio_path is None:
        raise ConfigError(f"{studio}: no such studio configuration file: create it or unset {STUDIO_CONFIG_ENV}")
    user = path or default_config_path(env)
    if user.is_file():
        layers.append((str(user), _read_file(user)))
    elif path is not None or CONFIG_ENV in env:
        raise ConfigError(f"{user}: no such configuration file: create it or unset {CONFIG_ENV}")
    from_env = {key: env[var] for var, key in ENVIRONMENT.items() if env.get(var)}
    values: Dict[str, Any] = {}
    origins: Dict[str, str] = {}
    for origin, data in layers:
        for key, value in data.items():
            values[key] = _typed(key, value, origin)
            origins[key] = origin
    for var, key in ENVIRONMENT.items():
        if key in from_env:
            values[key] = _typed(key, from_env[key], f"${var}")
            origins[key] = f"${var}"
    if "comfyui_url" in values:
        values["comfyui_urls"] = values.pop("comfyui_url")
        origins["comfyui_urls"] = origins.pop("comfyui_url")
    try:
        return Config(**values, origins=origins)
    except TypeError as exc:
        raise ConfigError(f"{', '.join(o for o, _ in layers) or 'configuration'}: {exc}") from exc


def __getattr__(name: str) -> Any:
    """The Settings dialog's model and checks, imported from their modules on first use (PEP 562)."""
    for module, names in _SUBMODULE_NAMES.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
