"""The checks the Settings dialog makes as the artist types, and its Test connection (no Qt here).

Each check returns None (fine) or a :class:`Check`: ``error`` (Save waits for a fix), ``warning`` (worth
knowing, Save goes ahead); the Test connection (``flame_submitter.deadline.connection``) answers ``ok``
too. The texts say what is wrong and the fix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence
from urllib.parse import urlsplit

from farm_plugin.paths import PathMapping, PathMappingError

MAX_INSTANCES = 64
_GPU_TOKEN = re.compile(r"^(\d+|(GPU|MIG)-[0-9A-Za-z-]+)$")  # what CUDA_VISIBLE_DEVICES takes


@dataclass(frozen=True)
class Check:
    """What is wrong with a field (``error``: Save waits for a fix) or worth knowing (``warning``)."""

    level: str
    text: str


def check_url(text: str) -> Optional[Check]:
    example = "e.g. http://deadline:8081"
    if any(c.isspace() for c in text):
        return Check("error", f"An address has no spaces ({example})")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check("error", f"Not a Web Service address: start with http:// or https:// and a host name ({example})")
    if parts.username or parts.password:
        return Check("error", "Put the user and the password in their own fields, not in the address")
    try:
        port = parts.port
    except ValueError:
        return Check("error", f"The port must be a number from 1 to 65535 ({example})")
    if port == 0:
        return Check("error", f"The port must be a number from 1 to 65535 ({example})")
    if port is None:
        return Check("warning", "No port: the Web Service usually listens on 8081 (e.g. http://deadline:8081)")
    return None


def check_folder(text: str, *, must_hold: str = "") -> Optional[Check]:
    path = Path(text).expanduser()
    if not path.is_absolute():
        return Check("error", f"Give the full path of the folder (starting with /): '{text}' is relative")
    if not path.exists():
        return Check("error", f"There is no folder {path} on this machine: check the path (is the storage mounted?)")
    if not path.is_dir():
        return Check("error", f"{path} is a file, not a folder")
    if must_hold and not (path / must_hold).is_file():
        return Check("error", f"{path} is not a ComfyUI folder (there is no {must_hold} in it)")
    return None


def check_program(text: str) -> Optional[Check]:
    path = Path(text).expanduser()
    if not path.is_absolute():
        return Check("error", f"Give the full path of the program (starting with /): '{text}' is relative")
    if not path.is_file():
        return Check("error", f"There is no file {path} on this machine")
    if not os.access(str(path), os.X_OK):
        return Check("error", f"{path} is not a program this user can run (not executable)")
    return None


def check_count(text: str) -> Optional[Check]:
    if not text.isdigit() or not 1 <= int(text) <= MAX_INSTANCES:
        return Check("error", f"A whole number from 1 to {MAX_INSTANCES}")
    return None


def check_gpus(text: str) -> Optional[Check]:
    tokens = [t.strip() for t in text.split(",")]
    bad = [t for t in tokens if not _GPU_TOKEN.match(t)]
    if bad:
        return Check("error", f"GPUs are numbers separated by commas, e.g. 0,1 (not '{bad[0]}')")
    if len(set(tokens)) != len(tokens):
        return Check("error", "A GPU is listed twice: one ComfyUI per GPU")
    return None


def check_mappings(rows: Sequence[Mapping[str, str]]) -> Optional[Check]:
    for number, row in enumerate(rows, start=1):
        filled = {k: v.strip() for k, v in row.items() if v and v.strip()}
        if not filled:
            continue
        try:
            PathMapping.from_dict(filled, where=f"Row {number}")
        except PathMappingError as exc:
            return Check("error", str(exc)[:1].upper() + str(exc)[1:])
    return None
