from __future__ import annotations

import re
from pathlib import Path

import pytest

from farm_plugin.workflow.package import WorkflowPackageError, list_packages, load_package

from .conftest import WORKFLOWS


def test_shipped_packages_load_with_their_bindings() -> None:
    names = [p.name for p in list_packages(WORKFLOWS)]
    assert {"invert", "blur", "sequence_invert"} <= set(names)
    blur = load_package(WORKFLOWS / "blur")
    assert blur.mode == "per_frame"
    assert (blur.input.node, blur.input.input) == ("1", "image")
    assert blur.graph[blur.input.node]["class_type"] == "LoadImage"
    assert blur.graph[blur.output.node]["class_type"] == "SaveImage"
    radius = blur.parameter("radius")
    assert (radius.node, radius.input, radius.type, radius.default, radius.min, radius.max) == (
        "2", "blur_radius", "int", 5, 1, 31)
    sequence = load_package(WORKFLOWS / "sequence_invert")
    assert sequence.mode == "sequence"
    assert sequence.sequence is not None and sequence.sequence.context_frames == 24
    assert sequence.sequence.ratio == 1.0


def test_unknown_parameter_names_the_known_ones() -> None:
    blur = load_package(WORKFLOWS / "blur")
    message = "workflow 'blur' has no parameter 'size' (its parameters: radius, sigma)"
    with pytest.raises(KeyError, match=re.escape(message)):
        blur.parameter("size")


def test_folder_without_manifest_says_what_a_package_is(tmp_path: Path) -> None:
    (tmp_path / "workflow.json").write_text("{}")
    with pytest.raises(WorkflowPackageError, match="no workflow.yaml: a workflow package is a folder with"):
        load_package(tmp_path)


def test_ui_format_graph_is_refused_with_the_fix(make_package) -> None:
    folder = make_package("invert")
    (folder / "workflow.json").write_text('{"nodes": [], "links": []}')
    with pytest.raises(WorkflowPackageError, match=r"UI format; save it with 'Export \(API\)' instead"):
        load_package(folder)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("title"), "title: is required: add it to the manifest"),
        (lambda m: m.update(mode="batch"), "mode: 'batch' is not a mode: use per_frame or sequence"),
        (lambda m: m["parameters"]["radius"].update(type="integer"),
         "parameters.radius.type: 'integer' is not a parameter type: use one of int, float, bool, string, choice"),
        (lambda m: m["parameters"]["radius"].pop("default"),
         "parameters.radius.default: is required: every parameter needs a default"),
        (lambda m: m["input"].pop("input"),
         "input.input: is required: name the node input that takes the frame file"),
        (lambda m: m.update(sequence={"context": 8}),
         "sequence: is only for mode: sequence; remove it or set mode: sequence"),
        (lambda m: m.update(mode="sequence"), "sequence: is required for mode: sequence (context, overlap, ratio)"),
        (lambda m: m.update(mode="sequence", sequence={"context": 8, "overlap": 4}),
         "sequence.overlap: 4 handle frames each side leave no frame of a 8-frame window: use 0 to 3"),
        (lambda m: m.update(mode="sequence", sequence={"context": 8, "ratio": 0}),
         "sequence.ratio: expected a positive number (2 for 2x interpolation), got 0"),
        (lambda m: m.update(mode="sequence", sequence={"context": 8, "ratio": 1.5}),
         "sequence.ratio: ratio 1.5 is not a whole number: use 2, 3, 4… to add frames, or 0.5, 0.25… (1/2, 1/4…) to "
         "drop them"),
        (lambda m: m.update(mode="sequence", sequence={"context": 8, "ratio": 0.4}),
         "sequence.ratio: ratio 0.4 is not 1 over a whole number: use 0.5, 0.25 or 1/3 (0.3333…) to drop frames, or "
         "a whole number to add them"),
        (lambda m: m.update(mode="sequence", sequence={"context": 8, "overlap": 2, "ratio": 2, "blend": "crossfade"}),
         "sequence.blend: crossfade needs the same frames from both windows, and ratio 2 changes the frame count: "
         "use blend: none"),
        (lambda m: m.update(mode="sequence", sequence={"context": 1, "ratio": 2}),
         "sequence.context: 1 frames cannot hold a frame of its own with 0 handle frame(s) each side at ratio 2: use "
         "at least 2"),
    ],
)
def test_manifest_mistakes_name_the_file_key_and_fix(make_package, edit, message) -> None:
    folder = make_package("blur", manifest_edit=edit)
    with pytest.raises(WorkflowPackageError) as caught:
        load_package(folder)
    assert str(caught.value) == f"{folder / 'workflow.yaml'}: {message}"
