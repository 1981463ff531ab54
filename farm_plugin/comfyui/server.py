"""Starting, watching and stopping a ComfyUI server on a worker, or attaching to a running one.

One ComfyUI per (worker, GPU): its own port, ``CUDA_VISIBLE_DEVICES``, bound to 127.0.0.1, with its own
input/output/temp folders on local scratch. It runs in a process group of its own, so that stopping it
leaves no orphan (ComfyUI and anything it spawned go together).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, AbstractSet, Deque, List, Mapping, Optional, Sequence, Tuple

from farm_plugin.comfyui.client import ComfyUIClient, check_address
from farm_plugin.comfyui.errors import ComfyUIStartError, ComfyUIUnreachable
from farm_plugin.comfyui.gpu_failures import classify_exit, classify_log

logger = logging.getLogger(__name__)

DEFAULT_STARTUP_TIMEOUT_SECONDS = 180.0
DEFAULT_STOP_GRACE_SECONDS = 10.0
HEALTH_CHECK_INTERVAL_SECONDS = 0.1
LOG_TAIL_LINES = 30
PORT_SEARCH_SPAN = 100
ATTACH_TIMEOUT_SECONDS = 15.0  # a server someone else runs is either up or not: no long start-up to wait for
# comfyfarm's ComfyUI custom-nodes folder (the frame nodes of the full-precision path), shipped beside the package
FRAME_NODES_DIR = Path(__file__).resolve().parents[1] / "ComfyUINodes"
EXTRA_PATHS_FILE = "comfyfarm_extra_model_paths.yaml"


@dataclass(frozen=True)
class ServerConfig:
    """How to run one ComfyUI. ``port_in_use`` is ``"error"`` or ``"next"`` (take the next free port)."""

    comfyui_dir: Path
    port: int = 8188
    python: Optional[str] = None
    gpu_devices: Optional[str] = None  # "0", "0,1"; None leaves CUDA_VISIBLE_DEVICES as it is
    listen: str = "127.0.0.1"
    extra_args: Tuple[str, ...] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    scratch_dir: Optional[Path] = None  # input/, output/, temp/ and the log go here
    frame_nodes: bool = True  # load comfyfarm's frame nodes (FRAME_NODES_DIR) through an extra-paths config
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_SECONDS
    port_in_use: str = "error"


def default_python(comfyui_dir: Path) -> str:
    """The Python that runs ComfyUI: its own venv when it has one, else this interpreter."""
    for candidate in ("venv/bin/python", ".venv/bin/python", "venv/Scripts/python.exe", "python_embeded/python.exe"):
        path = comfyui_dir / candidate
        if path.is_file():
            return str(path)
    return sys.executable


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (a port in TIME_WAIT counts as free, as for aiohttp)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(config: ServerConfig, exclude: AbstractSet[int] = frozenset()) -> int:
    """The configured port, or (``port_in_use: next``) the next free one not in ``exclude``."""
    if config.port not in exclude and port_is_free(config.port, config.listen):
        return config.port
    if config.port_in_use != "next":
        raise ComfyUIStartError(
            f"port {config.port} on {config.listen} is already in use (another ComfyUI, or another Worker's "
            "GPU?): stop what holds it, choose another base port, or allow the next free port"
        )
    for port in range(config.port + 1, config.port + PORT_SEARCH_SPAN):
        if port not in exclude and port_is_free(port, config.listen):
            logger.info("port %d is in use; ComfyUI takes port %d", config.port, port)
            return port
    raise ComfyUIStartError(f"no free port between {config.port} and {config.port + PORT_SEARCH_SPAN - 1}")


class ComfyUIServer:
    """A ComfyUI process this worker owns. ``start()`` returns once it answers; ``stop()`` ends it."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None
        self.scratch_dir = Path(config.scratch_dir or Path.cwd() / "comfyui-scratch")
        self.log_path = self.scratch_dir / "comfyui.log"
        self._log_file: Optional[IO[bytes]] = None
        self.starts = 0

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("ComfyUI is not started")
        return f"http://{self.config.listen}:{self.port}"

    def client(self) -> ComfyUIClient:
        return ComfyUIClient(self.url)

    def command(self, port: int) -> List[str]:
        python = self.config.python or default_python(self.config.comfyui_dir)
        return [
            python, "main.py",
            "--listen", self.config.listen,
            "--port", str(port),
            "--input-directory", str(self.scratch_dir / "input"),
            "--output-directory", str(self.scratch_dir / "output"),
            "--temp-directory", str(self.scratch_dir / "temp"),
            "--disable-auto-launch",
            *(["--extra-model-paths-config", str(self.scratch_dir / EXTRA_PATHS_FILE)] if self._loads_frame_nodes()
              else []),
            *self.config.extra_args,
        ]

    def _loads_frame_nodes(self) -> bool:
        """Whether to hand ComfyUI comfyfarm's frame nodes: asked for, and shipped here (ComfyUI refuses to start
        on a custom-nodes folder that does not exist)."""
        if self.config.frame_nodes and not FRAME_NODES_DIR.is_dir():
            logger.warning("comfyfarm's frame nodes are not at %s: ComfyUI starts without them (8-bit path)",
                           FRAME_NODES_DIR)
            return False
        return self.config.frame_nodes

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update(self.config.extra_env)
        if self.config.gpu_devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.config.gpu_devices
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def reserve_port(self, exclude: AbstractSet[int] = frozenset()) -> int:
        """Choose the port now (before starting several servers at once, so that they do not collide)."""
        self.port = choose_port(self.config, exclude)
        return self.port

    def start(self) -> None:
        """Start ComfyUI and wait until ``/system_stats`` answers, or raise with its log tail.

        A restart keeps the port chosen at the first start."""
        if self.is_running():
            return
        main = self.config.comfyui_dir / "main.py"
        if not main.is_file():
            raise ComfyUIStartError(
                f"{self.config.comfyui_dir} is not a ComfyUI folder (no main.py): set the ComfyUI directory "
                "to the folder you cloned ComfyUI into"
            )
        port = self.port if self.port is not None else choose_port(self.config)
        for folder in ("input", "output", "temp"):
            (self.scratch_dir / folder).mkdir(parents=True, exist_ok=True)
        if self._loads_frame_nodes():
            # ComfyUI's utils/extra_config.py: a section of folder kinds; custom_nodes adds a custom-nodes folder
            (self.scratch_dir / EXTRA_PATHS_FILE).write_text(
                f"comfyfarm:\n  custom_nodes: {json.dumps(str(FRAME_NODES_DIR))}\n", encoding="utf-8")
        command = self.command(port)
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"\n=== comfyfarm: starting {' '.join(command)}\n".encode())
        self._log_file.flush()
        device = "CPU" if "--cpu" in self.config.extra_args else f"GPU {self.config.gpu_devices or 'default'}"
        logger.info("starting ComfyUI on port %d (%s)", port, device)
        logger.debug("ComfyUI command: %s", " ".join(command))
        try:
            self.process = subprocess.Popen(
                command,
                cwd=str(self.config.comfyui_dir),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise ComfyUIStartError(f"cannot run {command[0]}: {exc}: set the Python that runs ComfyUI") from exc
        self.port = port
        self.starts += 1
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self.process is not None
        client = self.client()
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self._close_log()
                tail = self.log_tail()
                text = f"ComfyUI exited with code {code} while starting on port {self.port}"
                cause = classify_exit(code) or classify_log(tail)
                raise ComfyUIStartError(cause.describe(text) if cause else text, tail)
            if client.is_healthy(timeout_s=2.0):
                self._check_identity(client)
                logger.info("ComfyUI is up at %s (pid %d)", self.url, self.process.pid)
                return
            time.sleep(HEALTH_CHECK_INTERVAL_SECONDS)
        self.stop()
        raise ComfyUIStartError(
            f"ComfyUI did not answer on {self.url} within {self.config.startup_timeout_s:g} s: raise the "
            "start-up timeout, or see why in its log",
            self.log_tail(),
        )

    def _check_identity(self, client: ComfyUIClient) -> None:
        """The server answering must be ours (same scratch folders), not another one on the port."""
        argv = client.system_stats().get("system", {}).get("argv") or []
        ours = str(self.scratch_dir / "input")
        if ours not in argv:
            self.stop()
            raise ComfyUIStartError(
                f"another server answers on port {self.port} (not the ComfyUI just started): stop it, or choose "
                "another base port"
            )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self, wait_s: float = 0.0) -> Optional[int]:
        """How ComfyUI's process ended (-9: killed by SIGKILL), until it is stopped or restarted; None while
        it runs or when none was started. ``wait_s``: how long to wait for it to end, for a caller that has just
        lost its connection: a killed process's sockets close before the kernel reports it ended."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=wait_s) if wait_s > 0 else self.process.poll()
        except subprocess.TimeoutExpired:
            return None

    def restart(self) -> None:
        """Stop (if needed) and start again on the same port."""
        self.stop()
        self.start()

    def stop(self, grace_s: float = DEFAULT_STOP_GRACE_SECONDS) -> None:
        """Terminate ComfyUI's process group, then kill it after ``grace_s``; reap it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            logger.info("stopping ComfyUI (pid %d)", process.pid)
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("ComfyUI (pid %d) ignored SIGTERM for %g s: killing it", process.pid, grace_s)
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=grace_s)
        _signal_group(process, signal.SIGKILL)  # anything it spawned that outlived it
        self.process = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> List[str]:
        return read_log_tail(self.log_path, lines)

    def __enter__(self) -> ComfyUIServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> List[str]:
    try:
        with path.open("rb") as handle:
            tail: Deque[bytes] = deque(handle, maxlen=lines)
    except OSError:
        return []
    return [line.decode("utf-8", "replace").rstrip() for line in tail]


@dataclass
class ExternalServer:
    """A ComfyUI someone else runs: attach by URL; start and stop only check that it answers."""

    url: str
    startup_timeout_s: float = ATTACH_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        check_address(self.url)  # a malformed URL is said at once, not after waiting for an answer

    def client(self) -> ComfyUIClient:
        return ComfyUIClient(self.url)

    def start(self) -> None:
        client = self.client()
        deadline = time.monotonic() + self.startup_timeout_s
        while not client.is_healthy(timeout_s=2.0):
            if time.monotonic() >= deadline:
                raise ComfyUIUnreachable(self.url, f"no answer on /system_stats within {self.startup_timeout_s:g} s")
            time.sleep(HEALTH_CHECK_INTERVAL_SECONDS * 5)

    def is_running(self) -> bool:
        return self.client().is_healthy()

    def restart(self) -> None:
        self.start()

    def stop(self, grace_s: float = 0.0) -> None:
        """Nothing to stop: the server is not ours."""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> List[str]:
        return []


def attach(url: str, *, timeout_s: float = ATTACH_TIMEOUT_SECONDS) -> ExternalServer:
    """Attach to a running ComfyUI at ``url`` after checking that it answers."""
    server = ExternalServer(url.rstrip("/"), timeout_s)
    server.start()
    return server


def split_arguments(text: str) -> Sequence[str]:
    """Extra ComfyUI arguments from one configuration line (``--cpu --lowvram``)."""
    return tuple(shlex.split(text or ""))
