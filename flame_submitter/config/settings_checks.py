"""The checks the Settings dialog makes as the artist types, and its Test connection (no Qt here).

Each check returns None (fine) or a :class:`Check`: ``error`` (Save waits for a fix), ``warning`` (worth
knowing, Save goes ahead) or, for the connection test, ``ok``. The texts say what is wrong and the fix.
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


def try_deadline_connection(url: str, user: Optional[str], password: Optional[str], *, timeout_s: float) -> Check:
    """Ask the Web Service at ``url`` whether it answers and takes the login (one try, ``timeout_s`` per call).
    For a background thread: it waits on the network. Returns a Check of level ``ok`` or ``error``."""
    from flame_submitter.deadline.client import DeadlineClient  # requests: only when asked
    from flame_submitter.deadline.errors import (
        DeadlineAuthError,
        DeadlineError,
        DeadlineTimeout,
        DeadlineUnreachable,
    )

    found = check_url(url)
    if found is not None and found.level == "error":
        return found
    client = DeadlineClient(url, user=user or None, password=password or None, timeout_s=timeout_s, read_retries=0)
    who = f" as {user}" if user else ""
    try:
        client.ping()
        pools = client.pool_names()
    except DeadlineAuthError:
        return Check("error", f"Deadline answers at {url} but refuses the login{who}: check the user and the "
                              "password (Deadline Monitor > Tools > User Settings > Web Service password)")
    except DeadlineTimeout:
        return Check("error", f"Deadline did not answer within {timeout_s:g} s at {url}: it is busy or stuck; "
                              "try again")
    except DeadlineUnreachable as exc:
        text = str(exc)
        reason = text.split(f"{url} (", 1)[-1].split("):", 1)[0] if f"{url} (" in text else "no answer"
        return Check("error", f"Nothing answers at {url} ({reason}): check the address and that the Web Service "
                              "is running")
    except DeadlineError as exc:
        return Check("error", f"Deadline answered, but not as expected: {exc}")
    listed = ", ".join(pools[:6]) + (", …" if len(pools) > 6 else "")
    return Check("ok", f"Connected to Deadline at {url}{who}; pools: {listed or 'none'}")
