"""``check_pass_formats``: an output format that cannot hold what the job writes is refused before anything runs,
with plates written the way other applications write them (OpenImageIO, and a foreign EXR writer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import pytest
import yaml

from farm_plugin.frames.image_io import PlateInfo, probe, write_frame
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import WorkflowSpec
from farm_plugin.runner.preflight import PreflightError, check_pass_formats
from farm_plugin.workflow.package import load_package
from tests.farm_plugin.frames.foreign_exr import write_exr

MATTE = {"node": "1", "output": 1}  # LoadImage's MASK: the plate's own alpha, as a keyer's matte would be


def package(folder: Path, outputs: Dict[str, Dict[str, Any]]) -> WorkflowSpec:
    """A package that loads the frame and saves one image per pass (``outputs``: pass → its alpha, or {})."""
    graph: Dict[str, Any] = {"1": {"class_type": "LoadImage", "inputs": {"image": "frame.png"}}}
    manifest_outputs = {}
    for index, (name, alpha) in enumerate(outputs.items(), start=2):
        graph[str(index)] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": name}}
        manifest_outputs[name] = {"node": str(index), "input": "filename_prefix", **({"alpha": alpha} if alpha else {})}
    folder.mkdir(parents=True)
    (folder / "workflow.json").write_text(json.dumps(graph))
    (folder / "workflow.yaml").write_text(yaml.safe_dump({
        "schema": 1, "title": folder.name, "description": "test", "category": "Utility", "mode": "per_frame",
        "template": "default", "input": {"node": "1", "input": "image"}, "outputs": manifest_outputs,
        "requirements": {"nodes": ["LoadImage", "SaveImage"]}}))
    loaded = load_package(folder)
    return WorkflowSpec.from_package(loaded, loaded.graph, {})


@pytest.fixture
def keyer(tmp_path: Path) -> WorkflowSpec:
    return package(tmp_path / "keyer", {"rgba": MATTE})


@pytest.fixture
def grade(tmp_path: Path) -> WorkflowSpec:
    return package(tmp_path / "grade", {"result": {}})


def plate(path: Path, *, channels: int = 3, bit_depth: Optional[str] = None) -> PlateInfo:
    """One frame written by OpenImageIO, with scene-linear values from -0.5 to 4.0 (an integer format clips)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.linspace(-0.5, 4.0, 9 * 16 * channels, dtype=np.float32).reshape(9, 16, channels)
    return write_frame(path, pixels, bit_depth=bit_depth)


def refusal(workflow: WorkflowSpec, output: str, info: PlateInfo, file_format: Optional[str] = None) -> str:
    with pytest.raises(PreflightError) as caught:
        check_pass_formats(workflow, FramePattern.parse(output), info, file_format=file_format)
    return str(caught.value)


def test_a_keyers_alpha_is_refused_a_jpeg_and_the_message_names_the_pass_and_the_fix(tmp_path: Path,
                                                                                     keyer: WorkflowSpec) -> None:
    info = plate(tmp_path / "p" / "sh010.1001.png", channels=4, bit_depth="uint8")
    assert refusal(keyer, "/o/sh010.####.jpg", info) == (
        "output pattern '/o/sh010.####.jpg': JPEG cannot hold the alpha that the rgba pass of workflow keyer gives: "
        "end it in .exr, .tif, .png or .dpx")
    assert refusal(keyer, "/o/sh010.%04d.jpeg", info, "jpeg").startswith("output pattern '/o/sh010.####.jpeg': JPEG ")


def test_of_several_passes_the_one_that_gives_an_alpha_is_named(tmp_path: Path) -> None:
    workflow = package(tmp_path / "matte_depth", {"depth": {}, "matte": MATTE})
    info = plate(tmp_path / "p" / "sh010.1001.dpx", bit_depth="uint10")
    assert refusal(workflow, "/o/sh010.####.jpg", info) == (
        "output pattern '/o/sh010.####.jpg': JPEG cannot hold the alpha that the matte pass of workflow matte_depth "
        "gives: end it in .exr, .tif, .png or .dpx")


@pytest.mark.parametrize("ending", ["exr", "tif", "png", "dpx"])
def test_a_keyers_alpha_goes_into_every_format_that_holds_alpha(tmp_path: Path, keyer: WorkflowSpec,
                                                                ending: str) -> None:
    info = plate(tmp_path / "p" / "sh010.1001.tif", channels=4, bit_depth="uint16")
    check_pass_formats(keyer, FramePattern.parse(f"/o/sh010.####.{ending}"), info)


def test_an_rgb_plate_or_a_plates_own_alpha_may_go_to_jpeg(tmp_path: Path, grade: WorkflowSpec) -> None:
    for info in (plate(tmp_path / "rgb" / "p.1001.png", bit_depth="uint8"),
                 plate(tmp_path / "rgba" / "p.1001.png", channels=4, bit_depth="uint16")):
        check_pass_formats(grade, FramePattern.parse("/o/sh010.####.jpg"), info)  # staging drops the plate's alpha


@pytest.mark.parametrize(("name", "bit_depth", "pixels"), [
    ("plate.1001.exr", "half", "half-float"),
    ("plate.1001.exr", "float", "32-bit float"),
    ("plate.1001.tif", "float", "32-bit float"),
])
@pytest.mark.parametrize(("ending", "label"), [("dpx", "DPX"), ("png", "PNG"), ("jpg", "JPEG")])
def test_a_float_plate_is_refused_a_format_that_would_clip_it(tmp_path: Path, grade: WorkflowSpec, name: str,
                                                              bit_depth: str, pixels: str, ending: str,
                                                              label: str) -> None:
    info = plate(tmp_path / name, bit_depth=bit_depth)
    assert refusal(grade, f"/o/sh010.####.{ending}", info) == (
        f"output pattern '/o/sh010.####.{ending}': {label} cannot hold the {pixels} pixels of the plate {info.path}: "
        "its values outside 0..1 would be clipped: end it in .exr or .tif")


def test_a_half_exr_from_another_writer_is_a_float_plate(tmp_path: Path, grade: WorkflowSpec) -> None:
    path = write_exr(tmp_path / "plate.1001.exr", np.full((4, 8, 4), 2.5, np.float32),
                     [("timeCode", "timecode", (0x01000000, 0))])
    assert refusal(grade, "/o/sh010.####.dpx", probe(path)) == (
        f"output pattern '/o/sh010.####.dpx': DPX cannot hold the half-float pixels of the plate {path}: its values "
        "outside 0..1 would be clipped: end it in .exr or .tif")


@pytest.mark.parametrize("ending", ["exr", "tif"])
def test_a_float_plate_goes_into_a_float_format(tmp_path: Path, keyer: WorkflowSpec, ending: str) -> None:
    check_pass_formats(keyer, FramePattern.parse(f"/o/sh010.####.{ending}"),
                       plate(tmp_path / "plate.1001.exr", channels=4))


@pytest.mark.parametrize(("name", "bit_depth"), [("plate.1001.dpx", "uint10"), ("plate.1001.tif", "uint16"),
                                                 ("plate.1001.png", "uint8")])
@pytest.mark.parametrize("ending", ["dpx", "png", "jpg", "tif", "exr"])
def test_an_integer_plate_goes_into_any_format(tmp_path: Path, grade: WorkflowSpec, name: str, bit_depth: str,
                                               ending: str) -> None:
    check_pass_formats(grade, FramePattern.parse(f"/o/sh010.####.{ending}"), plate(tmp_path / name,
                                                                                    bit_depth=bit_depth))


@pytest.mark.parametrize(("output", "file_format", "message"), [
    ("/o/sh010.####.exr", "dpx", "output pattern '/o/sh010.####.exr' ends in .exr but the output format is dpx: "
                                 "end it in .dpx, or choose the output format exr"),
    ("/o/sh010.####.tif", "png", "output pattern '/o/sh010.####.tif' ends in .tif but the output format is png: "
                                 "end it in .png, or choose the output format tiff"),
    ("/o/sh010.####.exr", "mov", "output format 'mov' is not one of exr, tiff, png, dpx, jpeg: choose one of those, "
                                 "or none to write the format that the output pattern's extension names"),
])
def test_an_output_format_that_disagrees_with_the_extension_is_refused(tmp_path: Path, grade: WorkflowSpec,
                                                                       output: str, file_format: str,
                                                                       message: str) -> None:
    info = plate(tmp_path / "plate.1001.exr")
    assert refusal(grade, output, info, file_format) == message


@pytest.mark.parametrize(("output", "file_format"), [("/o/sh010.####.tif", "tiff"), ("/o/sh010.####.tiff", "tiff"),
                                                     ("/o/sh010.####.EXR", "exr"), ("/o/sh010.####.exr", "openexr")])
def test_an_output_format_that_agrees_with_the_extension_passes(tmp_path: Path, grade: WorkflowSpec, output: str,
                                                                file_format: str) -> None:
    check_pass_formats(grade, FramePattern.parse(output), plate(tmp_path / "plate.1001.exr"), file_format=file_format)
