"""The GPU worker: the runtime in ComfyUI's Python, ComfyUI starting on each GPU, the workflows' needs.

ComfyUI is started once per GPU (``CUDA_VISIBLE_DEVICES``, a free port on 127.0.0.1, scratch folders of its
own), all at once, exactly as the plugin starts it; the first one that answers is asked for its node
definitions to check the workflows against; then every one is stopped.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set

from farm_plugin import __version__
from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.comfyui.server import FRAME_NODES_DIR, ComfyUIServer, ServerConfig, default_python
from farm_plugin.errors import UsageError
from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest
from farm_plugin.runner.binding import LOADER, SAVER
from farm_plugin.service.prepare import inspect
from farm_plugin.service.state import ServiceUnavailable, default_state_dir, service_gpus
from flame_submitter.doctor.installed import manifest_checks, reinstall
from flame_submitter.doctor.report import Check, fail, ok, warn

logger = logging.getLogger(__name__)

IMPORT_TIMEOUT_SECONDS = 120.0
NVIDIA_SMI_TIMEOUT_SECONDS = 30.0
DEFAULT_STARTUP_TIMEOUT_SECONDS = 300.0
FIRST_PORT = 8188
RUNTIME_MODULES = ("farm_plugin.runner.__main__", "farm_plugin.completion.cli", "farm_plugin.frames.image_io")

_RUNTIME_CHECK = r"""
import importlib, json, sys
answer = {"python": ".".join(str(p) for p in sys.version_info[:3])}
try:
    import farm_plugin
    answer["version"], answer["file"] = farm_plugin.__version__, farm_plugin.__file__
    for name in sys.argv[1].split(","):
        importlib.import_module(name)
except BaseException as exc:
    answer["error"] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(answer))
"""


@dataclass(frozen=True)
class WorkerSetup:
    """Where the worker's pieces are, from the options, the installation manifest and the configuration."""

    prefix: Path
    python: Path
    comfyui_dir: Path
    gpus: Optional[List[int]]  # None: on the CPU
    gpu_note: Optional[Check]
    comfyui_args: Sequence[str] = ()
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_SECONDS


def nvidia_gpus() -> List[int]:
    """The GPU indices nvidia-smi lists ([] without nvidia-smi or a driver)."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=NVIDIA_SMI_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    return [int(line) for line in result.stdout.split() if line.strip().isdigit()]


def choose_gpus(gpus_option: Optional[str], cpu: bool) -> tuple:
    """``(gpus or None for the CPU, a note to print or None)``; raises UsageError on a bad ``--gpus``."""
    if cpu:
        return None, None
    if gpus_option:
        items = [item.strip() for item in gpus_option.split(",") if item.strip()]
        if not items or not all(item.isdigit() for item in items):
            raise UsageError(f"--gpus {gpus_option}: write GPU indices like 0,1")
        return [int(item) for item in items], None
    found = nvidia_gpus()
    if found:
        return found, None
    return None, warn("worker", "GPUs", "nvidia-smi finds no NVIDIA GPU: ComfyUI is checked on the CPU (--cpu)",
                      "install the NVIDIA driver, or pass --gpus (or --cpu on a node without GPU)")


def runtime_check(python: Path, prefix: Path) -> Check:
    """The runtime imports in ``python`` (isolated, as the plugin runs it) and is this version."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    with tempfile.TemporaryDirectory(prefix="comfyfarm-doctor-") as neutral:  # no checkout on the path
        try:
            result = subprocess.run([str(python), "-I", "-c", _RUNTIME_CHECK, ",".join(RUNTIME_MODULES)],
                                    capture_output=True, text=True, timeout=IMPORT_TIMEOUT_SECONDS, cwd=neutral,
                                    env=environment, stdin=subprocess.DEVNULL)
            answer: Dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
            answer = {"error": f"cannot run it: {exc}"}
    fix = f"{reinstall('worker', prefix)} --python {python}"
    if "error" in answer:
        return fail("worker", "runtime importable", f"{python}: {answer['error']}", fix)
    if answer.get("version") != __version__:
        return fail("worker", "runtime importable", f"{python} has comfyfarm {answer.get('version')} "
                    f"({answer.get('file')}); this is comfyfarm {__version__}", fix)
    return ok("worker", "runtime importable", f"{python} (Python {answer['python']}) runs comfyfarm {__version__}")


def _start(server: ComfyUIServer) -> Optional[str]:
    """Start one ComfyUI; None when it answers, else why not (with its last log lines)."""
    try:
        server.start()
    except ComfyUIError as exc:
        tail = [line.strip() for line in (getattr(exc, "log_tail", None) or server.log_tail()) if line.strip()]
        message = str(exc).splitlines()[0]
        return message + (f" (its log ends: {' | '.join(tail[-3:])})" if tail else "")
    return None


def comfyui_checks(setup: WorkerSetup, object_info: Optional[List[Any]] = None) -> List[Check]:
    """ComfyUI starts on each GPU (or the CPU). ``object_info``: filled with the first answer of /object_info."""
    if not (setup.comfyui_dir / "main.py").is_file():
        return [fail("worker", "ComfyUI", f"{setup.comfyui_dir} is not a ComfyUI folder (no main.py)",
                     "pass --comfyui-dir, the folder ComfyUI was cloned into")]
    targets: List[Optional[int]] = list(setup.gpus) if setup.gpus is not None else [None]
    checks: List[Check] = []
    with tempfile.TemporaryDirectory(prefix="comfyfarm-doctor-") as scratch:
        servers: List[ComfyUIServer] = []
        ports: Set[int] = set()
        for target in targets:
            extra = tuple(setup.comfyui_args) + (("--cpu",) if target is None else ())
            config = ServerConfig(comfyui_dir=setup.comfyui_dir, port=FIRST_PORT, python=str(setup.python),
                                  gpu_devices=None if target is None else str(target), extra_args=extra,
                                  scratch_dir=Path(scratch) / ("cpu" if target is None else f"gpu{target}"),
                                  startup_timeout_s=setup.startup_timeout_s, port_in_use="next")
            server = ComfyUIServer(config)
            ports.add(server.reserve_port(frozenset(ports)))
            servers.append(server)
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=len(servers)) as pool:
                problems = list(pool.map(_start, servers))
            seconds = time.monotonic() - started
            for target, server, problem in zip(targets, servers, problems):
                checks.append(_start_check(target, server, problem, seconds))
            running = next((s for s, p in zip(servers, problems) if p is None), None)
            if running is not None:
                checks.append(frame_nodes_check(running, setup.prefix))
                if object_info is not None:
                    object_info.append(running.client().object_info())
        finally:
            for server in servers:
                server.stop()
    return checks


def frame_nodes_check(server: ComfyUIServer, prefix: Path) -> Check:
    """comfyfarm's frame nodes load in the ComfyUI (the full-precision path: float frames with alpha)."""
    what = "frame nodes (full precision)"
    missing = [name for name in (LOADER, SAVER) if not server.client().object_info(name)]
    if not missing:
        return ok("worker", what, f"{LOADER} and {SAVER} load from {FRAME_NODES_DIR}: frames keep float and alpha")
    return fail("worker", what, f"ComfyUI did not load {', '.join(missing)} from {FRAME_NODES_DIR}: frames would "
                "take the 8-bit path (clipped to 0..1, no alpha)", reinstall("worker", prefix))


def _start_check(target: Optional[int], server: ComfyUIServer, problem: Optional[str], seconds: float) -> Check:
    what = "ComfyUI starts on the CPU" if target is None else f"ComfyUI starts on GPU {target}"
    if problem is not None:
        return fail("worker", what, problem, "see ComfyUI's log lines above; fix ComfyUI in its own environment "
                    "(custom nodes, drivers), then check again")
    stats = server.client().system_stats()
    device = (stats.get("devices") or [{}])[0]
    version = stats.get("system", {}).get("comfyui_version", "?")
    if target is not None and device.get("type") != "cuda":
        return fail("worker", what, f"ComfyUI {version} started but runs on {device.get('name', 'the CPU')}",
                    "install a PyTorch with CUDA in ComfyUI's environment, or check the NVIDIA driver")
    return ok("worker", what, f"ComfyUI {version} answered within {seconds:.1f} s on {device.get('name', '?')}")


def worker_prefix(prefix_option: Optional[str]) -> Path:
    """``--prefix``, else the installation running this, else the usual place."""
    if prefix_option:
        return Path(prefix_option).expanduser().absolute()
    return layout.running_prefix("worker") or layout.DEFAULT_WORKER_PREFIX


def worker_setup(options: Any, prefix: Path, manifest: Optional[Manifest], config: Any) -> WorkerSetup:
    details = manifest.details if manifest is not None else {}
    comfyui_dir = Path(options.comfyui_dir or details.get("comfyui_dir") or (config and config.comfyui_dir)
                       or layout.DEFAULT_COMFYUI_DIR).expanduser()
    python = Path(options.python or details.get("python") or (config and config.comfyui_python)
                  or default_python(comfyui_dir)).expanduser()
    gpus, note = choose_gpus(options.gpus, options.cpu)
    return WorkerSetup(prefix=prefix, python=python, comfyui_dir=comfyui_dir, gpus=gpus, gpu_note=note,
                       startup_timeout_s=options.startup_timeout_s)


def worker_checks(options: Any, config: Any, object_info: Optional[List[Any]] = None) -> List[Check]:
    prefix = worker_prefix(options.prefix)
    checks, manifest = manifest_checks("worker", prefix)
    setup = worker_setup(options, prefix, manifest, config)
    checks.append(runtime_check(setup.python, prefix))
    if setup.gpu_note is not None:
        checks.append(setup.gpu_note)
    checks.extend(comfyui_checks(setup, object_info))
    checks.extend(service_checks(manifest, default_state_dir()))
    return checks


SERVICE_UNIT = "comfyfarm-comfyui"


def service_checks(manifest: Optional[Manifest], state_dir: Path) -> List[Check]:
    """The warm ComfyUI of comfyfarm's service on each GPU it serves, as a task's ``prepare`` would find it
    (changing nothing). None running is fine where the service was not installed (``--service``)."""
    gpus = service_gpus(state_dir)
    installed = bool(manifest is not None and manifest.details.get("service"))
    fix = (f"start it (systemctl --user start {SERVICE_UNIT}, or {layout.COMMAND}-serve) and read its log "
           f"(journalctl --user -u {SERVICE_UNIT})")
    if not gpus:
        if installed:
            return [fail("worker", "comfyfarm service", f"installed, but not running: no state in {state_dir}", fix)]
        return [ok("worker", "comfyfarm service", f"none on this Worker (no state in {state_dir}): the plugin starts "
                                                  "ComfyUI for each job; install.sh worker --service keeps one warm")]
    checks = []
    for gpu in gpus:
        try:
            found = inspect(gpu, state_dir=state_dir)
        except ServiceUnavailable as exc:
            checks.append(fail("worker", f"comfyfarm service, GPU {gpu}", str(exc), fix))
            continue
        memory = f", {found['rss_gb']} GB resident" if found["rss_gb"] is not None else ""
        vram = f", {found['free_vram_gb']} GB GPU memory free" if found["free_vram_gb"] is not None else ""
        checks.append(ok("worker", f"comfyfarm service, GPU {gpu}",
                         f"warm ComfyUI at {found['url']} (pid {found['pid']}, started {found['starts']} time(s)"
                         f"{memory}, {found['prompts']} prompt(s){vram})"))
    return checks
