"""Sequence workflows on the emulated farm: a 2x interpolation spread over 4 Workers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from farm_plugin.frames.image_io import probe, read_pixels
from tests.farm_plugin.runner.temporal import make_mean_package

from .conftest import make_studio


def test_2x_interpolation_of_1001_1100_on_4_workers_gives_exactly_the_promised_frames(farm, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=100)
    inbox = studio.hand_back()

    job_id = studio.submit("--chunk-size", "20", workflow="rife_frame_interpolation", frames="1001-1100")
    job = farm.store.job_json(job_id)
    props = job["Props"]
    assert props["Chunk"] == 23  # a whole 24-frame window: 23 own frames and the next chunk's first
    assert props["ExDic"]["comfyfarm_output_frames"] == "1001-1199"
    farm.start_workers(4)
    assert farm.wait_for_job(job_id, timeout_s=300) == "Completed"

    expected = [f"rife_frame_interpolation.{frame}.exr" for frame in range(1001, 1200)]
    assert studio.outputs() == expected  # 100 source frames → (100 - 1) x 2 + 1, none lost or doubled
    # Each output carries its source frame's header; an in-between, the one of the source frame before it.
    outputs = studio.root / "sh010" / "comfy"
    assert probe(outputs / "rife_frame_interpolation.1199.exr").timecode == "01:00:04:03"  # source 1100
    assert probe(outputs / "rife_frame_interpolation.1198.exr").timecode == "01:00:04:02"  # after source 1099
    tasks = farm.store.tasks_json(job_id)["Tasks"]
    assert len(tasks) == 5 and len({t["Slave"] for t in tasks}) >= 2
    deadline = time.monotonic() + 60
    while not list(inbox.glob("*.json")) and time.monotonic() < deadline:  # OnJobFinished runs after the job
        time.sleep(0.1)
    (record,) = [json.loads(p.read_text()) for p in inbox.glob("*.json")]
    assert record["frames"] == list(range(1001, 1200)) and record["missing_frames"] == []
    assert record["output_pattern"].endswith("rife_frame_interpolation.####.exr")
    out_dir, out_name = job["OutDir"][0], job["OutFile"][0]
    assert Path(out_dir, out_name).as_posix() == record["output_pattern"]


def test_a_crossfaded_sequence_on_4_workers_equals_the_same_job_run_locally(farm, tmp_path: Path) -> None:
    studio = make_studio(farm, tmp_path, frame_count=48)
    package = make_mean_package(tmp_path / "running_mean", context=24, overlap=4, radius=3)
    job_id = studio.submit("--chunk-size", "16", workflow=str(package), frames="1001-1048")
    farm.start_workers(4)
    assert farm.wait_for_job(job_id, timeout_s=300) == "Completed"
    farm_out = studio.root / "sh010" / "comfy"
    assert sorted(p.name for p in farm_out.iterdir()) == [f"running_mean.{f}.exr" for f in range(1001, 1049)]
    (job_folder,) = (studio.root / "comfyfarm" / "jobs").iterdir()
    assert not (job_folder / "joins").exists() or not any((job_folder / "joins").iterdir())

    local_out = tmp_path / "local" / "running_mean.####.exr"
    result = studio.cli("run-local", "--workflow", str(package), "--input", studio.plate, "--frames", "1001-1048",
                        "--output", str(local_out), "--chunk-size", "16", "--instances", "2", "--quiet",
                        "--comfyui-dir", str(studio.comfyui_dir), "--comfyui-python", sys.executable)
    assert result.returncode == 0, result.stderr
    for frame in range(1001, 1049):
        on_farm = read_pixels(farm_out / f"running_mean.{frame}.exr")
        local = read_pixels(str(local_out).replace("####", str(frame)))
        assert np.array_equal(on_farm, local), frame
