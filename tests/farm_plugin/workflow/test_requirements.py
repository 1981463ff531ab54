from __future__ import annotations

from typing import Any, Dict

import pytest

from farm_plugin.workflow.object_info import definitions_from_answer
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.requirements import (
    MODEL_MISSING,
    MODEL_NOT_LISTED,
    MODEL_PRESENT,
    MODEL_UNCHECKED,
    MissingNode,
    check_package,
    effective_graph,
    is_model_file_name,
    manifest_gaps,
    model_file_uses,
    model_location,
    pack_for_class,
)


def node(inputs: Dict[str, Any], outputs=("IMAGE",), output_node: bool = False) -> Dict[str, Any]:
    return {"input": {"required": inputs}, "output": list(outputs), "output_node": output_node}


IMAGE = ["IMAGE"]
CORE_FOR_FILM_LOOK = {
    "LoadImage": node({"image": [["frame.png"]]}, ("IMAGE", "MASK")),
    "SaveImage": node({"images": IMAGE, "filename_prefix": ["STRING", {}]}, (), output_node=True),
    "ImageBlend": node({"image1": IMAGE, "image2": IMAGE, "blend_factor": ["FLOAT", {}],
                        "blend_mode": [["normal", "multiply", "screen", "overlay", "soft_light", "difference"]]}),
}


def propost(luts) -> Dict[str, Any]:
    return {
        "ProPostApplyLUT": node({"image": IMAGE, "lut_name": [list(luts)], "strength": ["FLOAT", {}],
                                 "log": ["BOOLEAN", {}]}),
        "ProPostVignette": node({"image": IMAGE, "intensity": ["FLOAT", {}], "center_x": ["FLOAT", {}],
                                 "center_y": ["FLOAT", {}]}),
    }


def answer(*parts: Dict[str, Any]):
    merged: Dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return definitions_from_answer(merged, source="test", live=True)


@pytest.mark.parametrize("class_type, pack", [
    ("ADE_AnimateDiffLoaderGen1", "Kosinkadink/ComfyUI-AnimateDiff-Evolved"),
    ("RIFE VFI", "Fannovel16/ComfyUI-Frame-Interpolation"),
    ("DSINE-NormalMapPreprocessor", "Fannovel16/comfyui_controlnet_aux"),
    ("SimpleMath+", "cubiq/ComfyUI_essentials"),
    ("VHS_VideoCombine", "Kosinkadink/ComfyUI-VideoHelperSuite"),
    ("ProPostApplyLUT", "digitaljohn/comfyui-propost"),
    ("LoadImage", None),
    ("UpscaleModelLoader", None),
])
def test_pack_for_class(class_type: str, pack) -> None:
    assert pack_for_class(class_type) == pack


@pytest.mark.parametrize("folder, location", [
    ("checkpoints", "ComfyUI/models/checkpoints"),
    ("custom_nodes/ComfyUI-Frame-Interpolation/ckpts/rife",
     "ComfyUI/custom_nodes/ComfyUI-Frame-Interpolation/ckpts/rife"),
    ("~/.u2net", "~/.u2net"),
    ("", "(the manifest does not say which folder)"),
])
def test_model_location(folder: str, location: str) -> None:
    assert model_location(folder) == location


def test_model_file_names_are_recognised_by_extension() -> None:
    assert is_model_file_name("v3_sd15_mm.ckpt") and is_model_file_name("Film Look.CUBE")
    assert not is_model_file_name("comfyfarm/x") and not is_model_file_name(3)


def test_a_comfyui_with_the_pack_and_the_lut_runs_the_film_look(make_package) -> None:
    package = load_package(make_package("film_look_lut"))
    check = check_package(package, answer(CORE_FOR_FILM_LOOK, propost(["film_look.cube"])))
    assert check.ok
    assert [(m.name, m.state) for m in check.models] == [("film_look.cube", MODEL_PRESENT)]


def test_a_missing_lut_is_named_with_its_folder_and_node(make_package) -> None:
    package = load_package(make_package("film_look_lut"))
    check = check_package(package, answer(CORE_FOR_FILM_LOOK, propost(["other.cube"])))
    assert not check.ok and check.missing_nodes == ()
    (missing,) = check.missing_models
    assert (missing.name, missing.location, missing.use.node, missing.use.input) == (
        "film_look.cube", "ComfyUI/models/luts", "2", "lut_name")


def test_missing_classes_are_grouped_by_pack_and_their_models_left_unchecked(make_package) -> None:
    package = load_package(make_package("film_look_lut"))
    check = check_package(package, answer(CORE_FOR_FILM_LOOK))
    assert check.missing_by_pack() == {"digitaljohn/comfyui-propost": ("ProPostApplyLUT", "ProPostVignette")}
    assert [(m.name, m.state) for m in check.models] == [("film_look.cube", MODEL_UNCHECKED)]
    assert check.missing_nodes[0].hint == (
        "install digitaljohn/comfyui-propost in ComfyUI/custom_nodes "
        "(git clone https://github.com/digitaljohn/comfyui-propost)")


def test_core_classes_come_last_with_their_hint(make_package) -> None:
    package = load_package(make_package("clearreality_upscale_4x"))
    check = check_package(package, answer(CORE_FOR_FILM_LOOK, {"ImageScaleBy": node({"image": IMAGE})}))
    assert check.missing_by_pack() == {None: ("UpscaleModelLoader", "ImageUpscaleWithModel")}
    assert "spandrel" in MissingNode("UpscaleModelLoader", None).hint
    assert "IMPORT FAILED" in MissingNode("SomethingNew", None).hint


def test_files_no_input_names_are_reported_as_loaded_by_their_pack(make_package) -> None:
    package = load_package(make_package("inspyrenet_matte"))
    definitions = answer(CORE_FOR_FILM_LOOK, {
        "InspyrenetRembg": node({"image": IMAGE, "torchscript_jit": [["default", "on"]]}, ("IMAGE", "MASK")),
        "GrowMask": node({"mask": ["MASK"], "expand": ["INT", {}], "tapered_corners": ["BOOLEAN", {}]}, ("MASK",)),
        "MaskToImage": node({"mask": ["MASK"]}),
    })
    check = check_package(package, definitions)
    assert check.ok
    assert [(m.name, m.state, m.location) for m in check.models] == [
        ("ckpt_base.pth", MODEL_NOT_LISTED, "~/.transparent-background")]


def test_the_model_a_job_sends_is_the_parameter_default_not_the_graph_literal(make_package) -> None:
    small = "depth_anything_v2_vits_fp32.safetensors"
    folder = make_package(
        "depth_normal_ao_maps", manifest_edit=lambda m: m["parameters"]["depth_model"].update(default=small))
    package = load_package(folder)
    assert effective_graph(package)["2"]["inputs"]["model"] == "depth_anything_v2_vits_fp32.safetensors"
    assert [u.name for u in model_file_uses(package) if u.node == "2"] == ["depth_anything_v2_vits_fp32.safetensors"]
    gaps = manifest_gaps(package)
    assert gaps == ("model file 'depth_anything_v2_vits_fp32.safetensors' (node 2 DownloadAndLoadDepthAnythingV2Model, "
                    "input 'model') is not in requirements.models",)


def test_the_frame_input_is_never_a_model(make_package) -> None:
    package = load_package(make_package("invert", graph_edit=lambda g: g["1"]["inputs"].update(image="plate.pth")))
    assert model_file_uses(package) == ()


def test_manifest_gaps_name_what_the_manifest_forgot(make_package) -> None:
    def forget(manifest):
        manifest["requirements"]["nodes"].remove("ProPostVignette")
        manifest["requirements"]["packs"] = []
        manifest["requirements"]["models"] = []

    package = load_package(make_package("film_look_lut", manifest_edit=forget))
    assert manifest_gaps(package) == (
        "node class 'ProPostApplyLUT' comes from digitaljohn/comfyui-propost, which is not in requirements.packs",
        "node class 'ProPostVignette' is not in requirements.nodes",
        "node class 'ProPostVignette' comes from digitaljohn/comfyui-propost, which is not in requirements.packs",
        "model file 'film_look.cube' (node 2 ProPostApplyLUT, input 'lut_name') is not in requirements.models",
    )
    assert manifest_gaps(package, core_classes=["ProPostVignette"])[1].startswith("model file")


def test_a_model_without_folder_is_a_gap(make_package) -> None:
    package = load_package(make_package(
        "film_look_lut", manifest_edit=lambda m: m["requirements"].update(models=["film_look.cube"])))
    assert manifest_gaps(package) == ("model file 'film_look.cube' has no folder in requirements.models",)
    assert check_package(package, answer(CORE_FOR_FILM_LOOK, propost([]))).models[0].location == (
        "(the manifest does not say which folder)")
    assert check_package(package, answer(CORE_FOR_FILM_LOOK, propost([]))).models[0].state == MODEL_MISSING
