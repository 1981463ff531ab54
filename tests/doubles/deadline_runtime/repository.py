"""The emulated Deadline repository as the plugin runtime sees it: folders, settings and the job database.

Folder layout (the parts Deadline's Workers read; ``<root>`` is the repository):

* ``custom/plugins/<Name>/<Name>.py|.param|.options`` (falls back to ``plugins/<Name>/``, the stock folder);
* ``custom/events/<Name>/<Name>.py|.param`` (falls back to ``events/<Name>/``);
* ``jobs/<job id>/``: the job's auxiliary files, as the Web Service double copies them;
* ``settings/plugins/<Name>.json``: Monitor's "Configure Plugins" for application plugin ``<Name>``, a JSON
  object ``{key: value}`` (values: strings, numbers, booleans, or lists of strings joined with ``;``);
* ``settings/events/<Name>.json``: "Configure Events" for event plugin ``<Name>``: same shape, plus
  ``"State"`` (``Global Enabled``, ``Opt-In`` or ``Disabled``);
* ``settings/pathmapping.json``: "Mapped Paths", either a list of rules
  ``[{"Path": "/Volumes/projects", "LinuxPath": "/mnt/projects", "WindowsPath": "P:\\\\",
  "MacPath": "/Volumes/projects", "CaseSensitive": true}]`` or an object of simple pairs
  ``{"/Volumes/projects": "/mnt/projects"}`` (applied as they are, on every OS).

Path mapping, as the double does it (Deadline's rules are not published in detail): rules are tried in
order; the first whose ``Path`` is a prefix of the path wins (case-sensitive unless ``"CaseSensitive":
false``; plain prefix, not a whole-folder match, like a string replace); the prefix is replaced by the rule's
path for this OS (``LinuxPath`` here; rules without one are skipped) and, on Linux, backslashes in the
mapped path become ``/``. A path no rule matches is returned unchanged.

The job database is behind :class:`RepositoryBackend` (a Web Service double's :class:`JobStore` in-process,
or the farm emulator's bridge over HTTP). ``RepositoryUtils`` reaches the repository of the Worker that runs
the plugin through :func:`current_connection` (a process-wide connection, as a Worker has one repository).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

from .params import ParamFile, config_text

log = logging.getLogger(__name__)

EVENT_STATES = ("Global Enabled", "Opt-In", "Disabled")
_OS_KEY = {"linux": "LinuxPath", "win32": "WindowsPath", "darwin": "MacPath"}


class RepositoryError(RuntimeError):
    """A repository file the double cannot read (a bad settings JSON, a bad path-mapping rule...)."""


@dataclass(frozen=True)
class PathMappingRule:
    path: str
    replacement: str
    case_sensitive: bool = True

    def apply(self, value: str) -> Optional[str]:
        matched = (value.startswith(self.path) if self.case_sensitive
                   else value.lower().startswith(self.path.lower()))
        if not matched:
            return None
        mapped = self.replacement + value[len(self.path):]
        if sys.platform != "win32":
            mapped = mapped.replace("\\", "/")
        return mapped


class RepositoryBackend(Protocol):
    """The job database as the runtime needs it."""

    def job_json(self, job_id: str) -> Optional[Dict[str, Any]]:
        """The job object (Web Service JSON shape), or None when no such job exists."""

    def jobs_json(self) -> List[Dict[str, Any]]:
        """Every job in the queue."""

    def tasks_json(self, job_id: str) -> Dict[str, Any]:
        """``{"ID", "PreTask", "Tasks": [...], "PostTask"}``."""

    def job_command(self, body: Dict[str, Any]) -> None:
        """A Web Service job command (``{"Command": "save", "Job": {...}}``...)."""

    def task_command(self, body: Dict[str, Any]) -> None:
        """A Web Service task command (``{"Command": "requeue", "JobID", "TaskList"}``...)."""


class StoreBackend:
    """:class:`RepositoryBackend` over an in-process Web Service double's ``JobStore``."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def job_json(self, job_id: str) -> Optional[Dict[str, Any]]:
        from tests.doubles.deadline.store import UnknownJobError

        try:
            return self.store.job_json(job_id)
        except UnknownJobError:
            return None

    def jobs_json(self) -> List[Dict[str, Any]]:
        return self.store.jobs_json()

    def tasks_json(self, job_id: str) -> Dict[str, Any]:
        return self.store.tasks_json(job_id)

    def job_command(self, body: Dict[str, Any]) -> None:
        self.store.job_command(body)

    def task_command(self, body: Dict[str, Any]) -> None:
        self.store.task_command(body)


class RepositoryFolder:
    """Reads the repository folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- folders -------------------------------------------------------------------------------------------

    def plugin_dir(self, name: str) -> Path:
        return self._find("plugins", name)

    def event_dir(self, name: str) -> Path:
        return self._find("events", name)

    def _find(self, kind: str, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise RepositoryError(f"{name!r} is not a plugin name")
        for base in (self.root / "custom" / kind, self.root / kind):
            if (base / name / f"{name}.py").is_file():
                return base / name
        raise RepositoryError(f"no {kind[:-1]} {name!r} in the repository {self.root} (looked for "
                              f"custom/{kind}/{name}/{name}.py and {kind}/{name}/{name}.py)")

    def event_names(self) -> List[str]:
        names = set()
        for base in (self.root / "custom" / "events", self.root / "events"):
            if base.is_dir():
                names.update(p.name for p in base.iterdir() if (p / f"{p.name}.py").is_file())
        return sorted(names)

    def aux_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    # -- settings ------------------------------------------------------------------------------------------

    def _settings(self, relative: str) -> Dict[str, Any]:
        path = self.root / "settings" / relative
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RepositoryError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise RepositoryError(f"{path} must hold a JSON object, not {type(data).__name__}")
        return data

    def plugin_settings(self, name: str) -> Dict[str, str]:
        data = self._settings(f"plugins/{name}.json")
        return {str(k): config_text(v, f"settings/plugins/{name}.json {k}") for k, v in data.items()}

    def event_settings(self, name: str) -> Dict[str, str]:
        data = self._settings(f"events/{name}.json")
        return {str(k): config_text(v, f"settings/events/{name}.json {k}") for k, v in data.items()}

    def event_state(self, name: str, params: ParamFile) -> str:
        """The event plugin's State: its settings, else its .param's [State] Default, else Disabled."""
        state = self.event_settings(name).get("State") or params.default("State") or "Disabled"
        if state not in EVENT_STATES:
            raise RepositoryError(f"event plugin {name}: State {state!r} is not one of {', '.join(EVENT_STATES)}")
        return state

    # -- path mapping --------------------------------------------------------------------------------------

    def path_mapping_rules(self) -> List[PathMappingRule]:
        path = self.root / "settings" / "pathmapping.json"
        if not path.is_file():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RepositoryError(f"cannot read {path}: {exc}") from None
        return parse_path_mappings(data, str(path))

    def check_path_mapping(self, value: str) -> str:
        for rule in self.path_mapping_rules():
            mapped = rule.apply(value)
            if mapped is not None:
                return mapped
        return value


def parse_path_mappings(data: Any, where: str) -> List[PathMappingRule]:
    """Rules from the pathmapping.json shapes (see the module docstring); raises RepositoryError."""
    os_key = _OS_KEY.get(sys.platform, "LinuxPath")
    rules: List[PathMappingRule] = []
    if isinstance(data, dict):
        for source, target in data.items():
            if not isinstance(source, str) or not source or not isinstance(target, str):
                raise RepositoryError(f"{where}: {source!r}: {target!r} is not a pair of paths")
            rules.append(PathMappingRule(source, target))
        return rules
    if not isinstance(data, list):
        raise RepositoryError(f"{where} must hold a list of rules or an object of path pairs")
    for index, rule in enumerate(data):
        if not isinstance(rule, dict) or not isinstance(rule.get("Path"), str) or not rule["Path"]:
            raise RepositoryError(f"{where}: rule {index} needs \"Path\", the path to replace")
        unknown = set(rule) - {"Path", "LinuxPath", "WindowsPath", "MacPath", "CaseSensitive", "Region"}
        if unknown:
            raise RepositoryError(f"{where}: rule {index} has unknown key(s) {', '.join(sorted(unknown))}")
        targets = [key for key in ("LinuxPath", "WindowsPath", "MacPath") if key in rule]
        if not targets:
            raise RepositoryError(f"{where}: rule {index} needs at least one of LinuxPath, WindowsPath, MacPath")
        for key in targets:
            if not isinstance(rule[key], str):
                raise RepositoryError(f"{where}: rule {index} {key} must be a string")
        case_sensitive = rule.get("CaseSensitive", True)
        if not isinstance(case_sensitive, bool):
            raise RepositoryError(f"{where}: rule {index} CaseSensitive must be true or false")
        if os_key in rule:
            rules.append(PathMappingRule(rule["Path"], rule[os_key], case_sensitive))
    return rules


# ---------------------------------------------------------------------------------------------------------
# the Worker's connection (what RepositoryUtils talks to)


@dataclass(frozen=True)
class RepositoryConnection:
    folder: RepositoryFolder
    backend: RepositoryBackend


_connection_lock = threading.Lock()
_connection: Optional[RepositoryConnection] = None
_connection_users = 0


def connect(connection: RepositoryConnection) -> None:
    """Make ``connection`` the repository RepositoryUtils talks to (one per process, like a Worker). Hosts
    sharing one connection each connect and disconnect it; another connection is refused meanwhile."""
    global _connection, _connection_users
    with _connection_lock:
        if _connection is not None and not _same(_connection, connection):
            raise RuntimeError("this process is already connected to another repository: close its PluginHost "
                               "and EventHost first")
        _connection = connection
        _connection_users += 1


def _same(first: RepositoryConnection, second: RepositoryConnection) -> bool:
    return first.backend is second.backend and first.folder.root.resolve() == second.folder.root.resolve()


def disconnect(connection: RepositoryConnection) -> None:
    global _connection, _connection_users
    with _connection_lock:
        if _connection is not None and _same(_connection, connection):
            _connection_users -= 1
            if _connection_users <= 0:
                _connection, _connection_users = None, 0


def current_connection() -> RepositoryConnection:
    with _connection_lock:
        connection = _connection
    if connection is None:
        raise RuntimeError("RepositoryUtils was called outside a Worker: no repository connection (the runtime "
                           "double connects one while a PluginHost or EventHost is open)")
    return connection
