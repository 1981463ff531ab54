from __future__ import annotations

from pathlib import Path

import pytest

from farm_plugin.workflow.object_info import definitions_from_answer, load_definitions
from farm_plugin.workflow.package import list_packages, load_package
from farm_plugin.workflow.validate import validate_package
from tests.recorded import OBJECT_INFO

from .conftest import WORKFLOWS


@pytest.fixture(scope="module")
def core():
    return load_definitions([OBJECT_INFO / "core.json"])


def lines(folder: Path, definitions=None, **kwargs) -> list:
    return [str(p) for p in validate_package(load_package(folder), definitions, **kwargs)]


def test_every_shipped_package_is_valid_against_recorded_definitions() -> None:
    definitions = load_definitions([OBJECT_INFO])
    for folder in list_packages(WORKFLOWS):
        assert lines(folder, definitions) == [], folder


def test_dangling_link_cycle_and_bindings_are_found_without_definitions(make_package) -> None:
    def edit(graph):
        graph["2"]["inputs"]["image"] = ["9", 0]
        graph["1"]["inputs"]["extra"] = ["3", 0]
        graph["3"]["inputs"]["images"] = ["1", 0]
        graph["4"] = {"class_type": "ImageInvert", "inputs": {"image": ["5", 0]}}
        graph["5"] = {"class_type": "ImageInvert", "inputs": {"image": ["4", 0]}}

    folder = make_package("invert", graph_edit=edit)
    assert lines(folder) == [
        f"{folder}: node 2 (ImageInvert) input 'image': links to node 9, which does not exist [dangling_link]",
        f"{folder}: node 1 (LoadImage): the graph has a cycle: 1 -> 3 -> 1 [cycle]",
    ]
    folder = make_package("invert", graph_edit=lambda g: g.pop("1"), name="nobinding")
    assert lines(folder) == [
        f"{folder}: node 2 (ImageInvert) input 'image': links to node 1, which does not exist [dangling_link]",
        f"{folder}: input.node 1 is not a node of workflow.json [bad_binding]",
    ]


def test_parameters_must_point_at_literal_inputs_with_defaults_in_bounds(make_package) -> None:
    def edit(manifest):
        manifest["parameters"]["radius"]["default"] = 40
        manifest["parameters"]["sigma"]["input"] = "softness"
        manifest["parameters"]["source"] = {"node": "2", "input": "image", "type": "string", "default": "x"}

    folder = make_package("blur", manifest_edit=edit)
    assert lines(folder) == [
        f"{folder}: node 2 (ImageBlur) input 'blur_radius': parameter 'radius' default: 40 is above the maximum 31 "
        "[bad_parameter]",
        f"{folder}: node 2 (ImageBlur) input 'softness': parameter 'sigma' names an input this node does not have "
        "[bad_parameter]",
        f"{folder}: node 2 (ImageBlur) input 'image': parameter 'source' points at a linked input [bad_parameter]",
    ]


def test_unknown_class_missing_input_wrong_types_and_ranges(make_package, core) -> None:
    def edit(graph):
        graph["2"]["class_type"] = "ImageBlurr"
        graph["3"]["inputs"].pop("filename_prefix")
        graph["4"] = {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 1], "upscale_method": "cubic",
                                                               "scale_by": 99.0}}
        graph["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 3], "filename_prefix": "x"}}
        graph["6"] = {"class_type": "ImageInvert", "inputs": {"image": "plate.png"}}

    folder = make_package("blur", graph_edit=edit)
    assert lines(folder, core) == [
        f"{folder}: node 3 (SaveImage) input 'filename_prefix': output binding names an input this node does not "
        "have [bad_binding]",
        f"{folder}: node 5 (SaveImage): saves images that no pass of the manifest binds: ComfyUI would compute them "
        "and comfyfarm would not deliver them; add the node to outputs: or remove it [unbound_output]",
        f"{folder}: node 2 (ImageBlurr): class 'ImageBlurr' is not a node ComfyUI knows (not in "
        f"{OBJECT_INFO / 'core.json'}): install its pack or fix the name [unknown_class]",
        f"{folder}: node 3 (SaveImage) input 'filename_prefix': required input is missing (type STRING) "
        "[required_input_missing]",
        f"{folder}: node 4 (ImageScaleBy) input 'image': expects IMAGE but node 1 (LoadImage) output 1 is MASK "
        "[return_type_mismatch]",
        f"{folder}: node 4 (ImageScaleBy) input 'upscale_method': 'cubic' is not one of: nearest-exact, bilinear, "
        "area, bicubic, lanczos [value_not_in_list]",
        f"{folder}: node 4 (ImageScaleBy) input 'scale_by': 99.0 is bigger than the maximum 8.0 "
        "[value_bigger_than_max]",
        f"{folder}: node 5 (SaveImage) input 'images': links to output 3 of node 4 (ImageScaleBy), which has 1 "
        "output(s) [output_index_out_of_range]",
        f"{folder}: node 6 (ImageInvert) input 'image': expects a link from a node output of type IMAGE, got the "
        "value 'plate.png' [invalid_input_type]",
    ]


def test_missing_model_is_reported_only_by_a_live_server(make_package) -> None:
    answer = {
        "LoadImage": {"input": {"required": {"image": [["a.png"], {}]}}, "output": ["IMAGE", "MASK"]},
        "UpscaleModelLoader": {"input": {"required": {"model_name": [["4x_foolhardy_Remacri.pth"], {}]}},
                               "output": ["UPSCALE_MODEL"]},
        "ImageUpscaleWithModel": {"input": {"required": {"upscale_model": ["UPSCALE_MODEL"], "image": ["IMAGE"]}},
                                  "output": ["IMAGE"]},
        "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}},
                      "output": [], "output_node": True},
    }

    def edit(graph):
        graph["2"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-UltraSharp.pth"}}
        graph["4"] = {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}}
        graph["3"]["inputs"]["images"] = ["4", 0]

    folder = make_package("invert", graph_edit=edit, manifest_edit=lambda m: m.pop("requirements"))
    live = definitions_from_answer(answer, source="http://127.0.0.1:8188", live=True)
    recorded = definitions_from_answer(answer, source="recorded.json", live=False)
    assert lines(folder, recorded) == []
    assert lines(folder, live) == [
        f"{folder}: node 2 (UpscaleModelLoader) input 'model_name': model file '4x-UltraSharp.pth' is not "
        "installed on this ComfyUI (it has: 4x_foolhardy_Remacri.pth): put it in the models folder [missing_model]"
    ]


def test_v3_combo_spelling_is_understood(make_package) -> None:
    answer = {
        "LoadImage": {"input": {"required": {"image": ["COMBO", {"options": ["a.png"]}]}}, "output": ["IMAGE"]},
        "ImageInvert": {"input": {"required": {"image": ["IMAGE", {}]}}, "output": ["IMAGE"]},
        "SaveImage": {"input": {"required": {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {}],
                                             "format": ["COMBO", {"options": ["png", "webp"]}]}},
                      "output": [], "output_node": True},
    }
    folder = make_package("invert", graph_edit=lambda g: g["3"]["inputs"].update(format="exr"))
    definitions = definitions_from_answer(answer, source="v3.json", live=True)
    assert lines(folder, definitions) == [
        f"{folder}: node 3 (SaveImage) input 'format': 'exr' is not one of: png, webp [value_not_in_list]"
    ]


def test_allow_list_names_each_foreign_class(make_package) -> None:
    folder = make_package("blur")
    assert lines(folder, allowed_nodes={"LoadImage", "SaveImage"}) == [
        f"{folder}: node 2 (ImageBlur): class 'ImageBlur' is not in the allow-list [node_not_allowed]"
    ]
