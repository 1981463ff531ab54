"""The Deadline repository: the ``ComfyUI`` plugin and the ``ComfyUIRelink`` event plugin into ``custom/``."""

from __future__ import annotations

import logging
from pathlib import Path

from farm_plugin.installation import layout

from .common import InstallError, Options, RolePlan
from .files import Bundle, Source
from .product import ROOT

logger = logging.getLogger(__name__)

# Folders every Deadline 10 repository has; one is enough to tell a repository from a typo.
REPOSITORY_MARKERS = ("custom", "plugins", "events", "settings")


def repository_prefix(options: Options) -> Path:
    return layout.repository_root(options.repository or options.prefix).absolute()


def plan_repository(options: Options, version: str) -> RolePlan:
    repository = repository_prefix(options)
    if not repository.is_dir():
        raise InstallError(f"no Deadline repository at {repository}: pass --repository DIR (the folder with "
                           "custom/, plugins/ and settings/), mounted on this machine")
    if not any((repository / marker).is_dir() for marker in REPOSITORY_MARKERS):
        raise InstallError(f"{repository} does not look like a Deadline repository (no custom/, plugins/, events/ "
                           "or settings/ folder): pass --repository DIR")
    bundle = Bundle()
    for folder, names in ((layout.PLUGIN_DIR, layout.PLUGIN_FILES), (layout.EVENT_DIR, layout.EVENT_FILES)):
        for name in names:
            bundle.add(repository / folder / name, Source(path=ROOT / "farm_plugin" / folder.name / name))
    notes = [f"Deadline repository {repository}"]
    next_steps = [
        "Deadline Monitor > Tools > Configure Plugins > ComfyUI: set ComfyUI Directory and Python Executable "
        "(the Python where install/install.sh worker put comfyfarm)",
        "Deadline Monitor > Tools > Configure Events > ComfyUIRelink: set Python Executable the same way",
        f"check it: comfyfarm doctor --role repository --repository {repository}",
    ]
    details = {"repository": str(repository)}
    return RolePlan("repository", repository, bundle, details, notes, next_steps)
