"""One job record for run-local and the farm: the same clip gives the same workflow, frames, header and colour."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from farm_plugin.frames.errors import FrameListError
from farm_plugin.frames.image_io import write_frame
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import OutputSpec, pass_patterns
from farm_plugin.workflow.package import WorkflowPackageError, load_package
from farm_plugin.workflow.params import resolve_parameters
from flame_submitter.cli.run_local import build_record
from flame_submitter.config import Config, load_config
from flame_submitter.deadline.submit import ClipRequest, plan
from flame_submitter.jobs.record import check_workflow, clip_name, requested_frames
from flame_submitter.jobs.templates import load_template
from tests.flame_submitter.two_passes import two_pass_package

REPO = Path(__file__).resolve().parents[2]
FRAMES = (1001, 1002, 1003)


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    folder = tmp_path / "sh010"
    folder.mkdir()
    for frame in FRAMES:
        write_frame(folder / f"sh010_plate.{frame}.exr", np.full((8, 16, 3), 0.25, np.float32))
    return folder / "sh010_plate.####.exr"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"jobs_root": str(tmp_path / "jobs"), "shared_roots": [str(tmp_path)],
                                    "scratch_dir": str(tmp_path / "scratch"), "working_space": "sRGB - Texture"}))
    return load_config(path, environ={})


def local_arguments(plate: Path, output: Path, **extra: Any) -> argparse.Namespace:
    values = dict(workflow="blur", input=str(plate), frames=None, output=str(output), set=["radius=4"], format=None,
                  ocio_config=None, plate_space=None, working_space=None)
    values.update(extra)
    return argparse.Namespace(**values)


def test_run_local_and_the_farm_build_the_same_record_of_a_clip(plate: Path, config: Config,
                                                                 tmp_path: Path) -> None:
    output = tmp_path / "out" / "sh010_blur.####.exr"
    local = build_record(local_arguments(plate, output), config)
    blur = load_package(REPO / "workflows" / "blur")
    (job,) = plan([ClipRequest("sh010_plate", str(plate), list(FRAMES), str(output))], workflow=blur,
                  parameters=resolve_parameters(blur, {"radius": "4"}), template=load_template("default"),
                  config=config)
    farm = job.record
    assert local.workflow == farm.workflow and local.workflow.parameters == {"radius": 4, "sigma": 1.0}
    assert local.source == farm.source
    assert (local.source.frames, local.source.width, local.source.height) == (FRAMES, 16, 8)
    assert local.output.pattern == farm.output.pattern == str(output)
    assert local.colour == farm.colour
    assert local.colour.working_space == "sRGB - Texture"  # the configuration's
    assert local.name == "sh010_plate Gaussian blur" and farm.name == "sh010_plate - Gaussian blur"
    assert local.relink is None and farm.relink is not None


def test_run_local_and_the_farm_ask_for_exr_layers_alike(plate: Path, config: Config, tmp_path: Path) -> None:
    package = two_pass_package(tmp_path / "invert")
    output = tmp_path / "out" / "sh010.####.exr"
    local = build_record(local_arguments(plate, output, workflow=str(package), set=[], exr_layers=True), config)
    (job,) = plan([ClipRequest("sh010_plate", str(plate), list(FRAMES), str(output))],
                  workflow=load_package(package), parameters={},
                  template=load_template("default").with_overrides({"exr_layers": True}), config=config)
    assert local.output == job.record.output == OutputSpec(str(output), None, exr_layers=True)
    assert pass_patterns(local) == pass_patterns(job.record) == {"inverted": FramePattern.parse(str(output)),
                                                                 "original": FramePattern.parse(str(output))}


def test_the_users_colour_choices_go_over_the_configurations(plate: Path, config: Config, tmp_path: Path) -> None:
    arguments = local_arguments(plate, tmp_path / "out" / "o.####.exr", plate_space="ACEScg",
                                working_space="sRGB Encoded Rec.709 (sRGB)")
    colour = build_record(arguments, config).colour
    assert (colour.plate_space, colour.working_space) == ("ACEScg", "sRGB Encoded Rec.709 (sRGB)")


def test_frames_come_from_the_list_or_from_the_disk(plate: Path) -> None:
    source = FramePattern.parse(str(plate), role="input")
    assert requested_frames("1001-1002", source) == [1001, 1002]
    assert requested_frames(None, source) == list(FRAMES)
    with pytest.raises(FrameListError) as empty:
        requested_frames(" ", source)
    assert str(empty.value) == ("--frames ' ' names no frames: give a list like 1001-1100, or leave out --frames for "
                                "every frame of --input on disk")
    elsewhere = FramePattern.parse(str(plate.parent / "other.####.exr"), role="input")
    with pytest.raises(FrameListError) as none:
        requested_frames(None, elsewhere)
    assert str(none.value) == (f"no frames match --input {plate.parent}/other.####.exr: check the path and the "
                               "frame token")


def test_a_clip_is_named_after_its_frames_or_else_the_workflow(plate: Path) -> None:
    blur = load_package(REPO / "workflows" / "blur")
    assert clip_name(FramePattern.parse(str(plate)), blur) == "sh010_plate"
    assert clip_name(FramePattern.parse(str(plate.parent / "####.exr")), blur) == "blur"


def test_an_invalid_package_lists_its_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "workflow.yaml").write_text((REPO / "workflows" / "blur" / "workflow.yaml").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    graph = json.loads((REPO / "workflows" / "blur" / "workflow.json").read_text(encoding="utf-8"))
    graph["3"]["inputs"]["images"] = ["9", 0]
    (broken / "workflow.json").write_text(json.dumps(graph), encoding="utf-8")
    with pytest.raises(WorkflowPackageError) as caught:
        check_workflow(load_package(broken))
    assert str(caught.value) == (f"the workflow package is not valid:\n  {broken}: node 3 (SaveImage) input 'images': "
                                 "links to node 9, which does not exist [dangling_link]")
