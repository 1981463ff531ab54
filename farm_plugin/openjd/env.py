"""ComfyUI for an Open Job Description session: started when the step environment is entered, stopped when
it is exited, used by every task of the session in between::

    python -m farm_plugin.openjd env enter --state SESSION_DIR/comfyui.json --comfyui-dir DIR [...]
    python -m farm_plugin.openjd env exit --state SESSION_DIR/comfyui.json

OpenJD enters a session's environments before its first task and exits them after its last, in reverse
order (openjd-specifications wiki, How-Jobs-Are-Run, "Sessions"): the Deadline 10 plugin's StartJob/EndJob.
So ``enter`` starts ComfyUI in a process group of its own (the action's process ends, ComfyUI stays),
records where it listens in the session's working directory (the state file) and returns once ComfyUI
answers; ``exit`` stops that process group. With ``--comfyui-url`` it attaches to a ComfyUI someone else
runs instead, and ``exit`` leaves it alone. Where comfyfarm's Worker service (farm_plugin.service) runs a
warm ComfyUI for the session's GPU (``--service-gpu``, default: the one ``CUDA_VISIBLE_DEVICES`` names, else
0), the session uses it, checked and tidied by ``prepare`` before each task; ``exit`` leaves it warm.

What it prints for the render manager are OpenJD stdout messages (How-Jobs-Are-Run, "Stdout/Stderr
Messages"): ``openjd_status: …``, ``openjd_fail: …``, and ``openjd_env: COMFYFARM_COMFYUI_URL=…``, which
sets the variable for the session's later actions. Exit codes: 0 done, 1 ComfyUI did not start, 2 bad
arguments or no state file to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from farm_plugin.atomic import write_text_atomic
from farm_plugin.comfyui.errors import ComfyUIError, ComfyUIStartError
from farm_plugin.comfyui.server import ComfyUIServer, ExternalServer, ServerConfig, default_python
from farm_plugin.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInput
from farm_plugin.service.prepare import prepare
from farm_plugin.service.state import ServiceUnavailable, default_state_dir

logger = logging.getLogger(__name__)

EXIT_NOT_STARTED = EXIT_FAILED  # ComfyUI did not start (or the step was cancelled while it started)
DEFAULT_BASE_PORT = 8188
DEFAULT_STARTUP_TIMEOUT_SECONDS = 300.0
DEFAULT_RESTART_LIMIT = 2
STOP_GRACE_SECONDS = 10.0
STOP_POLL_SECONDS = 0.1
URL_VARIABLE = "COMFYFARM_COMFYUI_URL"
LOG_TAIL_SHOWN = 15


class SessionStateError(BadInput):
    """The session's ComfyUI state file is missing or unreadable: the message says why."""


@dataclass(frozen=True)
class SessionComfyUI:
    """The ComfyUI of one OpenJD session, as written to the state file (enough to restart and stop it)."""

    url: str
    owned: bool  # False: attached to a ComfyUI someone else runs
    pid: Optional[int] = None  # the process group leader, when owned
    port: Optional[int] = None
    comfyui_dir: str = ""
    python: str = ""
    extra_args: Tuple[str, ...] = ()
    scratch_dir: str = ""
    log_path: str = ""
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_SECONDS
    restart_limit: int = DEFAULT_RESTART_LIMIT
    restarts: int = 0
    starts: int = 0
    service_gpu: str = ""  # attached to comfyfarm's Worker service for this GPU (farm_plugin.service)
    written_at: float = field(default_factory=time.time)

    def log_tail(self, lines: int = LOG_TAIL_SHOWN) -> List[str]:
        from farm_plugin.comfyui.server import read_log_tail

        return read_log_tail(Path(self.log_path), lines) if self.log_path else []


def write_state(path: Path, state: SessionComfyUI) -> None:
    """Write the state file atomically (a task may read it while the environment writes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(asdict(state), indent=2))


def read_state(path: Path) -> SessionComfyUI:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return SessionComfyUI(**{**data, "extra_args": tuple(data.get("extra_args") or ())})
    except FileNotFoundError as exc:
        raise SessionStateError(f"{path} does not exist: the step environment did not start ComfyUI in this "
                                "session (see the environment's log)") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise SessionStateError(f"cannot read the session's ComfyUI state {path}: {exc}") from exc


@dataclass(frozen=True)
class EnvSettings:
    """What ``enter`` was asked for; empty values fall back to the worker's environment."""

    comfyui_dir: str = ""
    python: str = ""
    extra_args: Tuple[str, ...] = ()
    url: str = ""
    base_port: int = DEFAULT_BASE_PORT
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_SECONDS
    restart_limit: int = DEFAULT_RESTART_LIMIT
    scratch_dir: str = ""
    service_gpu: str = ""  # the session's GPU, whose warm ComfyUI (farm_plugin.service) it uses if one runs


def resolve_settings(settings: EnvSettings) -> EnvSettings:
    """Fill what the job left empty from ``COMFYUI_DIR``, ``COMFYUI_PYTHON``, ``COMFYUI_ARGS`` and
    ``COMFYUI_URL`` on this worker (a queue environment or the worker's service may set them)."""
    comfyui_dir = settings.comfyui_dir or os.environ.get("COMFYUI_DIR", "")
    python = settings.python or os.environ.get("COMFYUI_PYTHON", "")
    extra = settings.extra_args or tuple(shlex.split(os.environ.get("COMFYUI_ARGS", "")))
    url = settings.url or ("" if comfyui_dir else os.environ.get("COMFYUI_URL", ""))
    visible = [gpu.strip() for gpu in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if gpu.strip()]
    gpu = settings.service_gpu or (visible[0] if len(visible) == 1 else "0")
    return replace(settings, comfyui_dir=comfyui_dir, python=python, extra_args=extra, url=url, service_gpu=gpu)


def attach_service(settings: EnvSettings, job: str) -> Optional[SessionComfyUI]:
    """The warm ComfyUI of comfyfarm's Worker service for the session's GPU, checked and tidied (``prepare``),
    or None where no service answers (the session starts its own, as without one). Not where the job names
    a ComfyUI URL."""
    if settings.url:
        return None
    try:
        prepared = prepare(settings.service_gpu, state_dir=default_state_dir(), job=job,
                           wait_s=settings.startup_timeout_s)
    except ServiceUnavailable as exc:
        _say(f"openjd_status: {exc}: starting ComfyUI for this session")
        return None
    return SessionComfyUI(url=prepared.url, owned=False, restart_limit=0, service_gpu=settings.service_gpu)


def start(settings: EnvSettings, *, port: Optional[int] = None, starts: int = 0,
          restarts: int = 0) -> SessionComfyUI:
    """Start (or attach to) ComfyUI and return its state once it answers; ComfyUIError when it does not."""
    if settings.url:
        external = ExternalServer(settings.url.rstrip("/"), settings.startup_timeout_s)
        external.start()
        return SessionComfyUI(url=external.url, owned=False, restart_limit=0)
    if not settings.comfyui_dir:
        raise ComfyUIStartError("no ComfyUI folder: set the job parameter ComfyUIDir, or COMFYUI_DIR in the worker's "
                                "environment (or ComfyUIURL to use a running ComfyUI)")
    comfyui_dir = Path(settings.comfyui_dir)
    config = ServerConfig(
        comfyui_dir=comfyui_dir,
        port=port if port is not None else settings.base_port,
        python=settings.python or default_python(comfyui_dir),
        extra_args=settings.extra_args,
        scratch_dir=Path(settings.scratch_dir),
        startup_timeout_s=settings.startup_timeout_s,
        port_in_use="next",
    )
    server = ComfyUIServer(config)
    try:
        server.start()
    except BaseException:  # also a cancel (SystemExit from the SIGTERM handler) while ComfyUI was starting
        server.stop()
        raise
    assert server.process is not None and server.port is not None
    # The server object is dropped without stop(): ComfyUI runs in its own session and outlives this process.
    return SessionComfyUI(url=server.url, owned=True, pid=server.process.pid, port=server.port,
                          comfyui_dir=str(comfyui_dir), python=str(config.python), extra_args=settings.extra_args,
                          scratch_dir=str(server.scratch_dir), log_path=str(server.log_path),
                          startup_timeout_s=settings.startup_timeout_s, restart_limit=settings.restart_limit,
                          restarts=restarts, starts=starts + 1)


def restart(state: SessionComfyUI) -> SessionComfyUI:
    """Stop a ComfyUI that died or hung and start it again on its port (a task does this when the runner
    says ComfyUI is lost, up to ``restart_limit`` times per session)."""
    if not state.owned:
        raise ComfyUIStartError(f"the ComfyUI at {state.url} is not this session's: it cannot be restarted here")
    stop(state)
    settings = EnvSettings(comfyui_dir=state.comfyui_dir, python=state.python, extra_args=state.extra_args,
                           startup_timeout_s=state.startup_timeout_s, restart_limit=state.restart_limit,
                           scratch_dir=state.scratch_dir)
    return start(settings, port=state.port, starts=state.starts, restarts=state.restarts + 1)


def stop(state: SessionComfyUI, grace_s: float = STOP_GRACE_SECONDS) -> None:
    """Stop the session's ComfyUI process group: SIGTERM, then SIGKILL after ``grace_s``. The process is not
    this one's child (the environment's onEnter started it), so its end is watched through its pid."""
    pid = state.pid
    if not state.owned or pid is None or not _is_our_group(pid):
        return
    logger.info("stopping ComfyUI (pid %d)", pid)
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(STOP_POLL_SECONDS)
    if _alive(pid):
        logger.warning("ComfyUI (pid %d) ignored SIGTERM for %g s: killing it", pid, grace_s)
    _signal_group(pid, signal.SIGKILL)  # also anything it spawned that outlived it


def _is_our_group(pid: int) -> bool:
    """ComfyUI was started as a session (and group) leader: a pid that leads no group is not it any more."""
    try:
        return os.getpgid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie waits for a parent that may never reap it (PID 1 of some containers): it is gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m farm_plugin.openjd env", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    enter = commands.add_parser("enter", help="start ComfyUI for this session (onEnter)")
    enter.add_argument("--state", required=True, help="the state file, in the session's working directory")
    enter.add_argument("--comfyui-dir", default="", help="the ComfyUI folder (default: $COMFYUI_DIR)")
    enter.add_argument("--comfyui-python", default="", help="the Python that runs ComfyUI (default: its venv)")
    enter.add_argument("--comfyui-args", default="", help="extra ComfyUI arguments, one string (e.g. '--cpu')")
    enter.add_argument("--comfyui-url", default="", help="attach to this running ComfyUI instead of starting one")
    enter.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="the port, or the next free one")
    enter.add_argument("--startup-timeout-s", type=float, default=DEFAULT_STARTUP_TIMEOUT_SECONDS)
    enter.add_argument("--restart-limit", type=int, default=DEFAULT_RESTART_LIMIT,
                       help="restarts of a ComfyUI that died, per session")
    enter.add_argument("--scratch", default="", help="ComfyUI's input/output/temp (default: beside the state file)")
    enter.add_argument("--service-gpu", default="", help="the GPU whose comfyfarm service ComfyUI to use if one runs "
                                                         "(default: CUDA_VISIBLE_DEVICES's one GPU, else 0)")
    leave = commands.add_parser("exit", help="stop this session's ComfyUI (onExit)")
    leave.add_argument("--state", required=True)
    return parser


def run(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    state_path = Path(args.state)
    if args.command == "exit":
        return _exit(state_path)
    settings = resolve_settings(EnvSettings(
        comfyui_dir=args.comfyui_dir, python=args.comfyui_python, extra_args=tuple(shlex.split(args.comfyui_args)),
        url=args.comfyui_url, base_port=args.base_port, startup_timeout_s=args.startup_timeout_s,
        restart_limit=args.restart_limit, scratch_dir=args.scratch or str(state_path.parent / "comfyui"),
        service_gpu=args.service_gpu))
    where = settings.url or settings.comfyui_dir or "?"
    _say(f"openjd_status: starting ComfyUI ({where})")
    signal.signal(signal.SIGTERM, _cancelled)  # OpenJD's notify: stop what was started, then leave
    try:
        state = attach_service(settings, state_path.parent.name) or start(settings)
    except ComfyUIError as exc:
        for line in getattr(exc, "log_tail", None) or []:
            _say(f"comfyui: {line}")
        _say(f"openjd_fail: ComfyUI did not start: {str(exc).splitlines()[0]}")
        return EXIT_BAD_INPUT if not (settings.url or settings.comfyui_dir) else EXIT_NOT_STARTED
    write_state(state_path, state)
    _say(f"openjd_env: {URL_VARIABLE}={state.url}")
    how = (f" (pid {state.pid})" if state.pid else f" (the warm ComfyUI of comfyfarm's service on GPU "
           f"{state.service_gpu})" if state.service_gpu else " (attached)")
    _say(f"openjd_status: ComfyUI is up at {state.url}{how}")
    return EXIT_OK


def _cancelled(signum: int, _frame: object) -> None:
    _say("openjd_status: cancelled while ComfyUI was starting: stopping it")
    raise SystemExit(EXIT_NOT_STARTED)


def _exit(state_path: Path) -> int:
    try:
        state = read_state(state_path)
    except SessionStateError as exc:
        _say(f"comfyfarm: nothing to stop: {exc}")
        return EXIT_OK
    if state.owned:
        stop(state)
        _say(f"openjd_status: ComfyUI stopped (pid {state.pid}, {state.starts} start(s) in this session)")
    return EXIT_OK
