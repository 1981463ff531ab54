"""What a workflow package needs from a worker's ComfyUI, and what one ComfyUI lacks of it.

Pure functions over a :class:`~farm_plugin.workflow.package.WorkflowPackage` and ComfyUI's node
definitions (:class:`~farm_plugin.workflow.object_info.NodeDefinitions`, from ``/object_info``):

- :func:`check_package` answers ``comfyfarm doctor``: the node classes a ComfyUI is missing, grouped by the
  custom-node pack that provides them, and the model files missing from its combo lists, with the folder
  each one goes in;
- :func:`manifest_gaps` tells a package author what the manifest forgot to declare (a class outside
  ``requirements.nodes``, a model file outside ``requirements.models``, a pack outside ``requirements.packs``).

Which pack provides a class is known for the packs the bundled library uses (:data:`KNOWN_PACKS`); a class
that no known pack matches is taken to be core ComfyUI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from farm_plugin.workflow.graph import Graph, is_link
from farm_plugin.workflow.object_info import MODEL_FILE_EXTENSIONS, NodeDefinitions
from farm_plugin.workflow.package import ModelRequirement, WorkflowPackage, package_parameters
from farm_plugin.workflow.params import apply_parameters

logger = logging.getLogger(__name__)

LUT_FILE_EXTENSIONS = (".cube", ".3dl")

#: Custom-node packs by repository, with the node classes each provides (``fnmatch`` patterns). The
#: patterns were checked against the packs' recorded ``/object_info`` (see the library's tests): a pattern
#: never matches another pack's class nor a core class.
KNOWN_PACKS: Mapping[str, Tuple[str, ...]] = {
    "Kosinkadink/ComfyUI-AnimateDiff-Evolved": ("ADE_*", "AnimateDiffLoaderV1",
                                                "CheckpointLoaderSimpleWithNoiseSelect"),
    "Kosinkadink/ComfyUI-VideoHelperSuite": ("VHS_*",),
    "Fannovel16/ComfyUI-Frame-Interpolation": ("* VFI", "VFI FloatToInt", "Make Interpolation State List"),
    "Fannovel16/comfyui_controlnet_aux": ("*Preprocessor", "*Preprocessor_aux", "*_Preprocessor"),
    "GeekyGhost/ComfyUI-GeekyRemB": ("GeekyRemB",),
    "kijai/ComfyUI-DepthAnythingV2": ("DepthAnything_V2", "DownloadAndLoadDepthAnythingV2Model"),
    "john-mnz/ComfyUI-Inspyrenet-Rembg": ("InspyrenetRembg", "InspyrenetRembgAdvanced"),
    "ssitu/ComfyUI_UltimateSDUpscale": ("UltimateSDUpscale", "UltimateSDUpscaleNoUpscale",
                                        "UltimateSDUpscaleCustomSample"),
    "cubiq/ComfyUI_essentials": ("*+",),
    "digitaljohn/comfyui-propost": ("ProPost*",),
    "spacepxl/ComfyUI-HQ-Image-Save": ("LoadEXR", "LoadEXRFrames", "SaveEXR", "SaveEXRFrames", "SaveTiff"),
}

#: Core classes that ComfyUI leaves out when an optional import fails, and what fixes it.
CORE_IMPORT_HINTS: Mapping[str, str] = {
    "UpscaleModelLoader": "comfy_extras/nodes_upscale_model.py needs the spandrel package: pip install spandrel "
                          "in ComfyUI's Python, then restart ComfyUI",
    "ImageUpscaleWithModel": "comfy_extras/nodes_upscale_model.py needs the spandrel package: pip install spandrel "
                             "in ComfyUI's Python, then restart ComfyUI",
}

# Model states in a PackageCheck.
MODEL_PRESENT = "present"  # in the ComfyUI's combo list
MODEL_MISSING = "missing"  # not in the list: the prompt would fail validation
MODEL_UNCHECKED = "unchecked"  # the node that loads it is missing, so its list is unknown
MODEL_NOT_LISTED = "not_listed"  # loaded by its pack from its own folder; ComfyUI never lists it


@dataclass(frozen=True)
class ModelUse:
    """A model file named by a literal input of the graph (``node``'s ``input``)."""

    name: str
    node: str
    class_type: str
    input: str


@dataclass(frozen=True)
class MissingNode:
    """A node class the ComfyUI lacks; ``pack`` is the repository providing it, None for core ComfyUI."""

    class_type: str
    pack: Optional[str]

    @property
    def hint(self) -> str:
        if self.pack:
            return f"install {self.pack} in ComfyUI/custom_nodes (git clone https://github.com/{self.pack})"
        return CORE_IMPORT_HINTS.get(
            self.class_type,
            "a core ComfyUI node: update ComfyUI, or look for an IMPORT FAILED line in its start-up log",
        )


@dataclass(frozen=True)
class ModelCheck:
    name: str
    folder: str
    state: str
    use: Optional[ModelUse] = None

    @property
    def location(self) -> str:
        return model_location(self.folder)


@dataclass(frozen=True)
class PackageCheck:
    """What one ComfyUI lacks to run one package."""

    package: str
    missing_nodes: Tuple[MissingNode, ...]
    models: Tuple[ModelCheck, ...]

    @property
    def missing_models(self) -> Tuple[ModelCheck, ...]:
        return tuple(m for m in self.models if m.state == MODEL_MISSING)

    @property
    def ok(self) -> bool:
        return not self.missing_nodes and not self.missing_models

    def missing_by_pack(self) -> Dict[Optional[str], Tuple[str, ...]]:
        """Missing classes grouped by pack in the order first met, core ComfyUI's (key None) last."""
        grouped: Dict[Optional[str], List[str]] = {}
        for missing in sorted(self.missing_nodes, key=lambda m: m.pack is None):
            grouped.setdefault(missing.pack, []).append(missing.class_type)
        return {pack: tuple(classes) for pack, classes in grouped.items()}


def model_location(folder: str) -> str:
    """Where a model file goes, in words: a ComfyUI models folder, a path under ComfyUI, or a home path."""
    if not folder:
        return "(the manifest does not say which folder)"
    if folder.startswith(("~", "/", "$")):
        return folder
    if "/" in folder:
        return f"ComfyUI/{folder}"
    return f"ComfyUI/models/{folder}"


def is_model_file_name(value: Any) -> bool:
    """Whether a literal input value names a model (or LUT) file, by its extension."""
    return isinstance(value, str) and value.lower().endswith(MODEL_FILE_EXTENSIONS + LUT_FILE_EXTENSIONS)


def node_classes(package: WorkflowPackage) -> Tuple[str, ...]:
    """Every node class of the graph, sorted."""
    return tuple(sorted({node["class_type"] for node in package.graph.values()}))


def pack_for_class(class_type: str, packs: Iterable[str] = ()) -> Optional[str]:
    """The pack repository providing ``class_type`` (the package's own ``packs`` first), None for core."""
    listed = list(packs)
    for pack in listed + [p for p in KNOWN_PACKS if p not in listed]:
        if any(fnmatchcase(class_type, pattern) for pattern in KNOWN_PACKS.get(pack, ())):
            return pack
    return None


def effective_graph(package: WorkflowPackage) -> Graph:
    """The graph as a job with default parameters sends it: parameter defaults applied."""
    return apply_parameters(package, package_parameters(package))


def model_file_uses(package: WorkflowPackage, definitions: Optional[NodeDefinitions] = None) -> Tuple[ModelUse, ...]:
    """Literal inputs of the (effective) graph that name a model or LUT file; the frame input is left out.

    With ``definitions``, only inputs that a known class declares as a combo count (a file a node picks
    from a folder listing); without, every input whose value has a model-file extension counts.
    """
    uses: List[ModelUse] = []
    for node_id, node in effective_graph(package).items():
        definition = definitions.get(node["class_type"]) if definitions is not None else None
        for name, value in node["inputs"].items():
            if is_link(value) or not is_model_file_name(value):
                continue
            if node_id == package.input.node and name == package.input.input:
                continue
            if definition is not None:
                spec = definition.input(name)
                if spec is None or not spec.is_combo:
                    continue
            uses.append(ModelUse(name=value, node=node_id, class_type=node["class_type"], input=name))
    return tuple(uses)


def check_package(package: WorkflowPackage, definitions: NodeDefinitions) -> PackageCheck:
    """What the ComfyUI described by ``definitions`` (its ``/object_info``) lacks to run ``package``.

    A class is missing when the graph or ``requirements.nodes`` names it and ComfyUI does not know it
    (ComfyUI refuses a prompt with any unknown class, even one not wired to an output). A model file is
    missing when its loader's combo list does not offer it; a required file that no input of the graph
    names is loaded by its pack from the pack's own folder, which ComfyUI does not list.
    """
    classes = dict.fromkeys(list(package.requirements.nodes) + [n["class_type"] for n in package.graph.values()])
    missing = tuple(
        MissingNode(class_type, pack_for_class(class_type, package.requirements.packs))
        for class_type in classes
        if class_type not in definitions
    )
    folders = {model.name: model.folder for model in package.requirements.models}
    checks: List[ModelCheck] = []
    named = set()
    for use in model_file_uses(package, definitions):
        named.add(use.name)
        checks.append(ModelCheck(use.name, folders.get(use.name, ""), _model_state(use, definitions), use))
    for model in package.requirements.models:
        if model.name not in named:
            checks.append(ModelCheck(model.name, model.folder, MODEL_NOT_LISTED))
    result = PackageCheck(package=package.name, missing_nodes=missing, models=tuple(checks))
    logger.debug("%s against %s: %d missing class(es), %d missing model(s)", package.name, definitions.source,
                 len(result.missing_nodes), len(result.missing_models))
    return result


def _model_state(use: ModelUse, definitions: NodeDefinitions) -> str:
    definition = definitions.get(use.class_type)
    spec = definition.input(use.input) if definition is not None else None
    if spec is None or not spec.is_combo:
        return MODEL_UNCHECKED
    return MODEL_PRESENT if use.name in (spec.options or ()) else MODEL_MISSING


def manifest_gaps(package: WorkflowPackage, definitions: Optional[NodeDefinitions] = None,
                  *, core_classes: Iterable[str] = ()) -> Tuple[str, ...]:
    """What the manifest does not declare that the graph needs, one sentence each; empty when complete.

    ``core_classes`` (e.g. the classes of a core-only ComfyUI) are exempt from ``requirements.nodes``;
    every other class must be listed, and its pack, when known, must be in ``requirements.packs``.
    """
    gaps: List[str] = []
    core = set(core_classes)
    listed_nodes = set(package.requirements.nodes)
    for class_type in node_classes(package):
        if class_type not in core and class_type not in listed_nodes:
            gaps.append(f"node class '{class_type}' is not in requirements.nodes")
        pack = pack_for_class(class_type, package.requirements.packs)
        if pack and class_type not in core and pack not in package.requirements.packs:
            gaps.append(f"node class '{class_type}' comes from {pack}, which is not in requirements.packs")
    listed_models = {model.name: model for model in package.requirements.models}
    for use in model_file_uses(package, definitions):
        if use.name not in listed_models:
            gaps.append(f"model file '{use.name}' (node {use.node} {use.class_type}, input '{use.input}') "
                        "is not in requirements.models")
        elif not listed_models[use.name].folder:
            gaps.append(f"model file '{use.name}' has no folder in requirements.models")
    return tuple(gaps)


def requirement_summary(package: WorkflowPackage) -> Dict[str, Any]:
    """The package's requirements as plain data (for listings and JSON)."""
    return {
        "packs": list(package.requirements.packs),
        "models": [_model_dict(model) for model in package.requirements.models],
        "nodes": list(package.requirements.nodes),
    }


def _model_dict(model: ModelRequirement) -> Dict[str, str]:
    return {"name": model.name, "folder": model.folder, "location": model_location(model.folder)}
