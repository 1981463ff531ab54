"""A client for ComfyUI's HTTP + WebSocket API (as recorded in shared/reference/comfyui).

Prompts are followed on the WebSocket to ``execution_success`` / ``execution_error`` /
``execution_interrupted``; nothing sleep-polls ``/history``. Open a :class:`PromptSession` *before*
submitting so that no event is missed: each session has its own client id, because a second socket with
the same client id silently takes the events over from the first.

    client = ComfyUIClient("http://127.0.0.1:8188")
    with client.session() as session:
        ids = [session.submit(graph) for graph in graphs]
        for result in session.results(ids, idle_timeout_s=600):
            ...
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import requests

from farm_plugin.comfyui.errors import (
    ComfyUIAddressError,
    ComfyUIProtocolError,
    ComfyUITimeout,
    ComfyUIUnreachable,
    OutputMissing,
    PromptValidationError,
)
from farm_plugin.comfyui.events import PromptSession
from farm_plugin.comfyui.prompts import EventCallback, OutputFile, PromptResult, QueuedPrompt
from farm_plugin.web_address import http_address_problem

logger = logging.getLogger(__name__)

DEFAULT_HTTP_TIMEOUT_SECONDS = 30.0
UPLOAD_TIMEOUT_SECONDS = 120.0


def check_address(url: str) -> None:
    """Raise ComfyUIAddressError unless ``url`` is an http(s) address with a host (and a valid port)."""
    problem = http_address_problem(url, example="http://127.0.0.1:8188")
    if problem:
        raise ComfyUIAddressError(f"ComfyUI address {problem}")


class ComfyUIClient:
    """HTTP calls to one ComfyUI server. Every call has a timeout; errors are typed (see errors.py)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
        http: Optional[requests.Session] = None,
    ) -> None:
        check_address(base_url)
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        if http is None:
            http = requests.Session()
            http.trust_env = False  # a worker's ComfyUI is on loopback: never through the studio's proxy
        self._http = http

    def __repr__(self) -> str:
        return f"ComfyUIClient({self.base_url!r})"

    @property
    def websocket_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/ws"

    # -- plumbing ---------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, timeout_s: Optional[float] = None, **kwargs: Any
    ) -> requests.Response:
        url = f"{self.base_url}{path}"
        timeout = timeout_s or self.timeout_s
        try:
            response = self._http.request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            # also a connection that drops while the answer is read (ComfyUI died mid-/view): not a disk problem
            raise ComfyUIUnreachable(self.base_url, _reason(exc)) from exc
        except requests.Timeout as exc:
            raise ComfyUITimeout(f"waiting for ComfyUI to answer {method} {path}", timeout) from exc
        logger.debug("%s %s -> %s", method, path, response.status_code)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise _unexpected(method, path, response)
        try:
            return response.json()
        except ValueError as exc:
            raise ComfyUIProtocolError(
                f"ComfyUI answered {method} {path} with something that is not JSON: {response.text[:200]!r}",
                status=response.status_code,
                body=response.text,
            ) from exc

    def _post_empty(self, path: str, payload: Mapping[str, Any]) -> None:
        response = self._request("POST", path, json=dict(payload))
        if response.status_code != 200:
            raise _unexpected("POST", path, response)

    # -- reading ----------------------------------------------------------------------------------

    def system_stats(self) -> Dict[str, Any]:
        return self._json("GET", "/system_stats")

    def is_healthy(self, timeout_s: float = 2.0) -> bool:
        """Whether ComfyUI answers ``/system_stats`` now (no exception: for start-up checks)."""
        try:
            response = self._http.get(f"{self.base_url}/system_stats", timeout=timeout_s)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def object_info(self, class_type: Optional[str] = None) -> Dict[str, Any]:
        """Node definitions; for one unknown class ComfyUI answers ``{}``, and so does this."""
        path = "/object_info" if class_type is None else f"/object_info/{class_type}"
        return self._json("GET", path, timeout_s=max(self.timeout_s, 60.0))

    def queue(self) -> Dict[str, List[Any]]:
        return self._json("GET", "/queue")

    def queue_remaining(self) -> int:
        return int(self._json("GET", "/prompt")["exec_info"]["queue_remaining"])

    def history(self, prompt_id: Optional[str] = None, *, max_items: Optional[int] = None) -> Dict[str, Any]:
        """``/history`` or one entry; an unknown id gives ``{}`` (ComfyUI answers 200 ``{}``)."""
        if prompt_id is not None:
            return self._json("GET", f"/history/{prompt_id}")
        params = {"max_items": max_items} if max_items else None
        return self._json("GET", "/history", params=params)

    # -- acting -----------------------------------------------------------------------------------

    def submit(
        self,
        graph: Mapping[str, Any],
        *,
        client_id: Optional[str] = None,
        prompt_id: Optional[str] = None,
        front: bool = False,
        extra_data: Optional[Mapping[str, Any]] = None,
    ) -> QueuedPrompt:
        """Queue ``graph``. Without ``client_id`` ComfyUI sends no execution events for it."""
        body: Dict[str, Any] = {"prompt": dict(graph) if isinstance(graph, Mapping) else graph}
        if client_id:
            body["client_id"] = client_id
        if prompt_id:
            body["prompt_id"] = prompt_id
        if front:
            body["front"] = True
        if extra_data:
            body["extra_data"] = dict(extra_data)
        response = self._request("POST", "/prompt", data=json.dumps(body), headers={"Content-Type": "application/json"})
        answer = _json_or_none(response)
        if response.status_code == 400 and isinstance(answer, dict) and "error" in answer:
            raise PromptValidationError(answer.get("error") or {}, answer.get("node_errors") or {})
        if response.status_code != 200 or not isinstance(answer, dict) or "prompt_id" not in answer:
            raise _unexpected("POST", "/prompt", response)
        queued = QueuedPrompt(str(answer["prompt_id"]), int(answer.get("number", 0)), answer.get("node_errors") or {})
        logger.debug("queued prompt %s (number %d)", queued.prompt_id, queued.number)
        return queued

    def upload_image(
        self,
        source: str | Path | bytes,
        *,
        name: Optional[str] = None,
        subfolder: str = "",
        overwrite: bool = True,
        kind: str = "input",
    ) -> OutputFile:
        """Upload an image into ComfyUI's input folder; returns the name ComfyUI stored it under."""
        if isinstance(source, (str, Path)):
            data = Path(source).read_bytes()
            name = name or Path(source).name
        else:
            data = source
        if not name:
            raise ValueError("upload_image needs a name when given bytes")
        fields = {"overwrite": "true" if overwrite else "false", "subfolder": subfolder, "type": kind}
        response = self._request(
            "POST",
            "/upload/image",
            files={"image": (name, data, "application/octet-stream")},
            data=fields,
            timeout_s=UPLOAD_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise _unexpected("POST", "/upload/image", response)
        answer = _json_or_none(response)
        if not isinstance(answer, dict) or "name" not in answer:
            raise _unexpected("POST", "/upload/image", response)
        return OutputFile(str(answer["name"]), str(answer.get("subfolder", "")), str(answer.get("type", kind)))

    def view(self, output: OutputFile) -> bytes:
        """The bytes of a file ComfyUI wrote."""
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        response = self._request("GET", "/view", params=params, timeout_s=UPLOAD_TIMEOUT_SECONDS)
        if response.status_code == 404:
            raise OutputMissing(output.filename, output.subfolder, output.type)
        if response.status_code != 200:
            raise _unexpected("GET", "/view", response)
        return response.content

    def interrupt(self, prompt_id: Optional[str] = None) -> None:
        """Interrupt the running prompt (only if it is ``prompt_id``, when given)."""
        self._post_empty("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def delete_queued(self, prompt_ids: Sequence[str]) -> None:
        """Remove pending prompts from the queue (the running one is not affected)."""
        if prompt_ids:
            self._post_empty("/queue", {"delete": list(prompt_ids)})

    def clear_queue(self) -> None:
        self._post_empty("/queue", {"clear": True})

    def free(self, *, unload_models: bool = True, free_memory: bool = True) -> None:
        self._post_empty("/free", {"unload_models": unload_models, "free_memory": free_memory})

    def session(
        self, *, connect_timeout_s: float = 10.0, on_event: Optional[EventCallback] = None
    ) -> PromptSession:
        """A WebSocket session with a fresh client id; use it as a context manager."""
        return PromptSession(self, client_id=uuid.uuid4().hex, connect_timeout_s=connect_timeout_s,
                             on_event=on_event)

    def run(self, graph: Mapping[str, Any], *, idle_timeout_s: float = 600.0) -> PromptResult:
        """Submit one prompt and wait for its end; raises if it failed."""
        with self.session() as session:
            prompt_id = session.submit(graph).prompt_id
            (result,) = list(session.results([prompt_id], idle_timeout_s=idle_timeout_s))
        result.raise_for_status()
        return result

    def download_outputs(self, result: PromptResult, destination: str | Path) -> List[Path]:
        """Save every output file of ``result`` into ``destination``; returns the paths in order."""
        folder = Path(destination)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for output in result.output_files():
            path = folder / Path(output.filename).name
            path.write_bytes(self.view(output))
            written.append(path)
        return written


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _unexpected(method: str, path: str, response: requests.Response) -> ComfyUIProtocolError:
    text = response.text.strip()
    return ComfyUIProtocolError(
        f"ComfyUI answered {method} {path} with HTTP {response.status_code}: {text[:300] or '(empty body)'}",
        status=response.status_code,
        body=response.text,
    )

