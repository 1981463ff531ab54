"""``python -m farm_plugin.service``: the Worker's ComfyUI service and the check before each task.

    python -m farm_plugin.service serve --comfyui-dir DIR --gpus 0,1 [--base-port 8288] [--python PY]
        [--max-rss-gb N] [--max-prompts N] [--min-free-vram-gb N] [--free-after-job] [--extra-args "..."]
    python -m farm_plugin.service prepare --gpu 0 [--job ID] [--vram-gb N] [--wait-s 120]
    python -m farm_plugin.service status

``serve`` runs until SIGTERM or Ctrl-C (a systemd unit, ``install.sh worker --service``). ``prepare`` prints
the URL of the ComfyUI to use as its last line (``URL http://127.0.0.1:8288``) and exits 0; it exits 4 where
no service answers for the GPU (the caller starts its own ComfyUI), 1 where the ComfyUI cannot take the task
(the message says why), 2 on bad arguments. Every decision is a log line on stderr. ``--state-dir`` (all
three) defaults to ``COMFYFARM_SERVICE_DIR`` or the user's state folder (``state.default_state_dir``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.comfyui.server import default_python
from farm_plugin.errors import EXIT_BAD_INPUT as EXIT_BAD_ARGUMENTS
from farm_plugin.errors import EXIT_FAILED, EXIT_NO_SERVICE, EXIT_OK, ComfyfarmError

from .prepare import inspect, prepare
from .state import Limits, ServiceUnavailable, WorkerServiceError, default_state_dir, service_gpus
from .supervisor import ComfyUIService, ServiceConfig, gpus_torch_sees, parse_gpus

logger = logging.getLogger(__name__)



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m farm_plugin.service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, help="where the service writes its state (default: "
                        "COMFYFARM_SERVICE_DIR, else the user's state folder)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one ComfyUI per GPU until stopped")
    serve.add_argument("--comfyui-dir", type=Path, required=True, help="the ComfyUI folder")
    serve.add_argument("--gpus", required=True,
                       help="GPU indices (0,1) as nvidia-smi numbers them, cpu, or auto: every GPU torch sees")
    serve.add_argument("--base-port", type=int, default=8288, help="the first GPU's ComfyUI port (default 8288)")
    serve.add_argument("--python", help="the Python that runs ComfyUI (default: its venv)")
    serve.add_argument("--extra-args", default="", help="more ComfyUI arguments, as one string")
    serve.add_argument("--startup-timeout-s", type=float, default=300.0)
    serve.add_argument("--max-rss-gb", type=float, default=0.0,
                       help="restart a ComfyUI that holds more resident memory (0: no limit)")
    serve.add_argument("--max-prompts", type=int, default=0,
                       help="restart a ComfyUI after this many prompts (0: never)")
    serve.add_argument("--min-free-vram-gb", type=float, default=0.0,
                       help="free the models when less GPU memory is free before a task (0: never)")
    serve.add_argument("--free-after-job", action="store_true", help="free the models when another job's task comes")
    ready = commands.add_parser("prepare", help="check and tidy a GPU's ComfyUI before a task; print its URL")
    ready.add_argument("--gpu", required=True, help="the task's GPU index, or cpu")
    ready.add_argument("--job", default="", help="the task's job id (free_after_job)")
    ready.add_argument("--vram-gb", type=float, help="the GPU memory the workflow needs, free")
    ready.add_argument("--wait-s", type=float, default=120.0,
                       help="how long to wait for a ComfyUI the service is restarting (default 120)")
    commands.add_parser("status", help="print what the service runs, as JSON")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_ARGUMENTS if exc.code else EXIT_OK
    state_dir = args.state_dir or default_state_dir()
    try:
        if args.command == "serve":
            return _serve(args, state_dir)
        if args.command == "prepare":
            prepared = prepare(args.gpu, state_dir=state_dir, job=args.job, vram_gb=args.vram_gb, wait_s=args.wait_s)
            print(f"URL {prepared.url}", flush=True)
            return EXIT_OK
        print(json.dumps(_status(state_dir), indent=2))
        return EXIT_OK
    except ServiceUnavailable as exc:
        print(f"comfyfarm service: {exc}", file=sys.stderr)
        return EXIT_NO_SERVICE
    except (ComfyfarmError, ComfyUIError) as exc:
        print(f"comfyfarm service: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS if isinstance(exc, WorkerServiceError) and args.command == "serve" else EXIT_FAILED


def _serve(args: argparse.Namespace, state_dir: Path) -> int:
    if not (args.comfyui_dir / "main.py").is_file():
        raise WorkerServiceError(f"--comfyui-dir {args.comfyui_dir} is not a ComfyUI folder (no main.py): give "
                                 "the folder ComfyUI was cloned into")
    python = (str(Path(args.python).absolute()) if args.python and ("/" in args.python or "\\" in args.python)
              else args.python)
    gpus = (gpus_torch_sees(python or default_python(args.comfyui_dir), args.comfyui_dir) if args.gpus == "auto"
            else parse_gpus(args.gpus))
    service = ComfyUIService(ServiceConfig(
        comfyui_dir=args.comfyui_dir, gpus=gpus, state_dir=state_dir, base_port=args.base_port,
        python=python, extra_args=tuple(shlex.split(args.extra_args)), startup_timeout_s=args.startup_timeout_s,
        limits=Limits(max_rss_gb=args.max_rss_gb, max_prompts=args.max_prompts,
                      min_free_vram_gb=args.min_free_vram_gb, free_after_job=args.free_after_job)))

    def stop(_signum: int, _frame: object) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    service.start()
    logger.info("serving ComfyUI on GPU(s) %s; control at %s; state in %s", ", ".join(service.servers),
                service.control_url, state_dir)
    try:
        service.wait()
    except KeyboardInterrupt:
        service.stop()
    return EXIT_OK


def _status(state_dir: Path) -> List[dict]:
    """Each GPU's ComfyUI as ``prepare.inspect`` sees it, or why it does not answer."""
    found: List[dict] = []
    for gpu in service_gpus(state_dir):
        try:
            found.append(inspect(gpu, state_dir=state_dir))
        except ServiceUnavailable as exc:
            found.append({"gpu": gpu, "error": str(exc)})
    return found


if __name__ == "__main__":
    sys.exit(main())
