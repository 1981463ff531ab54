"""``comfyfarm validate PATH... [--object-info FILE|DIR | --comfyui-url URL] [--allow-nodes FILE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, List, Optional

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.errors import EXIT_FAILED, EXIT_OK, ComfyfarmError, UsageError, exit_code
from farm_plugin.workflow.object_info import NodeDefinitions, definitions_from_answer, load_definitions
from farm_plugin.workflow.package import WorkflowPackageError, load_package
from farm_plugin.workflow.validate import Problem, validate_package


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "validate",
        help="check workflow packages against themselves and ComfyUI's node definitions",
        description="Check workflow packages. Prints one line per problem; exits 1 if there is any.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a package folder (or its workflow.yaml)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--object-info", action="append", metavar="FILE|DIR",
        help="saved /object_info answers (a folder: every .json in it, merged); may repeat",
    )
    source.add_argument("--comfyui-url", metavar="URL", help="read node definitions from a running ComfyUI")
    parser.add_argument("--allow-nodes", metavar="FILE", help="a file of allowed node classes, one per line")
    parser.add_argument(
        "--check-models", action=argparse.BooleanOptionalAction, default=None,
        help="report model files missing from the node definitions (default: only with --comfyui-url)",
    )
    parser.set_defaults(run=run)


def read_allow_list(path: str) -> List[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise UsageError(f"--allow-nodes {path}: cannot read it ({reason}): give a text file of node classes, "
                         "one per line") from exc
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _definitions(args: argparse.Namespace) -> Optional[NodeDefinitions]:
    """The node definitions of ``--object-info`` or ``--comfyui-url``; one that cannot be read is a usage error."""
    try:
        if args.object_info:
            return load_definitions(args.object_info)
        if args.comfyui_url:
            answer = ComfyUIClient(args.comfyui_url).object_info()
            return definitions_from_answer(answer, source=args.comfyui_url, live=True)
    except (ComfyUIError, OSError) as exc:  # not reachable, or not a ComfyUI: the option names the wrong one
        raise UsageError(str(exc)) from exc
    return None


def run(args: argparse.Namespace) -> int:
    try:
        definitions = _definitions(args)
        allowed = read_allow_list(args.allow_nodes) if args.allow_nodes else None
    except ComfyfarmError as exc:
        print(f"comfyfarm validate: {exc}", file=sys.stderr)
        return exit_code(exc)
    problems: List[str] = []
    checked = 0
    for path in args.paths:
        try:
            package = load_package(path)
        except WorkflowPackageError as exc:
            problems.append(f"{path}: {exc} [unreadable_package]")
            continue
        checked += 1
        found: List[Problem] = validate_package(
            package, definitions, allowed_nodes=allowed, check_models=args.check_models
        )
        problems.extend(str(problem) for problem in found)
    for line in problems:
        print(line)
    against = f" against {definitions.source}" if definitions else ""
    summary = f"{checked} package(s) checked{against}: {len(problems)} problem(s)"
    print(summary, file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK
