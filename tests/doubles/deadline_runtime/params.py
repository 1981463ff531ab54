"""Deadline's ``.param`` (plugin configuration) and ``.options`` (Job Properties) files, and value parsing.

Both are INI files: one ``[Key]`` section per entry with ``Type=``, ``Label=``, ``Default=``... (deadline.md
section 4). The double reads them with :mod:`configparser` (no interpolation, case kept, ``=`` only) and is
strict: a duplicate section or key, a section without ``Type`` or with a Type outside :data:`KNOWN_TYPES`
raises :class:`ParamFileError`. ``Default=`` with nothing after it is the empty string; a section without a
``Default`` line has no default.

Values are text, as in Deadline. Booleans parse like .NET's ``Boolean.Parse`` (true/false in any case,
nothing else); integers are optional sign + digits; floats are decimal numbers (finite).
"""

from __future__ import annotations

import configparser
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

# The Types seen in Thinkbox's stock and example files (lower case). Add a real one here if a file needs it.
KNOWN_TYPES = frozenset({
    "string", "multilinestring", "password", "integer", "float", "boolean", "enum", "enumeration", "label",
    "filename", "filenamesave", "folder", "multifilename", "multilinefilename", "multilinemultifilename",
    "multilinemultifolder", "multifolder", "slavelist", "limitgrouplist", "color", "datetime",
})

_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_FLOAT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


class ParamFileError(ValueError):
    """A .param or .options file the double cannot read (the message names the file and the problem)."""


class ValueFormatError(ValueError):
    """A text value that is not a boolean / integer / float where one was asked for."""


@dataclass(frozen=True)
class ParamEntry:
    key: str
    type: str
    default: Optional[str]
    fields: Dict[str, str] = field(default_factory=dict)

    @property
    def items(self) -> List[str]:
        text = self.fields.get("Items") or self.fields.get("Values") or ""
        return [item for item in text.split(";") if item != ""]


@dataclass(frozen=True)
class ParamFile:
    path: Optional[Path]
    entries: Dict[str, ParamEntry]

    def default(self, key: str) -> Optional[str]:
        entry = self.entries.get(key)
        return None if entry is None else entry.default

    @classmethod
    def empty(cls) -> ParamFile:
        return cls(None, {})


def read_param_file(path: Path) -> ParamFile:
    """Parse a .param / .options file (see the module docstring); a missing file is an empty one."""
    path = Path(path)
    if not path.is_file():
        return ParamFile(path, {})
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"),
                                       inline_comment_prefixes=None, strict=True, empty_lines_in_values=False,
                                       default_section="\x00no-default-section")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  (keep the keys' case)
    try:
        parser.read_string(path.read_text(encoding="utf-8-sig"), source=str(path))
    except configparser.Error as exc:
        raise ParamFileError(f"{path}: {exc}") from None
    entries: Dict[str, ParamEntry] = {}
    for section in parser.sections():
        values = {key: value for key, value in parser.items(section)}
        kind = values.get("Type")
        if kind is None:
            raise ParamFileError(f"{path}: [{section}] has no Type=")
        if kind.strip().lower() not in KNOWN_TYPES:
            raise ParamFileError(f"{path}: [{section}] Type={kind} is not a Deadline type the double knows "
                                 f"({', '.join(sorted(KNOWN_TYPES))})")
        entries[section] = ParamEntry(key=section, type=kind.strip().lower(), default=values.get("Default"),
                                      fields=values)
    return ParamFile(path, entries)


def config_text(value: Any, what: str) -> str:
    """A configuration value (from a settings JSON file) as Deadline text: strings as they are, JSON
    booleans as ``True``/``False`` (.NET), numbers as written, a list of strings joined with ``;`` (the
    multi-line file name lists)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, not {value!r}")
        return repr(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ";".join(value)
    raise ValueError(f"{what} must be a string, a number, a boolean or a list of strings, not {value!r}")


def parse_boolean(text: str, what: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueFormatError(f"{what} is {text!r}, which is not a boolean (True or False)")


def parse_integer(text: str, what: str) -> int:
    if not _INTEGER.match(text):
        raise ValueFormatError(f"{what} is {text!r}, which is not an integer")
    return int(text)


def parse_float(text: str, what: str) -> float:
    if not _FLOAT.match(text):
        raise ValueFormatError(f"{what} is {text!r}, which is not a number")
    return float(text)


def check_config_value(entry: ParamEntry, value: Any, what: str) -> str:
    """What Monitor's Configure Plugins would accept for ``entry``: the text to store, or ValueError."""
    text = config_text(value, what)
    if entry.type == "integer":
        number = parse_integer(text, what)
        _check_bounds(entry, number, what)
    elif entry.type == "float":
        number_f = parse_float(text, what)
        _check_bounds(entry, number_f, what)
    elif entry.type == "boolean":
        text = "True" if parse_boolean(text, what) else "False"
    elif entry.type in ("enum", "enumeration"):
        if entry.items and text not in entry.items:
            raise ValueError(f"{what} must be one of {', '.join(entry.items)}, not {text!r}")
    elif entry.type == "label":
        raise ValueError(f"{what} is a label: Configure Plugins does not let anyone set it")
    return text


def _check_bounds(entry: ParamEntry, number: float, what: str) -> None:
    for name, test in (("Minimum", lambda bound: number < bound), ("Maximum", lambda bound: number > bound)):
        bound_text = entry.fields.get(name)
        if bound_text is None or not bound_text.strip():
            continue
        bound = parse_float(bound_text, f"{entry.key} {name}")
        if test(bound):
            raise ValueError(f"{what} is {number}, outside {entry.key}'s {name} {bound_text}")
