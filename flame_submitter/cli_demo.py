"""``comfyfarm demo``: the main job on the embedded default (local mode), end to end.

Writes a 48-frame scene-linear EXR plate (frames 1001-1048, timecode 01:00:00:00 at 24 fps), then runs
it through ``invert`` and ``blur`` with ``run-local`` on two ComfyUI instances.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, List

from flame_submitter import cli_run_local
from flame_submitter.demo_plate import write_demo_plate

DEMO_WORKFLOWS = ("invert", "blur")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="generate a 48-frame EXR plate and run it through invert and blur locally",
        description=__doc__,
    )
    parser.add_argument("--dir", default="comfyfarm-demo", help="where the plate and results go")
    parser.add_argument("--instances", type=int, default=2, help="ComfyUI instances (default 2)")
    parser.add_argument("--comfyui-dir", metavar="DIR", help="the ComfyUI folder (default: config/COMFYUI_DIR)")
    parser.add_argument("--comfyui-url", action="append", default=[], metavar="URL",
                        help="attach to a running ComfyUI instead")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    pattern = write_demo_plate(root / "plate")
    print(f"comfyfarm demo: wrote 48 frames to {pattern}", file=sys.stderr)
    for workflow in DEMO_WORKFLOWS:
        argv: List[str] = [
            "--workflow", workflow, "--input", pattern, "--frames", "1001-1048",
            "--output", str(root / workflow / f"{workflow}.####.exr"), "--chunk-size", "8",
        ]
        for url in args.comfyui_url:
            argv += ["--comfyui-url", url]
        if not args.comfyui_url:
            argv += ["--instances", str(args.instances)]
        if args.comfyui_dir:
            argv += ["--comfyui-dir", args.comfyui_dir]
        if args.quiet:
            argv.append("--quiet")
        parser = argparse.ArgumentParser(prog="comfyfarm run-local")
        cli_run_local.add_job_arguments(parser)
        code = cli_run_local.run(parser.parse_args(argv))
        if code != 0:
            return code
        print(f"comfyfarm demo: {workflow} → {root / workflow}", file=sys.stderr)
    return 0
