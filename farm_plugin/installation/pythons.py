"""What a Python interpreter is and holds, asked of the interpreter itself (it may be another version).

The question runs in ``python -I`` (isolated: no PYTHONPATH, no user site, no current folder), so the
answer describes the interpreter's own environment, as Flame or Deadline would start it.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from farm_plugin.errors import ServiceError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 60.0

_PROBE = r"""
import importlib.util, json, re, sys, sysconfig
dists = {}
try:
    from importlib import metadata
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            dists.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
except Exception:
    pass
print(json.dumps({
    "version": list(sys.version_info[:3]),
    "purelib": sysconfig.get_path("purelib"),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "distributions": dists,
    "qt": next((m for m in ("PySide6", "PySide2") if importlib.util.find_spec(m)), None),
    "pip": importlib.util.find_spec("pip") is not None,
}))
"""


class PythonProbeError(ServiceError):
    """An interpreter cannot be run or questioned: the message names it."""


@dataclass(frozen=True)
class PythonInfo:
    executable: Path
    version: Tuple[int, int, int]
    purelib: Path
    prefix: Path
    base_prefix: Path
    distributions: Dict[str, str] = field(default_factory=dict)  # normalized name -> version
    qt: Optional[str] = None
    has_pip: bool = False

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)

    @property
    def minor(self) -> Tuple[int, int]:
        return self.version[0], self.version[1]

    @property
    def in_venv(self) -> bool:
        return self.prefix != self.base_prefix


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``PyYAML`` → ``pyyaml``, ``a_b.c`` → ``a-b-c``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def probe(executable: Path, *, timeout_s: float = PROBE_TIMEOUT_SECONDS) -> PythonInfo:
    try:
        result = subprocess.run([str(executable), "-I", "-c", _PROBE], capture_output=True, text=True,
                                timeout=timeout_s, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PythonProbeError(f"cannot run {executable}: {exc}") from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PythonProbeError(f"{executable} failed when asked what it is (exit {result.returncode}): {last}")
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
        return PythonInfo(
            executable=Path(executable), version=tuple(data["version"]), purelib=Path(data["purelib"]),
            prefix=Path(data["prefix"]), base_prefix=Path(data["base_prefix"]),
            distributions=dict(data["distributions"]), qt=data["qt"], has_pip=bool(data["pip"]),
        )
    except (ValueError, KeyError, IndexError) as exc:
        raise PythonProbeError(f"{executable} gave an answer comfyfarm cannot read: {result.stdout[-200:]!r}") from exc
