"""Entry point of the ComfyUI test double: ``python -m tests.doubles.comfyui [ComfyUI's arguments]``.

It accepts the command line of ComfyUI 0.3.64's main.py (comfy/cli_args.py): the same options, the same
defaults, the same mutually exclusive groups, and an argparse error (exit status 2) for anything else.
Options that only matter to a real GPU/torch stack are accepted and ignored.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
from typing import List, Optional

from . import COMFYUI_VERSION, FAULTS_ENV, FRONTEND_VERSION, PYTORCH_VERSION

log = logging.getLogger("comfyui")


def _valid_directory(path: str) -> str:
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError(f"The path '{path}' does not exist.")
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"'{path}' is not a directory.")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"You do not have read permissions for '{path}'.")
    return path


def _flags(parser_or_group, *names: str) -> None:
    for name in names:
        parser_or_group.add_argument(name, action="store_true")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py")
    p.add_argument("--listen", type=str, default="127.0.0.1", metavar="IP", nargs="?", const="0.0.0.0,::")
    p.add_argument("--port", type=int, default=8188)
    p.add_argument("--tls-keyfile", type=str)
    p.add_argument("--tls-certfile", type=str)
    p.add_argument("--enable-cors-header", type=str, default=None, metavar="ORIGIN", nargs="?", const="*")
    p.add_argument("--max-upload-size", type=float, default=100)
    p.add_argument("--base-directory", type=str, default=None)
    p.add_argument("--extra-model-paths-config", type=str, default=None, metavar="PATH", nargs="+", action="append")
    p.add_argument("--output-directory", type=str, default=None)
    p.add_argument("--temp-directory", type=str, default=None)
    p.add_argument("--input-directory", type=str, default=None)
    _flags(p, "--auto-launch", "--disable-auto-launch")
    p.add_argument("--cuda-device", type=int, default=None, metavar="DEVICE_ID")
    p.add_argument("--default-device", type=int, default=None, metavar="DEFAULT_DEVICE_ID")
    _flags(p.add_mutually_exclusive_group(), "--cuda-malloc", "--disable-cuda-malloc")
    _flags(p.add_mutually_exclusive_group(), "--force-fp32", "--force-fp16")
    _flags(p.add_mutually_exclusive_group(), "--fp32-unet", "--fp64-unet", "--bf16-unet", "--fp16-unet",
           "--fp8_e4m3fn-unet", "--fp8_e5m2-unet", "--fp8_e8m0fnu-unet")
    _flags(p.add_mutually_exclusive_group(), "--fp16-vae", "--fp32-vae", "--bf16-vae")
    _flags(p, "--cpu-vae")
    _flags(p.add_mutually_exclusive_group(), "--fp8_e4m3fn-text-enc", "--fp8_e5m2-text-enc", "--fp16-text-enc",
           "--fp32-text-enc", "--bf16-text-enc")
    _flags(p, "--force-channels-last")
    p.add_argument("--directml", type=int, nargs="?", metavar="DIRECTML_DEVICE", const=-1)
    p.add_argument("--oneapi-device-selector", type=str, default=None, metavar="SELECTOR_STRING")
    _flags(p, "--disable-ipex-optimize", "--supports-fp8-compute")
    p.add_argument("--preview-method", type=str, default="none", choices=["none", "auto", "latent2rgb", "taesd"])
    p.add_argument("--preview-size", type=int, default=512)
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache-classic", action="store_true")
    cache.add_argument("--cache-lru", type=int, default=0)
    cache.add_argument("--cache-none", action="store_true")
    _flags(p.add_mutually_exclusive_group(), "--use-split-cross-attention", "--use-quad-cross-attention",
           "--use-pytorch-cross-attention", "--use-sage-attention", "--use-flash-attention")
    _flags(p, "--disable-xformers")
    _flags(p.add_mutually_exclusive_group(), "--force-upcast-attention", "--dont-upcast-attention")
    _flags(p.add_mutually_exclusive_group(), "--gpu-only", "--highvram", "--normalvram", "--lowvram", "--novram",
           "--cpu")
    p.add_argument("--reserve-vram", type=float, default=None)
    _flags(p, "--async-offload", "--force-non-blocking")
    p.add_argument("--default-hashing-function", type=str, choices=["md5", "sha1", "sha256", "sha512"],
                   default="sha256")
    _flags(p, "--disable-smart-memory", "--deterministic")
    p.add_argument("--fast", nargs="*", type=str,
                   choices=["fp16_accumulation", "fp8_matrix_mult", "cublas_ops", "autotune"])
    _flags(p, "--mmap-torch-files", "--disable-mmap", "--dont-print-server", "--quick-test-for-ci",
           "--windows-standalone-build", "--disable-metadata", "--disable-all-custom-nodes")
    p.add_argument("--whitelist-custom-nodes", type=str, nargs="+", default=[])
    _flags(p, "--disable-api-nodes", "--multi-user")
    p.add_argument("--verbose", default="INFO", const="DEBUG", nargs="?",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    _flags(p, "--log-stdout")
    p.add_argument("--front-end-version", type=str, default="comfyanonymous/ComfyUI@latest")
    p.add_argument("--front-end-root", type=_valid_directory, default=None)
    p.add_argument("--user-directory", type=_valid_directory, default=None)
    _flags(p, "--enable-compress-response-body")
    p.add_argument("--comfy-api-base", type=str, default="https://api.comfy.org")
    p.add_argument("--database-url", type=str, default="sqlite:///user/comfyui.db")
    return p


def _setup_logging(level: str, use_stdout: bool) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stream_handler = logging.StreamHandler(sys.stderr)
    stream_handler.setFormatter(logging.Formatter("%(message)s"))
    if use_stdout:
        stream_handler.addFilter(lambda record: record.levelno >= logging.ERROR)
        stdout_handler = logging.StreamHandler(sys.stdout)
        stdout_handler.setFormatter(logging.Formatter("%(message)s"))
        stdout_handler.addFilter(lambda record: record.levelno < logging.ERROR)
        root.addHandler(stdout_handler)
    root.addHandler(stream_handler)


def _refuse(text: str) -> int:
    sys.stderr.write(
        "Traceback (most recent call last):\n"
        '  File "main.py", line 346, in <module>\n'
        "    event_loop, _, start_all_func = start_comfyui()\n"
        '  File "main.py", line 293, in start_comfyui\n'
        "    prompt_server = server.PromptServer(asyncio_loop)\n"
        f"{text}\n")
    sys.stderr.flush()
    return 1


def _no_gpu() -> int:
    """What ComfyUI 0.3.64 prints when torch has no CUDA (a CPU build of torch) and --cpu is not given:
    comfy/model_management.py computes ``total_vram`` at import, on ``torch.cuda.current_device()``."""
    sys.stderr.write(
        "Traceback (most recent call last):\n"
        '  File "main.py", line 149, in <module>\n'
        "    import execution\n"
        '  File "comfy/model_management.py", line 237, in <module>\n'
        "    total_vram = get_total_memory(get_torch_device()) / (1024 * 1024)\n"
        '  File "comfy/model_management.py", line 187, in get_torch_device\n'
        "    return torch.device(torch.cuda.current_device())\n"
        '  File "torch/cuda/__init__.py", line 403, in _lazy_init\n'
        '    raise AssertionError("Torch not compiled with CUDA enabled")\n'
        "AssertionError: Torch not compiled with CUDA enabled\n")
    sys.stderr.flush()
    return 1


def _traceback_exit() -> int:
    """An uncaught exception at start-up: Python prints the traceback and exits with status 1."""
    traceback.print_exc()
    sys.stderr.flush()
    return 1


def _vram_state(args) -> str:
    if args.cpu:
        return "DISABLED"
    if args.lowvram:
        return "LOW_VRAM"
    if args.novram:
        return "NO_VRAM"
    if args.highvram or args.gpu_only:
        return "HIGH_VRAM"
    return "NORMAL_VRAM"


def main(argv: Optional[List[str]] = None, base_dir: Optional[str] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose, args.log_stdout)

    from .executor import Faults, check_faults

    try:
        faults = Faults(check_faults(json.loads(os.environ.get(FAULTS_ENV) or "{}")))
    except ValueError as e:
        sys.stderr.write(f"[ComfyUI test double] bad {FAULTS_ENV}: {e}\n")
        return 1
    base = os.path.abspath(args.base_directory) if args.base_directory else os.path.abspath(base_dir or os.getcwd())
    from .custom_nodes import FolderPaths, apply_custom_paths, check_custom_node_folders, init_custom_nodes

    # main.py runs apply_custom_paths and execute_prestartup_script at import, before anything else: an
    # unreadable extra-paths file or a missing custom_nodes folder ends the start with a traceback, status 1
    folders = FolderPaths(base)
    try:
        apply_custom_paths(folders, os.path.abspath(base_dir or os.getcwd()), args.extra_model_paths_config)
    except Exception:
        return _traceback_exit()
    output_dir = os.path.join(base, "output")
    input_dir = os.path.join(base, "input")
    temp_dir = os.path.join(base, "temp")
    if args.output_directory:
        output_dir = os.path.abspath(args.output_directory)
        log.info("Setting output directory to: %s", output_dir)
    if args.input_directory:
        input_dir = os.path.abspath(args.input_directory)
        log.info("Setting input directory to: %s", input_dir)
    if args.user_directory:
        log.info("Setting user directory to: %s", os.path.abspath(args.user_directory))
    try:
        check_custom_node_folders(folders, args.disable_all_custom_nodes, args.whitelist_custom_nodes)
    except Exception:
        return _traceback_exit()
    refuse = faults.get().get("refuse_start")
    if refuse is not None:
        return _refuse(refuse)
    if faults.get().get("no_gpu") and not args.cpu:
        return _no_gpu()
    if args.cuda_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.cuda_device)
        os.environ["HIP_VISIBLE_DEVICES"] = str(args.cuda_device)
        log.info("Set cuda device to: %s", args.cuda_device)
    if args.temp_directory:
        temp_dir = os.path.join(os.path.abspath(args.temp_directory), "temp")
        log.info("Setting temp directory to: %s", temp_dir)

    from .server import _memory, device_name

    total_mb = _memory()[0] // (1024 * 1024)
    log.info("Checkpoint files will always be loaded safely.")
    log.info("Total VRAM %s MB, total RAM %s MB", total_mb if args.cpu else 24576, total_mb)
    log.info("pytorch version: %s", PYTORCH_VERSION)
    log.info("Set vram state to: %s", _vram_state(args))
    log.info("Device: %s", 'cpu' if args.cpu else device_name(args))
    log.info("Python version: %s", sys.version)
    log.info("ComfyUI version: %s", COMFYUI_VERSION)
    log.info("ComfyUI frontend version: %s", FRONTEND_VERSION)
    log.info("[ComfyUI test double] this is tests/doubles/comfyui from comfyfarm, not the real ComfyUI")

    startup_delay = float(faults.get().get("startup_delay_s", 0) or 0)
    if startup_delay > 0:
        log.info("[ComfyUI test double] fault startup_delay_s=%s: sleeping before listening", startup_delay)
        time.sleep(startup_delay)

    os.makedirs(input_dir, exist_ok=True)
    os.makedirs(output_dir, exist_ok=True)
    shutil.rmtree(temp_dir, ignore_errors=True)
    os.makedirs(temp_dir, exist_ok=True)

    from .nodes import Env
    from .server import serve

    init_custom_nodes(folders, args.disable_all_custom_nodes, args.whitelist_custom_nodes)
    if args.quick_test_for_ci:
        return 0
    env = Env(input_dir, output_dir, temp_dir, disable_metadata=args.disable_metadata)
    try:
        serve(args, env, faults)
    except KeyboardInterrupt:
        log.info("\nStopped server")
    shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
