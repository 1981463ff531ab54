"""The bundled workflow library: every package valid against the recorded node definitions (core ComfyUI
0.3.64 and the custom-node packs), and manifests a pipeline TD can rely on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Set

import pytest

from farm_plugin.workflow.graph import is_link
from farm_plugin.workflow.object_info import NodeDefinitions, load_definitions
from farm_plugin.workflow.package import WorkflowPackage, list_packages, load_package
from farm_plugin.workflow.requirements import manifest_gaps, model_file_uses, node_classes, pack_for_class
from farm_plugin.workflow.validate import parameter_value_problem, validate_package
from tests.recorded import OBJECT_INFO

from .conftest import REPO, WORKFLOWS

REFERENCE = {"invert", "blur", "sequence_invert"}
# The original tool's 13 workflows (PRODUCTION_AUDIT_v3.md, "Inventaire Complet"), by package name.
LIBRARY = {
    "temporal_coherence_animatediff": "temporal_coherence_animatediff.json",
    "rife_frame_interpolation": "rife_frame_interpolation.json",
    "film_look_lut": "film_look_lut_grading.json",
    "advanced_chroma_key": "advanced_chroma_key.json",
    "depth_normal_ao_maps": "3d_maps_depth_normal_ao.json",
    "flux_tiled_upscale": "flux_4x_8x_upscale.json",
    "inspyrenet_matte": "klaus.json",
    "rembg_matte": "flacom_rembg_comfla_api_workflow.json",
    "matte_depth_normal": "comfla_matte_depht_normal.json",
    "toonyou_style": "ToonYou_API.json",
    "clearreality_upscale_4x": "4xReality_Upscale.json",
    "set_extension_water_splash": "SetExt_WaterSplash.json",
    "dsine_normal_refine": "Refine_dsine_maps.json",
}
TEMPORAL = {"temporal_coherence_animatediff", "rife_frame_interpolation", "toonyou_style"}
TEMPLATES = {path.stem for path in (REPO / "job_templates").glob("*.yaml")}


def _load_all() -> Dict[str, WorkflowPackage]:
    return {package.name: package for package in map(load_package, list_packages(WORKFLOWS))}


PACKAGES = _load_all()
ALL_NAMES = sorted(PACKAGES)


@pytest.fixture(scope="module")
def recorded() -> NodeDefinitions:
    return load_definitions([OBJECT_INFO])


@pytest.fixture(scope="module")
def core_classes() -> Set[str]:
    return set(json.loads((OBJECT_INFO / "core.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def recorded_modules() -> Dict[str, str]:
    """Class name -> python_module, as the recordings say (``custom_nodes.<pack folder>`` for packs)."""
    modules: Dict[str, str] = {}
    for path in sorted(OBJECT_INFO.glob("*.json")):
        for name, raw in json.loads(path.read_text(encoding="utf-8")).items():
            modules[name] = str(raw.get("python_module") or "")
    return modules


def test_the_library_holds_the_thirteen_workflows_and_the_three_references() -> None:
    assert set(PACKAGES) == set(LIBRARY) | REFERENCE
    assert len(PACKAGES) == 16


@pytest.mark.parametrize("name", ALL_NAMES)
def test_package_passes_validation_against_recorded_core_and_packs(name: str, recorded: NodeDefinitions) -> None:
    assert [str(problem) for problem in validate_package(PACKAGES[name], recorded)] == []


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_manifest_tells_a_td_what_the_workflow_does(name: str) -> None:
    package = PACKAGES[name]
    assert package.title and package.category
    assert len(package.description.split()) >= 25, "a description a TD can act on, not a title"
    assert package.template in TEMPLATES
    assert f"Replaces the original tool's {LIBRARY[name]}" in package.notes
    assert "recorded" in package.notes, "the notes say where the node definitions came from"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_non_core_class_is_in_requirements_nodes(name: str, core_classes: Set[str]) -> None:
    package = PACKAGES[name]
    non_core = {c for c in node_classes(package) if c not in core_classes}
    assert non_core <= set(package.requirements.nodes)
    # The library lists core classes too, so that a worker check sees the whole graph.
    assert set(node_classes(package)) <= set(package.requirements.nodes)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_model_file_the_graph_names_is_in_requirements_models(name: str, recorded: NodeDefinitions) -> None:
    package = PACKAGES[name]
    listed = {model.name: model.folder for model in package.requirements.models}
    for use in model_file_uses(package, recorded):
        assert use.name in listed, f"{use.name} (node {use.node} {use.class_type}) is not in requirements.models"
        assert listed[use.name], f"{use.name} has no folder"
    assert manifest_gaps(package, recorded) == ()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_requirements_packs_are_exactly_the_packs_of_the_non_core_classes(
    name: str, core_classes: Set[str], recorded_modules: Dict[str, str]
) -> None:
    package = PACKAGES[name]
    needed = set()
    for class_type in node_classes(package):
        if class_type in core_classes:
            continue
        folder = recorded_modules[class_type].split(".")[1]
        pack = pack_for_class(class_type, package.requirements.packs)
        assert pack is not None and pack.split("/")[1] == folder, (class_type, pack, folder)
        needed.add(pack)
    assert set(package.requirements.packs) == needed


def test_pack_patterns_never_claim_a_core_class_or_another_packs_class(
    core_classes: Set[str], recorded_modules: Dict[str, str]
) -> None:
    for class_type, module in recorded_modules.items():
        pack = pack_for_class(class_type)
        if class_type in core_classes:
            assert pack is None, f"core class {class_type} attributed to {pack}"
        elif pack is not None:
            assert module == f"custom_nodes.{pack.split('/')[1]}", (class_type, pack, module)


@pytest.mark.parametrize("name", sorted(TEMPORAL))
def test_temporal_packages_are_sequence_mode(name: str) -> None:
    package = PACKAGES[name]
    assert package.mode == "sequence"
    assert package.sequence is not None and package.sequence.context_frames >= 16


def test_frame_ratio_and_templates_follow_the_workflow() -> None:
    assert PACKAGES["rife_frame_interpolation"].sequence.ratio == 2
    for name in TEMPORAL - {"rife_frame_interpolation"}:
        assert PACKAGES[name].sequence.ratio == 1
        assert PACKAGES[name].sequence.overlap_frames > 0, "AnimateDiff windows need handles to cross-fade"
    for name, package in PACKAGES.items():
        classes = node_classes(package)
        heavy = any(c.startswith("ADE_") for c in classes) or "UNETLoader" in classes  # AnimateDiff, FLUX
        assert package.template == ("heavy" if heavy else "default"), name
        if any(c.startswith("ADE_") for c in classes):
            assert package.mode == "sequence", name


@pytest.mark.parametrize("name", ALL_NAMES)
def test_bindings_are_core_loadimage_and_a_pass_for_every_output_node(name: str, recorded: NodeDefinitions) -> None:
    package = PACKAGES[name]
    assert package.graph[package.input.node]["class_type"] == "LoadImage" and package.input.input == "image"
    for output in package.outputs:
        assert package.graph[output.node]["class_type"] == "SaveImage"
        assert output.input == "filename_prefix"
        if output.alpha is not None:
            source = package.graph[output.alpha.node]["class_type"]
            assert recorded.get(source).outputs[output.alpha.output] == "MASK", output.name
    outputs = [node_id for node_id, node in package.graph.items() if recorded.get(node["class_type"]).output_node]
    assert sorted(outputs) == sorted(o.node for o in package.outputs), "an output node no pass binds writes stray files"


PASSES = {
    "depth_normal_ao_maps": ["depth", "normals", "ao"],
    "matte_depth_normal": ["rgba", "depth", "normals"],
}
KEYERS = ("advanced_chroma_key", "inspyrenet_matte", "rembg_matte", "matte_depth_normal")


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_parameter_points_at_an_existing_input_within_its_bounds(name: str, recorded: NodeDefinitions) -> None:
    package = PACKAGES[name]
    for parameter in package.parameters:
        node = package.graph.get(parameter.node)
        assert node is not None, f"parameter {parameter.key}: no node {parameter.node}"
        assert parameter.input in node["inputs"], f"parameter {parameter.key}: no input {parameter.input}"
        assert not is_link(node["inputs"][parameter.input]), f"parameter {parameter.key} points at a link"
        assert node["inputs"][parameter.input] == parameter.default, "the graph holds the default a job sends"
        assert parameter_value_problem(parameter, parameter.default) is None
        assert parameter.label and parameter.label != parameter.key
        spec = recorded.get(node["class_type"]).input(parameter.input)
        assert spec is not None, f"parameter {parameter.key}: {node['class_type']} has no input {parameter.input}"
        if spec.min is not None and parameter.min is not None:
            assert parameter.min >= spec.min, parameter.key
        if spec.max is not None and parameter.max is not None:
            assert parameter.max <= spec.max, parameter.key
        if parameter.type in ("int", "float") and spec.type in ("INT", "FLOAT"):
            assert parameter.min is not None and parameter.max is not None, f"{parameter.key} needs bounds"
        if parameter.type == "choice" and spec.options:
            assert set(parameter.choices) <= set(spec.options), parameter.key


def test_multi_pass_packages_deliver_every_pass_the_original_wrote_and_keyers_rgba() -> None:
    for name, passes in PASSES.items():
        assert [output.name for output in PACKAGES[name].outputs] == passes, name
    for name in KEYERS:
        keyed = PACKAGES[name].outputs[0]
        assert keyed.alpha is not None and PACKAGES[name].graph[keyed.node]["inputs"]["images"] == ["1", 0], name


def _graph_file(name: str) -> Path:
    return WORKFLOWS / name / "workflow.json"


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_output_prefix_names_the_package(name: str) -> None:
    graph = json.loads(_graph_file(name).read_text(encoding="utf-8"))
    package = PACKAGES[name]
    assert graph[package.output.node]["inputs"]["filename_prefix"] == f"comfyfarm/{name}"
    for output in package.outputs[1:]:
        assert graph[output.node]["inputs"]["filename_prefix"] == f"comfyfarm/{name}_{output.name}"
