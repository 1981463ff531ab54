"""A several-pass job with ``exr_layers``: every pass as a layer of one EXR per frame, at the job's pattern.

The three-pass package of tests/flame_submitter/test_run_local_passes.py (``inverted``, ``plate``, ``keyed``
with a matte as its alpha) runs once as separate sequences and once as layers, on the same plate: each layer
holds exactly the pixels of its pass's sequence.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.completion.record import build_completion
from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec
from farm_plugin.runner.chunk import ChunkFailed, ChunkRunner
from farm_plugin.runner.preflight import PreflightError, check_pass_formats
from farm_plugin.workflow.package import load_package
from tests.doubles.comfyui.harness import comfyfarm_nodes_args
from tests.flame_submitter.test_run_local import scene_linear_rgba_plate
from tests.flame_submitter.test_run_local_passes import passes_package

FRAMES = [1001, 1002, 1003]
LAYERED_CHANNELS = ("R", "G", "B", "A", "inverted.R", "inverted.G", "inverted.B", "keyed.R", "keyed.G",
                    "keyed.B", "keyed.A")


def record(package: Path, plate: str, output: str, *, exr_layers: bool) -> JobRecord:
    workflow = load_package(package)
    return JobRecord(job_id="layers", name="layers", source=SourceSpec(plate, tuple(FRAMES)),
                     output=OutputSpec(output, exr_layers=exr_layers),
                     workflow=WorkflowSpec.from_package(workflow, workflow.graph, {}))


def reorder_plate_first(package: Path) -> Path:
    """The package with ``plate`` as its first pass: the pass that takes the plain R, G, B, A."""
    manifest = package / "workflow.yaml"
    text = manifest.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("outputs:")
    block = lines[start + 1:start + 7]
    plate = [i for i, line in enumerate(block) if line.startswith("  plate:")][0]
    reordered = block[plate:plate + 2] + block[:plate] + block[plate + 2:]
    manifest.write_text("\n".join(lines[:start + 1] + reordered + lines[start + 7:]) + "\n", encoding="utf-8")
    return package


@pytest.fixture
def fake(fake_comfyui_factory, tmp_path: Path):
    return fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "nodes.yaml"))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return reorder_plate_first(passes_package(tmp_path / "three"))


def layers_of(path: Path) -> Dict[str, np.ndarray]:
    """The file's pixels by layer ("" for the plain channels), each as (height, width, channels)."""
    info = probe(path)
    pixels = read_pixels(path)
    found: Dict[str, list] = {}
    for index, name in enumerate(info.channel_names):
        layer = name.rpartition(".")[0]
        found.setdefault(layer, []).append(index)
    return {layer: pixels[..., indices] for layer, indices in found.items()}


def test_each_layer_holds_exactly_what_its_pass_sequence_holds(fake, package: Path, tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    server = ExternalServer(fake.url)
    separate = record(package, plate, str(tmp_path / "separate" / "o.####.exr"), exr_layers=False)
    layered = record(package, plate, str(tmp_path / "layered" / "o.####.exr"), exr_layers=True)
    assert ChunkRunner(separate, server, scratch_dir=tmp_path / "s1").run(FRAMES).written == FRAMES
    assert ChunkRunner(layered, server, scratch_dir=tmp_path / "s2").run(FRAMES).written == FRAMES
    assert sorted(p.name for p in (tmp_path / "layered").iterdir()) == [f"o.{frame}.exr" for frame in FRAMES]
    for index, frame in enumerate(FRAMES):
        info = probe(tmp_path / "layered" / f"o.{frame}.exr")
        assert (info.channel_names, info.pixel_type, info.timecode) == (LAYERED_CHANNELS, "half",
                                                                        f"01:00:00:{index:02d}")
        layers = layers_of(info.path)
        for name, layer in (("plate", ""), ("inverted", "inverted"), ("keyed", "keyed")):
            alone = read_pixels(tmp_path / "separate" / f"o_{name}.{frame}.exr")
            if name == "inverted":  # the plate's alpha goes with the first pass only
                alone = alone[..., :3]
            np.testing.assert_array_equal(layers[layer], alone, err_msg=f"{name} pass of frame {frame}")
        np.testing.assert_array_equal(layers[""], read_pixels(plate.replace("####", str(frame))))


def test_the_completion_record_lists_every_pass_in_the_one_sequence(fake, package: Path, tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    job = record(package, plate, str(tmp_path / "o" / "o.####.exr"), exr_layers=True)
    ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s").run(FRAMES)
    completion = build_completion(job, deadline_job_id="j1", job_failed=False)
    assert [(p.name, p.output_pattern, p.frames, p.channels) for p in completion.passes] == [
        ("plate", str(tmp_path / "o" / "o.####.exr"), tuple(FRAMES), 4),
        ("inverted", str(tmp_path / "o" / "o.####.exr"), tuple(FRAMES), 3),
        ("keyed", str(tmp_path / "o" / "o.####.exr"), tuple(FRAMES), 4),
    ]
    assert completion.status == "completed" and completion.missing_frames == ()


def test_a_frame_missing_a_layer_is_redone_and_a_whole_one_is_kept(fake, package: Path, tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    job = record(package, plate, str(tmp_path / "o" / "o.####.exr"), exr_layers=True)
    runner = ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s")
    runner.run(FRAMES)
    kept = (tmp_path / "o" / "o.1001.exr").stat().st_mtime_ns
    flat = read_pixels(plate.replace("####", "1002"))  # a plain RGBA frame where the layered one was
    write_frame(tmp_path / "o" / "o.1002.exr", flat)
    report = ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s").run(FRAMES)
    assert (report.written, report.skipped) == ([1002], [1001, 1003])
    assert probe(tmp_path / "o" / "o.1002.exr").channel_names == LAYERED_CHANNELS
    assert (tmp_path / "o" / "o.1001.exr").stat().st_mtime_ns == kept


def test_passes_of_different_sizes_cannot_be_layers_of_one_file(fake, package: Path, tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    job = record(package, plate, str(tmp_path / "o" / "o.####.exr"), exr_layers=True)
    graph = dict(job.workflow.graph)
    graph["7"] = {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "nearest-exact",
                                                        "width": 32, "height": 18, "crop": "disabled"}}
    graph["3"] = {**graph["3"], "inputs": {**graph["3"]["inputs"], "images": ["7", 0]}}
    job = replace(job, workflow=replace(job.workflow, graph=graph))
    with pytest.raises(ChunkFailed) as raised:
        ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s").run(FRAMES[:1])
    assert str(raised.value) == (
        f"frame 1001: cannot write the passes as layers: cannot write '{tmp_path / 'o' / 'o.1001.exr'}': the "
        "inverted pass is 32x18 but the plate pass is 16x9: the layers of one EXR share one size; write the passes "
        "as separate sequences (exr_layers off)")
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_layers_need_an_exr_output(package: Path, tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    job = record(package, plate, str(tmp_path / "o" / "o.####.tif"), exr_layers=True)
    with pytest.raises(PreflightError) as raised:
        check_pass_formats(job.workflow, FramePattern.parse(job.output.pattern), probe(plate.replace("####", "1001")),
                           exr_layers=True)
    assert str(raised.value) == (
        f"output pattern '{tmp_path / 'o' / 'o.####.tif'}': TIFF has no layers to hold the 3 passes of workflow "
        "three (plate, inverted, keyed) in one file: end it in .exr, or turn exr_layers off to write each pass as "
        "its own sequence")


def test_on_the_8_bit_path_the_layers_are_the_same_less_the_plates_alpha(fake_comfyui, package: Path,
                                                                         tmp_path: Path) -> None:
    """A ComfyUI without comfyfarm's nodes: ComfyUI's PNGs become the layers, the keyed pass with its alpha;
    the plate's alpha does not go through the 8-bit path (docs/frames.md)."""
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    job = record(package, plate, str(tmp_path / "o" / "o.####.exr"), exr_layers=True)
    assert ChunkRunner(job, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run(FRAMES).written == FRAMES
    for frame in FRAMES:
        assert probe(tmp_path / "o" / f"o.{frame}.exr").channel_names == tuple(
            name for name in LAYERED_CHANNELS if name != "A")
        layers = layers_of(tmp_path / "o" / f"o.{frame}.exr")
        source = read_pixels(plate.replace("####", str(frame)))[..., :3]
        in_range = (source >= 0) & (source <= 1)  # 8 bits clip what is outside 0..1
        assert np.abs(layers[""] - source)[in_range].max() < 0.02
