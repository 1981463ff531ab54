"""ComfyUI node definitions (``GET /object_info``), from a live server or saved JSON files.

Two spellings of a combo exist: ``[[option, ...], {...}]`` (classic nodes) and
``["COMBO", {"options": [...]}]`` (V3 nodes, ComfyUI 0.17+). :class:`InputSpec` hides the difference.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from farm_plugin.errors import BadInput

logger = logging.getLogger(__name__)

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
MODEL_FILE_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".gguf", ".onnx", ".pkl")


class ObjectInfoError(BadInput):
    """Node definitions cannot be read: the message names the file or server and the fix."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # "INT", "IMAGE", "COMBO", … ("*" accepts anything)
    required: bool
    options: Optional[Tuple[Any, ...]] = None  # combo choices
    min: Optional[float] = None
    max: Optional[float] = None

    @property
    def is_combo(self) -> bool:
        return self.options is not None

    @property
    def is_widget(self) -> bool:
        """Whether a literal value is allowed (otherwise it must be a link)."""
        return self.is_combo or self.type in WIDGET_TYPES


@dataclass(frozen=True)
class NodeDefinition:
    class_type: str
    inputs: Tuple[InputSpec, ...]
    outputs: Tuple[str, ...]
    output_node: bool
    python_module: str = ""

    def input(self, name: str) -> Optional[InputSpec]:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None


def _parse_input(name: str, raw: Any, required: bool) -> InputSpec:
    if not isinstance(raw, (list, tuple)) or not raw:
        return InputSpec(name=name, type="*", required=required)
    head = raw[0]
    options: Dict[str, Any] = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
    if isinstance(head, list):
        return InputSpec(name=name, type="COMBO", required=required, options=tuple(head))
    if head == "COMBO":
        return InputSpec(name=name, type="COMBO", required=required, options=tuple(options.get("options") or ()))
    return InputSpec(
        name=name,
        type=str(head),
        required=required,
        min=options.get("min") if isinstance(options.get("min"), (int, float)) else None,
        max=options.get("max") if isinstance(options.get("max"), (int, float)) else None,
    )


def parse_definition(class_type: str, raw: Mapping[str, Any]) -> NodeDefinition:
    inputs: List[InputSpec] = []
    sections = raw.get("input") or {}
    for section, required in (("required", True), ("optional", False)):
        for name, spec in (sections.get(section) or {}).items():
            inputs.append(_parse_input(name, spec, required))
    return NodeDefinition(
        class_type=class_type,
        inputs=tuple(inputs),
        outputs=tuple(str(t) if not isinstance(t, list) else "COMBO" for t in raw.get("output") or ()),
        output_node=bool(raw.get("output_node")),
        python_module=str(raw.get("python_module") or ""),
    )


@dataclass(frozen=True)
class NodeDefinitions:
    """Every node class a ComfyUI knows. ``live`` is True when read from a running server, whose
    combo lists of model files are the files really installed (recorded files list none)."""

    definitions: Mapping[str, NodeDefinition]
    source: str
    live: bool = False

    def get(self, class_type: str) -> Optional[NodeDefinition]:
        return self.definitions.get(class_type)

    def __contains__(self, class_type: object) -> bool:
        return class_type in self.definitions

    def __len__(self) -> int:
        return len(self.definitions)


def definitions_from_answer(answer: Mapping[str, Any], *, source: str, live: bool) -> NodeDefinitions:
    """Node definitions from one ``/object_info`` answer (class name → raw entry)."""
    parsed = {
        name: parse_definition(name, raw)
        for name, raw in answer.items()
        if isinstance(raw, Mapping) and "input" in raw
    }
    return NodeDefinitions(definitions=parsed, source=source, live=live)


def _answer_from_file(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not text at all (UnicodeDecodeError)
        raise ObjectInfoError(f"{path}: cannot read node definitions ({exc}): save ComfyUI's /object_info answer "
                              "there, as JSON") from exc
    # A saved capture wraps the answer ({"url": …, "json": {...}}): accept it too.
    if isinstance(data, dict) and isinstance(data.get("json"), dict) and "url" in data:
        data = data["json"]
    if not isinstance(data, dict):
        raise ObjectInfoError(f"{path}: expected a /object_info answer (an object of node classes)")
    return data


def load_definitions(paths: Iterable[str | Path]) -> NodeDefinitions:
    """Merge node definitions from JSON files and folders (every ``*.json`` in a folder, sorted)."""
    merged: Dict[str, Any] = {}
    sources = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise ObjectInfoError(f"{path}: no .json files: save ComfyUI's /object_info answer there")
        elif path.is_file():
            files = [path]
        else:
            raise ObjectInfoError(f"{path}: no such file or folder for --object-info")
        for file in files:
            merged.update(_answer_from_file(file))
        sources.append(str(path))
    definitions = definitions_from_answer(merged, source=", ".join(sources), live=False)
    logger.debug("loaded %d node definitions from %s", len(definitions), definitions.source)
    return definitions


def looks_like_model_input(spec: InputSpec, value: Any) -> bool:
    """Whether a combo input picks a model file (so a missing value means a missing model)."""
    if isinstance(value, str) and value.lower().endswith(MODEL_FILE_EXTENSIONS):
        return True
    options = spec.options or ()
    return any(isinstance(o, str) and o.lower().endswith(MODEL_FILE_EXTENSIONS) for o in options)
