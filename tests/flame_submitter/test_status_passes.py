"""``comfyfarm status JOB`` while a several-pass job renders: per pass, how many of its frames are on disk and whole,
which was written last, and a thumbnail of it in the job folder (farm_plugin/completion/progress.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import pytest

from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from farm_plugin.frames.pattern import FramePattern
from tests.flame_submitter.test_submit import comfyfarm, job_folders, write_config

from .two_passes import two_pass_package

COLOURS = {"inverted": (0.6, 0.2, 0.05), "original": (0.05, 0.3, 0.7)}


def submit(fake_deadline, tmp_path: Path, studio: Path, *extra: str) -> Tuple[Path, str, Path]:
    """A two-pass job of frames 1001-1024 submitted; the config, its Deadline job id and its output folder."""
    package = two_pass_package(tmp_path / "invert")
    config = write_config(tmp_path, studio, fake_deadline.url)
    out = studio / "sh010" / "comfy"
    result = comfyfarm(config, "submit", "--workflow", str(package), "--input",
                       str(studio / "sh010" / "plate" / "plate.####.exr"), "--frames", "1001-1024", "--output",
                       str(out / "sh010.####.exr"), *extra)
    assert result.returncode == 0, result.stderr
    return config, result.stdout.strip(), out


def write(pattern: str, frames: Sequence[int], colour: Tuple[float, float, float]) -> None:
    for frame in frames:
        write_frame(FramePattern.parse(pattern).path(frame), np.full((16, 16, 3), colour, np.float32),
                    file_format="exr")


def test_status_counts_each_passs_frames_and_shows_the_latest_as_a_thumbnail(fake_deadline, tmp_path: Path,
                                                                            studio: Path) -> None:
    config, job_id, out = submit(fake_deadline, tmp_path, studio)
    out.mkdir(parents=True, exist_ok=True)
    write(str(out / "sh010_inverted.####.exr"), range(1001, 1013), COLOURS["inverted"])
    write(str(out / "sh010_original.####.exr"), range(1001, 1007), COLOURS["original"])
    os.utime(out / "sh010_inverted.1005.exr", (2e9, 2e9))  # another worker's chunk finished last: the latest frame
    (out / "sh010_original.1007.exr").write_bytes(b"not an EXR")  # being written by hand, or damaged: not done
    status = comfyfarm(config, "status", job_id)
    assert status.returncode == 0, status.stderr
    (folder,) = job_folders(studio)
    lines = status.stdout.splitlines()
    assert lines[3:7] == [
        f"  inverted: {out}/sh010_inverted.####.exr",
        f"  original: {out}/sh010_original.####.exr",
        f"  inverted frames: 12/24 done, latest 1005 (thumbnail {folder}/latest_inverted.jpg)",
        f"  original frames: 6/24 done, latest 1006 (thumbnail {folder}/latest_original.jpg)"]
    for name in ("inverted", "original"):
        thumbnail = folder / f"latest_{name}.jpg"
        info = probe(thumbnail)
        assert (info.format, info.width, info.height) == ("jpeg", 320, 320)
        pixel = np.asarray(COLOURS[name], np.float32).reshape(1, 1, 3)
        shown = to_working(pixel, ColourPolicy.default_for(probe(out / f"sh010_{name}.1001.exr"))).reshape(3)
        assert read_pixels(thumbnail).reshape(-1, 3).mean(axis=0) == pytest.approx(shown, abs=3 / 255)


def test_a_job_with_no_frames_yet_and_one_whose_record_is_gone(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config, job_id, _out = submit(fake_deadline, tmp_path, studio)
    status = comfyfarm(config, "status", job_id)
    assert status.stdout.splitlines()[5:7] == ["  inverted frames: 0/24 done", "  original frames: 0/24 done"]
    (folder,) = job_folders(studio)
    assert not list(folder.glob("latest_*.jpg"))
    (folder / "job.json").unlink()
    status = comfyfarm(config, "status", job_id)
    assert status.returncode == 0, status.stderr  # Deadline's side is shown all the same
    assert status.stdout.splitlines()[5] == (
        f"  frames: not counted: {folder}/job.json: no job record there: is the shared storage mounted on this "
        "machine?")


def test_passes_as_layers_of_one_exr_count_the_frames_that_hold_each_layer(fake_deadline, tmp_path: Path,
                                                                         studio: Path) -> None:
    config, job_id, out = submit(fake_deadline, tmp_path, studio, "--exr-layers")
    out.mkdir(parents=True, exist_ok=True)
    both = np.concatenate([np.full((16, 16, 3), COLOURS[name], np.float32) for name in COLOURS], axis=2)
    for frame in range(1001, 1009):
        write_frame(out / f"sh010.{frame}.exr", both, file_format="exr",
                    channel_names=["R", "G", "B", "original.R", "original.G", "original.B"])
    write_frame(out / "sh010.1009.exr", both[:, :, :3], file_format="exr")  # the original layer is missing
    status = comfyfarm(config, "status", job_id)
    (folder,) = job_folders(studio)
    lines = status.stdout.splitlines()
    assert lines[4:6] == [f"  inverted frames: 9/24 done, latest 1009 (thumbnail {folder}/latest_inverted.jpg)",
                          f"  original frames: 8/24 done, latest 1008 (thumbnail {folder}/latest_original.jpg)"]
    original = read_pixels(folder / "latest_original.jpg").reshape(-1, 3).mean(axis=0)
    inverted = read_pixels(folder / "latest_inverted.jpg").reshape(-1, 3).mean(axis=0)
    assert original[2] > 0.7 > inverted[2]  # each thumbnail shows its own layer
