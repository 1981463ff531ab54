"""The service itself: one ComfyUI per GPU, restarted when it stops or when ``prepare`` asks, and a control
endpoint on loopback.

Each ComfyUI is a :class:`farm_plugin.comfyui.server.ComfyUIServer` (comfyfarm's own lifecycle code: its own
port, ``CUDA_VISIBLE_DEVICES``, scratch folders, comfyfarm's frame nodes, its process group). The control
endpoint (an ephemeral port, named in each state file) answers ``GET /status`` (every GPU's URL, process id,
starts, whether it runs) and ``POST /restart`` ``{"gpu": "0", "reason": "..."}`` (restart that ComfyUI and
answer once it is up again; ``prepare`` asks for it only between tasks).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from farm_plugin.comfyui.devices import probe_devices
from farm_plugin.comfyui.errors import ComfyUIError
from farm_plugin.comfyui.gpu_failures import classify_exit, classify_log
from farm_plugin.comfyui.server import ComfyUIServer, ServerConfig

from .state import GpuState, Limits, WorkerServiceError, remove_state, write_state

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 2.0
CONTROL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServiceConfig:
    """A service: ``gpus`` ("0", "1", … or "cpu"), ComfyUI from ``comfyui_dir`` run by ``python``, the ComfyUI of
    the i-th GPU on ``base_port + i`` (or the next free port)."""

    comfyui_dir: Path
    gpus: Tuple[str, ...]
    state_dir: Path
    base_port: int = 8288
    python: Optional[str] = None
    extra_args: Tuple[str, ...] = ()
    startup_timeout_s: float = 300.0
    limits: Limits = field(default_factory=Limits)


class ComfyUIService:
    """Start with :meth:`start`, stop with :meth:`stop`; in between it keeps every ComfyUI running."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.servers: Dict[str, ComfyUIServer] = {}
        self._locks: Dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._control: Optional[ThreadingHTTPServer] = None
        self._threads: List[threading.Thread] = []

    @property
    def control_url(self) -> str:
        if self._control is None:
            raise WorkerServiceError("the service is not started")
        return f"http://{CONTROL_HOST}:{self._control.server_address[1]}"

    def start(self) -> None:
        """Open the control endpoint, then start every GPU's ComfyUI (all must come up, or none stays)."""
        self._control = ThreadingHTTPServer((CONTROL_HOST, 0), _handler(self))
        self._threads.append(threading.Thread(target=self._control.serve_forever, name="comfyfarm-control",
                                              daemon=True))
        self._threads[-1].start()
        try:
            for index, gpu in enumerate(self.config.gpus):
                self.servers[gpu] = self._server(index, gpu)
                self._locks[gpu] = threading.Lock()
                self._start(gpu, "the service started")
        except ComfyUIError:
            self.stop()
            raise
        watcher = threading.Thread(target=self._watch, name="comfyfarm-watch", daemon=True)
        watcher.start()
        self._threads.append(watcher)

    def stop(self) -> None:
        """Stop every ComfyUI and the control endpoint; remove the state files."""
        self._stop.set()
        for gpu, server in self.servers.items():
            with self._locks.get(gpu, threading.Lock()):
                server.stop()
            remove_state(self.config.state_dir, gpu, os.getpid())
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()

    def wait(self) -> None:
        """Block until :meth:`stop` (from a signal handler or another thread)."""
        while not self._stop.wait(1.0):
            pass

    def status(self) -> Dict[str, Any]:
        return {gpu: {"url": server.url if server.port else None, "pid": server.process.pid if server.process else None,
                      "starts": server.starts, "running": server.is_running()}
                for gpu, server in self.servers.items()}

    def restart(self, gpu: str, reason: str) -> GpuState:
        """Restart ``gpu``'s ComfyUI now (the caller knows no task uses it); its new state."""
        if gpu not in self.servers:
            raise WorkerServiceError(f"this service runs no ComfyUI for GPU {gpu} (it runs {', '.join(self.servers)})")
        return self._start(gpu, reason, restart=True)

    # -- inside ------------------------------------------------------------------------------------

    def _server(self, index: int, gpu: str) -> ComfyUIServer:
        extra = self.config.extra_args
        if gpu == "cpu" and "--cpu" not in extra:
            extra = (*extra, "--cpu")
        return ComfyUIServer(ServerConfig(
            comfyui_dir=self.config.comfyui_dir, port=self.config.base_port + index, python=self.config.python,
            gpu_devices=None if gpu == "cpu" else gpu, extra_args=extra,
            scratch_dir=self.config.state_dir / f"gpu-{gpu}", startup_timeout_s=self.config.startup_timeout_s,
            port_in_use="next"))

    def _start(self, gpu: str, reason: str, *, restart: bool = False) -> GpuState:
        server = self.servers[gpu]
        with self._locks[gpu]:
            logger.info("GPU %s: %s ComfyUI (%s)", gpu, "restarting" if restart else "starting", reason)
            if restart:
                server.restart()
            else:
                server.start()
            assert server.process is not None
            state = GpuState(gpu=gpu, url=server.url, pid=server.process.pid, scratch=str(server.scratch_dir),
                             control_url=self.control_url, service_pid=os.getpid(), starts=server.starts,
                             limits=self.config.limits)
            write_state(self.config.state_dir, state)
            logger.info("GPU %s: ComfyUI is up at %s (pid %d, start %d)", gpu, state.url, state.pid, state.starts)
            return state

    def _watch(self) -> None:
        """Restart a ComfyUI that stopped on its own, saying how it ended."""
        while not self._stop.wait(WATCH_INTERVAL_SECONDS):
            for gpu, server in self.servers.items():
                if self._stop.is_set() or server.is_running() or self._locks[gpu].locked():
                    continue
                code = server.exit_code()
                cause = classify_exit(code) or classify_log(server.log_tail(15))
                reason = f"it stopped with exit code {code}" + (f" ({cause.headline})" if cause else "")
                try:
                    self._start(gpu, reason, restart=True)
                except ComfyUIError as exc:
                    logger.error("GPU %s: ComfyUI could not be restarted: %s", gpu, exc)


def _handler(service: ComfyUIService) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            logger.debug("control: %s", format % args)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") == "/status":
                self._send(200, {"pid": os.getpid(), "gpus": service.status()})
            else:
                self._send(404, {"error": f"no {self.path} here: GET /status, POST /restart"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/restart":
                self._send(404, {"error": f"no {self.path} here: GET /status, POST /restart"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                state = service.restart(str(body["gpu"]), str(body.get("reason") or "asked to"))
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": f"expected {{\"gpu\": \"0\", \"reason\": \"...\"}}: {exc}"})
            except (WorkerServiceError, ComfyUIError) as exc:
                self._send(500, {"error": str(exc)})
            else:
                self._send(200, {"url": state.url, "pid": state.pid, "starts": state.starts})

        def _send(self, status: int, payload: Dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def gpus_torch_sees(python: str, comfyui_dir: Path) -> Tuple[str, ...]:
    """``--gpus auto``: every CUDA device torch sees in ComfyUI's Python, or ("cpu",) where it sees none."""
    devices = probe_devices(python, comfyui_dir, dict(os.environ))
    if devices is None or not devices.cuda_devices:
        logger.info("torch sees no CUDA GPU in %s: one ComfyUI on the CPU", python)
        return ("cpu",)
    return tuple(str(index) for index in range(devices.cuda_devices))


def parse_gpus(text: str) -> Tuple[str, ...]:
    """``"0,1"`` → ("0", "1"); ``"cpu"`` → ("cpu",). WorkerServiceError for anything else."""
    items: Sequence[str] = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["cpu"] or (items and all(item.isdigit() for item in items)):
        if len(set(items)) != len(items):
            raise WorkerServiceError(f"--gpus {text!r} names a GPU twice: name each once, e.g. 0,1")
        return tuple(items)
    raise WorkerServiceError(f"--gpus {text!r} is not a list of GPU indices (0,1,...) or 'cpu': name the GPUs this "
                       "service runs a ComfyUI on, as nvidia-smi numbers them")
