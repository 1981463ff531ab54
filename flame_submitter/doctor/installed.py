"""An installation's manifest, checked against this comfyfarm: same version, no file missing or changed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Tuple

from farm_plugin import __version__
from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest, ManifestError, read_manifest
from flame_submitter.doctor.report import Check, fail, ok, warn

logger = logging.getLogger(__name__)


def reinstall(role: str, prefix: Path) -> str:
    option = f"--repository {prefix}" if role == "repository" else f"--prefix {prefix}"
    return f"run install/install.sh {role} {option} from comfyfarm {__version__}"


def _some(paths: List[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def manifest_checks(role: str, prefix: Path) -> Tuple[List[Check], Optional[Manifest]]:
    """The installation in ``prefix``: present, at this version, whole and unchanged."""
    path = layout.manifest_path(role, prefix)
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        return [fail(role, "installation", str(exc), reinstall(role, prefix))], None
    if manifest is None:
        return [fail(role, "installation", f"no comfyfarm {role} installation in {prefix} (no {path})",
                     f"{reinstall(role, prefix)}, or pass --prefix where it is installed")], None
    if manifest.version != __version__:
        checks = [fail(role, "installation", f"comfyfarm {manifest.version} is installed in {prefix}; this is "
                       f"comfyfarm {__version__}", f"{reinstall(role, prefix)}: the workstations, the repository "
                       "and the workers must run one version")]
    else:
        checks = [ok(role, "installation", f"comfyfarm {manifest.version} in {prefix} ({len(manifest.files)} files)")]
    missing = manifest.missing()
    if missing:
        checks.append(fail(role, "installed files", f"{len(missing)} missing: {_some(missing)}",
                           reinstall(role, prefix)))
    modified = manifest.modified()
    if modified:
        checks.append(warn(role, "installed files", f"{len(modified)} changed by hand since the installation: "
                           f"{_some(modified)}", f"{reinstall(role, prefix)} to put comfyfarm's back (your copies "
                           "are kept)"))
    return checks, manifest
