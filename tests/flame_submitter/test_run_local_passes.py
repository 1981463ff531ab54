"""Several passes and a workflow's own alpha through ``comfyfarm run-local``, as a user runs it.

The package saves three passes from one plate: ``inverted`` (the colour inverted), ``plate`` (the plate as
it came in) and ``keyed`` (the plate with a matte, its red channel in the working space, as its alpha: what a
keyer gives). Each pass is its own sequence under the source frame numbers; the plate's alpha is carried
into the passes that give none. On the full-precision path nothing is clipped; on the 8-bit fallback the
keyed pass still comes back RGBA.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import yaml

from farm_plugin.completion.record import build_completion
from farm_plugin.frames.colour import ColourPolicy, to_working
from farm_plugin.frames.image_io import probe, read_pixels
from farm_plugin.jobrecord import read_job_record
from tests.doubles.comfyui.harness import start_fake_comfyui
from tests.farm_plugin.runner.conftest import expected_invert_float
from tests.flame_submitter.test_run_local import run_local, scene_linear_rgba_plate, write_config
from tests.real_comfyui import REAL_SKIP_REASON

FRAMES = (1001, 1002, 1003)
HALF = 2.0 ** -10  # half-float steps are 2^-10 of the value


def passes_package(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "workflow.json").write_text(json.dumps({
        "1": {"class_type": "LoadImage", "inputs": {"image": "frame.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "comfyfarm/inverted"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfarm/plate"}},
        "5": {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfarm/keyed"}}}))
    (folder / "workflow.yaml").write_text(yaml.safe_dump({
        "schema": 1, "title": "Three passes", "category": "Utility", "mode": "per_frame",
        "input": {"node": "1", "input": "image"},
        "outputs": {"inverted": {"node": "3", "input": "filename_prefix"},
                    "plate": {"node": "4", "input": "filename_prefix"},
                    "keyed": {"node": "6", "input": "filename_prefix", "alpha": {"node": "5", "output": 0}}},
        "requirements": {"nodes": ["LoadImage", "ImageInvert", "SaveImage", "ImageToMask"]}}, sort_keys=False))
    return folder


def pass_files(folder: Path) -> Dict[str, list]:
    names: Dict[str, list] = {}
    for path in sorted(folder.iterdir()):
        names.setdefault(path.name.split(".")[0], []).append(path.name)
    return names


def expected_files() -> Dict[str, list]:
    return {f"o_{name}": [f"o_{name}.{frame}.exr" for frame in FRAMES] for name in ("inverted", "keyed", "plate")}


def comfyui_config(kind: str, tmp_path: Path) -> Path:
    """run-local's configuration for the double, or for the real ComfyUI of the real tier (it starts it)."""
    if kind == "double":
        return write_config(tmp_path)
    comfyui_dir = os.environ.get("COMFYUI_DIR")
    if not comfyui_dir:
        pytest.skip(REAL_SKIP_REASON.replace("COMFYUI_URL, or ", "") + " (run-local starts its own)")
    return write_config(tmp_path, comfyui_dir=Path(comfyui_dir), startup_timeout_s=180,
                        comfyui_python=os.environ.get("COMFYUI_PYTHON") or None,
                        comfyui_args=os.environ.get("COMFYUI_ARGS", "--cpu"))


@pytest.mark.parametrize("kind", ["double", pytest.param("real", marks=pytest.mark.real_comfyui)])
def test_every_pass_is_its_own_sequence_with_float_and_alpha(kind: str, tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    output = tmp_path / "o" / "o.####.exr"
    result = run_local(comfyui_config(kind, tmp_path), "--workflow", str(passes_package(tmp_path / "three")),
                       "--input", plate, "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert pass_files(tmp_path / "o") == expected_files()
    for index, frame in enumerate(FRAMES):
        source = read_pixels(plate.replace("####", str(frame)))
        working = to_working(source, ColourPolicy.default_for(probe(plate.replace("####", str(frame)))))
        for name in ("inverted", "plate", "keyed"):
            info = probe(tmp_path / "o" / f"o_{name}.{frame}.exr")
            assert (info.channel_names, info.pixel_type, info.timecode) == (
                ("R", "G", "B", "A"), "half", f"01:00:00:{index:02d}"), name
        assert np.array_equal(read_pixels(tmp_path / "o" / f"o_plate.{frame}.exr"), source)
        inverted = read_pixels(tmp_path / "o" / f"o_inverted.{frame}.exr")
        assert np.allclose(inverted[..., :3], expected_invert_float(source[..., :3]), rtol=2 * HALF, atol=1e-3)
        assert np.array_equal(inverted[..., 3], source[..., 3])  # the plate's alpha, carried
        keyed = read_pixels(tmp_path / "o" / f"o_keyed.{frame}.exr")
        assert np.array_equal(keyed[..., :3], source[..., :3])  # the colour as it came in, not premultiplied
        assert working[..., 0].min() < 0 and working[..., 0].max() > 1  # the matte is not clamped either
        assert np.allclose(keyed[..., 3], working[..., 0], rtol=HALF, atol=1e-4)


def test_the_job_record_and_the_completion_record_list_every_pass(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    result = run_local(write_config(tmp_path), "--workflow", str(passes_package(tmp_path / "three")),
                       "--input", plate, "--output", str(tmp_path / "o" / "o.####.exr"))
    assert result.returncode == 0, result.stderr
    (record_path,) = (tmp_path / "scratch").rglob("job.json")
    record = read_job_record(record_path)
    assert [(p.name, p.node, p.alpha) for p in record.workflow.passes] == [
        ("inverted", "3", None), ("plate", "4", None), ("keyed", "6", ("5", 0))]
    (tmp_path / "o" / "o_keyed.1002.exr").unlink()
    completion = build_completion(record, deadline_job_id="local", job_failed=False)
    assert [(p.name, p.output_pattern, p.frames, p.missing_frames, p.channels) for p in completion.passes] == [
        ("inverted", str(tmp_path / "o" / "o_inverted.####.exr"), FRAMES, (), 4),
        ("plate", str(tmp_path / "o" / "o_plate.####.exr"), FRAMES, (), 4),
        ("keyed", str(tmp_path / "o" / "o_keyed.####.exr"), (1001, 1003), (1002,), 4)]
    assert completion.missing_frames == (1002,) and not completion.complete
    assert completion.reason == "1 frame(s) missing or unreadable: 1002 (keyed: 1002)"


def test_a_rerun_redoes_only_the_frame_a_pass_lacks(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    config = write_config(tmp_path)
    arguments = ("--workflow", str(passes_package(tmp_path / "three")), "--input", plate,
                 "--output", str(tmp_path / "o" / "o.####.exr"))
    assert run_local(config, *arguments).returncode == 0
    (tmp_path / "o" / "o_inverted.1002.exr").unlink()
    before = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "o").iterdir()}
    result = run_local(config, *arguments)
    assert result.returncode == 0, result.stderr
    assert pass_files(tmp_path / "o") == expected_files()
    changed = sorted(path.name for path in (tmp_path / "o").iterdir()
                     if before.get(path.name) != path.stat().st_mtime_ns)
    assert changed == ["o_inverted.1002.exr", "o_keyed.1002.exr", "o_plate.1002.exr"]


def test_on_the_8_bit_path_the_keyed_pass_still_has_its_matte(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate", frames=1)
    fake = start_fake_comfyui(tmp_path / "attached", extra_args=["--disable-all-custom-nodes"])
    try:
        result = run_local(write_config(tmp_path), "--workflow", str(passes_package(tmp_path / "three")),
                           "--input", plate, "--output", str(tmp_path / "o" / "o.####.exr"), "--comfyui-url", fake.url)
    finally:
        fake.stop()
    assert result.returncode == 0, result.stderr
    assert "8-bit path" in result.stderr
    assert pass_files(tmp_path / "o") == {name: files[:1] for name, files in expected_files().items()}
    source = read_pixels(plate.replace("####", "1001"))
    working = to_working(source, ColourPolicy.default_for(probe(plate.replace("####", "1001"))))
    keyed = read_pixels(tmp_path / "o" / "o_keyed.1001.exr")
    assert keyed.shape[2] == 4
    codes = np.round(np.clip(working[..., 0], 0, 1) * 255) / 255  # staged at 8 bits, the matte from that
    assert np.abs(keyed[..., 3] - codes).max() <= 1 / 255 + HALF
    assert read_pixels(tmp_path / "o" / "o_plate.1001.exr").shape[2] == 3  # no alpha on the 8-bit path
