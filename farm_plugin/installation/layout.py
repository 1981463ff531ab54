"""The folders comfyfarm installs into, role by role (Flame: shared/reference/flame.md; Deadline: deadline.md).

- ``workstation``: the Flame hook ``<prefix>/comfyfarm_hooks.py`` beside ``<prefix>/.lib/`` (comfyfarm) and
  ``<prefix>/.lib/python3.X/`` (the third-party packages a Flame Python lacks). ``.lib`` is a dot-folder
  because Flame scans the hook folder's subfolders for hooks and skips only dot-folders. The prefix is
  ``/opt/Autodesk/shared/python/comfyfarm`` by default (Flame's shared hook folder), and the ``comfyfarm``
  command goes into ``/usr/local/bin``.
- ``repository``: ``<repository>/custom/plugins/ComfyUI/`` (render jobs and their hand-back jobs). The
  ``custom/events/ComfyUIRelink/`` event plugin of older comfyfarms is gone: an upgrade removes the copy its
  manifest lists, and ``comfyfarm doctor`` warns about one put there by hand.
- ``worker``: ``<prefix>/lib/`` (comfyfarm, and ``lib/python3.X`` for what ComfyUI's environment lacks),
  ``<prefix>/bin/comfyfarm``, and one ``comfyfarm.pth`` in the environment's site-packages that appends them
  to its ``sys.path`` (after the environment's own packages, which always win).

Each installation keeps its manifest in ``<state>/<role>.json``: ``<prefix>/.comfyfarm/``, or
``<repository>/custom/.comfyfarm/`` for the repository.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

ROLES = ("workstation", "repository", "worker")
STATE_DIR = ".comfyfarm"

DEFAULT_AUTODESK_ROOT = Path("/opt/Autodesk")
AUTODESK_ROOT_ENV = "COMFYFARM_AUTODESK_ROOT"
HOOK_PATH_ENV = "DL_PYTHON_HOOK_PATH"
HOOK_FILE = "comfyfarm_hooks.py"
HOOK_LIB = ".lib"
DEFAULT_BIN_DIR = Path("/usr/local/bin")
COMMAND = "comfyfarm"

DEFAULT_REPOSITORY = Path("/opt/Thinkbox/DeadlineRepository10")
REPOSITORY_ENV = "COMFYFARM_DEADLINE_REPOSITORY"
PLUGIN_DIR = Path("custom") / "plugins" / "ComfyUI"
PLUGIN_FILES = ("ComfyUI.py", "ComfyUI.param", "ComfyUI.options", "ComfyUI.ico")
RETIRED_EVENT_DIR = Path("custom") / "events" / "ComfyUIRelink"  # comfyfarm 0.1.0's event plugin

DEFAULT_WORKER_PREFIX = Path("/opt/comfyfarm")
WORKER_LIB = "lib"
PTH_FILE = "comfyfarm.pth"
DEFAULT_COMFYUI_DIR = Path("/opt/ComfyUI")
MINIMUM_PYTHON = (3, 9)


@dataclass(frozen=True)
class FlamePython:
    """One Flame version's interpreter: ``<autodesk root>/python/<flame version>/bin/python3``."""

    flame_version: str
    executable: Path


def version_key(text: str) -> Tuple[int, ...]:
    """``"2025.1.pr12"`` → ``(2025, 1, 12)``: compares release strings part by part."""
    return tuple(int(part) for part in re.findall(r"\d+", text))


def autodesk_root(explicit: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(explicit or env.get(AUTODESK_ROOT_ENV) or DEFAULT_AUTODESK_ROOT).expanduser()


def workstation_prefix(root: Path) -> Path:
    """Flame's shared hook folder, in a folder of comfyfarm's own."""
    return root / "shared" / "python" / "comfyfarm"


def repository_root(explicit: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(explicit or env.get(REPOSITORY_ENV) or DEFAULT_REPOSITORY).expanduser()


def state_dir(role: str, prefix: Path) -> Path:
    if role == "repository":
        return prefix / "custom" / STATE_DIR
    return prefix / STATE_DIR


def manifest_path(role: str, prefix: Path) -> Path:
    return state_dir(role, prefix) / f"{role}.json"


def lib_dir(role: str, prefix: Path) -> Path:
    return prefix / (HOOK_LIB if role == "workstation" else WORKER_LIB)


def deps_dir(lib: Path, python_version: Sequence[int]) -> Path:
    """Third-party packages for one Python minor version (compiled modules differ between 3.9 and 3.11)."""
    return lib / f"python{python_version[0]}.{python_version[1]}"


def running_prefix(role: str) -> Optional[Path]:
    """The prefix of the installation this code runs from, when it is one of ``role`` (None otherwise)."""
    lib = Path(__file__).resolve().parents[2]  # <lib>/farm_plugin/installation/layout.py
    prefix = lib.parent
    if lib.name == (HOOK_LIB if role == "workstation" else WORKER_LIB) and manifest_path(role, prefix).is_file():
        return prefix
    return None


def flame_pythons(root: Path) -> List[FlamePython]:
    """Every Flame Python under ``<root>/python/``, oldest Flame first."""
    base = root / "python"
    found = []
    if base.is_dir():
        for folder in base.iterdir():
            executable = folder / "bin" / "python3"
            if folder.is_dir() and executable.exists() and version_key(folder.name):
                found.append(FlamePython(folder.name, executable))
    return sorted(found, key=lambda f: version_key(f.flame_version))


def flame_hook_dirs(root: Path, environ: Optional[Mapping[str, str]] = None) -> List[Path]:
    """The folders Flame loads hooks from (and their subfolders): DL_PYTHON_HOOK_PATH, the shared folder,
    each Flame version's own, and the user's ``~/flame/python``."""
    env = os.environ if environ is None else environ
    folders = [Path(p).expanduser() for p in env.get(HOOK_PATH_ENV, "").split(os.pathsep) if p.strip()]
    folders.append(root / "shared" / "python")
    if root.is_dir():
        folders.extend(sorted(p / "python" for p in root.glob("*_*") if (p / "python").is_dir()))
    folders.append(Path("~/flame/python").expanduser())
    return folders


def flame_finds(prefix: Path, root: Path, environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """The hook folder that makes Flame load ``<prefix>/comfyfarm_hooks.py``, or None."""
    resolved = prefix.resolve()
    for folder in flame_hook_dirs(root, environ):
        try:
            resolved.relative_to(folder.resolve())
        except ValueError:
            continue
        return folder
    return None
