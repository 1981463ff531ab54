"""What every role's installation is made of: comfyfarm's files, third-party packages, a command."""

from __future__ import annotations

import json
import logging
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from farm_plugin.installation.layout import deps_dir
from farm_plugin.installation.pythons import PythonInfo

from . import deps
from .files import Bundle, Source
from .product import ROOT, product_files, requirements

logger = logging.getLogger(__name__)


class InstallError(Exception):
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
    check: Optional[Callable[[], int]] = None  # runs after them (not in a dry run); its exit status


def add_product(bundle: Bundle, lib: Path) -> None:
    """comfyfarm's packages, workflows and job templates into ``lib``."""
    bundle.add_tree(ROOT, lib, product_files())
    bundle.groups.append(lib)


def add_dependencies(bundle: Bundle, lib: Path, pythons: Sequence[PythonInfo], options: Options,
                     staging_root: Path, notes: List[str]) -> None:
    """Third-party packages the ``pythons`` lack, per Python minor version, into ``lib/python3.X``."""
    by_minor: Dict[tuple, List[PythonInfo]] = {}
    for python in pythons:
        by_minor.setdefault(python.minor, []).append(python)
    if options.requirements:
        wanted = deps.read_requirements(Path(options.requirements).expanduser())
    else:
        wanted = [deps.Requirement.parse(text) for text in requirements()]
    for minor, group in sorted(by_minor.items()):
        folder = deps_dir(lib, minor)
        bundle.groups.append(folder)
        if options.no_deps:
            bundle.keep_under.append(folder)
            notes.append(f"Python {minor[0]}.{minor[1]}: third-party packages not managed (--no-deps)")
            continue
        missing, older = deps.missing_requirements(wanted, group)
        notes.extend(older)
        if not missing:
            notes.append(f"Python {minor[0]}.{minor[1]}: has every package comfyfarm needs")
            continue
        listed = ", ".join(r.text for r in missing)
        if options.dry_run:
            notes.append(f"Python {minor[0]}.{minor[1]} lacks {listed}: pip would install them into {folder}")
            continue
        staging = Path(tempfile.mkdtemp(prefix=f"python{minor[0]}.{minor[1]}-", dir=str(staging_root)))
        wheels = Path(options.wheels).expanduser().resolve() if options.wheels else None
        deps.stage(missing, group[0], staging, wheels=wheels)
        present = set.intersection(*(set(p.distributions) for p in group))
        files, kept, dropped = deps.files_to_install(staging, present)
        for relative, staged in files.items():
            bundle.add(folder / relative, Source(path=staged))
        provided = ", ".join(f"{d.name} {d.version}" for d in kept) or "nothing"
        notes.append(f"Python {minor[0]}.{minor[1]} lacks {listed}: pip provided {provided}")
        if dropped:
            notes.append(f"Python {minor[0]}.{minor[1]} already has {', '.join(d.name for d in dropped)}: "
                         "its own copies are used")


def command_script(python: Path, lib: Path, deps_folder: Path, version: str, what: str) -> bytes:
    """The ``comfyfarm`` command: ``python`` with comfyfarm first on its path and the packages it lacks last."""
    code = (f"import sys; sys.path[0:0] = [{json.dumps(str(lib))}]; sys.path.append({json.dumps(str(deps_folder))}); "
            "from flame_submitter.cli import main; sys.exit(main())")
    return (
        "#!/bin/sh\n"
        f"# comfyfarm {version}: the comfyfarm command, installed by install/install.sh {what}.\n"
        f"exec {shlex.quote(str(python))} -c {shlex.quote(code)} \"$@\"\n"
    ).encode()
