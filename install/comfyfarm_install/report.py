"""What the installer says: one line per file, or per folder when all its files had the same fate."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from farm_plugin.installation.manifest import Manifest

from .files import (
    ADOPT,
    GONE,
    INSTALL,
    KEEP_MODIFIED,
    REMOVE,
    REMOVE_MODIFIED,
    REPLACE_FOREIGN,
    REPLACE_MODIFIED,
    RESTORE,
    UNCHANGED,
    UPGRADE,
    Plan,
    Step,
)

logger = logging.getLogger(__name__)

DONE = {ADOPT: "adopted", INSTALL: "installed", RESTORE: "restored", UPGRADE: "upgraded", REPLACE_FOREIGN: "replaced",
        REPLACE_MODIFIED: "replaced", REMOVE: "removed", REMOVE_MODIFIED: "removed", KEEP_MODIFIED: "kept",
        GONE: "gone"}
PLANNED = {ADOPT: "would adopt", INSTALL: "would install", RESTORE: "would restore", UPGRADE: "would upgrade",
           REPLACE_FOREIGN: "would replace", REPLACE_MODIFIED: "would replace", REMOVE: "would remove",
           REMOVE_MODIFIED: "would remove", KEEP_MODIFIED: "would keep", GONE: "gone"}


def _why(step: Step, manifest: Optional[Manifest], uninstall: bool) -> str:
    if step.action == REPLACE_FOREIGN:
        return f" (it was not comfyfarm's: kept in {step.backup}, put back by uninstall)"
    if step.action == REPLACE_MODIFIED:
        return f" (changed by hand since comfyfarm installed it: your copy is kept in {step.backup})"
    if step.action == RESTORE:
        return " (it was missing)"
    if step.action == GONE:
        return " (already removed by hand)"
    if step.action == KEEP_MODIFIED:
        return " (changed by hand since comfyfarm installed it: remove it yourself when you no longer need it)"
    original = manifest.files[str(step.path)].backup if manifest is not None and str(step.path) in manifest.files \
        else None
    back = " and put back the file that was there before comfyfarm" if original else ""
    if step.action == REMOVE_MODIFIED:
        return f" (no longer part of comfyfarm; changed by hand: your copy is kept in {step.backup}){back}"
    if step.action == REMOVE and not uninstall:
        return f" (no longer part of comfyfarm){back}"
    return back


def _group(path: Path, groups: Sequence[Path]) -> Optional[Path]:
    """The folder a file is reported under: ``<group>/<first part>`` of the deepest group holding it."""
    best: Optional[Tuple[int, Path]] = None
    for group in groups:
        try:
            relative = path.relative_to(group)
        except ValueError:
            continue
        if len(relative.parts) > 1 and (best is None or len(group.parts) > best[0]):
            best = (len(group.parts), group / relative.parts[0])
    return best[1] if best else None


def step_lines(steps: Sequence[Step], groups: Sequence[Path], *, dry_run: bool, manifest: Optional[Manifest] = None,
               uninstall: bool = False) -> List[str]:
    verbs = PLANNED if dry_run else DONE
    singles: List[Tuple[Path, str]] = []
    grouped: Dict[Tuple[Path, str], List[Step]] = {}
    for step in steps:
        if step.action == UNCHANGED:
            continue
        why = _why(step, manifest, uninstall)
        folder = _group(step.path, groups)
        if why or folder is None:
            singles.append((step.path, f"{verbs[step.action]:<13} {step.path}{why}"))
        else:
            grouped.setdefault((folder, step.action), []).append(step)
    for (folder, action), members in grouped.items():
        if len(members) == 1:
            singles.append((members[0].path, f"{verbs[action]:<13} {members[0].path}"))
        else:
            singles.append((folder, f"{verbs[action]:<13} {folder}/ ({len(members)} files)"))
    return [line for _, line in sorted(singles)]


def install_summary(plan: Plan, *, dry_run: bool) -> str:
    counts = {
        "new": plan.count(INSTALL), "adopted (already there, identical)": plan.count(ADOPT),
        "upgraded": plan.count(UPGRADE), "restored": plan.count(RESTORE),
        "replaced with a backup": plan.count(REPLACE_FOREIGN, REPLACE_MODIFIED),
        "removed": plan.count(REMOVE, REMOVE_MODIFIED), "unchanged": plan.count(UNCHANGED),
    }
    text = ", ".join(f"{n} {what}" for what, n in counts.items() if n or what == "unchanged")
    return f"{'would be: ' if dry_run else ''}{text} file(s)"
