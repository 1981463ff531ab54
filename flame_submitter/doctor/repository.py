"""The Deadline repository: the ComfyUI plugin present and at this version, and no ComfyUIRelink event left.

Each installed file is compared with this comfyfarm's own copy; the version a differing plugin belongs to
is read from its ``COMFYFARM_VERSION``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import List, Optional, Sequence

import farm_plugin
from farm_plugin import __version__
from farm_plugin.installation import layout
from farm_plugin.installation.manifest import file_sha256
from flame_submitter.doctor.installed import reinstall
from flame_submitter.doctor.report import Check, fail, ok, warn

logger = logging.getLogger(__name__)

SHIPPED = Path(farm_plugin.__file__).resolve().parent


def installed_version(script: Path) -> Optional[str]:
    """``COMFYFARM_VERSION`` of an installed plugin file, or None."""
    try:
        match = re.search(r'^COMFYFARM_VERSION\s*=\s*"([^"]+)"', script.read_text(encoding="utf-8"), re.MULTILINE)
    except OSError:
        return None
    return match.group(1) if match else None


def folder_check(repository: Path, folder: Path, names: Sequence[str], what: str) -> Check:
    installed = repository / folder
    fix = reinstall("repository", repository)
    missing = [name for name in names if not (installed / name).is_file()]
    if missing:
        return fail("repository", what, f"{', '.join(missing)} missing from {installed}", fix)
    differ = [name for name in names if file_sha256(installed / name) != file_sha256(SHIPPED / folder.name / name)]
    if not differ:
        return ok("repository", what, f"comfyfarm {__version__} in {installed}")
    version = installed_version(installed / names[0])
    if version != __version__:
        return fail("repository", what, f"{installed} holds comfyfarm {version or '(unknown version)'}'s; this is "
                    f"comfyfarm {__version__}", f"{fix}: the workstations, the repository and the workers must run "
                    "one version")
    return warn("repository", what, f"{', '.join(differ)} in {installed} differ from comfyfarm {__version__}'s "
                "(changed by hand?)", f"{fix} to put comfyfarm's back (your copies are kept)")


def repository_checks(repository_option: Optional[str]) -> List[Check]:
    repository = layout.repository_root(repository_option).absolute()
    if not repository.is_dir():
        return [fail("repository", "Deadline repository", f"{repository} is not there (not mounted?)",
                     f"pass --repository DIR, or set {layout.REPOSITORY_ENV}")]
    checks = [folder_check(repository, layout.PLUGIN_DIR, layout.PLUGIN_FILES, "ComfyUI plugin")]
    retired = repository / layout.RETIRED_EVENT_DIR
    if retired.exists():
        checks.append(warn("repository", "ComfyUIRelink event", f"{retired} is an older comfyfarm's: comfyfarm "
                           f"{__version__} hands results back to Flame with a hand-back job per render job, and that "
                           "event blocks whoever fires it (a Worker, the Web Service, Monitor) while it runs the "
                           "runtime's Python",
                           f"{reinstall('repository', repository)} (it removes the copy it installed), or delete "
                           "the folder"))
    return checks
