"""Path mapping between the artist's workstation and the farm (Linux, macOS and Windows prefixes).

One mapping names the same storage on each OS::

    {linux: /mnt/projects, macos: /Volumes/projects, windows: "P:/"}

``to_farm`` rewrites a workstation path for the farm's OS and ``to_workstation`` does the reverse; both
use the longest matching prefix. A path under no mapping is left as it is (the same on both sides).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from farm_plugin.errors import BadInput

OS_NAMES = ("linux", "macos", "windows")


class PathMappingError(ValueError, BadInput):
    """A mapping is malformed: the message names it and the fix."""


def current_os() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _normalise(path: str, os_name: str) -> str:
    text = path.replace("\\", "/") if os_name == "windows" else path
    return text.rstrip("/") if len(text) > 1 else text


def _render(path: str, os_name: str) -> str:
    return path.replace("/", "\\") if os_name == "windows" else path


@dataclass(frozen=True)
class PathMapping:
    prefixes: Tuple[Tuple[str, str], ...]  # (os, prefix)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, where: str = "path_mappings") -> PathMapping:
        unknown = sorted(set(data) - set(OS_NAMES))
        if unknown:
            raise PathMappingError(f"{where}: unknown key(s) {', '.join(unknown)}: use linux, macos and windows")
        prefixes = []
        for os_name in OS_NAMES:
            value = data.get(os_name)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise PathMappingError(f"{where}.{os_name}: expected a path prefix, got {value!r}")
            prefixes.append((os_name, _normalise(value, os_name)))
        if len(prefixes) < 2:
            raise PathMappingError(f"{where}: name the same storage on at least two of linux, macos, windows")
        return cls(tuple(prefixes))

    def prefix(self, os_name: str) -> Optional[str]:
        return dict(self.prefixes).get(os_name)


def _matches(path: str, prefix: str, os_name: str) -> bool:
    if os_name == "windows":
        path, prefix = path.lower(), prefix.lower()
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def map_path(path: str, mappings: Sequence[PathMapping], *, source_os: str, target_os: str) -> str:
    """``path`` as seen on ``target_os``, through the longest matching prefix of ``source_os``."""
    if source_os == target_os:
        return path
    text = _normalise(path, source_os)
    best: Optional[Tuple[str, str]] = None
    for mapping in mappings:
        source, target = mapping.prefix(source_os), mapping.prefix(target_os)
        if source and target and _matches(text, source, source_os) and (best is None or len(source) > len(best[0])):
            best = (source, target)
    if best is None:
        return path
    return _render(best[1] + text[len(best[0]):], target_os)


def is_mapped(path: str, mappings: Sequence[PathMapping], os_name: str) -> bool:
    """Whether ``path`` lies under one of the mappings' prefixes for ``os_name``."""
    text = _normalise(path, os_name)
    return any(m.prefix(os_name) and _matches(text, m.prefix(os_name) or "", os_name) for m in mappings)


def under_any(path: str, roots: Iterable[str], os_name: str) -> bool:
    text = _normalise(path, os_name)
    return any(_matches(text, _normalise(root, os_name), os_name) for root in roots)
