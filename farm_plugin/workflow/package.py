"""The workflow package: a typed model of ``workflow.yaml`` and its loader.

A package is a folder with ``workflow.json`` (ComfyUI API format) and ``workflow.yaml`` (the manifest).
The manifest says what the farm needs and ComfyUI does not: which node takes the frames and which writes
them, the parameters an artist may set, the mode (``per_frame`` or ``sequence``) and what a worker needs.

Structural mistakes (missing keys, wrong types) raise :class:`WorkflowPackageError` naming the file, the
key and the fix. Whether the manifest agrees with the graph and with ComfyUI's node definitions is the
validator's job (:mod:`farm_plugin.workflow.validate`), which reports every problem at once.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from farm_plugin.errors import BadInput
from farm_plugin.frames.retime import RetimeError, ratio_steps
from farm_plugin.workflow.graph import Graph
from farm_plugin.yaml_text import yaml_error_text

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA = 1
MODES = ("per_frame", "sequence")
PARAMETER_TYPES = ("int", "float", "bool", "string", "choice")
BLEND_MODES = ("none", "crossfade")
DEFAULT_PASS = "result"  # the one pass of a manifest that says ``output:``
PASS_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class WorkflowPackageError(BadInput):
    """A workflow package cannot be read: the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Binding:
    """Where the frames go in (``input``) or come out (``output``): a node id and, for inputs, its input."""

    node: str
    input: Optional[str] = None


@dataclass(frozen=True)
class Link:
    """One output of one node: ``["3", 1]`` in workflow.json."""

    node: str
    output: int


@dataclass(frozen=True)
class OutputBinding(Binding):
    """One pass of the results: its name, the node that saves it (and its file-name input), the MASK that
    becomes its alpha, if any, and whether it is data (depth, normals, AO: values, not colour), written as the
    workflow gives them, without the colour conversion back to the plate's space."""

    name: str = DEFAULT_PASS
    alpha: Optional[Link] = None
    data: bool = False


@dataclass(frozen=True)
class Parameter:
    """A value an artist may set, mapped onto one input of one node."""

    key: str
    node: str
    input: str
    type: str
    default: Any
    label: str
    description: str = ""
    min: Optional[float] = None
    max: Optional[float] = None
    step: Optional[float] = None
    choices: Tuple[Any, ...] = ()


@dataclass(frozen=True)
class ModelRequirement:
    """A model file a worker must have, by the name the node looks for and the ComfyUI models folder."""

    name: str
    folder: str = ""


@dataclass(frozen=True)
class Requirements:
    nodes: Tuple[str, ...] = ()
    models: Tuple[ModelRequirement, ...] = ()
    packs: Tuple[str, ...] = ()
    vram_gb: Optional[float] = None  # GPU memory the workflow needs free (a Worker's service checks it)
    model_family: str = ""  # the models it loads, for scheduling ("flux", "sdxl", "depth"...: lower-case, no space)


@dataclass(frozen=True)
class SequenceSettings:
    """Temporal settings: window length in frames, handle frames each side, frame-count ratio, blending."""

    context_frames: int
    overlap_frames: int = 0
    ratio: float = 1.0
    blend: str = "none"
    oom_context_frames: Optional[int] = None  # a window that runs out of GPU memory is retried once this long


@dataclass(frozen=True)
class WorkflowPackage:
    name: str
    path: Path
    title: str
    description: str
    category: str
    mode: str
    graph: Graph
    input: Binding
    outputs: Tuple[OutputBinding, ...]
    parameters: Tuple[Parameter, ...] = ()
    requirements: Requirements = field(default_factory=Requirements)
    sequence: Optional[SequenceSettings] = None
    template: str = "default"
    notes: str = ""

    @property
    def output(self) -> OutputBinding:
        """The first pass (the only one of most workflows)."""
        return self.outputs[0]

    @property
    def manifest_path(self) -> Path:
        return self.path / "workflow.yaml"

    @property
    def graph_path(self) -> Path:
        return self.path / "workflow.json"

    def parameter(self, key: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.key == key:
                return parameter
        known = ", ".join(p.key for p in self.parameters) or "none"
        raise KeyError(f"workflow '{self.name}' has no parameter '{key}' (its parameters: {known})")


class _Reader:
    """Reads typed values out of the manifest mapping, with errors that name the file and the key."""

    def __init__(self, manifest_path: Path) -> None:
        self.path = manifest_path

    def fail(self, key: str, message: str) -> WorkflowPackageError:
        return WorkflowPackageError(f"{self.path}: {key}: {message}")

    def mapping(self, data: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(key, f"expected a mapping (key: value lines), got {type(data).__name__}")
        return data

    def text(self, data: Mapping[str, Any], key: str, where: str, default: Optional[str] = None) -> str:
        value = data.get(key, default)
        if value is None:
            raise self.fail(f"{where}{key}", "is required: add it to the manifest")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(f"{where}{key}", f"expected text, got {value!r}")
        return str(value)

    def number(self, data: Mapping[str, Any], key: str, where: str) -> Optional[float]:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{where}{key}", f"expected a number, got {value!r}")
        return value

    def frames(self, data: Mapping[str, Any], key: str, where: str, default: Optional[int] = None) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where}{key}", f"expected a whole number of frames, got {value!r}")
        return value

    def names(self, data: Mapping[str, Any], key: str, where: str) -> Tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}{key}", f"expected a list of names, got {value!r}")
        return tuple(value)


def load_package(path: str | Path) -> WorkflowPackage:
    """Load the package in folder ``path`` (or the folder of a ``workflow.yaml``/``workflow.json``)."""
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    manifest_path = folder / "workflow.yaml"
    graph_path = folder / "workflow.json"
    for required in (manifest_path, graph_path):
        if not required.is_file():
            raise WorkflowPackageError(
                f"{folder}: no {required.name}: a workflow package is a folder with workflow.json "
                "(ComfyUI API format, 'Export (API)' in ComfyUI) and workflow.yaml (the manifest)"
            )
    graph = _load_graph(graph_path)
    reader = _Reader(manifest_path)
    try:
        raw = yaml.safe_load(_read_text(manifest_path))
    except yaml.YAMLError as exc:
        raise WorkflowPackageError(f"{manifest_path}: not valid YAML ({yaml_error_text(exc)}): fix that line") from exc
    data = reader.mapping(raw, "(top level)")
    schema = data.get("schema", MANIFEST_SCHEMA)
    if schema != MANIFEST_SCHEMA:
        raise reader.fail("schema", f"version {schema!r} is not supported: this comfyfarm reads {MANIFEST_SCHEMA}")
    mode = reader.text(data, "mode", "", default="per_frame")
    if mode not in MODES:
        raise reader.fail("mode", f"'{mode}' is not a mode: use per_frame or sequence")
    sequence = _read_sequence(reader, data.get("sequence"), mode)
    package = WorkflowPackage(
        name=str(data.get("name") or folder.name),
        path=folder,
        title=reader.text(data, "title", ""),
        description=reader.text(data, "description", "", default=""),
        category=reader.text(data, "category", "", default="Other"),
        mode=mode,
        graph=graph,
        input=_read_binding(reader, data.get("input"), "input", needs_input=True),
        outputs=_read_outputs(reader, data, mode),
        parameters=_read_parameters(reader, data.get("parameters")),
        requirements=_read_requirements(reader, data.get("requirements")),
        sequence=sequence,
        template=reader.text(data, "template", "", default="default"),
        notes=reader.text(data, "notes", "", default=""),
    )
    logger.debug("loaded workflow package %s from %s", package.name, folder)
    return package


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WorkflowPackageError(f"{path}: not a text file (it is not UTF-8): save it again as text") from None
    except OSError as exc:
        raise WorkflowPackageError(f"{path}: cannot read it ({exc.strerror or exc}): check its permissions") from exc


def _load_graph(graph_path: Path) -> Graph:
    try:
        graph = json.loads(_read_text(graph_path))
    except json.JSONDecodeError as exc:
        raise WorkflowPackageError(f"{graph_path}: not valid JSON: {exc}") from exc
    if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
        raise WorkflowPackageError(
            f"{graph_path}: this is ComfyUI's UI format; save it with 'Export (API)' instead"
        )
    if isinstance(graph, dict) and isinstance(graph.get("prompt"), dict):
        graph = graph["prompt"]
    if not isinstance(graph, dict) or not graph:
        raise WorkflowPackageError(f"{graph_path}: expected an API-format object of nodes, got {type(graph).__name__}")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise WorkflowPackageError(f"{graph_path}: node {node_id}: has no class_type")
        if not isinstance(node.get("inputs", {}), dict):
            raise WorkflowPackageError(f"{graph_path}: node {node_id}: 'inputs' must be an object")
        node.setdefault("inputs", {})
    return graph


def _read_binding(reader: _Reader, raw: Any, key: str, *, needs_input: bool) -> Binding:
    data = reader.mapping(raw, key)
    node = reader.text(data, "node", f"{key}.")
    name = data.get("input")
    if needs_input and not name:
        raise reader.fail(f"{key}.input", "is required: name the node input that takes the frame file")
    return Binding(node=node, input=str(name) if name else None)


def _read_outputs(reader: _Reader, data: Mapping[str, Any], mode: str) -> Tuple[OutputBinding, ...]:
    """``output: {node, input}`` (one pass, named "result") or ``outputs: {<pass>: {node, input, alpha}}``."""
    if ("output" in data) == ("outputs" in data):
        raise reader.fail("outputs", "give either output: (one result) or outputs: (named passes), and only one "
                                     "of them")
    if "output" in data:
        single = _read_binding(reader, data["output"], "output", needs_input=False)
        alpha = _read_link(reader, reader.mapping(data["output"], "output").get("alpha"), "output.alpha")
        return (OutputBinding(node=single.node, input=single.input, alpha=alpha,
                              data=_read_data_flag(reader, data["output"], "output")),)
    passes = reader.mapping(data["outputs"], "outputs")
    if not passes:
        raise reader.fail("outputs", "names no pass: give at least one, e.g. depth: {node: \"4\"}")
    if mode == "sequence" and len(passes) > 1:
        raise reader.fail("outputs", f"a sequence workflow writes one pass in this comfyfarm, not {len(passes)}: "
                                     "keep one, or make the workflow per_frame")
    outputs = []
    for name, raw in passes.items():
        where = f"outputs.{name}"
        if not isinstance(name, str) or not PASS_NAME.fullmatch(name):
            raise reader.fail(where, f"'{name}' is not a pass name: use lower-case letters, digits, _ and - "
                                     "(up to 32, starting with a letter), e.g. depth, normals, matte")
        binding = _read_binding(reader, raw, where, needs_input=False)
        alpha = _read_link(reader, reader.mapping(raw, where).get("alpha"), f"{where}.alpha")
        outputs.append(OutputBinding(node=binding.node, input=binding.input, name=name, alpha=alpha,
                                     data=_read_data_flag(reader, raw, where)))
    nodes = [output.node for output in outputs]
    for node in nodes:
        if nodes.count(node) > 1:
            names = ", ".join(output.name for output in outputs if output.node == node)
            raise reader.fail("outputs", f"passes {names} are all saved by node {node}: give each pass its own save "
                                         "node")
    return tuple(outputs)


def _read_data_flag(reader: _Reader, raw: Any, where: str) -> bool:
    """``data: true``: the pass holds values (depth, normals, AO), not colour."""
    value = reader.mapping(raw, where).get("data", False)
    if not isinstance(value, bool):
        raise reader.fail(f"{where}.data", f"expected true (the pass holds data: depth, normals, AO; written "
                                           f"without colour conversion) or false, got {value!r}")
    return value


def _read_link(reader: _Reader, raw: Any, key: str) -> Optional[Link]:
    """``{node: "3", output: 1}``: the MASK output that is a pass's alpha."""
    if raw is None:
        return None
    data = reader.mapping(raw, key)
    output = data.get("output", 0)
    if isinstance(output, bool) or not isinstance(output, int) or output < 0:
        raise reader.fail(f"{key}.output", f"expected the index of the node's MASK output (0, 1, …), got {output!r}")
    return Link(node=reader.text(data, "node", f"{key}."), output=output)


def _read_parameters(reader: _Reader, raw: Any) -> Tuple[Parameter, ...]:
    if raw is None:
        return ()
    data = reader.mapping(raw, "parameters")
    parameters = []
    for key, spec_raw in data.items():
        where = f"parameters.{key}."
        spec = reader.mapping(spec_raw, f"parameters.{key}")
        kind = reader.text(spec, "type", where)
        if kind not in PARAMETER_TYPES:
            kinds = ", ".join(PARAMETER_TYPES)
            raise reader.fail(f"{where}type", f"'{kind}' is not a parameter type: use one of {kinds}")
        choices = spec.get("choices") or []
        if not isinstance(choices, list):
            raise reader.fail(f"{where}choices", f"expected a list, got {choices!r}")
        if "default" not in spec:
            raise reader.fail(f"{where}default", "is required: every parameter needs a default")
        parameters.append(
            Parameter(
                key=str(key),
                node=reader.text(spec, "node", where),
                input=reader.text(spec, "input", where),
                type=kind,
                default=spec["default"],
                label=reader.text(spec, "label", where, default=str(key)),
                description=reader.text(spec, "description", where, default=""),
                min=reader.number(spec, "min", where),
                max=reader.number(spec, "max", where),
                step=reader.number(spec, "step", where),
                choices=tuple(choices),
            )
        )
    return tuple(parameters)


def _read_requirements(reader: _Reader, raw: Any) -> Requirements:
    if raw is None:
        return Requirements()
    data = reader.mapping(raw, "requirements")
    models = []
    for index, item in enumerate(data.get("models") or []):
        if isinstance(item, str):
            models.append(ModelRequirement(name=item))
            continue
        spec = reader.mapping(item, f"requirements.models[{index}]")
        models.append(
            ModelRequirement(
                name=reader.text(spec, "name", f"requirements.models[{index}]."),
                folder=reader.text(spec, "folder", f"requirements.models[{index}].", default=""),
            )
        )
    vram_gb = reader.number(data, "vram_gb", "requirements.")
    if vram_gb is not None and vram_gb <= 0:
        raise reader.fail("requirements.vram_gb", f"expected the GPU memory in GB the workflow needs (e.g. 12), got "
                                                  f"{vram_gb!r}")
    family = reader.text(data, "model_family", "requirements.", default="")
    if family and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", family):
        raise reader.fail("requirements.model_family", f"{family!r} is not a family name: use lower-case letters, "
                                                        "digits, _ and - (e.g. flux, sdxl, depth)")
    return Requirements(
        nodes=reader.names(data, "nodes", "requirements."),
        models=tuple(models),
        packs=reader.names(data, "packs", "requirements."),
        vram_gb=float(vram_gb) if vram_gb is not None else None,
        model_family=family,
    )


def window_handles(overlap: int, ratio: float) -> int:
    """The frames of a window that are not its own: ``overlap`` each side, at least the next frame for a
    workflow that adds frames (its in-betweens need it), and up to m - 1 more for a 1/m workflow, whose
    windows start on a kept frame."""
    k, m = ratio_steps(ratio)
    return overlap + max(overlap, 1 if k > 1 else 0) + (m - 1)


def _read_sequence(reader: _Reader, raw: Any, mode: str) -> Optional[SequenceSettings]:
    if mode == "per_frame":
        if raw is not None:
            raise reader.fail("sequence", "is only for mode: sequence; remove it or set mode: sequence")
        return None
    if raw is None:
        raise reader.fail("sequence", "is required for mode: sequence (context, overlap, ratio)")
    data = reader.mapping(raw, "sequence")
    context = reader.frames(data, "context", "sequence.")
    overlap = reader.frames(data, "overlap", "sequence.", default=0)
    ratio = data.get("ratio", 1)
    blend = data.get("blend", "none")
    if context < 1:
        raise reader.fail("sequence.context", f"must be at least 1 frame, got {context}")
    if overlap < 0 or overlap * 2 >= context:
        raise reader.fail(
            "sequence.overlap",
            f"{overlap} handle frames each side leave no frame of a {context}-frame window: "
            f"use 0 to {max(0, (context - 1) // 2)}",
        )
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise reader.fail("sequence.ratio", f"expected a positive number (2 for 2x interpolation), got {ratio!r}")
    try:
        steps = ratio_steps(float(ratio))
    except RetimeError as exc:
        raise reader.fail("sequence.ratio", str(exc)) from None
    if blend not in BLEND_MODES:
        raise reader.fail("sequence.blend", f"'{blend}' is not a blend mode: use none or crossfade")
    if blend == "crossfade" and steps != (1, 1):
        raise reader.fail("sequence.blend", f"crossfade needs the same frames from both windows, and ratio {ratio:g} "
                          "changes the frame count: use blend: none")
    needed = 1 + window_handles(overlap, float(ratio))
    if context < needed:
        raise reader.fail("sequence.context", f"{context} frames cannot hold a frame of its own with {overlap} handle "
                          f"frame(s) each side at ratio {ratio:g}: use at least {needed}")
    smaller = data.get("oom_context")
    if smaller is not None:
        smaller = reader.frames(data, "oom_context", "sequence.")
        if not needed <= smaller < context:
            raise reader.fail("sequence.oom_context", f"{smaller} frames: a window retried after running out of GPU "
                                                      f"memory must be shorter than context ({context}) and hold a "
                                                      f"frame of its own (at least {needed})")
    return SequenceSettings(context_frames=context, overlap_frames=overlap, ratio=float(ratio), blend=blend,
                            oom_context_frames=smaller)


def package_parameters(package: WorkflowPackage) -> Dict[str, Any]:
    """The package's parameters at their defaults, by key."""
    return {parameter.key: parameter.default for parameter in package.parameters}


def list_packages(root: str | Path) -> List[Path]:
    """Every package folder directly under ``root`` (a folder holding a workflow.yaml)."""
    return sorted(p.parent for p in Path(root).glob("*/workflow.yaml"))


def bundled_workflows_dir() -> Path:
    """The ``workflows/`` folder shipped beside the package (a checkout or an installed tree)."""
    return Path(__file__).resolve().parents[2] / "workflows"


def find_package(name_or_path: str, search_dirs: Sequence[str | Path] = ()) -> Path:
    """A package folder from a path, or from a name looked up in ``search_dirs`` then the bundled folder."""
    direct = Path(name_or_path).expanduser()
    if direct.is_dir() or direct.is_file():
        return direct
    folders = [Path(d).expanduser() for d in search_dirs] + [bundled_workflows_dir()]
    for folder in folders:
        if (folder / name_or_path / "workflow.yaml").is_file():
            return folder / name_or_path
    known = sorted({p.name for folder in folders if folder.is_dir() for p in list_packages(folder)})
    raise WorkflowPackageError(
        f"no workflow '{name_or_path}': give a package folder, or one of {', '.join(known) or 'none found'} "
        f"(looked in {', '.join(map(str, folders))})"
    )
