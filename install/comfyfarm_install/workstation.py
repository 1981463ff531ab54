"""The Flame workstation: the hook, comfyfarm and the packages each Flame Python lacks, and the command.

Layout (farm_plugin/installation/layout.py): ``<prefix>/comfyfarm_hooks.py``, ``<prefix>/.lib/``,
``<prefix>/.lib/python3.X/`` for each Python minor version among the Flame versions present, and
``<bin dir>/comfyfarm``, which runs with the newest Flame's Python. Afterwards each Flame Python loads the
hook and imports what the menu actions and the command import (runtime.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest
from farm_plugin.installation.pythons import PythonInfo, PythonProbeError, probe

from .common import InstallError, Options, RolePlan, add_dependencies, add_product, command_script
from .files import Bundle, Source
from .product import ROOT
from .runtime import RuntimeTarget

logger = logging.getLogger(__name__)

HOOK_SOURCE = Path("flame_submitter") / "hooks" / layout.HOOK_FILE
# What Flame's Python imports through the hook (the menu actions), and the comfyfarm command.
RUNTIME_MODULES = ("flame_submitter.flame.app", "flame_submitter.flame.submit", "flame_submitter.flame.media",
                   "flame_submitter.flame.relink", "flame_submitter.deadline.submit", "flame_submitter.deadline.client",
                   "flame_submitter.cli")


def workstation_prefix(options: Options) -> Path:
    root = layout.autodesk_root(options.autodesk_root)
    return Path(options.prefix).expanduser().absolute() if options.prefix else layout.workstation_prefix(root)


def flame_pythons(root: Path, notes: List[str]) -> List[tuple]:
    """``(FlamePython, PythonInfo)`` for every Flame whose Python comfyfarm supports."""
    found = []
    for flame in layout.flame_pythons(root):
        try:
            info = probe(flame.executable)
        except PythonProbeError as exc:
            notes.append(f"Flame {flame.flame_version}: skipped: {exc}")
            continue
        if info.version[:2] < layout.MINIMUM_PYTHON:
            notes.append(f"Flame {flame.flame_version}: skipped: its Python {info.version_text} is older than "
                         "comfyfarm supports (Flame 2023 and later)")
            continue
        qt = info.qt or "no Qt binding found"
        notes.append(f"Flame {flame.flame_version}: Python {info.version_text} ({flame.executable}), {qt}")
        found.append((flame, info))
    return found


def plan_workstation(options: Options, version: str, staging: Path, previous: Optional[Manifest]) -> RolePlan:
    root = layout.autodesk_root(options.autodesk_root)
    prefix = workstation_prefix(options)
    notes: List[str] = []
    flames = flame_pythons(root, notes)
    if not flames:
        raise InstallError(f"no Flame Python found under {root / 'python'} (<version>/bin/python3) for Flame 2023 or "
                           "later: install Flame first, or pass --autodesk-root DIR where it is installed")
    lib = prefix / layout.HOOK_LIB
    bundle = Bundle()
    bundle.add(prefix / layout.HOOK_FILE, Source(path=ROOT / HOOK_SOURCE))
    add_product(bundle, lib)
    pythons: List[PythonInfo] = [info for _, info in flames]
    packages = add_dependencies(bundle, lib, pythons, options, staging, notes, previous)
    newest_flame, newest = flames[-1]
    bin_dir = Path(options.bin_dir).expanduser().absolute() if options.bin_dir else layout.DEFAULT_BIN_DIR
    command = bin_dir / layout.COMMAND
    bundle.add(command, Source(data=command_script(newest.executable, lib, layout.deps_dir(lib, newest.minor),
                                                   version, "workstation"), executable=True))
    hook_dir = layout.flame_finds(prefix, root)
    next_steps = [f"check it: {command} doctor --role workstation"]
    if hook_dir is None:
        next_steps.insert(0, f"Flame does not look for hooks in {prefix}: add {prefix.parent} to "
                             f"{layout.HOOK_PATH_ENV} for Flame, or install under {root / 'shared' / 'python'}")
    else:
        next_steps.insert(0, "restart Flame (or Rescan Python Hooks) to load the ComfyUI Farm menu")
    details = {
        "prefix": str(prefix),
        "autodesk_root": str(root),
        "flames": [{"flame": flame.flame_version, "python": str(flame.executable), "version": info.version_text,
                    "qt": info.qt, "packages": str(layout.deps_dir(lib, info.minor))} for flame, info in flames],
        "command": str(command),
        "command_python": str(newest_flame.executable),
    }
    runtime = [RuntimeTarget(f"Flame {flame.flame_version}'s Python", flame.executable, lib, RUNTIME_MODULES,
                             packages[info.minor], hook=prefix / layout.HOOK_FILE) for flame, info in flames]
    return RolePlan("workstation", prefix, bundle, details, notes, next_steps, runtime=runtime)
