"""Data passes (``data: true`` in the manifest: depth, normals, AO): written as the workflow gives them,
without the conversion back to the plate's colour space, and tagged raw. A normal encoded 0.5 must stay
0.5 (a zero component) in the file, not become 0.214 as sRGB 0.5 does in scene-linear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec
from farm_plugin.runner.chunk import ChunkRunner
from farm_plugin.workflow.package import WorkflowPackageError, load_package
from tests.doubles.comfyui.harness import comfyfarm_nodes_args
from tests.flame_submitter.test_run_local import scene_linear_rgba_plate
from tests.flame_submitter.test_run_local_passes import passes_package

FRAMES = [1001, 1002]


def data_package(folder: Path) -> Path:
    """The three-pass package with its ``plate`` pass (the frame as the workflow saw it) marked data."""
    package = passes_package(folder)
    manifest = yaml.safe_load((package / "workflow.yaml").read_text())
    manifest["outputs"]["plate"]["data"] = True
    (package / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return package


def record(package: Path, plate: str, output: str, *, exr_layers: bool = False) -> JobRecord:
    workflow = load_package(package)
    return JobRecord(job_id="data", name="data", source=SourceSpec(plate, tuple(FRAMES)),
                     output=OutputSpec(output, exr_layers=exr_layers),
                     workflow=WorkflowSpec.from_package(workflow, workflow.graph, {}))


def working(plate: str, frame: int) -> np.ndarray:
    """What the workflow saw of the plate: its RGB in the working space (sRGB-encoded), unclamped."""
    pixels = read_pixels(plate.replace("####", str(frame)))
    return to_working(pixels, ColourPolicy.default_for(probe(plate.replace("####", str(frame)))))[..., :3]


@pytest.mark.parametrize("exr_layers", [False, True])
def test_a_data_pass_holds_the_workflows_values_and_a_colour_pass_the_plates_colour(
        fake_comfyui_factory, tmp_path: Path, exr_layers: bool) -> None:
    fake = fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "nodes.yaml"))
    plate = scene_linear_rgba_plate(tmp_path / "plate", frames=len(FRAMES))
    job = record(data_package(tmp_path / "three"), plate, str(tmp_path / "o" / "o.####.exr"), exr_layers=exr_layers)
    assert ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s").run(FRAMES).written == FRAMES
    for frame in FRAMES:
        if exr_layers:
            path = tmp_path / "o" / f"o.{frame}.exr"
            names = probe(path).channel_names
            pixels = read_pixels(path)
            plate_pass = pixels[..., [names.index(f"plate.{c}") for c in "RGB"]]
            keyed = pixels[..., [names.index(f"keyed.{c}") for c in "RGB"]]
        else:
            info = probe(tmp_path / "o" / f"o_plate.{frame}.exr")
            assert info.metadata.get("oiio:ColorSpace") == "data"  # not colour, said so in the header
            plate_pass = read_pixels(info.path)[..., :3]
            keyed = read_pixels(tmp_path / "o" / f"o_keyed.{frame}.exr")[..., :3]
        expected = working(plate, frame).astype(np.float16).astype(np.float32)  # the values, as half
        np.testing.assert_array_equal(plate_pass, expected)
        source = read_pixels(plate.replace("####", str(frame)))[..., :3]
        np.testing.assert_array_equal(keyed, source)  # a colour pass: back in the plate's space, as it was


@pytest.mark.parametrize("first_is_data", [True, False])
def test_a_layered_file_is_tagged_as_its_first_pass_its_r_g_b(fake_comfyui_factory, tmp_path: Path,
                                                               first_is_data: bool) -> None:
    fake = fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "nodes.yaml"))
    plate = scene_linear_rgba_plate(tmp_path / "plate", frames=len(FRAMES))
    package = data_package(tmp_path / "three")
    manifest = yaml.safe_load((package / "workflow.yaml").read_text())
    first = next(iter(manifest["outputs"]))
    manifest["outputs"][first]["data"] = first_is_data
    (package / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    job = record(package, plate, str(tmp_path / "o" / "o.####.exr"), exr_layers=True)
    assert ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s").run(FRAMES).written == FRAMES
    tag = probe(tmp_path / "o" / f"o.{FRAMES[0]}.exr").metadata.get("oiio:ColorSpace")
    if first_is_data:
        assert tag == "data"
    else:  # the plate's scene-linear Rec.709, by the name OpenImageIO writes for it
        assert tag == "lin_rec709_scene"


def test_data_must_be_true_or_false(tmp_path: Path) -> None:
    package = passes_package(tmp_path / "three")
    manifest = yaml.safe_load((package / "workflow.yaml").read_text())
    manifest["outputs"]["plate"]["data"] = "yes"
    (package / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    with pytest.raises(WorkflowPackageError) as raised:
        load_package(package)
    assert str(raised.value) == (f"{package / 'workflow.yaml'}: outputs.plate.data: expected true (the pass holds "
                                 "data: depth, normals, AO; written without colour conversion) or false, got 'yes'")


def test_the_shipped_depth_and_normal_passes_are_data() -> None:
    root = Path(__file__).resolve().parents[3] / "workflows"
    found = {(name, output.name): output.data for name in ("depth_normal_ao_maps", "matte_depth_normal",
                                                            "dsine_normal_refine")
             for output in load_package(root / name).outputs}
    assert found == {("depth_normal_ao_maps", "depth"): True, ("depth_normal_ao_maps", "normals"): True,
                     ("depth_normal_ao_maps", "ao"): True, ("matte_depth_normal", "rgba"): False,
                     ("matte_depth_normal", "depth"): True, ("matte_depth_normal", "normals"): True,
                     ("dsine_normal_refine", "result"): True}
