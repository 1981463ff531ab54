"""What the packs do that their node definitions cannot show, as ``comfyfarm validate`` checks it: each case is
a mistake that running the library through the real packs found (tests/real_packs, docs/real_packs.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm_plugin.workflow.object_info import load_definitions
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.validate import validate_package
from tests.recorded import OBJECT_INFO


@pytest.fixture(scope="module")
def recorded():
    return load_definitions([OBJECT_INFO])


def lines(folder: Path, definitions=None) -> list:
    return [str(p) for p in validate_package(load_package(folder), definitions)]


def test_a_vignette_of_0_is_refused_as_a_literal_and_as_a_parameter_bound(make_package) -> None:
    def graph(g):  # the package as it shipped before the real pack ran it
        g["3"]["inputs"].update(image=["2", 0], intensity=0.0)
        g["4"]["inputs"]["images"] = ["3", 0]
        g.pop("6")

    def manifest(m):
        m["parameters"]["vignette"].update(node="3", input="intensity")

    folder = make_package("film_look_lut", graph_edit=graph, manifest_edit=manifest)
    why = ("at 0 ProPost's vignette returns the bare image instead of a tuple, and ComfyUI hands on only the first "
           "frame, without its batch axis [value_breaks_node]")
    assert lines(folder) == [
        f"{folder}: node 3 (ProPostVignette) input 'intensity': 0 must be above 0: {why}",
        f"{folder}: node 3 (ProPostVignette) input 'intensity': parameter 'vignette' lets an artist set 0 or less "
        f"(min 0.0): {why}",
    ]


def test_a_frame_multiplier_must_equal_the_sequence_ratio_and_not_be_a_parameter(make_package) -> None:
    def graph(g):
        g["2"]["inputs"]["multiplier"] = 3

    def manifest(m):
        m["parameters"]["multiplier"] = {"node": "2", "input": "multiplier", "type": "int", "default": 2}

    folder = make_package("rife_frame_interpolation", graph_edit=graph, manifest_edit=manifest)
    assert lines(folder) == [
        f"{folder}: node 2 (RIFE VFI) input 'multiplier': makes 3 frames per source frame but sequence.ratio is 2: "
        "comfyfarm would number the frames wrong; set them equal [ratio_mismatch]",
        f"{folder}: node 2 (RIFE VFI) input 'multiplier': parameter 'multiplier' sets the frames made per source "
        "frame, which must stay equal to sequence.ratio: remove the parameter [ratio_mismatch]",
    ]


def test_a_per_frame_package_cannot_multiply_frames(make_package) -> None:
    def manifest(m):
        m["mode"] = "per_frame"
        m.pop("sequence")

    folder = make_package("rife_frame_interpolation", manifest_edit=manifest)
    assert lines(folder) == [
        f"{folder}: node 2 (RIFE VFI) input 'multiplier': makes 2 frames per source frame but a per_frame package "
        "(ratio 1) is 1: comfyfarm would number the frames wrong; set them equal [ratio_mismatch]"]


@pytest.mark.parametrize(("package", "node", "clamp", "how"), [
    ("rembg_matte", "3", "6", "ToPILImage casts image x 255 to a byte"),
    ("dsine_normal_refine", "3", "10", "comfyui_controlnet_aux casts image x 255 to uint8"),
])
def test_a_node_that_reads_8_bits_unclipped_must_get_the_frames_clipped(
        make_package, recorded, package: str, node: str, clamp: str, how: str) -> None:
    def graph(g):  # the package as it shipped: the frame straight from the loader
        g[node]["inputs"]["image"] = ["1", 0]
        g.pop(clamp)

    def manifest(m):
        m["requirements"]["nodes"].remove("ImageBlend")

    folder = make_package(package, graph_edit=graph, manifest_edit=manifest)
    assert lines(folder, recorded) == [
        f"{folder}: node {node} ({load_package(folder).graph[node]['class_type']}) input 'image': gets comfyfarm's "
        f"float frames unclipped, and {how}: a highlight above 1 wraps round to a dark value; put an ImageBlend of the "
        "frame with itself (blend_factor 1, normal), which clamps to 0..1, in front of it [unclipped_input]"]


def test_a_clip_on_one_branch_only_is_not_enough(make_package, recorded) -> None:
    def graph(g):  # the depth preprocessor clipped, DSINE straight from the loader
        g["9"]["inputs"]["image"] = ["1", 0]

    folder = make_package("matte_depth_normal", graph_edit=graph)
    assert [line.split(": ")[1] for line in lines(folder, recorded)] == [
        "node 9 (DSINE-NormalMapPreprocessor) input 'image'"]


def test_a_pass_from_a_node_that_changes_the_size_must_be_scaled_back(make_package, recorded) -> None:
    def graph(g):  # the depth pass as it shipped: straight from DepthAnything_V2
        g["4"]["inputs"]["images"] = ["3", 0]

    folder = make_package("depth_normal_ao_maps", graph_edit=graph)
    assert lines(folder, recorded) == [
        f"{folder}: node 4 (SaveImage): pass 'depth' comes from node 3 (DepthAnything_V2), which returns the size "
        "rounded down to even: the pass would not have the plate's size (nor its alpha); scale it back with "
        "ImageScale to GetImageSize of the plate [pass_size]"]


def test_a_preprocessor_pass_without_its_crop_and_scale_is_refused(make_package, recorded) -> None:
    def graph(g):
        g["15"]["inputs"]["images"] = ["5", 0]  # the depth preprocessor's own resolution

    folder = make_package("matte_depth_normal", graph_edit=graph)
    assert [p.code for p in validate_package(load_package(folder), recorded)] == ["pass_size"]
