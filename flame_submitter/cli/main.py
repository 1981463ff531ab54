"""The ``comfyfarm`` command line.

Exit status, for every command (:func:`farm_plugin.errors.exit_code` maps an error's category to it): 0 done,
1 it failed (the farm, a service, ComfyUI, a frame; or a check found problems), 2 bad input (nothing was
started), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from farm_plugin import __version__
from farm_plugin.errors import EXIT_BAD_INPUT, EXIT_OK, ComfyfarmError, exit_code

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command (importing them: comfyfarm's requirements must be installed)."""
    from flame_submitter.cli import config as cli_config
    from flame_submitter.cli import demo as cli_demo
    from flame_submitter.cli import doctor as cli_doctor
    from flame_submitter.cli import farm as cli_farm
    from flame_submitter.cli import preview as cli_preview
    from flame_submitter.cli import run_local as cli_run_local
    from flame_submitter.cli import validate as cli_validate
    from flame_submitter.cli import workflows as cli_workflows

    parser = argparse.ArgumentParser(
        prog="comfyfarm",
        description="Run ComfyUI workflows on a Deadline render farm from Flame, or on local GPUs.",
    )
    parser.add_argument("--version", action="version", version=f"comfyfarm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_validate.add_parser(commands)
    cli_run_local.add_parser(commands)
    cli_preview.add_parser(commands)
    cli_demo.add_parser(commands)
    cli_farm.add_parsers(commands)
    cli_config.add_parser(commands)
    cli_workflows.add_parsers(commands)
    cli_doctor.add_parser(commands)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("urllib3", "websocket"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = list(argv) if argv is not None else sys.argv[1:]
    if arguments == ["--version"]:  # answers even where comfyfarm's requirements are missing
        print(f"comfyfarm {__version__}")
        return EXIT_OK
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:
        print(f"comfyfarm {__version__}: this Python ({sys.executable}) lacks the package '{exc.name}' that comfyfarm "
              "needs: install comfyfarm's requirements into it (bash install/install.sh workstation or worker, "
              "without --no-deps)", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = parser.parse_args(arguments)
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    configure_logging(args.verbose)
    try:
        return int(args.run(args))
    except ComfyfarmError as exc:  # one a command did not catch: still one line, and its category's exit status
        print(f"comfyfarm {args.command}: {exc}", file=sys.stderr)
        return exit_code(exc)
