"""The Settings dialog without Qt: the user's layer of comfyfarm's configuration, where each value comes
from, the checks made as the artist types, and what Save writes.

The layers are those of config.py: defaults < studio file < user file < environment. The dialog edits the
user's file only. An empty field means "not in my file": the studio's value (or the default) applies. A
value set in Flame's environment wins over the user's file, and the dialog says so next to the field. The
configuration has no notion of a locked studio value, so a value in the user's file replaces the studio's;
the dialog shows the studio's value beside it, so that it never happens unseen.

Where the password goes: in the user's file, which Save makes readable by its owner only (0600), or in
``COMFYFARM_DEADLINE_PASSWORD``. Never in the studio file (the dialog does not write it), never in logs,
job files or messages. The field is masked and its value is never shown as a placeholder or an origin.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from farm_plugin.paths import OS_NAMES, PathMapping, PathMappingError, current_os, is_mapped, under_any
from flame_submitter.config import (
    CONFIG_ENV,
    ENVIRONMENT,
    Config,
    ConfigError,
    default_config_path,
    load_config,
    studio_config_path,
)
from flame_submitter.config.settings_checks import (
    Check,
    check_count,
    check_folder,
    check_gpus,
    check_mappings,
    check_program,
    check_url,
)
from flame_submitter.config.user_file import read_raw, save_user_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingField:
    """One setting the dialog edits: the configuration key, its label, how it is checked, where it goes."""

    key: str
    label: str
    kind: str  # url, text, password, folder, folders, comfyui_dir, program, count, gpus, mappings
    section: str
    hint: str = ""
    unset: str = "not set"  # what an unset value means, in words


SECTIONS = ("Deadline", "Shared storage", "Run locally")
FIELDS: Tuple[SettingField, ...] = (
    SettingField("deadline_url", "Web Service URL", "url", "Deadline",
                 "The Deadline Web Service, e.g. http://deadline:8081"),
    SettingField("deadline_user", "User", "text", "Deadline", "Your Deadline user name"),
    SettingField("deadline_password", "Password", "password", "Deadline",
                 "Your Web Service password, if the Web Service asks for one. Kept in your file, readable by "
                 "you only"),
    SettingField("jobs_root", "Jobs folder", "folder", "Shared storage",
                 "Job folders and exported plates go here: a folder on storage the farm reads"),
    SettingField("inbox_root", "Inbox folder", "folder", "Shared storage",
                 "The farm announces finished renders here, and Flame imports them from here"),
    SettingField("shared_roots", "Shared roots", "folders", "Shared storage",
                 "Folders the farm sees at the same path, separated by commas"),
    SettingField("path_mappings", "Path mappings", "mappings", "Shared storage",
                 "The same storage as Linux, macOS and Windows name it (at least two per row)", unset="none"),
    SettingField("comfyui_dir", "ComfyUI folder", "comfyui_dir", "Run locally",
                 "The ComfyUI checkout that Run locally starts (the folder with main.py)"),
    SettingField("comfyui_python", "ComfyUI Python", "program", "Run locally",
                 "The Python that runs ComfyUI; empty: the one in ComfyUI's own venv",
                 unset="the Python in ComfyUI's venv, else this one"),
    SettingField("instances", "Instances", "count", "Run locally",
                 "How many ComfyUI to start on this machine"),
    SettingField("gpus", "GPUs", "gpus", "Run locally",
                 "One ComfyUI per GPU listed, e.g. 0,1 (then Instances is not used); empty: no choice",
                 unset="none chosen: every instance sees every GPU"),
)
BY_KEY = {f.key: f for f in FIELDS}
ENV_OF = {key: var for var, key in ENVIRONMENT.items()}


@dataclass(frozen=True)
class Origin:
    """Where the value in effect comes from: ``environment``, ``user``, ``studio`` or ``default``."""

    layer: str
    where: str = ""  # the file or the variable
    value: Any = None  # as written there (never shown for secrets)


@dataclass
class SettingsSources:
    """The layers as files and variables say them, read without judging them (a broken file is reported in
    ``problems``, so that the dialog can still open and help fix it)."""

    studio_path: Path
    user_path: Path
    studio: Dict[str, Any] = field(default_factory=dict)
    user: Dict[str, Any] = field(default_factory=dict)
    environment: Dict[str, Tuple[str, str]] = field(default_factory=dict)  # key -> (variable, value)
    problems: List[str] = field(default_factory=list)
    user_readable: bool = True  # False: Save must not overwrite a file it could not read

    @classmethod
    def load(cls, environ: Optional[Mapping[str, str]] = None) -> SettingsSources:
        env = os.environ if environ is None else environ
        sources = cls(studio_path=studio_config_path(env), user_path=default_config_path(env))
        if sources.studio_path.is_file():
            try:
                sources.studio = read_raw(sources.studio_path)[1]
            except ConfigError as exc:
                sources.problems.append(str(exc))
        try:
            sources.user = read_raw(sources.user_path)[1]
        except ConfigError as exc:
            sources.problems.append(str(exc))
            sources.user_readable = False
        if CONFIG_ENV in env and not sources.user_path.exists():
            sources.problems.append(f"{sources.user_path} ({CONFIG_ENV}) does not exist yet: Save creates it")
        sources.environment = {key: (var, env[var]) for var, key in ENVIRONMENT.items() if env.get(var)}
        if not sources.problems:
            try:
                load_config(environ=env)  # what comfyfarm itself would say about these layers
            except ConfigError as exc:
                sources.problems.append(f"comfyfarm cannot use these settings: {exc}")
        return sources

    def origin(self, key: str) -> Origin:
        if key in self.environment:
            var, value = self.environment[key]
            return Origin("environment", f"${var}", value)
        if key in self.user:
            return Origin("user", str(self.user_path), self.user[key])
        if key in self.studio:
            return Origin("studio", str(self.studio_path), self.studio[key])
        return Origin("default", "", default_value(key))


def default_value(key: str) -> Any:
    """The built-in default of a configuration key."""
    return getattr(Config(), key, None)


# -- form text <-> configuration values -------------------------------------------------------------------


def form_value(setting: SettingField, raw: Any) -> Any:
    """A value as the configuration file holds it → what the field shows (text, or rows for mappings)."""
    if setting.kind == "mappings":
        rows = raw if isinstance(raw, list) else []
        return [{os_name: str(row.get(os_name) or "") for os_name in OS_NAMES}
                for row in rows if isinstance(row, dict)]
    if raw is None:
        return ""
    if isinstance(raw, (list, tuple)):
        return ", ".join(str(item) for item in raw)
    return str(raw)


def config_value(setting: SettingField, shown: Any) -> Any:
    """What the field shows → the value Save writes (None: the key leaves the user's file)."""
    if setting.kind == "mappings":
        rows = [{k: v.strip() for k, v in row.items() if v and v.strip()} for row in shown or []]
        rows = [row for row in rows if row]
        return rows or None
    text = str(shown or "")
    if setting.kind != "password":
        text = text.strip()
    if not text:
        return None
    if setting.kind == "folders":
        return [item.strip() for item in text.split(",") if item.strip()]
    if setting.kind == "gpus":
        return [int(t) if t.isdigit() else t for t in (item.strip() for item in text.split(",")) if t]
    if setting.kind == "count":
        return int(text) if text.isdigit() else text
    return text


def shown_text(setting: SettingField, value: Any) -> str:
    """A value in words for an origin or a placeholder (never the password itself)."""
    if setting.kind == "password":
        return "set" if value else "not set"
    if value is None or value == "" or value == () or value == []:
        return setting.unset
    if setting.kind == "mappings":
        rows = form_value(setting, value)
        return "; ".join(" = ".join(p for p in row.values() if p) for row in rows) or setting.unset
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


class SettingsModel:
    """The form's state: what each field shows, its checks and origin, and the changes Save would write."""

    def __init__(self, sources: SettingsSources, *, workstation_os: Optional[str] = None) -> None:
        self.sources = sources
        self.workstation_os = workstation_os or current_os()
        self.saved: Dict[str, Any] = {f.key: form_value(f, sources.user.get(f.key)) for f in FIELDS}
        self.shown: Dict[str, Any] = dict(self.saved)

    @classmethod
    def load(cls, environ: Optional[Mapping[str, str]] = None) -> SettingsModel:
        return cls(SettingsSources.load(environ))

    def set(self, key: str, shown: Any) -> None:
        self.shown[key] = shown

    # -- values in effect ------------------------------------------------------------------------------

    def effective(self, key: str) -> Any:
        """The value comfyfarm will use once the form is saved (the environment still wins)."""
        setting = BY_KEY[key]
        if key in self.sources.environment:
            return self.sources.environment[key][1]
        mine = config_value(setting, self.shown.get(key))
        if mine is not None:
            return mine
        if key in self.sources.studio:
            return self.sources.studio[key]
        return default_value(key)

    def inherited(self, key: str) -> Origin:
        """Where the value would come from if this field were empty."""
        if key in self.sources.studio:
            return Origin("studio", str(self.sources.studio_path), self.sources.studio[key])
        return Origin("default", "", default_value(key))

    def origin_text(self, key: str) -> str:
        """One line beside the field: where the value in effect comes from, in words."""
        setting = BY_KEY[key]
        if key in self.sources.environment:
            var = self.sources.environment[key][0]
            return f"Set by ${var} in Flame's environment: it wins over what you save here"
        mine = config_value(setting, self.shown.get(key))
        inherited = self.inherited(key)
        if mine is not None:
            where = "Yours" if mine == config_value(setting, self.saved.get(key)) else "Yours (not saved yet)"
            if setting.kind == "password":
                where += ": kept in your file, readable by you only"
            if inherited.layer == "studio":
                if config_value(setting, form_value(setting, inherited.value)) == mine:
                    return f"{where}; the same as the studio's"
                return f"{where}; the studio's is {shown_text(setting, inherited.value)} (set in {inherited.where})"
            return where
        if inherited.layer == "studio":
            return f"Studio: {shown_text(setting, inherited.value)} (set in {inherited.where})"
        return f"Default: {shown_text(setting, inherited.value)}"

    def placeholder(self, key: str) -> str:
        """Grey text in an empty field: the value that applies while it is empty (never a password)."""
        setting = BY_KEY[key]
        if setting.kind == "password":
            return ""
        if key in self.sources.environment:
            var, value = self.sources.environment[key]
            return f"{value} (${var})"
        inherited = self.inherited(key)
        if inherited.value in (None, "", (), []):
            return ""
        return f"{shown_text(setting, inherited.value)} ({'studio' if inherited.layer == 'studio' else 'default'})"

    # -- checks ----------------------------------------------------------------------------------------

    def check(self, key: str) -> Optional[Check]:
        setting = BY_KEY[key]
        shown = self.shown.get(key)
        if setting.kind == "mappings":
            return check_mappings(shown or [])
        text = str(shown or "").strip()
        if not text:
            return None
        found = self._check_text(setting, text)
        if found is None and key in ("jobs_root", "inbox_root"):
            found = self._reachable(text)
        if found is None and key == "instances" and self.effective("gpus"):
            found = Check("warning", "GPUs are listed: Run locally starts one ComfyUI per GPU, not this number")
        return found

    def _check_text(self, setting: SettingField, text: str) -> Optional[Check]:
        if setting.kind == "url":
            return check_url(text)
        if setting.kind == "folder":
            return check_folder(text)
        if setting.kind == "comfyui_dir":
            return check_folder(text, must_hold="main.py")
        if setting.kind == "folders":
            for item in (i.strip() for i in text.split(",")):
                if item:
                    found = check_folder(item)
                    if found is not None:
                        return found
            return None
        if setting.kind == "program":
            return check_program(text)
        if setting.kind == "count":
            return check_count(text)
        if setting.kind == "gpus":
            return check_gpus(text)
        return None

    def _reachable(self, text: str) -> Optional[Check]:
        roots = self.effective("shared_roots") or ()
        if isinstance(roots, str):
            roots = [r.strip() for r in roots.split(",") if r.strip()]
        mappings = []
        for row in self.effective("path_mappings") or ():
            try:
                mappings.append(PathMapping.from_dict(row))
            except (PathMappingError, AttributeError):
                continue
        path = str(Path(text).expanduser())
        if under_any(path, tuple(roots), self.workstation_os) or is_mapped(path, mappings, self.workstation_os):
            return None
        return Check("warning", "Not under the shared roots or path mappings: Submit will refuse it until the "
                                "farm can reach it")

    def checks(self) -> Dict[str, Check]:
        return {f.key: found for f in FIELDS if (found := self.check(f.key)) is not None}

    def errors(self) -> List[str]:
        """What stops Save, as "Label: problem" lines, in the order of the form."""
        lines = [f"{BY_KEY[key].label}: {c.text}" for key, c in self.checks().items() if c.level == "error"]
        if not self.sources.user_readable:
            lines.insert(0, self.sources.problems[0] if self.sources.problems else "Your file cannot be read")
        return lines

    # -- saving ----------------------------------------------------------------------------------------

    def changes(self) -> Dict[str, Optional[Any]]:
        """The keys whose value differs from the user's file, with what Save writes (None: removed)."""
        changed = {}
        for setting in FIELDS:
            new = config_value(setting, self.shown.get(setting.key))
            if new != config_value(setting, self.saved.get(setting.key)):
                changed[setting.key] = new
        return changed

    def save(self) -> Path:
        """Write the changes into the user's file (atomically, other keys kept); ConfigError when it cannot."""
        problems = self.errors()
        if problems:
            raise ConfigError(problems[0])
        written = save_user_config(self.sources.user_path, self.changes())
        self.sources.user = written
        self.saved = {f.key: form_value(f, written.get(f.key)) for f in FIELDS}
        self.shown = dict(self.saved)
        return self.sources.user_path
