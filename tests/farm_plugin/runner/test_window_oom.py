"""A sequence workflow's window that runs out of GPU memory is retried once in the manifest's shorter windows
(``sequence.oom_context``); without that setting, or when the shorter windows run out too, the chunk fails with
the GPU failure named first (issue 20)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import yaml

from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.frames.image_io import read_pixels
from farm_plugin.jobrecord import JobRecord, OutputSpec, SourceSpec, WorkflowSpec
from farm_plugin.runner.chunk import ChunkFailed, ChunkRunner
from farm_plugin.runner.progress import ProgressSink
from farm_plugin.workflow.package import WorkflowPackageError, load_package
from tests.doubles.comfyui.harness import comfyfarm_nodes_args

from .conftest import FRAMES, REPO, expected_invert_float, write_plate

OOM = {"class_type": "ImageInvert", "exception_type": "torch.OutOfMemoryError",
       "message": "CUDA out of memory. Tried to allocate 6.00 GiB."}


class Statuses(ProgressSink):
    def __init__(self) -> None:
        self.lines: list = []

    def status(self, text: str) -> None:
        self.lines.append(text)


def window_package(folder: Path, oom_context: Optional[int]) -> Path:
    shutil.copytree(REPO / "workflows" / "sequence_invert", folder)
    manifest = yaml.safe_load((folder / "workflow.yaml").read_text())
    manifest["sequence"]["context"] = 8
    if oom_context is not None:
        manifest["sequence"]["oom_context"] = oom_context
    (folder / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def record(package: Path, plate: str, output: str) -> JobRecord:
    workflow = load_package(package)
    return JobRecord(job_id="oom", name="oom", source=SourceSpec(plate, tuple(FRAMES)), output=OutputSpec(output),
                     workflow=WorkflowSpec.from_package(workflow, workflow.graph, {}))


@pytest.fixture
def fake(fake_comfyui_factory, tmp_path: Path):
    return fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "nodes.yaml"))


def test_a_window_out_of_gpu_memory_is_retried_in_shorter_windows(fake, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    job = record(window_package(tmp_path / "pkg", oom_context=3), plate, str(tmp_path / "o" / "inv.####.exr"))
    fake.set_faults(fail_node={**OOM, "times": 1})
    statuses = Statuses()
    report = ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s", progress=statuses).run(FRAMES)
    assert sorted(report.written) == FRAMES
    assert ("GPU out of memory in a window of 8 frames: retrying frames 1001-1008 in windows of 3 "
            "(sequence.oom_context)") in statuses.lines
    assert fake.stats()["prompts_executed"] == 1 + 3  # the window that failed, then 3 of 3, 3 and 2 frames
    for frame in FRAMES:  # the same frames a window of 8 would have given
        expected = expected_invert_float(read_pixels(plate.replace("####", str(frame))))
        assert np.abs(read_pixels(tmp_path / "o" / f"inv.{frame}.exr")[..., :3] - expected).max() < 2e-3


@pytest.mark.parametrize(("oom_context", "times"), [(None, 1), (3, 2)])
def test_without_the_setting_or_when_shorter_windows_fail_too_the_chunk_fails_naming_it(
        fake, tmp_path: Path, oom_context: Optional[int], times: int) -> None:
    plate = write_plate(tmp_path / "plate")
    job = record(window_package(tmp_path / "pkg", oom_context), plate, str(tmp_path / "o" / "inv.####.exr"))
    fake.set_faults(fail_node={**OOM, "times": times})
    with pytest.raises(ChunkFailed) as raised:
        ChunkRunner(job, ExternalServer(fake.url), scratch_dir=tmp_path / "s").run(FRAMES)
    assert str(raised.value).startswith("GPU out of memory: ComfyUI node 2 (ImageInvert) failed: "
                                        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 6.00 GiB.")


def test_the_shorter_window_must_be_shorter(tmp_path: Path) -> None:
    folder = window_package(tmp_path / "pkg", oom_context=8)
    with pytest.raises(WorkflowPackageError, match=re.escape(
            "sequence.oom_context: 8 frames: a window retried after running out of GPU memory must be shorter than "
            "context (8) and hold a frame of its own (at least 1)")):
        load_package(folder)
