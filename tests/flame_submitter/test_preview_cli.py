"""``comfyfarm preview`` as the submit dialog runs it: a subprocess, real plates, the ComfyUI double (or a real one),
JPEGs on disk and the result on stdout's last line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import yaml

from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from flame_submitter.cli.demo_plate import write_demo_plate
from flame_submitter.preview.request import RESULT_PREFIX, PreviewImage, PreviewResult
from tests.doubles.comfyui.harness import comfyfarm_nodes_args
from tests.flame_submitter.test_run_local import REPO, environment, fake_processes, write_config
from tests.flame_submitter.two_passes import two_pass_package
from tests.real_comfyui import REAL_SKIP_REASON

PROGRESS = re.compile(r"\] (\d+)/(\d+) frames")  # what the dialog reads of run-local's progress lines
# A JPEG at quality 85 of the plate, against the pixels it shows: its mean error, and the error that 99% of its pixels
# stay within (the worst are on the disc's edge, where JPEG halves the colour's resolution). The next frame's disc,
# 3 pixels on, is off by more than 0.2 in 1% of them.
JPEG_MEAN = 0.012
JPEG_P99 = 0.12
WIDTH, HEIGHT = 160, 90


def preview_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "flame_submitter.cli", "preview", *args]


def preview(config: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(preview_command(*args), env=environment(config), capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO)


def result_of(completed: subprocess.CompletedProcess) -> PreviewResult:
    """The result on stdout's last line (and only there)."""
    last = completed.stdout.strip().splitlines()[-1]
    assert last.startswith(RESULT_PREFIX), completed.stdout
    found = PreviewResult.from_output(completed.stdout)
    assert found is not None
    return found


def failed(completed: subprocess.CompletedProcess, status: int) -> Tuple[str, PreviewResult]:
    """A preview that failed: its one line on stderr (the last), the same error in the result, no traceback."""
    assert completed.returncode == status, completed.stderr
    assert "Traceback" not in completed.stderr
    line = completed.stderr.strip().splitlines()[-1]
    result = result_of(completed)
    assert line == f"comfyfarm preview: {result.error}"
    assert result.passes == () and result.source is None
    return result.error, result


def srgb(linear: np.ndarray) -> np.ndarray:
    """A scene-linear Rec.709 plate as a viewer shows it: the sRGB curve, clipped to 0..1."""
    linear = np.clip(linear.astype(np.float64), 0.0, None)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(np.maximum(linear, 0.0031308), 1 / 2.4)
                       - 0.055)
    return np.clip(encoded, 0.0, 1.0)


def picture(image: Optional[PreviewImage]) -> np.ndarray:
    assert image is not None
    info = probe(image.path)
    assert info.format == "jpeg"
    return read_pixels(image.path)[..., :3]


def close(found: np.ndarray, expected: np.ndarray) -> bool:
    difference = np.abs(found.astype(np.float64) - expected)
    return bool(difference.mean() < JPEG_MEAN and np.percentile(difference, 99) < JPEG_P99)


def plate_display(plate: str, frame: int) -> np.ndarray:
    return srgb(read_pixels(plate.replace("####", str(frame)))[..., :3])


def render_names(folder: Path) -> List[str]:
    render = folder / "render"
    return sorted(path.name for path in render.iterdir()) if render.is_dir() else []


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 frames, 1001-1030, 160x90: a disc moving over a gradient, scene-linear half EXR."""
    return write_demo_plate(tmp_path_factory.mktemp("plate"), frame_count=30, width=WIDTH, height=HEIGHT)


def test_invert_previews_one_frame_as_the_viewer_shows_it(plate: str, tmp_path: Path) -> None:
    folder = tmp_path / "preview"
    completed = preview(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frame", "1012",
                        "--folder", str(folder))
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    assert (result.frame, result.frames, result.error, result.warnings) == (1012, (1012,), "", ())
    assert result.where == "1 ComfyUI on the default GPU" and result.seconds > 0 and result.startup_seconds > 0
    assert result.source == PreviewImage("source", str(folder / "source.jpg"), 1012)
    assert result.passes == (PreviewImage("result", str(folder / "result.jpg"), 1012),)
    for image in (result.source, *result.passes):
        info = probe(image.path)
        assert (info.width, info.height) == (WIDTH, HEIGHT)  # the plate's size: never wider, at most --width
    source, inverted = picture(result.source), picture(result.passes[0])
    assert close(source, plate_display(plate, 1012))
    assert close(inverted, 1.0 - plate_display(plate, 1012))
    assert render_names(folder) == ["plate.1012.exr"]  # one frame rendered, as run-local writes it
    assert probe(folder / "render" / "plate.1012.exr").pixel_type == "half"
    assert [tuple(map(int, found)) for found in PROGRESS.findall(completed.stderr)] == [(1, 1)]
    assert "comfyfarm preview: rendering frame 1012 on 1 ComfyUI on the default GPU" in completed.stderr
    assert not any((tmp_path / "scratch" / "jobs").iterdir())  # the preview's job folder is gone
    assert fake_processes(tmp_path / "ComfyUI") == []


def test_width_makes_the_source_and_the_pass_the_same_smaller_size(plate: str, tmp_path: Path) -> None:
    folder = tmp_path / "preview"
    completed = preview(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frame", "1001",
                        "--folder", str(folder), "--width", "64")
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    sizes = {(probe(image.path).width, probe(image.path).height) for image in (result.source, *result.passes)}
    assert sizes == {(64, 36)}


def test_a_sequence_workflow_previews_a_window_kept_inside_the_clip(plate: str, tmp_path: Path) -> None:
    folder = tmp_path / "preview"
    completed = preview(write_config(tmp_path), "--workflow", "sequence_invert", "--input", plate,
                        "--frame", "1029", "--folder", str(folder))
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    window = tuple(range(1007, 1031))  # 24 frames (sequence.context) ending at the clip's last frame, 1030
    assert (result.frame, result.frames) == (1029, window)
    assert render_names(folder) == [f"plate.{frame}.exr" for frame in window]
    assert result.passes[0].frame == 1029
    assert close(picture(result.passes[0]), 1.0 - plate_display(plate, 1029))
    progress = [tuple(map(int, found)) for found in PROGRESS.findall(completed.stderr)]
    assert progress[-1] == (24, 24) and all(total == 24 for _, total in progress)


def test_an_interpolation_shows_the_output_frame_of_the_source_frame(plate: str, tmp_path: Path) -> None:
    """RIFE at 2x: source frame i of the window is output frame first + 2i, the in-between after it first + 2i + 1."""
    folder = tmp_path / "preview"
    completed = preview(write_config(tmp_path), "--workflow", "rife_frame_interpolation", "--input", plate,
                        "--frame", "1010", "--folder", str(folder))
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    assert result.frames == tuple(range(1001, 1025))  # 1010 - 12, moved to the clip's first frame
    assert result.passes[0].frame == 1001 + 2 * 9
    assert len(render_names(folder)) == 47
    shown = picture(result.passes[0])
    assert close(shown, plate_display(plate, 1010))  # the source frame itself, not an in-between
    assert not close(shown, plate_display(plate, 1011))


@pytest.mark.parametrize("exr_layers", [False, True])
def test_each_pass_of_a_two_pass_workflow_has_its_picture(plate: str, tmp_path: Path, exr_layers: bool) -> None:
    folder = tmp_path / "preview"
    package = two_pass_package(tmp_path / "invert")
    completed = preview(write_config(tmp_path), "--workflow", str(package), "--input", plate, "--frame", "1005",
                        "--folder", str(folder), *(["--exr-layers"] if exr_layers else []))
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    assert [(image.name, Path(image.path).name, image.frame) for image in result.passes] == [
        ("inverted", "inverted.jpg", 1005), ("original", "original.jpg", 1005)]
    pictures = {image.name: picture(image) for image in result.passes}
    assert close(pictures["inverted"], 1.0 - plate_display(plate, 1005))
    assert close(pictures["original"], plate_display(plate, 1005))
    expected = ["plate.1005.exr"] if exr_layers else ["plate_inverted.1005.exr", "plate_original.1005.exr"]
    assert render_names(folder) == expected


def test_a_second_preview_with_other_settings_renders_again(plate: str, tmp_path: Path) -> None:
    folder = tmp_path / "preview"
    config = write_config(tmp_path)
    shown: Dict[str, np.ndarray] = {}
    for radius in ("1", "12"):
        completed = preview(config, "--workflow", "blur", "--input", plate, "--frame", "1015", "--folder",
                            str(folder), "--set", f"radius={radius}", "--set", "sigma=4")
        assert completed.returncode == 0, completed.stderr
        assert "already there" not in completed.stderr
        shown[radius] = picture(result_of(completed).passes[0])
        assert render_names(folder) == ["plate.1015.exr"]
    assert np.abs(shown["1"] - shown["12"]).max() > 0.1  # the disc's edge, blurred more the second time


def test_a_frame_outside_the_clip_is_named_and_nothing_starts(plate: str, tmp_path: Path) -> None:
    folder = tmp_path / "preview"
    completed = preview(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frame", "1031",
                        "--folder", str(folder))
    error, result = failed(completed, 2)
    assert error == "frame 1031 is not in the clip (1001-1030): choose a frame between them"
    assert (result.frame, result.frames) == (1031, ())
    assert not folder.exists()
    assert not (tmp_path / "scratch" / "jobs").exists() or not any((tmp_path / "scratch" / "jobs").iterdir())


def test_a_frame_missing_inside_the_clip_is_named(tmp_path: Path) -> None:
    plate = write_demo_plate(tmp_path / "plate", frame_count=5, width=16, height=9)
    Path(plate.replace("####", "1003")).unlink()
    completed = preview(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frame", "1003",
                        "--folder", str(tmp_path / "preview"))
    error, _ = failed(completed, 2)
    assert error == (f"frame 1003 is not on disk in {plate} (frames 1001-1002,1004-1005): choose a frame that is "
                     "there")


def test_a_bad_parameter_is_refused_like_run_local_refuses_it(plate: str, tmp_path: Path) -> None:
    completed = preview(write_config(tmp_path), "--workflow", "blur", "--input", plate, "--frame", "1001",
                        "--folder", str(tmp_path / "preview"), "--set", "radius=99")
    error, result = failed(completed, 2)
    assert error.startswith("parameter 'radius' of workflow 'blur': 99 is above the maximum 31")
    assert (result.frame, result.frames) == (1001, ())  # refused before its frames were planned


def test_comfyuis_own_error_is_in_the_result(plate: str, tmp_path: Path) -> None:
    fault = {"fail_node": {"class_type": "ImageInvert", "exception_type": "RuntimeError",
                           "message": "CUDA error: an illegal memory access was encountered"}}
    folder = tmp_path / "preview"
    completed = preview(write_config(tmp_path, faults=json.dumps(fault)),
                        "--workflow", "invert", "--input", plate, "--frame", "1003", "--folder", str(folder))
    error, result = failed(completed, 1)
    assert "ComfyUI node 2 (ImageInvert) failed: RuntimeError: CUDA error: an illegal memory access was " \
           "encountered" in error
    assert result.frames == (1003,)
    assert not (folder / "result.jpg").exists() and render_names(folder) == []
    assert fake_processes(tmp_path / "ComfyUI") == []


@pytest.mark.parametrize("nodes", [True, False])
def test_an_attached_comfyui_is_named_and_its_8_bit_path_is_a_warning(plate: str, tmp_path: Path, fake_comfyui_factory,
                                                                      nodes: bool) -> None:
    root = tmp_path / "attached"
    root.mkdir()
    fake = fake_comfyui_factory(root, extra_args=comfyfarm_nodes_args(root / "nodes.yaml") if nodes else [])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scratch_dir": str(tmp_path / "scratch")}))
    folder = tmp_path / "preview"
    completed = preview(config, "--workflow", "invert", "--input", plate, "--frame", "1020", "--folder", str(folder),
                        "--comfyui-url", fake.url)
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    assert result.where == f"the local ComfyUI at {fake.url}"
    if nodes:
        assert result.warnings == ()
    else:
        assert result.warnings == (
            f"8-bit path: the ComfyUI at {fake.url} lacks comfyfarm's frame nodes (ComfyFarmLoadFrames, "
            "ComfyFarmSaveFrames): values are clipped to 0..1 and quantised to 8 bits, and the plate's alpha is "
            "dropped; start it with comfyfarm's custom-nodes folder (farm_plugin/ComfyUINodes) to keep float and "
            "alpha",)
    assert close(picture(result.passes[0]), 1.0 - plate_display(plate, 1020))


def test_rendered_frames_are_shown_without_any_comfyui(plate: str, tmp_path: Path) -> None:
    """A farm job of the two-pass workflow wrote its passes beside its output pattern; no ComfyUI is configured."""
    package = two_pass_package(tmp_path / "invert")
    output = tmp_path / "farm" / "sh010.####.exr"
    output.parent.mkdir()
    for name, value in (("inverted", 0.25), ("original", 0.5)):
        pixels = np.full((HEIGHT, WIDTH, 3), value, np.float32)
        pixels[:, :WIDTH // 2] = 0.0
        write_frame(str(output).replace("####", "1007").replace("sh010.", f"sh010_{name}."), pixels)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scratch_dir": str(tmp_path / "scratch")}))
    folder = tmp_path / "preview"
    completed = preview(config, "--workflow", str(package), "--input", plate, "--frame", "1007", "--folder",
                        str(folder), "--rendered", str(output))
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    assert (result.frame, result.frames, result.seconds, result.startup_seconds, result.where) == (
        1007, (1007,), 0.0, 0.0, "")
    assert close(picture(result.source), plate_display(plate, 1007))
    for image, value in zip(result.passes, (0.25, 0.5)):
        expected = np.zeros((HEIGHT, WIDTH, 3))
        expected[:, WIDTH // 2:] = srgb(np.array(value))
        assert close(picture(image), expected), image.name
    assert render_names(folder) == []
    assert "Traceback" not in completed.stderr and "ComfyUI" not in completed.stderr


def test_rendered_frames_that_are_not_there_are_named(plate: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scratch_dir": str(tmp_path / "scratch")}))
    output = tmp_path / "farm" / "inv.####.exr"
    completed = preview(config, "--workflow", "invert", "--input", plate, "--frame", "1007", "--folder",
                        str(tmp_path / "preview"), "--rendered", str(output))
    error, _ = failed(completed, 2)
    assert error == (f"frame 1007 of the result pass is not at {output}: render the preview first (leave out "
                     "--rendered), or name where the job wrote it")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_preview_interrupts_comfyui_and_says_so(plate: str, tmp_path: Path, stop: signal.Signals) -> None:
    config = write_config(tmp_path, faults='{"node_delay_s": 5}')
    folder = tmp_path / "preview"
    process = subprocess.Popen(preview_command("--workflow", "invert", "--input", plate, "--frame", "1003",
                                               "--folder", str(folder)),
                               env=environment(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO)
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if not line or "comfyfarm preview: rendering frame 1003" in line:
            break
    time.sleep(0.5)  # ComfyUI is in the node now
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(lines) + stderr)
    error, _ = failed(completed, 130)
    assert error == "stopped: ComfyUI was interrupted; no preview"
    assert fake_processes(tmp_path / "ComfyUI") == []
    assert not (folder / "result.jpg").exists()


def test_real_comfyui_previews_invert(plate: str, tmp_path: Path) -> None:
    comfyui_dir, url = os.environ.get("COMFYUI_DIR"), os.environ.get("COMFYUI_URL")
    if not (comfyui_dir or url):
        pytest.skip(REAL_SKIP_REASON)
    extra = {"comfyui_url": url} if url else {"comfyui_python": os.environ.get("COMFYUI_PYTHON") or None,
                                              "comfyui_args": os.environ.get("COMFYUI_ARGS", "--cpu"),
                                              "startup_timeout_s": 180}
    config = write_config(tmp_path, comfyui_dir=Path(comfyui_dir or tmp_path), **extra)
    folder = tmp_path / "preview"
    completed = preview(config, "--workflow", "invert", "--input", plate, "--frame", "1012", "--folder", str(folder),
                        timeout_s=300)
    assert completed.returncode == 0, completed.stderr
    result = result_of(completed)
    assert (result.frame, result.frames, result.error) == (1012, (1012,), "")
    assert close(picture(result.source), plate_display(plate, 1012))
    assert close(picture(result.passes[0]), 1.0 - plate_display(plate, 1012))


def test_a_preview_stopped_while_comfyui_starts_stops_it_at_once(plate: str, tmp_path: Path) -> None:
    """Stop in the middle of a slow start (a model loading): the ComfyUI being started is stopped now, not once it
    answers, and none is left behind."""
    config = write_config(tmp_path, faults='{"startup_delay_s": 60}', startup_timeout_s=120)
    process = subprocess.Popen(preview_command("--workflow", "invert", "--input", plate, "--frame", "1003",
                                               "--folder", str(tmp_path / "preview")),
                               env=environment(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO)
    deadline = time.monotonic() + 60
    while not fake_processes(tmp_path / "ComfyUI") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # ComfyUI is up and sleeping before it listens
    assert fake_processes(tmp_path / "ComfyUI")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)  # well before the 60 s start-up would end
    error, _ = failed(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), 130)
    assert error.startswith("stopped")
    assert fake_processes(tmp_path / "ComfyUI") == []
