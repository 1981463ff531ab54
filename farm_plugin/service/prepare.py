"""Before a task uses the service's ComfyUI: is it there and fit, and the hygiene between tasks.

``prepare(gpu)``, in this order, each decision logged with the figures behind it:

1. the service answers for this GPU (its state file, its control endpoint) and so does its ComfyUI, which is
   the one the service started (its ``--input-directory`` in ``/system_stats``); otherwise
   :class:`ServiceUnavailable`, and the caller starts its own ComfyUI;
2. no foreign queue: prompts left running or queued (by a task that was killed before it could withdraw them)
   are cleared and interrupted: the task starts from an empty queue;
3. memory: a ComfyUI whose resident memory passed ``max_rss_gb``, or that has run ``max_prompts`` prompts
   (ComfyUI's own prompt number), is restarted through the service, before the task and never during one;
4. GPU memory: where less than the workflow's need (``vram_gb``, else the service's ``min_free_vram_gb``) is
   free, ComfyUI is asked to free its models (``/free``); if still too little is free, it is restarted; if
   still too little, the task fails naming the figures (another process holds the GPU);
5. ``free_after_job``: a task of another job than the last one frees the models first.

Returns the URL the task uses.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import requests

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import ComfyUIError

from .state import GpuState, ServiceUnavailable, WorkerServiceError, read_state, state_path

logger = logging.getLogger(__name__)

GB = 1024 ** 3
CONTROL_TIMEOUT_SECONDS = 5.0
FREE_WAIT_SECONDS = 3.0  # ComfyUI frees models between prompts: an idle one within about a second
RESTART_TIMEOUT_SECONDS = 600.0


class NotReady(WorkerServiceError):
    """The service's ComfyUI cannot take this task (too little GPU memory free even after freeing and a
    restart): the message names the figures and the fix."""


@dataclass
class Prepared:
    url: str
    actions: List[str] = field(default_factory=list)


def prepare(gpu: str, *, state_dir: Path, job: str = "", vram_gb: Optional[float] = None,
            wait_s: float = 0.0) -> Prepared:
    """Check and tidy the service's ComfyUI of ``gpu`` for a task of ``job`` (module docstring). A ComfyUI the
    service is restarting is waited for, up to ``wait_s``."""
    state, client = _answering(gpu, state_dir, wait_s)
    prepared = Prepared(state.url)
    _clear_foreign_queue(client, prepared)
    state = _memory_hygiene(client, state, prepared)
    client = ComfyUIClient(state.url, timeout_s=CONTROL_TIMEOUT_SECONDS)
    last_job = _last_job_path(state_dir, gpu)
    if state.limits.free_after_job and job and _read(last_job) not in ("", job):
        _act(prepared, f"GPU {gpu}: a task of job {job} after job {_read(last_job)}: freeing the models "
                       "(free_after_job)")
        client.free()
    need = vram_gb if vram_gb is not None else state.limits.min_free_vram_gb
    if need:
        state = _ensure_vram(client, state, need, prepared)
    if job:
        last_job.write_text(job, encoding="utf-8")
    prepared.url = state.url
    logger.info("GPU %s: ComfyUI at %s is ready for the task (%s)", gpu, state.url,
                "; ".join(prepared.actions) if prepared.actions else "nothing to tidy")
    return prepared


def inspect(gpu: str, *, state_dir: Path) -> Dict[str, Any]:
    """What the service's ComfyUI of ``gpu`` is like now, changing nothing: its URL, process id, starts,
    resident memory, prompts run and free GPU memory. :class:`ServiceUnavailable` where it does not answer."""
    state, client = _answering(gpu, state_dir, 0.0)
    rss = resident_memory_bytes(state.pid)
    free = _free_vram(client)
    return {"gpu": gpu, "url": state.url, "pid": state.pid, "starts": state.starts,
            "rss_gb": round(rss / GB, 2) if rss is not None else None, "prompts": _prompts_run(client),
            "free_vram_gb": round(free / GB, 1) if free is not None else None, "control_url": state.control_url}


def resident_memory_bytes(pid: int) -> Optional[int]:
    """``pid``'s resident memory (Linux: /proc/<pid>/status VmRSS); None where it cannot be read."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# -- the steps ------------------------------------------------------------------------------------


def _answering(gpu: str, state_dir: Path, wait_s: float) -> Tuple[GpuState, ComfyUIClient]:
    """The state of ``gpu``'s ComfyUI and a client of it, once the service says it runs (waited for up to
    ``wait_s``) and it answers as the one the service started; :class:`ServiceUnavailable` otherwise."""
    state = read_state(state_dir, gpu)
    if state is None:
        raise ServiceUnavailable(f"no comfyfarm service runs a ComfyUI for GPU {gpu} on this machine (no "
                                 f"{state_path(state_dir, gpu)})")
    deadline = time.monotonic() + wait_s
    while True:
        running = (_control_status(state).get("gpus") or {}).get(gpu)
        if not isinstance(running, dict):
            raise ServiceUnavailable(f"the comfyfarm service at {state.control_url} runs no ComfyUI for GPU {gpu}")
        if running.get("running"):
            break
        if time.monotonic() >= deadline:
            waited = f" (still not after {wait_s:g} s)" if wait_s else ""
            raise ServiceUnavailable(f"the comfyfarm service's ComfyUI for GPU {gpu} is not running{waited}")
        time.sleep(0.5)
    state = read_state(state_dir, gpu) or state  # restarted meanwhile: its new process
    client = ComfyUIClient(state.url, timeout_s=CONTROL_TIMEOUT_SECONDS)
    _check_identity(client, state)
    return state, client


def _control_status(state: GpuState) -> Dict[str, Any]:
    try:
        response = _control().get(f"{state.control_url}/status", timeout=CONTROL_TIMEOUT_SECONDS)
        response.raise_for_status()
        status = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ServiceUnavailable(f"the comfyfarm service of GPU {state.gpu} does not answer at "
                                 f"{state.control_url} ({exc})") from exc
    if not isinstance(status, dict):
        raise ServiceUnavailable(f"the comfyfarm service at {state.control_url} answered {status!r}")
    return status


def _check_identity(client: ComfyUIClient, state: GpuState) -> None:
    try:
        argv = client.system_stats().get("system", {}).get("argv") or []
    except ComfyUIError as exc:
        raise ServiceUnavailable(f"the service's ComfyUI for GPU {state.gpu} does not answer at {state.url} "
                                 f"({exc})") from exc
    if str(Path(state.scratch) / "input") not in argv:
        raise ServiceUnavailable(f"the server at {state.url} is not the ComfyUI the service started for GPU "
                                 f"{state.gpu}")


def _clear_foreign_queue(client: ComfyUIClient, prepared: Prepared) -> None:
    queue = client.queue()
    running, pending = queue.get("queue_running") or [], queue.get("queue_pending") or []
    if running or pending:
        _act(prepared, f"cleared {len(running)} running and {len(pending)} queued prompt(s) left by an earlier task")
        client.clear_queue()
        client.interrupt()


def _memory_hygiene(client: ComfyUIClient, state: GpuState, prepared: Prepared) -> GpuState:
    limits = state.limits
    rss = resident_memory_bytes(state.pid)
    prompts = _prompts_run(client)
    if limits.max_rss_gb and rss is not None and rss > limits.max_rss_gb * GB:
        return _restart(state, f"ComfyUI's resident memory is {rss / GB:.2f} GB, over max_rss_gb "
                               f"{limits.max_rss_gb:g}, after {prompts} prompt(s)", prepared)
    if limits.max_prompts and prompts >= limits.max_prompts:
        return _restart(state, f"ComfyUI has run {prompts} prompt(s), max_prompts is {limits.max_prompts}", prepared)
    if rss is not None:
        logger.info("GPU %s: ComfyUI holds %.2f GB resident after %d prompt(s)", state.gpu, rss / GB, prompts)
    return state


def _ensure_vram(client: ComfyUIClient, state: GpuState, need_gb: float, prepared: Prepared) -> GpuState:
    free = _free_vram(client)
    if free is None or free >= need_gb * GB:
        return state
    _act(prepared, f"GPU {state.gpu} has {free / GB:.1f} GB free, the workflow needs {need_gb:g} GB: freeing "
                   "ComfyUI's models")
    client.free()
    deadline = time.monotonic() + FREE_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.5)
        free = _free_vram(client) or 0
        if free >= need_gb * GB:
            return state
    state = _restart(state, f"still only {free / GB:.1f} GB free after freeing the models", prepared)
    free = _free_vram(ComfyUIClient(state.url, timeout_s=CONTROL_TIMEOUT_SECONDS)) or 0
    if free < need_gb * GB:
        raise NotReady(f"GPU {state.gpu} has {free / GB:.1f} GB free with a fresh ComfyUI and the workflow needs "
                       f"{need_gb:g} GB: another process holds the GPU (see nvidia-smi), or send the job to "
                       "Workers with more GPU memory")
    return state


def _restart(state: GpuState, reason: str, prepared: Prepared) -> GpuState:
    _act(prepared, f"GPU {state.gpu}: {reason}: restarting ComfyUI between tasks")
    try:
        response = _control().post(f"{state.control_url}/restart", json={"gpu": state.gpu, "reason": reason},
                                   timeout=RESTART_TIMEOUT_SECONDS)
        answer = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ServiceUnavailable(f"the comfyfarm service at {state.control_url} could not restart ComfyUI "
                                 f"({exc})") from exc
    if response.status_code != 200:
        raise ServiceUnavailable(f"the comfyfarm service could not restart ComfyUI for GPU {state.gpu}: "
                                 f"{answer.get('error', answer)}")
    return GpuState(**{**state.__dict__, "url": answer["url"], "pid": answer["pid"], "starts": answer["starts"]})


# -- helpers ----------------------------------------------------------------------------------------


def _prompts_run(client: ComfyUIClient) -> int:
    """How many prompts ComfyUI has queued since it started: its last prompt's number + 1 (0 for none)."""
    last = client.history(max_items=1)
    numbers = [entry.get("prompt", [None])[0] for entry in last.values() if isinstance(entry, dict)]
    numbers = [number for number in numbers if isinstance(number, (int, float))]
    return int(max(numbers)) + 1 if numbers else 0


def _free_vram(client: ComfyUIClient) -> Optional[int]:
    devices = client.system_stats().get("devices") or []
    values = [device.get("vram_free") for device in devices if isinstance(device, dict)]
    return int(values[0]) if values and isinstance(values[0], (int, float)) else None


def _act(prepared: Prepared, action: str) -> None:
    logger.info("%s", action)
    prepared.actions.append(action)


def _control() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback: never through the studio's proxy
    return session


def _last_job_path(state_dir: Path, gpu: str) -> Path:
    return Path(state_dir) / f"gpu-{gpu}.job"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
