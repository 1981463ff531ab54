"""What every role's installation is made of: comfyfarm's files, third-party packages, a command."""

from __future__ import annotations

import json
import logging
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from farm_plugin.errors import BadInput
from farm_plugin.installation.layout import PTH_FILE, deps_dir
from farm_plugin.installation.manifest import Manifest
from farm_plugin.installation.pythons import PythonInfo

from . import deps
from .files import Bundle, Source
from .product import ROOT, product_files, requirements
from .runtime import Packages, RuntimeTarget

logger = logging.getLogger(__name__)


class InstallError(BadInput):
    """The installation cannot go on: the message says why and what to do. Nothing was changed."""


@dataclass
class Options:
    """The installer's options, as the command line gives them."""

    prefix: Optional[str] = None
    dry_run: bool = False
    wheels: Optional[str] = None
    requirements: Optional[str] = None
    no_deps: bool = False
    autodesk_root: Optional[str] = None
    bin_dir: Optional[str] = None
    repository: Optional[str] = None
    python: Optional[str] = None
    venv: Optional[str] = None
    comfyui_dir: Optional[str] = None
    gpus: Optional[str] = None
    cpu: bool = False
    skip_check: bool = False
    service: bool = False


@dataclass
class RolePlan:
    """One role's installation before anything is written."""

    role: str
    prefix: Path
    bundle: Bundle
    details: Dict[str, Any]
    notes: List[str] = field(default_factory=list)  # what was found, said before the file lines
    next_steps: List[str] = field(default_factory=list)  # said after them
    prepare: Optional[Callable[[], List[str]]] = None  # runs before the files (not in a dry run)
    runtime: List[RuntimeTarget] = field(default_factory=list)  # must import comfyfarm after them (not in a dry run)
    check: Optional[Callable[[], int]] = None  # runs after that (not in a dry run); its exit status


def add_product(bundle: Bundle, lib: Path) -> None:
    """comfyfarm's packages, workflows and job templates into ``lib``."""
    bundle.add_tree(ROOT, lib, product_files())
    bundle.groups.append(lib)


def add_dependencies(bundle: Bundle, lib: Path, pythons: Sequence[PythonInfo], options: Options,
                     staging_root: Path, notes: List[str], previous: Optional[Manifest]) -> Dict[tuple, Packages]:
    """Third-party packages the ``pythons`` lack, per Python minor version, into ``lib/python3.X``; returns
    what comfyfarm answers for in each, for the check after the installation.

    What a Python lacks is decided without comfyfarm's own folders on its path (an earlier installation's
    ``.pth`` makes them importable there), so that a second run does not take comfyfarm's packages for the
    Python's and remove them."""
    by_minor: Dict[tuple, List[PythonInfo]] = {}
    for python in pythons:
        by_minor.setdefault(python.minor, []).append(python)
    if options.requirements:
        wanted = deps.read_requirements(Path(options.requirements).expanduser())
    else:
        wanted = [deps.Requirement.parse(text) for text in requirements()]
    packages: Dict[tuple, Packages] = {}
    for minor, group in sorted(by_minor.items()):
        folder = deps_dir(lib, minor)
        bundle.groups.append(folder)
        if options.no_deps:
            bundle.keep_under.append(folder)
            notes.append(f"Python {minor[0]}.{minor[1]}: third-party packages not managed (--no-deps)")
            packages[minor] = Packages(folder, (), ())
            continue
        own = [deps.own_distributions(python, [lib], PTH_FILE) for python in group]
        packages[minor] = _add_packages(bundle, folder, own, wanted, options, staging_root, notes, previous)
    return packages


def _add_packages(bundle: Bundle, folder: Path, group: Sequence[PythonInfo], wanted: Sequence[deps.Requirement],
                  options: Options, staging_root: Path, notes: List[str], previous: Optional[Manifest]) -> Packages:
    """For the Pythons of one minor version: nothing, what comfyfarm installed for them before (while it
    still satisfies the requirements and nobody changed it: a re-run changes nothing), or what pip provides."""
    minor = group[0].minor
    version = f"Python {minor[0]}.{minor[1]}"
    missing, older = deps.missing_requirements(wanted, group)
    notes.extend(older)
    if not missing:
        notes.append(f"{version}: has every package comfyfarm needs")
        return Packages(folder, tuple(wanted), ())
    listed = ", ".join(r.text for r in missing)
    before = deps.installed_before(folder, previous)
    if before is not None and all(r.satisfied_by(before.versions.get(r.name)) for r in missing):
        for path in before.files:
            bundle.add(path, Source(path=path))
        kept = ", ".join(f"{name} {number}" for name, number in sorted(before.versions.items()))
        notes.append(f"{version} lacks {listed}: kept what comfyfarm installed for it before ({kept})")
        return Packages(folder, tuple(wanted), tuple(sorted(before.versions)))
    if options.dry_run:
        bundle.keep_under.append(folder)  # pip does not run: what is there now is not reported as removed
        notes.append(f"{version} lacks {listed}: pip would install them into {folder}")
        return Packages(folder, tuple(wanted), tuple(r.name for r in missing))
    staging = Path(tempfile.mkdtemp(prefix=f"python{minor[0]}.{minor[1]}-", dir=str(staging_root)))
    wheels = Path(options.wheels).expanduser().resolve() if options.wheels else None
    deps.stage(missing, group[0], staging, wheels=wheels)
    present = set.intersection(*(set(p.distributions) for p in group))
    files, provided, dropped = deps.files_to_install(staging, present)
    for relative, staged in files.items():
        bundle.add(folder / relative, Source(path=staged))
    named = ", ".join(f"{d.name} {d.version}" for d in provided) or "nothing"
    notes.append(f"{version} lacks {listed}: pip provided {named}")
    if dropped:
        notes.append(f"{version} already has {', '.join(d.name for d in dropped)}: its own copies are used")
    return Packages(folder, tuple(wanted), tuple(d.name for d in provided))


def command_script(python: Path, lib: Path, deps_folder: Path, version: str, what: str) -> bytes:
    """The ``comfyfarm`` command: ``python`` with comfyfarm first on its path and the packages it lacks last."""
    code = (f"import sys; sys.path[0:0] = [{json.dumps(str(lib))}]; sys.path.append({json.dumps(str(deps_folder))}); "
            "from flame_submitter.cli import main; sys.exit(main())")
    return (
        "#!/bin/sh\n"
        f"# comfyfarm {version}: the comfyfarm command, installed by install/install.sh {what}.\n"
        f"exec {shlex.quote(str(python))} -c {shlex.quote(code)} \"$@\"\n"
    ).encode()
