"""Following prompts on ComfyUI's WebSocket: sessions, events and results.

ComfyUI's message order for one prompt (shared/reference/comfyui/README.md §3): ``execution_start``,
``execution_cached``, ``executing`` per node, ``progress``, ``executed`` per output node,
``execution_success`` (or ``execution_error`` / ``execution_interrupted``), ``status``, then
``executing{node: null}``. The end of a prompt is its ``execution_*`` message; ``status`` is no sign of
anything. A cached resubmit re-sends ``executed`` with the old file names and writes no new file.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Set

import websocket

from farm_plugin.comfyui.errors import (
    ComfyUIError,
    ComfyUITimeout,
    ComfyUIUnreachable,
    ConnectionLost,
    PromptExecutionError,
    PromptInterrupted,
)
from farm_plugin.comfyui.prompts import EventCallback, OutputFile, PromptEvent, PromptResult, QueuedPrompt

logger = logging.getLogger(__name__)

STOP_CHECK_INTERVAL_SECONDS = 0.25
_NOTHING = object()  # no frame arrived within the wait


class PromptClient(Protocol):
    """What a session needs of a client (:class:`~farm_plugin.comfyui.client.ComfyUIClient` is one)."""

    base_url: str

    @property
    def websocket_url(self) -> str: ...

    def submit(self, graph: Mapping[str, Any], *, client_id: Optional[str] = None,
               prompt_id: Optional[str] = None) -> QueuedPrompt: ...

    def history(self, prompt_id: Optional[str] = None) -> Dict[str, Any]: ...


def _files_of(output: Mapping[str, Any]) -> List[OutputFile]:
    files: List[OutputFile] = []
    for value in output.values():  # "images", "gifs", "videos", … : lists of {filename, subfolder, type};
        if isinstance(value, list):  # comfyfarm's "comfyfarm_frames": lists of {path, pass, …}
            files.extend(OutputFile.from_dict(v) for v in value
                         if isinstance(v, dict) and ("filename" in v or "path" in v))
    return files


class PromptSession:
    """One WebSocket with its own client id, and the prompts submitted through it."""

    def __init__(
        self,
        client: PromptClient,
        *,
        client_id: str,
        connect_timeout_s: float = 10.0,
        on_event: Optional[EventCallback] = None,
    ) -> None:
        self.client = client
        self.client_id = client_id
        self.connect_timeout_s = connect_timeout_s
        self.on_event = on_event
        self._socket: Optional[websocket.WebSocket] = None
        self._results: Dict[str, PromptResult] = {}
        self._graphs: Dict[str, Mapping[str, Any]] = {}
        self._yielded: Set[str] = set()

    def __enter__(self) -> PromptSession:
        self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def connect(self) -> None:
        url = f"{self.client.websocket_url}?clientId={self.client_id}"
        try:
            self._socket = websocket.create_connection(
                url, timeout=self.connect_timeout_s, skip_utf8_validation=True, enable_multithread=False
            )
        except (OSError, websocket.WebSocketException) as exc:
            raise ComfyUIUnreachable(self.client.base_url, f"WebSocket: {exc}") from exc
        logger.debug("WebSocket open to %s as %s", self.client.websocket_url, self.client_id)

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close(timeout=1)
            except (OSError, websocket.WebSocketException):
                pass
            self._socket = None

    def submit(self, graph: Mapping[str, Any], *, prompt_id: Optional[str] = None) -> QueuedPrompt:
        """Queue ``graph`` under this session's client id, so that its events come to this socket."""
        if self._socket is None:
            raise RuntimeError("connect the session (use it as a context manager) before submitting")
        queued = self.client.submit(graph, client_id=self.client_id, prompt_id=prompt_id)
        self._results.setdefault(queued.prompt_id, PromptResult(queued.prompt_id))
        self._graphs[queued.prompt_id] = graph
        return queued

    def results(
        self,
        prompt_ids: Sequence[str],
        *,
        idle_timeout_s: float = 600.0,
        timeout_s: Optional[float] = None,
        should_stop: Optional[Callable[[], bool]] = None,
    ) -> Iterator[PromptResult]:
        """Yield each prompt's result as it ends, in the order they end.

        ``idle_timeout_s`` bounds the silence between two messages; ``timeout_s`` the whole wait.
        Raises :class:`ConnectionLost` if the socket drops with prompts unfinished, and
        :class:`ComfyUITimeout` when a bound runs out. Failed prompts are yielded, not raised.
        ``should_stop`` is asked a few times a second; when it answers True the iteration ends early.
        """
        wanted = [pid for pid in prompt_ids if pid not in self._yielded]
        for pid in wanted:
            self._results.setdefault(pid, PromptResult(pid))
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last_message = time.monotonic()
        while True:
            for pid in wanted:
                if pid not in self._yielded and self._results[pid].status != "pending":
                    self._yielded.add(pid)
                    yield self._results[pid]
            pending = [pid for pid in wanted if pid not in self._yielded]
            if not pending or (should_stop is not None and should_stop()):
                return
            now = time.monotonic()
            if now - last_message >= idle_timeout_s:
                raise ComfyUITimeout(
                    f"waiting for {len(pending)} ComfyUI prompt(s): no message for {idle_timeout_s:g} s "
                    "(ComfyUI hung, or another connection took over this client id)",
                    idle_timeout_s,
                )
            if deadline is not None and now >= deadline:
                raise ComfyUITimeout(f"waiting for {len(pending)} ComfyUI prompt(s) to finish", timeout_s or 0)
            wait_s = idle_timeout_s - (now - last_message)
            if deadline is not None:
                wait_s = min(wait_s, deadline - now)
            if should_stop is not None:
                wait_s = min(wait_s, STOP_CHECK_INTERVAL_SECONDS)
            message = self._receive(wait_s, pending)
            if message is not _NOTHING:
                last_message = time.monotonic()
                self._handle(message)

    def _receive(self, wait_s: float, pending: List[str]) -> Any:
        assert self._socket is not None, "session is not connected"
        self._socket.settimeout(max(wait_s, 0.001))
        try:
            frame = self._socket.recv()
        except websocket.WebSocketTimeoutException:
            return _NOTHING
        except (websocket.WebSocketConnectionClosedException, OSError) as exc:
            finished = {pid: r for pid, r in self._results.items() if r.status != "pending"}
            raise ConnectionLost(self.client.base_url, pending, str(exc) or type(exc).__name__, finished) from exc
        if isinstance(frame, bytes):
            return None  # previews (SaveImageWebsocket, latent previews): not used
        if frame == "":
            finished = {pid: r for pid, r in self._results.items() if r.status != "pending"}
            raise ConnectionLost(self.client.base_url, pending, "connection closed", finished)
        try:
            return json.loads(frame)
        except ValueError:
            logger.warning("ComfyUI sent a WebSocket text frame that is not JSON: %.200r", frame)
            return None

    def _emit(self, event: PromptEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _class_of(self, prompt_id: str, node: Optional[str]) -> Optional[str]:
        node_def = self._graphs.get(prompt_id, {}).get(node) if node is not None else None
        return node_def.get("class_type") if isinstance(node_def, Mapping) else None

    def _handle(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        data = message.get("data") or {}
        prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
        if not isinstance(prompt_id, str):
            return
        result = self._results.get(prompt_id)
        if result is None or result.status != "pending":
            return
        node = data.get("node")
        if kind == "execution_start":
            result.start_ms = data.get("timestamp")
            self._emit(PromptEvent("started", prompt_id))
        elif kind == "execution_cached":
            result.cached_nodes = tuple(str(n) for n in data.get("nodes") or ())
            self._emit(PromptEvent("cached", prompt_id))
        elif kind == "executing" and node is not None:
            self._emit(PromptEvent("executing", prompt_id, str(node), self._class_of(prompt_id, node)))
        elif kind == "progress":
            self._emit(PromptEvent("progress", prompt_id, str(node), self._class_of(prompt_id, node),
                                   data.get("value"), data.get("max")))
        elif kind == "executed":
            result.outputs[str(node)] = _files_of(data.get("output") or {})
            self._emit(PromptEvent("executed", prompt_id, str(node), self._class_of(prompt_id, node)))
        elif kind == "execution_success":
            self._finish(result, "success", data)
        elif kind == "execution_error":
            self._finish(result, "error", data, PromptExecutionError.from_message(data))
        elif kind == "execution_interrupted":
            self._finish(result, "interrupted", data, PromptInterrupted(prompt_id, data.get("node_id")))
        elif kind == "executing" and node is None:
            self._finish_from_history(result)

    def _finish(self, result: PromptResult, status: str, data: Mapping[str, Any],
                error: Optional[ComfyUIError] = None) -> None:
        result.status = status
        result.end_ms = data.get("timestamp")
        result.error = error
        logger.debug("prompt %s ended: %s", result.prompt_id, status)
        self._emit(PromptEvent("finished", result.prompt_id))

    def _finish_from_history(self, result: PromptResult) -> None:
        """``executing null`` without an ``execution_*`` message (older ComfyUI): ask /history."""
        entry = self.client.history(result.prompt_id).get(result.prompt_id) or {}
        status = entry.get("status") or {}
        for node, output in (entry.get("outputs") or {}).items():
            result.outputs.setdefault(str(node), _files_of(output))
        if status.get("status_str") == "success":
            self._finish(result, "success", {})
            return
        for event, data in status.get("messages") or []:
            if event == "execution_error":
                self._finish(result, "error", data, PromptExecutionError.from_message(data))
                return
            if event == "execution_interrupted":
                self._finish(result, "interrupted", data, PromptInterrupted(result.prompt_id, data.get("node_id")))
                return
        self._finish(result, "error", {}, ComfyUIError(f"ComfyUI prompt {result.prompt_id} ended without success"))
