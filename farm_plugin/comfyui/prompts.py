"""A prompt as ComfyUI's API describes it: queued, its events, the files it wrote and how it ended.

Plain data, shared by the HTTP client (``client``, which queues prompts) and the WebSocket session
(``events``, which follows them), so that neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from farm_plugin.comfyui.errors import ComfyUIError


@dataclass(frozen=True)
class QueuedPrompt:
    prompt_id: str
    number: int
    node_errors: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputFile:
    """A file ComfyUI wrote, as ``executed`` messages and ``/history`` name it.

    Core nodes name a file in ComfyUI's output folder (``filename``, ``subfolder``, ``type``), served by
    ``/view``; comfyfarm's ``ComfyFarmSaveFrames`` names it by its absolute ``path`` on ComfyUI's machine,
    with its ``pass_name`` (farm_plugin/ComfyUINodes/comfyfarm_frames).
    """

    filename: str
    subfolder: str = ""
    type: str = "output"
    path: str = ""
    pass_name: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputFile:
        path = str(data.get("path", ""))
        return cls(str(data.get("filename", "") or path.rsplit("/", 1)[-1]), str(data.get("subfolder", "")),
                   str(data.get("type", "output")), path, str(data.get("pass", "")))


@dataclass(frozen=True)
class PromptEvent:
    """Something that happened to one prompt. ``kind``: started, cached, executing, progress, executed,
    finished. ``node`` and ``class_type`` for node events; ``value``/``max`` for progress."""

    kind: str
    prompt_id: str
    node: Optional[str] = None
    class_type: Optional[str] = None
    value: Optional[int] = None
    max: Optional[int] = None


EventCallback = Callable[[PromptEvent], None]


@dataclass
class PromptResult:
    """How one prompt ended: ``success``, ``error`` or ``interrupted``, with its outputs per node."""

    prompt_id: str
    status: str = "pending"
    outputs: Dict[str, List[OutputFile]] = field(default_factory=dict)
    cached_nodes: Tuple[str, ...] = ()
    start_ms: Optional[int] = None
    end_ms: Optional[int] = None
    error: Optional[ComfyUIError] = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def busy_seconds(self) -> Optional[float]:
        """ComfyUI's own execution time for this prompt, from its message timestamps."""
        if self.start_ms is None or self.end_ms is None:
            return None
        return (self.end_ms - self.start_ms) / 1000.0

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise self.error

    def output_files(self, node: Optional[str] = None) -> List[OutputFile]:
        if node is not None:
            return list(self.outputs.get(node, []))
        return [f for files in self.outputs.values() for f in files]
