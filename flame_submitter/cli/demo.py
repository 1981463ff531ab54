"""``comfyfarm demo``: the main job on the embedded default (local mode), end to end.

Writes a 48-frame scene-linear EXR plate (frames 1001-1048, timecode 01:00:00:00 at 24 fps), then runs
it through ``invert`` and ``blur`` with ``run-local`` on two ComfyUI instances. Where ComfyUI's Python
sees no GPU, the demo runs ComfyUI on the CPU and says so (``run-local`` would refuse).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, List

from farm_plugin.errors import EXIT_CANCELLED, EXIT_OK, ComfyfarmError, exit_code
from flame_submitter.cli import run_local as cli_run_local
from flame_submitter.cli.demo_plate import write_demo_plate
from flame_submitter.config import load_config

DEMO_WORKFLOWS = ("invert", "blur")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="generate a 48-frame EXR plate and run it through invert and blur locally",
        description=__doc__,
    )
    parser.add_argument("--dir", default="comfyfarm-demo", help="where the plate and results go")
    parser.add_argument("--instances", type=int, default=2, help="ComfyUI instances (default 2)")
    parser.add_argument("--cpu", action="store_true",
                        help="run ComfyUI on the CPU (the default where its Python sees no GPU)")
    parser.add_argument("--comfyui-dir", metavar="DIR", help="the ComfyUI folder (default: config/COMFYUI_DIR)")
    parser.add_argument("--comfyui-python", metavar="PY", help="the Python that runs ComfyUI (default: its venv)")
    parser.add_argument("--comfyui-url", action="append", default=[], metavar="URL",
                        help="attach to a running ComfyUI instead")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run_local_arguments(args: argparse.Namespace, root: Path, workflow: str, cpu: bool) -> argparse.Namespace:
    """The ``run-local`` command line of one of the demo's jobs."""
    argv: List[str] = [
        "--workflow", workflow, "--input", str(root / "plate" / "plate.####.exr"), "--frames", "1001-1048",
        "--output", str(root / workflow / f"{workflow}.####.exr"), "--chunk-size", "8",
    ]
    for url in args.comfyui_url:
        argv += ["--comfyui-url", url]
    if not args.comfyui_url:
        argv += ["--instances", str(args.instances)]
    if args.comfyui_dir:
        argv += ["--comfyui-dir", args.comfyui_dir]
    if args.comfyui_python:
        argv += ["--comfyui-python", args.comfyui_python]
    if cpu:
        argv.append("--cpu")
    if args.quiet:
        argv.append("--quiet")
    parser = argparse.ArgumentParser(prog="comfyfarm run-local")
    cli_run_local.add_job_arguments(parser)
    return parser.parse_args(argv)


def needs_cpu(args: argparse.Namespace, root: Path) -> bool:
    """Whether ComfyUI must run on the CPU here: asked of the Python that would run it."""
    if args.cpu or args.comfyui_url:
        return args.cpu
    config = load_config()
    job = run_local_arguments(args, root, DEMO_WORKFLOWS[0], cpu=False)
    servers = cli_run_local.build_servers(job, config, config.scratch / "demo", 1)
    devices = cli_run_local.probe_servers(servers)
    return devices is not None and not devices.has_gpu


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    try:
        cpu = needs_cpu(args, root)
    except ComfyfarmError as exc:
        print(f"comfyfarm demo: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("comfyfarm demo: interrupted before anything started", file=sys.stderr)
        return EXIT_CANCELLED
    if cpu and not args.cpu:
        print("comfyfarm demo: ComfyUI's Python sees no GPU: running ComfyUI on the CPU (slower; pass --cpu to "
              "say so yourself)", file=sys.stderr)
    try:
        pattern = write_demo_plate(root / "plate")
    except ComfyfarmError as exc:  # a folder it cannot write the plate into: bad input
        print(f"comfyfarm demo: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(f"comfyfarm demo: wrote 48 frames to {pattern}", file=sys.stderr)
    for workflow in DEMO_WORKFLOWS:
        code = cli_run_local.run(run_local_arguments(args, root, workflow, cpu))
        if code != EXIT_OK:
            return code
        print(f"comfyfarm demo: {workflow} → {root / workflow}", file=sys.stderr)
    return EXIT_OK
