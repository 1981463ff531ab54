"""``comfyfarm config show``: the effective configuration, where each value came from, secrets masked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from farm_plugin.errors import EXIT_OK, ComfyfarmError, exit_code
from flame_submitter.config import load_config


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("config", help="show the effective configuration")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="every setting, its value and where it came from (secrets masked)")
    show.set_defaults(run=run_show)


def run_show(args: argparse.Namespace) -> int:
    try:
        config = load_config()
    except ComfyfarmError as exc:
        print(f"comfyfarm: {exc}", file=sys.stderr)
        return exit_code(exc)
    for key, entry in config.describe().items():
        value = json.dumps(entry["value"])
        print(f"{key}: {value}    # {entry['from']}")
    return EXIT_OK
