"""The Deadline repository: the ``ComfyUI`` plugin into ``custom/plugins``.

It runs the render jobs and their hand-back jobs. The ``ComfyUIRelink`` event plugin that handed results back
before is no longer shipped: an upgrade removes the copy an older install's manifest lists (as any file that
left the bundle); a copy put there by hand is named in the notes, and left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest

from .common import InstallError, Options, RolePlan
from .files import Bundle, Source
from .product import ROOT

logger = logging.getLogger(__name__)

# Folders every Deadline 10 repository has; one is enough to tell a repository from a typo.
REPOSITORY_MARKERS = ("custom", "plugins", "events", "settings")


def repository_prefix(options: Options) -> Path:
    return layout.repository_root(options.repository or options.prefix).absolute()


def plan_repository(options: Options, version: str, previous: Optional[Manifest] = None) -> RolePlan:
    repository = repository_prefix(options)
    if not repository.is_dir():
        raise InstallError(f"no Deadline repository at {repository}: pass --repository DIR (the folder with "
                           "custom/, plugins/ and settings/), mounted on this machine")
    if not any((repository / marker).is_dir() for marker in REPOSITORY_MARKERS):
        raise InstallError(f"{repository} does not look like a Deadline repository (no custom/, plugins/, events/ "
                           "or settings/ folder): pass --repository DIR")
    bundle = Bundle()
    for name in layout.PLUGIN_FILES:
        bundle.add(repository / layout.PLUGIN_DIR / name,
                   Source(path=ROOT / "farm_plugin" / layout.PLUGIN_DIR.name / name))
    notes = [f"Deadline repository {repository}"]
    retired = repository / layout.RETIRED_EVENT_DIR
    listed = set(previous.files) if previous is not None else set()
    if retired.is_dir() and not any(str(path) in listed for path in retired.iterdir()):
        notes.append(f"{retired} (an older comfyfarm's event, not installed by this installer) is no longer used: "
                     "hand-back jobs bring results back to Flame; delete the folder")
    next_steps = [
        "Deadline Monitor > Tools > Configure Plugins > ComfyUI: set ComfyUI Directory and Python Executable "
        "(the Python where install/install.sh worker put comfyfarm): render jobs and hand-back jobs use it",
        f"check it: comfyfarm doctor --role repository --repository {repository}",
    ]
    details = {"repository": str(repository)}
    return RolePlan("repository", repository, bundle, details, notes, next_steps)
