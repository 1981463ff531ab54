"""Validate a workflow package against itself and, optionally, against ComfyUI's node definitions.

Every problem is reported, not only the first, as a :class:`Problem` whose ``str()`` is one line naming
the package, the node id, its class and the input: what ``comfyfarm validate`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Tuple

from farm_plugin.workflow.graph import find_cycle, is_link
from farm_plugin.workflow.object_info import InputSpec, NodeDefinitions, looks_like_model_input
from farm_plugin.workflow.package import Parameter, WorkflowPackage

SAVE_FRAMES = "ComfyFarmSaveFrames"
SAVE_NODES = ("SaveImage", SAVE_FRAMES)  # nodes that write what a job delivers

# What the packs do that their node definitions cannot show, read from their source and seen when the library
# ran through the real packs (tests/real_packs). Classes are fnmatch patterns.

#: Inputs that must be above a value: (class, input) -> (the bound, what goes wrong at or below it).
EXCLUSIVE_MINIMUMS: Mapping[Tuple[str, str], Tuple[float, str]] = {
    ("ProPostVignette", "intensity"): (0.0, "at 0 ProPost's vignette returns the bare image instead of a tuple, "
                                            "and ComfyUI hands on only the first frame, without its batch axis"),
}

#: Inputs that set how many frames a node makes per source frame: a sequence package's ratio must equal them
#: (a per-frame package's is 1).
FRAME_MULTIPLIERS: Mapping[str, str] = {"* VFI": "multiplier"}  # ComfyUI-Frame-Interpolation

#: Nodes that read an IMAGE as 8 bits without clipping it to 0..1 first, so that comfyfarm's float frames
#: (a highlight above 1, a value below 0) wrap round: class -> (input, how).
READS_8_BIT_UNCLIPPED: Mapping[str, Tuple[str, str]] = {
    "*Preprocessor": ("image", "comfyui_controlnet_aux casts image x 255 to uint8"),
    "*Preprocessor_aux": ("image", "comfyui_controlnet_aux casts image x 255 to uint8"),
    "*_Preprocessor": ("image", "comfyui_controlnet_aux casts image x 255 to uint8"),
    "ImageRemoveBackground+": ("image", "ToPILImage casts image x 255 to a byte"),
    "ProPostVignette": ("image", "a frame whose maximum is above 1 is taken for a 0-255 frame"),
}

#: Nodes whose IMAGE output is always within 0..1 whatever they are given.
CLIPS_TO_0_1 = ("ImageBlend", "ImageUpscaleWithModel", "ImageSharpen", "DepthAnything_V2", "*Preprocessor",
                "*Preprocessor_aux", "*_Preprocessor", "InspyrenetRembg", "ImageRemoveBackground+")

#: Nodes whose IMAGE output is not the size of their input: class -> how.
CHANGE_THE_SIZE: Mapping[str, str] = {
    "DepthAnything_V2": "returns the size rounded down to even",
    "*Preprocessor": "returns its processing resolution (DSINE's padded to a multiple of 64)",
    "*Preprocessor_aux": "returns its processing resolution",
    "*_Preprocessor": "returns its processing resolution",
}

#: Nodes after which the size is the workflow's choice again.
SET_THE_SIZE = ("ImageScale", "ImageScaleBy", "ImageCrop", "ImageUpscaleWithModel", "ImageScaleToTotalPixels")


def _matching(class_type: str, table: Iterable[str]) -> Optional[str]:
    return next((pattern for pattern in table if fnmatchcase(class_type, pattern)), None)


@dataclass(frozen=True)
class Problem:
    package: str
    code: str
    message: str
    node: Optional[str] = None
    class_type: Optional[str] = None
    input: Optional[str] = None

    def __str__(self) -> str:
        where = ""
        if self.node is not None:
            where = f" node {self.node}"
            if self.class_type:
                where += f" ({self.class_type})"
        if self.input is not None:
            where += f" input '{self.input}'"
        return f"{self.package}:{where}: {self.message} [{self.code}]" if where else (
            f"{self.package}: {self.message} [{self.code}]"
        )


class _Report:
    def __init__(self, package: WorkflowPackage) -> None:
        self.package = package
        self.problems: List[Problem] = []

    def add(self, code: str, message: str, node: Optional[str] = None, input: Optional[str] = None) -> None:
        class_type = None
        if node is not None and node in self.package.graph:
            class_type = self.package.graph[node].get("class_type")
        self.problems.append(Problem(str(self.package.path), code, message, node, class_type, input))


def validate_package(
    package: WorkflowPackage,
    definitions: Optional[NodeDefinitions] = None,
    *,
    allowed_nodes: Optional[Iterable[str]] = None,
    check_models: Optional[bool] = None,
) -> List[Problem]:
    """All problems of ``package``; an empty list means it is valid.

    ``check_models`` defaults to ``definitions.live``: recorded definitions list no model files, so only a
    live server can say that a model is missing.
    """
    report = _Report(package)
    _check_graph(report)
    _check_bindings(report)
    _check_parameters(report)
    _check_pack_values(report)
    if allowed_nodes is not None:
        allowed = set(allowed_nodes)
        for node_id, node in package.graph.items():
            if node["class_type"] not in allowed:
                report.add("node_not_allowed", f"class '{node['class_type']}' is not in the allow-list", node_id)
    if definitions is not None:
        models = definitions.live if check_models is None else check_models
        _check_against_definitions(report, definitions, check_models=models)
    return report.problems


def _check_graph(report: _Report) -> None:
    graph = report.package.graph
    for node_id, node in graph.items():
        for name, value in node["inputs"].items():
            if not is_link(value):
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
                    report.add("bad_link", f"link {value!r} must be [\"<node id>\", <output index>]", node_id, name)
                continue
            source, index = value
            if source not in graph:
                report.add("dangling_link", f"links to node {source}, which does not exist", node_id, name)
            elif index < 0:
                report.add("bad_link", f"output index {index} of node {source} is negative", node_id, name)
    cycle = find_cycle(graph)
    if cycle:
        report.add("cycle", "the graph has a cycle: " + " -> ".join(cycle), cycle[0])


def _check_bindings(report: _Report) -> None:
    package = report.package
    graph = package.graph
    if package.input.node not in graph:
        report.add("bad_binding", f"input.node {package.input.node} is not a node of workflow.json")
    elif package.input.input not in graph[package.input.node]["inputs"]:
        report.add(
            "bad_binding",
            "input binding names an input this node does not have in workflow.json",
            package.input.node,
            package.input.input,
        )
    elif is_link(graph[package.input.node]["inputs"][package.input.input]):
        report.add("bad_binding", "the bound input is a link; bind the loader's file input", package.input.node,
                   package.input.input)
    for output in package.outputs:
        what = f"output {output.name}" if len(package.outputs) > 1 else "output"
        if output.node not in graph:
            report.add("bad_binding", f"{what}: node {output.node} is not a node of workflow.json")
            continue
        node = graph[output.node]
        if output.input and output.input not in node["inputs"]:
            report.add("bad_binding", f"{what} binding names an input this node does not have", output.node,
                       output.input)
        if node["class_type"] == SAVE_FRAMES and node["inputs"].get("pass_name") not in (None, output.name):
            report.add("bad_binding", f"saves the pass '{node['inputs']['pass_name']}', which the manifest does not "
                       f"declare (it binds this node to the pass '{output.name}'): name them alike", output.node,
                       "pass_name")
        if output.alpha is not None and output.alpha.node not in graph:
            report.add("bad_binding", f"{what}: its alpha comes from node {output.alpha.node}, which is not a node "
                       "of workflow.json")
    bound = {output.node for output in package.outputs}
    for node_id, node in graph.items():
        if node["class_type"] in SAVE_NODES and node_id not in bound:
            report.add("unbound_output", "saves images that no pass of the manifest binds: ComfyUI would compute "
                       "them and comfyfarm would not deliver them; add the node to outputs: or remove it", node_id)


def _check_parameters(report: _Report) -> None:
    graph = report.package.graph
    for parameter in report.package.parameters:
        prefix = f"parameter '{parameter.key}'"
        if parameter.node not in graph:
            report.add("bad_parameter", f"{prefix} points at node {parameter.node}, which does not exist")
            continue
        inputs = graph[parameter.node]["inputs"]
        if parameter.input not in inputs:
            report.add("bad_parameter", f"{prefix} names an input this node does not have", parameter.node,
                       parameter.input)
        elif is_link(inputs[parameter.input]):
            report.add("bad_parameter", f"{prefix} points at a linked input", parameter.node, parameter.input)
        problem = parameter_value_problem(parameter, parameter.default)
        if problem:
            report.add("bad_parameter", f"{prefix} default: {problem}", parameter.node, parameter.input)
        if parameter.min is not None and parameter.max is not None and parameter.min > parameter.max:
            report.add("bad_parameter", f"{prefix}: min {parameter.min} is above max {parameter.max}",
                       parameter.node, parameter.input)
        if parameter.type == "choice" and not parameter.choices:
            report.add("bad_parameter", f"{prefix}: type choice needs a list of choices", parameter.node,
                       parameter.input)


def parameter_value_problem(parameter: Parameter, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for ``parameter``, or None when it is."""
    kind = parameter.type
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{value!r} is not a whole number"
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"{value!r} is not a number"
    if kind == "bool" and not isinstance(value, bool):
        return f"{value!r} is not true or false"
    if kind == "string" and not isinstance(value, str):
        return f"{value!r} is not text"
    if kind == "choice" and parameter.choices and value not in parameter.choices:
        return f"{value!r} is not one of {', '.join(map(str, parameter.choices))}"
    if kind in ("int", "float"):
        if parameter.min is not None and value < parameter.min:
            return f"{value} is below the minimum {parameter.min:g}"
        if parameter.max is not None and value > parameter.max:
            return f"{value} is above the maximum {parameter.max:g}"
    return None


def _check_against_definitions(report: _Report, definitions: NodeDefinitions, *, check_models: bool) -> None:
    package = report.package
    graph = package.graph
    for required in package.requirements.nodes:
        if required not in definitions:
            report.add("missing_node_class", f"required node class '{required}' is not installed "
                       f"(not in {definitions.source}): install the pack that provides it")
    for node_id, node in graph.items():
        definition = definitions.get(node["class_type"])
        if definition is None:
            report.add("unknown_class", f"class '{node['class_type']}' is not a node ComfyUI knows "
                       f"(not in {definitions.source}): install its pack or fix the name", node_id)
            continue
        inputs = node["inputs"]
        for spec in definition.inputs:
            if spec.required and spec.name not in inputs:
                report.add("required_input_missing", f"required input is missing (type {spec.type})",
                           node_id, spec.name)
        for name, value in inputs.items():
            declared = definition.input(name)
            if declared is None:
                continue  # ComfyUI ignores inputs a node does not declare
            bound = node_id == package.input.node and name == package.input.input
            if is_link(value):
                _check_link(report, definitions, node_id, declared, value)
            elif not bound:
                _check_literal(report, node_id, declared, value, check_models=check_models)
    _check_alphas(report, definitions)
    _check_unclipped_inputs(report, definitions)
    _check_pass_sizes(report, definitions)


def _check_alphas(report: _Report, definitions: NodeDefinitions) -> None:
    """Each pass's alpha is a MASK output that exists."""
    for output in report.package.outputs:
        link = output.alpha
        node = report.package.graph.get(link.node) if link else None
        definition = definitions.get(node["class_type"]) if node else None
        if link is None or definition is None:
            continue  # no alpha, or reported already (no such node, an unknown class)
        if link.output >= len(definition.outputs):
            report.add("bad_binding", f"output {output.name}: its alpha is output {link.output} of node {link.node}, "
                       f"which has {len(definition.outputs)} output(s)", link.node)
        elif not _types_match(definition.outputs[link.output], "MASK"):
            report.add("bad_binding", f"output {output.name}: its alpha must be a MASK, and output {link.output} of "
                       f"node {link.node} is {definition.outputs[link.output]}: give the index of a MASK output",
                       link.node)


def _check_link(report: _Report, definitions: NodeDefinitions, node_id: str, spec: InputSpec, value: list) -> None:
    source_id, index = value
    source = report.package.graph.get(source_id)
    if source is None:
        return  # reported as a dangling link
    source_definition = definitions.get(source["class_type"])
    if source_definition is None:
        return  # reported as an unknown class
    if index >= len(source_definition.outputs):
        report.add("output_index_out_of_range",
                   f"links to output {index} of node {source_id} ({source['class_type']}), which has "
                   f"{len(source_definition.outputs)} output(s)", node_id, spec.name)
        return
    received = source_definition.outputs[index]
    if not _types_match(received, spec.type):
        report.add("return_type_mismatch",
                   f"expects {spec.type} but node {source_id} ({source['class_type']}) output {index} is {received}",
                   node_id, spec.name)


def _types_match(received: str, expected: str) -> bool:
    if "*" in (received, expected) or expected == "COMBO" or received == "COMBO":
        return True
    wanted = {t.strip() for t in expected.split(",")}
    return any(t.strip() in wanted for t in received.split(","))


def _check_literal(report: _Report, node_id: str, spec: InputSpec, value: Any, *, check_models: bool) -> None:
    if not spec.is_widget:
        if spec.type != "*":
            report.add("invalid_input_type", f"expects a link from a node output of type {spec.type}, "
                       f"got the value {value!r}", node_id, spec.name)
        return
    if spec.is_combo:
        options = spec.options or ()
        if value in options:
            return
        if looks_like_model_input(spec, value):
            if check_models:
                listed = ", ".join(map(str, options[:5])) or "none"
                report.add("missing_model", f"model file '{value}' is not installed on this ComfyUI "
                           f"(it has: {listed}): put it in the models folder", node_id, spec.name)
            return
        if options:
            listed = ", ".join(map(str, options[:8])) + (", …" if len(options) > 8 else "")
            report.add("value_not_in_list", f"'{value}' is not one of: {listed}", node_id, spec.name)
        return
    problem = _widget_value_problem(spec, value)
    if problem:
        code, message = problem
        report.add(code, message, node_id, spec.name)


def _widget_value_problem(spec: InputSpec, value: Any) -> Optional[tuple]:
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if spec.type == "INT" and (isinstance(value, bool) or not integral):
        return "invalid_input_type", f"expects INT, got {value!r}"
    if spec.type == "FLOAT" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "invalid_input_type", f"expects FLOAT, got {value!r}"
    if spec.type == "BOOLEAN" and not isinstance(value, bool):
        return "invalid_input_type", f"expects BOOLEAN, got {value!r}"
    if spec.type == "STRING" and not isinstance(value, (str, int, float)):
        return "invalid_input_type", f"expects STRING, got {value!r}"
    if spec.type in ("INT", "FLOAT"):
        if spec.min is not None and value < spec.min:
            return "value_smaller_than_min", f"{value} is smaller than the minimum {spec.min}"
        if spec.max is not None and value > spec.max:
            return "value_bigger_than_max", f"{value} is bigger than the maximum {spec.max}"
    return None


def _check_pack_values(report: _Report) -> None:
    """Values the packs fail on though their definitions admit them, and frame multipliers against the ratio."""
    for node_id, node in report.package.graph.items():
        _check_node_values(report, node_id, node)
    for parameter in report.package.parameters:
        if parameter.node in report.package.graph:  # otherwise reported as a bad parameter
            _check_parameter_range(report, parameter, report.package.graph[parameter.node]["class_type"])


def _check_node_values(report: _Report, node_id: str, node: Mapping[str, Any]) -> None:
    package = report.package
    for (pattern, name), (bound, why) in EXCLUSIVE_MINIMUMS.items():
        value = node["inputs"].get(name)
        if fnmatchcase(node["class_type"], pattern) and isinstance(value, (int, float)) and value <= bound:
            report.add("value_breaks_node", f"{value:g} must be above {bound:g}: {why}", node_id, name)
    multiplier = _matching(node["class_type"], FRAME_MULTIPLIERS)
    if multiplier is None:
        return
    value = node["inputs"].get(FRAME_MULTIPLIERS[multiplier])
    ratio = package.sequence.ratio if package.sequence is not None else 1
    if isinstance(value, (int, float)) and value != ratio:
        where = "sequence.ratio" if package.sequence is not None else "a per_frame package (ratio 1)"
        report.add("ratio_mismatch", f"makes {value:g} frames per source frame but {where} is {ratio:g}: "
                   "comfyfarm would number the frames wrong; set them equal", node_id, FRAME_MULTIPLIERS[multiplier])


def _check_parameter_range(report: _Report, parameter: Parameter, class_type: str) -> None:
    for (pattern, name), (bound, why) in EXCLUSIVE_MINIMUMS.items():
        if fnmatchcase(class_type, pattern) and parameter.input == name and (
                parameter.min is None or parameter.min <= bound):
            report.add("value_breaks_node", f"parameter '{parameter.key}' lets an artist set {bound:g} or less "
                       f"(min {parameter.min}): {why}", parameter.node, name)
    multiplier = _matching(class_type, FRAME_MULTIPLIERS)
    if multiplier is not None and parameter.input == FRAME_MULTIPLIERS[multiplier]:
        report.add("ratio_mismatch", f"parameter '{parameter.key}' sets the frames made per source frame, which "
                   "must stay equal to sequence.ratio: remove the parameter", parameter.node, parameter.input)


def _image_sources(report: _Report, definitions: NodeDefinitions, node_id: str,
                   names: Optional[Iterable[str]] = None) -> Iterator[str]:
    """The nodes whose IMAGE output feeds ``node_id`` (through its inputs ``names``, default: every IMAGE input)."""
    node = report.package.graph[node_id]
    definition = definitions.get(node["class_type"])
    for name, value in node["inputs"].items():
        spec = definition.input(name) if definition else None
        if is_link(value) and value[0] in report.package.graph and (
                (names is not None and name in names) or (names is None and spec is not None and spec.type == "IMAGE")):
            yield value[0]


def _reaches(report: _Report, definitions: NodeDefinitions, start: Iterable[str], stop: Iterable[str],
             wanted: Iterable[str]) -> Optional[str]:
    """The first node upstream of ``start`` along IMAGE links, not through a node whose class matches ``stop``,
    whose class matches ``wanted`` or whose id is in it."""
    seen: set = set()
    todo = list(start)
    while todo:
        node_id = todo.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        class_type = report.package.graph[node_id]["class_type"]
        if _matching(class_type, wanted) or node_id in wanted:
            return node_id
        if not _matching(class_type, stop):
            todo.extend(_image_sources(report, definitions, node_id))
    return None


def _check_unclipped_inputs(report: _Report, definitions: NodeDefinitions) -> None:
    """A node that reads 8 bits without clipping must get the frames clipped to 0..1 (core ImageBlend of the frame
    with itself at blend_factor 1 clamps and changes nothing inside 0..1)."""
    loader = report.package.input.node
    for node_id, node in report.package.graph.items():
        pattern = _matching(node["class_type"], READS_8_BIT_UNCLIPPED)
        if pattern is None:
            continue
        name, how = READS_8_BIT_UNCLIPPED[pattern]
        sources = list(_image_sources(report, definitions, node_id, [name]))
        if _reaches(report, definitions, sources, CLIPS_TO_0_1, [loader]) is not None:
            report.add("unclipped_input", f"gets comfyfarm's float frames unclipped, and {how}: a highlight above 1 "
                       "wraps round to a dark value; put an ImageBlend of the frame with itself (blend_factor 1, "
                       "normal), which clamps to 0..1, in front of it", node_id, name)


def _check_pass_sizes(report: _Report, definitions: NodeDefinitions) -> None:
    """A pass must not come from a node that changes the frame's size without a scale or crop after it."""
    for output in report.package.outputs:
        if output.node not in report.package.graph:
            continue  # reported as a bad binding
        sources = list(_image_sources(report, definitions, output.node))
        found = _reaches(report, definitions, sources, SET_THE_SIZE, CHANGE_THE_SIZE)
        if found is not None:
            class_type = report.package.graph[found]["class_type"]
            why = CHANGE_THE_SIZE[_matching(class_type, CHANGE_THE_SIZE) or class_type]
            report.add("pass_size", f"pass '{output.name}' comes from node {found} ({class_type}), which {why}: the "
                       "pass would not have the plate's size (nor its alpha); scale it back with ImageScale to "
                       "GetImageSize of the plate", output.node)
