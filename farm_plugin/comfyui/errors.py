"""Typed errors for everything that can go wrong with a ComfyUI server.

ComfyUIError is one category under :class:`farm_plugin.errors.ComfyfarmError` (exit 1 on the command line);
a bad address is bad input as well (exit 2)::

    ComfyUIError
    ├── ComfyUIAddressError     a URL that is no http(s) address (``localhost:8188``); also BadInput
    ├── ComfyUIUnreachable      nothing answers at the URL (not started, wrong port, died)
    ├── ComfyUITimeout          a wait ran past its deadline
    ├── ComfyUIProtocolError    an answer that is not what ComfyUI's API documents (500 text, bad JSON)
    ├── PromptValidationError   POST /prompt refused the graph (carries ``node_errors``)
    ├── PromptExecutionError    a node raised while the prompt ran (node id, class, exception text)
    ├── PromptInterrupted       the prompt was interrupted (POST /interrupt, or cancel)
    ├── ConnectionLost          the WebSocket dropped while prompts were still running
    ├── OutputMissing           ComfyUI reported an output file that it cannot serve
    └── ComfyUIStartError       a managed server did not become healthy (carries its log tail)
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from farm_plugin.errors import BadInput, ComfyfarmError


class ComfyUIError(ComfyfarmError):
    """Base of every ComfyUI error."""


class ComfyUIAddressError(ComfyUIError, BadInput):
    """A ComfyUI URL that is not an http(s) address with a host: the message says how to write it."""


class ComfyUIUnreachable(ComfyUIError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"ComfyUI is not reachable at {url} ({reason}): start it, or check the URL and port"
        )


class ComfyUITimeout(ComfyUIError):
    def __init__(self, what: str, timeout_s: float) -> None:
        self.what = what
        self.timeout_s = timeout_s
        super().__init__(f"timed out after {timeout_s:g} s {what}")


class ComfyUIProtocolError(ComfyUIError):
    def __init__(self, message: str, *, status: Optional[int] = None, body: str = "") -> None:
        self.status = status
        self.body = body
        super().__init__(message)


def _describe_node_errors(node_errors: Mapping[str, Any]) -> List[str]:
    lines = []
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type", "?") if isinstance(entry, dict) else "?"
        errors = entry.get("errors", []) if isinstance(entry, dict) else []
        for error in errors:
            details = error.get("details") or ""
            lines.append(
                f"node {node_id} ({class_type}): {error.get('message', '')}"
                + (f": {details}" if details else "")
                + f" [{error.get('type', '')}]"
            )
    return lines


class PromptValidationError(ComfyUIError):
    """ComfyUI refused the prompt (HTTP 400): ``error`` and ``node_errors`` as ComfyUI sent them."""

    def __init__(self, error: Mapping[str, Any], node_errors: Mapping[str, Any]) -> None:
        self.error = dict(error)
        self.node_errors = dict(node_errors)
        self.type = str(self.error.get("type", ""))
        lines = _describe_node_errors(self.node_errors)
        head = f"ComfyUI refused the prompt: {self.error.get('message', '')}"
        details = self.error.get("details")
        if details and not lines:
            head += f": {details}"
        super().__init__("\n".join([head + f" [{self.type}]"] + ["  " + line for line in lines]))


class PromptExecutionError(ComfyUIError):
    """A node raised while the prompt ran: ComfyUI's ``execution_error`` message."""

    def __init__(
        self,
        prompt_id: str,
        *,
        node_id: str,
        node_type: str,
        exception_type: str,
        exception_message: str,
        traceback: Sequence[str] = (),
    ) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message
        self.traceback = list(traceback)
        super().__init__(
            f"ComfyUI node {node_id} ({node_type}) failed: {exception_type}: {exception_message.strip()}"
        )

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> PromptExecutionError:
        return cls(
            str(data.get("prompt_id", "")),
            node_id=str(data.get("node_id", "?")),
            node_type=str(data.get("node_type", "?")),
            exception_type=str(data.get("exception_type", "Exception")),
            exception_message=str(data.get("exception_message", "")),
            traceback=data.get("traceback") or (),
        )


class PromptInterrupted(ComfyUIError):
    def __init__(self, prompt_id: str, node_id: Optional[str] = None) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        where = f" at node {node_id}" if node_id else ""
        super().__init__(f"ComfyUI prompt {prompt_id} was interrupted{where}")


class ConnectionLost(ComfyUIError):
    """The WebSocket dropped with prompts still pending: ComfyUI probably died."""

    def __init__(self, url: str, pending: Sequence[str], reason: str, finished: Optional[Dict[str, Any]] = None):
        self.url = url
        self.pending = list(pending)
        self.finished = dict(finished or {})
        super().__init__(
            f"lost the connection to ComfyUI at {url} with {len(self.pending)} prompt(s) unfinished "
            f"({reason}): ComfyUI probably stopped or crashed; see its log"
        )


class OutputMissing(ComfyUIError):
    def __init__(self, filename: str, subfolder: str, kind: str) -> None:
        self.filename = filename
        super().__init__(
            f"ComfyUI reported output '{subfolder + '/' if subfolder else ''}{filename}' ({kind}) but cannot "
            "serve it: its output folder was cleaned while the result was cached; resubmit with a new prefix"
        )


class ComfyUIStartError(ComfyUIError):
    def __init__(self, message: str, log_tail: Sequence[str] = ()) -> None:
        self.log_tail = list(log_tail)
        text = message
        if self.log_tail:
            text += "\nlast lines of ComfyUI's log:\n" + "\n".join("  " + line for line in self.log_tail)
        super().__init__(text)
