"""``comfyfarm workflows``, and the workflow check of ``comfyfarm doctor``: what a ComfyUI lacks to run each.

    comfyfarm workflows [--dir DIR]... [--json]
    comfyfarm doctor (--comfyui-url URL | --object-info FILE|DIR...) [--dir DIR]... [NAME|PATH ...]

Packages are looked up in ``--dir`` folders, then the configuration's ``workflows_dirs``, then the bundled
``workflows/`` folder; a name found twice is taken from the first folder. The workflow check reads the node
definitions of one ComfyUI (its ``/object_info``, live or saved) and says, for each package, OK or which
node classes are missing (and which pack provides them) and which model files are missing from its combo
lists (and which folder they go in). It exits 1 if any package cannot run there, 2 on a usage error.
``comfyfarm doctor`` itself (its options, and its checks of an installation) is ``cli/doctor.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.errors import EXIT_FAILED, EXIT_OK, ComfyfarmError, UsageError, exit_code
from farm_plugin.workflow.object_info import (
    NodeDefinitions,
    ObjectInfoError,
    definitions_from_answer,
    load_definitions,
)
from farm_plugin.workflow.package import (
    WorkflowPackage,
    WorkflowPackageError,
    bundled_workflows_dir,
    find_package,
    list_packages,
    load_package,
)
from farm_plugin.workflow.requirements import (
    MODEL_MISSING,
    MODEL_NOT_LISTED,
    MODEL_UNCHECKED,
    MissingNode,
    PackageCheck,
    check_package,
    model_location,
    requirement_summary,
)
from flame_submitter.config import ConfigError, load_config
from flame_submitter.doctor.report import Check, fail, ok

logger = logging.getLogger(__name__)


def add_parsers(commands: Any) -> None:
    listing = commands.add_parser(
        "workflows",
        help="list the workflow packages and what each needs on a worker",
        description="List the workflow packages: name, title, category, mode, node packs and model files.",
    )
    add_dir_option(listing)
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(run=run_workflows)


def add_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", action="append", default=[], metavar="DIR",
                        help="a folder of workflow packages, searched first; may repeat")


# -- finding packages -------------------------------------------------------------------------------

def search_dirs(extra_dirs: Sequence[str]) -> List[Path]:
    """``--dir`` folders, the configuration's ``workflows_dirs``, then the bundled folder."""
    try:
        config = load_config()
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    folders = [Path(d).expanduser() for d in list(extra_dirs) + list(config.workflows_dirs)]
    for folder in folders[:len(extra_dirs)]:
        if not folder.is_dir():
            raise UsageError(f"--dir {folder}: no such folder")
    return folders + [bundled_workflows_dir()]


def discover_packages(folders: Sequence[Path]) -> List[Path]:
    """Package folders in ``folders``, one per name (the first folder wins), sorted by name."""
    found: Dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            logger.debug("workflow folder %s does not exist: skipped", folder)
            continue
        for path in list_packages(folder):
            found.setdefault(path.name, path)
    return [found[name] for name in sorted(found)]


def load_all(paths: Sequence[Path]) -> Tuple[List[WorkflowPackage], List[str]]:
    packages: List[WorkflowPackage] = []
    errors: List[str] = []
    for path in paths:
        try:
            packages.append(load_package(path))
        except WorkflowPackageError as exc:
            errors.append(f"{path.name}: cannot read the package: {exc}")
    return packages, errors


# -- comfyfarm workflows ----------------------------------------------------------------------------

def describe_mode(package: WorkflowPackage) -> str:
    """``per_frame``, or ``sequence`` with its window, handles and ratio, in words."""
    sequence = package.sequence
    if package.mode != "sequence" or sequence is None:
        return package.mode
    text = f"sequence ({sequence.context_frames}-frame windows, {sequence.overlap_frames} handle frames"
    if sequence.ratio != 1:
        text += f", {sequence.ratio:g}x frames"
    return text + ")"


def format_listing(package: WorkflowPackage) -> List[str]:
    """The lines ``comfyfarm workflows`` prints for one package."""
    packs = ", ".join(package.requirements.packs) or "none (core ComfyUI)"
    lines = [
        f"{package.name}: {package.title}",
        f"  category: {package.category}    mode: {describe_mode(package)}    template: {package.template}",
        f"  packs: {packs}",
    ]
    if not package.requirements.models:
        lines.append("  models: none")
    else:
        lines.append("  models:")
        lines.extend(f"    {model.name} ({model_location(model.folder)})" for model in package.requirements.models)
    return lines


def listing_record(package: WorkflowPackage) -> Dict[str, Any]:
    """One package as plain data, for ``--json``."""
    sequence = None
    if package.sequence is not None:
        sequence = dataclasses.asdict(package.sequence)
    return {
        "name": package.name,
        "title": package.title,
        "category": package.category,
        "mode": package.mode,
        "sequence": sequence,
        "template": package.template,
        "path": str(package.path),
        "parameters": [parameter.key for parameter in package.parameters],
        **requirement_summary(package),
    }


def run_workflows(args: argparse.Namespace) -> int:
    try:
        paths = discover_packages(search_dirs(args.dir))
    except ComfyfarmError as exc:  # a bad --dir or configuration
        print(f"comfyfarm workflows: {exc}", file=sys.stderr)
        return exit_code(exc)
    packages, errors = load_all(paths)
    if args.json:
        print(json.dumps([listing_record(package) for package in packages], indent=2))
    else:
        for index, package in enumerate(packages):
            if index:
                print()
            print("\n".join(format_listing(package)))
    for error in errors:
        print(error, file=sys.stderr)
    print(f"{len(packages)} workflow package(s)", file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


# -- comfyfarm doctor -------------------------------------------------------------------------------

def read_definitions(args: argparse.Namespace) -> NodeDefinitions:
    """The checked ComfyUI's node definitions: asked from the server, or read from saved answers.

    Saved answers stand for that ComfyUI, so their combo lists are taken as its installed model files.
    """
    try:
        if args.comfyui_url:
            answer = ComfyUIClient(args.comfyui_url).object_info()
            return definitions_from_answer(answer, source=f"ComfyUI at {args.comfyui_url}", live=True)
        return dataclasses.replace(load_definitions(args.object_info), live=True)
    except (ComfyUIError, ObjectInfoError) as exc:
        raise UsageError(str(exc)) from exc


def chosen_packages(args: argparse.Namespace, folders: Sequence[Path]) -> List[Path]:
    if not args.packages:
        return discover_packages(folders)
    try:
        return [find_package(item, list(folders[:-1])) for item in args.packages]
    except WorkflowPackageError as exc:
        raise UsageError(str(exc)) from exc


def _missing_node_lines(check: PackageCheck) -> List[str]:
    lines: List[str] = []
    for pack, classes in check.missing_by_pack().items():
        if pack:
            lines.append(f"  missing nodes from {pack}: {', '.join(classes)}")
            lines.append(f"    -> {MissingNode(classes[0], pack).hint}")
            continue
        by_hint: Dict[str, List[str]] = {}
        for class_type in classes:
            by_hint.setdefault(MissingNode(class_type, None).hint, []).append(class_type)
        for hint, hinted in by_hint.items():
            lines.append(f"  missing core nodes: {', '.join(hinted)}")
            lines.append(f"    -> {hint}")
    return lines


def format_check(check: PackageCheck) -> List[str]:
    """The lines ``comfyfarm doctor`` prints for one package."""
    lines = [f"{check.package}: {'OK' if check.ok else 'CANNOT RUN'}"]
    lines.extend(_missing_node_lines(check))
    order = (MODEL_MISSING, MODEL_UNCHECKED, MODEL_NOT_LISTED)
    for model in sorted(check.models, key=lambda m: order.index(m.state) if m.state in order else len(order)):
        if model.state == MODEL_MISSING and model.use is not None:
            lines.append(f"  missing model: {model.name} (node {model.use.node} {model.use.class_type}, "
                         f"input '{model.use.input}') -> put it in {model.location}")
        elif model.state == MODEL_UNCHECKED:
            lines.append(f"  model not checked (its node is missing): {model.name} -> {model.location}")
        elif model.state == MODEL_NOT_LISTED:
            lines.append(f"  note: {model.name} is loaded by its pack from {model.location} (ComfyUI does not "
                         "list it; the pack downloads it on first use if it can)")
    return lines


def run_doctor(args: argparse.Namespace) -> int:
    try:
        folders = search_dirs(args.dir)
        paths = chosen_packages(args, folders)
        definitions = read_definitions(args)
    except ComfyfarmError as exc:  # a bad --dir, package name or ComfyUI (UsageError)
        print(f"comfyfarm doctor: {exc}", file=sys.stderr)
        return exit_code(exc)
    packages, errors = load_all(paths)
    checks = [check_package(package, definitions) for package in packages]
    for check in checks:
        print("\n".join(format_check(check)))
    for error in errors:
        print(error)
    blocked = sum(1 for check in checks if not check.ok) + len(errors)
    print(f"{len(paths)} package(s) checked against {definitions.source} ({len(definitions)} node classes): "
          f"{len(paths) - blocked} OK, {blocked} cannot run", file=sys.stderr)
    return EXIT_FAILED if blocked else EXIT_OK


def workflow_checks(args: argparse.Namespace, definitions: NodeDefinitions) -> List[Check]:
    """The workflows' requirements as ``comfyfarm doctor`` checks, one line per package, against ``definitions``.
    ``args.dir`` and ``args.packages`` choose the packages (default: every one found)."""
    try:
        paths = chosen_packages(args, search_dirs(args.dir))
    except UsageError as exc:
        return [fail("workflows", "workflow packages", str(exc), "pass --dir or a package name that exists")]
    packages, errors = load_all(paths)
    checks: List[Check] = []
    for package in packages:
        check = check_package(package, definitions)
        details = "; ".join(line.strip() for line in format_check(check)[1:])
        if check.ok:
            checks.append(ok("workflows", package.name, f"runs on {definitions.source}" + (f"; {details}" if details
                                                                                            else "")))
        else:
            checks.append(fail("workflows", package.name, f"cannot run on {definitions.source}: {details}"))
    checks.extend(fail("workflows", "workflow package", error, "fix or remove the package") for error in errors)
    return checks
