"""Writing the user's configuration file: only the keys asked for change; the rest, comments included, stays.

The file is replaced atomically (a temporary file in the same folder, then a rename), so a crash or a full
disk never leaves half a file. A file that holds a password is readable by its owner only (0600). When an
edit cannot be made line by line (unusual YAML such as flow style over several lines), the whole file is
written again from its values: the keys are kept, its comments are not.
"""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from farm_plugin.atomic import write_text_atomic
from flame_submitter.config import SECRET_KEYS, ConfigError, check_value

logger = logging.getLogger(__name__)

OWNER_ONLY = 0o600


def read_raw(path: Path) -> Tuple[str, Dict[str, Any]]:
    """The file's text and its top-level values ("" and {} when there is no file); ConfigError when it is
    not a ``key: value`` YAML file, since writing it again would lose what it holds."""
    if not path.exists():
        return "", {}
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}): fix it by hand, or move it away, before saving "
                          "settings") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (it is not UTF-8): move it away before saving settings") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected key: value lines at the top level: fix it by hand, or move it away, "
                          "before saving settings")
    return text, data


def save_user_config(path: Path, changes: Mapping[str, Optional[Any]]) -> Dict[str, Any]:
    """Set (or, for None, remove) ``changes`` in the user's file at ``path`` and keep every other key.
    Each value is checked as the configuration would read it first; ConfigError names the key and the fix.
    Returns the file's values after the save."""
    for key, value in changes.items():
        if value is not None:
            check_value(key, value, f"{path}: {key}")
    text, data = read_raw(path)
    wanted = dict(data)
    for key, value in changes.items():
        if value is None:
            wanted.pop(key, None)
        else:
            wanted[key] = value
    new_text = _edited_text(text, changes, wanted)
    _write_atomically(path, new_text, secret=any(wanted.get(key) for key in SECRET_KEYS))
    logger.info("saved %s in %s", ", ".join(sorted(changes)) or "nothing", path)
    return wanted


def _block(key: str, value: Any) -> List[str]:
    dumped = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False, allow_unicode=True,
                            width=1000)
    return dumped.splitlines(keepends=True)


def _span(lines: List[str], key: str) -> Optional[Tuple[int, int]]:
    """Lines [start, end) of a top-level ``key:`` and what belongs to it (indented lines, ``- `` items)."""
    pattern = re.compile(rf"^{re.escape(key)}\s*:(\s|$)")
    start = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line[0].isspace() and not line.startswith("-"):
            break
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines before the next key stay where they are
    return start, end


def _edited_text(text: str, changes: Mapping[str, Optional[Any]], wanted: Dict[str, Any]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for key, value in changes.items():
        span = _span(lines, key)
        block = [] if value is None else _block(key, value)
        if span is not None:
            lines[span[0]:span[1]] = block
        elif block:
            lines.extend(block)
    edited = "".join(lines)
    try:
        if (yaml.safe_load(edited) or {}) == wanted:
            return edited
    except yaml.YAMLError:
        pass
    logger.info("the configuration file is written again from its values (its comments are not kept)")
    return yaml.safe_dump(wanted, default_flow_style=False, sort_keys=False, allow_unicode=True, width=1000)


def _write_atomically(path: Path, text: str, *, secret: bool) -> None:
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{path}: cannot write it: {path.parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = OWNER_ONLY
        if path.exists() and not secret:
            mode = stat.S_IMODE(path.stat().st_mode)
        write_text_atomic(path, text, mode=mode, fsync=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it ({exc.strerror or exc}): check that the folder is yours and "
                          "has space") from exc
