"""``comfyfarm run-local`` as a user runs it: a subprocess, real files, ComfyUI instances it starts itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
import yaml

from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from flame_submitter.cli.demo_plate import write_demo_plate
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir, start_fake_comfyui
from tests.farm_plugin.frames.foreign_exr import write_exr
from tests.farm_plugin.runner.conftest import expected_invert_float
from tests.real_comfyui import REAL_SKIP_REASON

REPO = Path(__file__).resolve().parents[2]
FRAMES = list(range(1001, 1049))


def write_config(tmp_path: Path, *, faults: str = "", restart_limit: int = 2, comfyui_dir: Optional[Path] = None,
                 **extra) -> Path:
    config = {
        "comfyui_dir": str(comfyui_dir or make_fake_comfyui_dir(tmp_path / "ComfyUI")),
        "comfyui_python": sys.executable,
        "base_port": free_port(),
        "scratch_dir": str(tmp_path / "scratch"),
        "restart_limit": restart_limit,
        "startup_timeout_s": 20,
        **extra,
    }
    if faults:
        config["comfyui_env"] = {"COMFYFARM_FAKE_FAULTS": faults}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def environment(config: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFYUI_")}
    paths = [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env.update(COMFYFARM_CONFIG=str(config), PYTHONPATH=os.pathsep.join(paths))
    return env


def command(*args: str) -> List[str]:
    return [sys.executable, "-m", "flame_submitter.cli", "run-local", "--quiet", *args]


def run_local(config: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), env=environment(config), capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO)


def fake_processes(marker: Path) -> List[int]:
    """PIDs of the double's processes started from ``marker`` (a fake ComfyUI folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "main.py" in cmdline and cwd == str(marker):
            pids.append(int(entry.name))
    return pids


def start_invert_until(config: Path, plate: str, out: Path, *, chunk_size: int,
                       frames_written: int) -> subprocess.Popen:
    """Start run-local (invert, 48 frames, 2 instances) and return once ``frames_written`` frames are on disk."""
    process = subprocess.Popen(
        command("--workflow", "invert", "--input", plate, "--frames", "1001-1048",
                "--output", str(out / "inv.####.exr"), "--instances", "2", "--chunk-size", str(chunk_size)),
        env=environment(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 60
    while len(frame_names(out, "inv")) < frames_written and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    return process


def frame_names(folder: Path, stem: str) -> List[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_demo_plate(tmp_path_factory.mktemp("plate"), width=48, height=27)


def test_invert_and_blur_on_two_instances_then_a_rerun_writes_nothing(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    for workflow in ("invert", "blur"):
        out = tmp_path / workflow
        result = run_local(config, "--workflow", workflow, "--input", plate, "--frames", "1001-1048",
                           "--output", str(out / f"{workflow}.####.exr"), "--instances", "2", "--chunk-size", "8")
        assert result.returncode == 0, result.stderr
        assert "48 frame(s) in 6 chunk(s) on 2 ComfyUI instance(s)" in result.stderr
        assert f"48 frame(s) written, 0 already there, to {out}/{workflow}.####.exr" in result.stderr
        assert frame_names(out, workflow) == [f"{workflow}.{f}.exr" for f in FRAMES]
        for index, frame in enumerate(FRAMES):
            info = probe(out / f"{workflow}.{frame}.exr")
            assert (info.format, info.pixel_type, info.width, info.height) == ("openexr", "half", 48, 27)
            assert info.timecode == f"01:00:{index // 24:02d}:{index % 24:02d}" and info.fps == 24.0
        source = read_pixels(plate.replace("####", "1020"))
        result_pixels = read_pixels(out / f"{workflow}.1020.exr")[..., :3]
        if workflow == "invert":
            assert np.abs(result_pixels - expected_invert_float(source[..., :3])).max() < 2e-3
        else:
            assert np.abs(result_pixels - np.clip(source[..., :3], 0, 1)).max() > 0
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "blur").iterdir()}
    again = run_local(config, "--workflow", "blur", "--input", plate, "--frames", "1001-1048",
                      "--output", str(tmp_path / "blur" / "blur.####.exr"), "--instances", "2", "--chunk-size", "8")
    assert again.returncode == 0, again.stderr
    assert "0 frame(s) written, 48 already there" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "blur").iterdir()} == mtimes


def test_a_killed_instance_is_restarted_and_every_frame_is_written_once(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, faults='{"node_delay_s": 0.03}')
    out = tmp_path / "out"
    process = start_invert_until(config, plate, out, chunk_size=6, frames_written=8)
    victims = fake_processes(tmp_path / "ComfyUI")
    assert len(victims) == 2, victims
    os.kill(victims[0], signal.SIGKILL)
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "48 frame(s) written, 0 already there" in stderr  # each frame once: no frame counted twice
    assert "ComfyUI restarted 1 time(s)" in stderr
    assert frame_names(out, "inv") == [f"inv.{f}.exr" for f in FRAMES]
    assert fake_processes(tmp_path / "ComfyUI") == []


def test_when_comfyui_cannot_be_kept_alive_it_fails_clearly_and_a_rerun_finishes(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, faults='{"die_on_prompt": 5, "node_delay_s": 0.05}', restart_limit=0)
    out = tmp_path / "out"
    args = ("--workflow", "invert", "--input", plate, "--frames", "1001-1024", "--output", str(out / "inv.####.exr"),
            "--instances", "1", "--chunk-size", "8")
    failed = run_local(config, *args)
    assert failed.returncode == 1
    assert "ComfyUI stopped during frames 1005-1008 and was restarted 0 time(s), the limit" in failed.stderr
    assert "[ComfyUI test double] fault die_on_prompt=5: exiting abruptly" in failed.stderr  # its log tail
    assert "frame(s) not written (1005-1024): run the same command again to finish only those" in failed.stderr
    assert frame_names(out, "inv") == [f"inv.{f}.exr" for f in range(1001, 1005)]
    fixed = write_config(tmp_path, comfyui_dir=tmp_path / "ComfyUI")
    rerun = run_local(fixed, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "20 frame(s) written, 4 already there" in rerun.stderr


def test_ctrl_c_stops_cleanly_and_keeps_finished_frames(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, faults='{"node_delay_s": 0.1}')
    out = tmp_path / "out"
    process = start_invert_until(config, plate, out, chunk_size=4, frames_written=4)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted;" in stderr and "run the same command again to finish them" in stderr
    names = frame_names(out, "inv")
    assert 4 <= len(names) < 48
    assert all(not name.startswith(".") for name in names)  # no temporary file left
    assert fake_processes(tmp_path / "ComfyUI") == []


# -- bad input: a clear message and a non-zero exit before any work starts ------------------------


def bad_input(tmp_path: Path, plate: str, *args: str, config: Optional[Path] = None) -> str:
    result = run_local(config or write_config(tmp_path), "--workflow", "blur", "--input", plate, *args)
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "scratch" / "jobs").exists() or not any((tmp_path / "scratch" / "jobs").iterdir())
    return result.stderr.strip().splitlines()[-1]


def test_missing_frames_are_listed_compactly(plate: str, tmp_path: Path) -> None:
    message = bad_input(tmp_path, plate, "--frames", "990-1002,1040-1060", "--output", str(tmp_path / "o.####.exr"))
    assert message == (f"comfyfarm run-local: 23 frame(s) missing from {plate}: 990-1000,1049-1060: render or "
                       "export them, or pick a frame range that exists")


def test_truncated_and_mixed_plates_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "plate"
    pattern = write_demo_plate(folder, frame_count=4, width=16, height=16)
    frame = folder / "plate.1003.exr"
    frame.write_bytes(frame.read_bytes()[:300])
    message = bad_input(tmp_path, pattern, "--output", str(tmp_path / "o.####.exr"))
    assert message.startswith("comfyfarm run-local: ") and str(frame) in message
    write_demo_plate(folder, frame_count=4, width=16, height=16)
    write_frame(folder / "plate.1004.exr", np.zeros((9, 16, 3), np.float32), file_format="exr")
    message = bad_input(tmp_path, pattern, "--output", str(tmp_path / "o.####.exr"))
    assert message == (f"comfyfarm run-local: {pattern} mixes resolutions (16x16: frames 1001-1003; 16x9: frames "
                       "1004): conform the plate to one size")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "size=3"], "workflow 'blur' has no parameter 'size': its parameters are radius, sigma"),
        (["--set", "radius=99"], "parameter 'radius' of workflow 'blur': 99 is above the maximum 31 "
                                 "(allowed: a whole number from 1 to 31)"),
        (["--workflow", "nope"], "no workflow 'nope': give a package folder, or one of advanced_chroma_key, blur,"),
    ],
)
def test_bad_parameters_and_workflow(plate: str, tmp_path: Path, args: List[str], message: str) -> None:
    found = bad_input(tmp_path, plate, "--output", str(tmp_path / "o.####.exr"), "--frames", "1001", *args)
    assert found.startswith(f"comfyfarm run-local: {message}")


def test_output_without_frame_token_or_unwritable(plate: str, tmp_path: Path) -> None:
    message = bad_input(tmp_path, plate, "--frames", "1001", "--output", str(tmp_path / "out.exr"))
    assert message == (f"comfyfarm run-local: output pattern '{tmp_path}/out.exr' has no frame number token: add "
                       f"#### (or %04d, $F4), e.g. {tmp_path}/out.####.exr")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    message = bad_input(tmp_path, plate, "--frames", "1001", "--output", str(blocker / "o.####.exr"))
    assert message.startswith(f"comfyfarm run-local: cannot write into the output folder {blocker}")
    assert message.endswith("pick a folder you can write to, or fix its permissions")


def test_format_must_agree_with_the_output_extension(plate: str, tmp_path: Path) -> None:
    message = bad_input(tmp_path, plate, "--frames", "1001", "--output", str(tmp_path / "o.####.exr"),
                        "--format", "dpx")
    assert message == ("comfyfarm run-local: --format dpx but the output pattern ends in '.exr': name the output "
                       "*.dpx, or leave out --format")


def test_dpx_output_from_an_integer_plate(tmp_path: Path) -> None:
    """DPX's usual 10 bits from a plate of another format. (A float plate is refused DPX: see below.)"""
    plate = integer_plate(tmp_path / "plate", "png", "uint16")
    result = run_local(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frames", "1001-1002",
                       "--output", str(tmp_path / "dpx" / "inv.####.dpx"), "--format", "dpx")
    assert result.returncode == 0, result.stderr
    info = probe(tmp_path / "dpx" / "inv.1002.dpx")
    assert (info.format, info.bit_depth, info.channels) == ("dpx", "uint10", 3)


def foreign_plate(folder: Path, frame_rate: str, timecode_at: Callable[[int], str]) -> str:
    """Four frames whose headers another writer left: the frame rate and the timecode as text."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.linspace(-0.25, 2.0, 9 * 16 * 3, dtype=np.float32).reshape(9, 16, 3)
    for index, frame in enumerate(range(1001, 1005)):
        write_exr(folder / f"plate.{frame}.exr", pixels,
                  [("FramesPerSecond", "string", frame_rate), ("timeCode", "string", timecode_at(index))])
    return str(folder / "plate.####.exr")


def test_a_plate_whose_header_holds_text_runs_with_its_rate_and_timecode(tmp_path: Path) -> None:
    plate = foreign_plate(tmp_path / "plate", "24/1", lambda index: f"01:00:00:{index:02d}")
    result = run_local(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frames", "1001-1004",
                       "--output", str(tmp_path / "o" / "inv.####.exr"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr
    for index, frame in enumerate(range(1001, 1005)):
        info = probe(tmp_path / "o" / f"inv.{frame}.exr")
        assert (info.fps, info.timecode) == (24.0, f"01:00:00:{index:02d}")


def test_a_header_value_that_is_not_understood_is_a_warning_and_the_job_goes_on(tmp_path: Path) -> None:
    plate = foreign_plate(tmp_path / "plate", "variable", lambda index: "unknown")
    result = run_local(write_config(tmp_path), "--workflow", "invert", "--input", plate, "--frames", "1001-1004",
                       "--output", str(tmp_path / "o" / "inv.####.exr"))
    assert result.returncode == 0, result.stderr
    # Frames are read in parallel, so the file named is whichever was read first; each value is said once.
    warnings = [re.sub(r"plate\.\d{4}\.exr", "plate.NNNN.exr", line) for line in result.stderr.splitlines()
                if line.startswith("WARNING")]
    named = plate.replace("####", "NNNN")
    assert warnings == [
        f"WARNING farm_plugin.frames.image_io: plate '{named}': header attribute FramesPerSecond holds 'variable', "
        "which is not a frame rate: going on without it",
        f"WARNING farm_plugin.frames.image_io: plate '{named}': header attribute timeCode holds 'unknown', which is "
        "not a timecode: going on without it",
    ]
    assert frame_names(tmp_path / "o", "inv") == [f"inv.{frame}.exr" for frame in range(1001, 1005)]
    assert probe(tmp_path / "o" / "inv.1001.exr").timecode is None


def test_comfyui_that_does_not_start_shows_its_log(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, faults='{"refuse_start": "RuntimeError: Found no NVIDIA driver"}')
    result = run_local(config, "--workflow", "invert", "--input", plate, "--frames", "1001-1002",
                       "--output", str(tmp_path / "o" / "o.####.exr"))
    assert result.returncode == 1
    assert "ComfyUI exited with code 1 while starting on port" in result.stderr
    assert "RuntimeError: Found no NVIDIA driver" in result.stderr
    assert frame_names(tmp_path / "o", "o") == []


def test_unreachable_comfyui_url_fails_quickly_with_the_url(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, startup_timeout_s=1)
    url = f"http://127.0.0.1:{free_port()}"
    result = run_local(config, "--workflow", "invert", "--input", plate, "--frames", "1001",
                       "--output", str(tmp_path / "o" / "o.####.exr"), "--comfyui-url", url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"comfyfarm run-local: ComfyUI is not reachable at {url} (no answer on /system_stats within 1 s): start "
        "it, or check the URL and port")


def test_no_comfyui_configured_says_how_to_configure_one(plate: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"scratch_dir: {tmp_path / 'scratch'}\n")
    message = bad_input(tmp_path, plate, "--frames", "1001", "--output", str(tmp_path / "o.####.exr"), config=config)
    assert message.startswith("comfyfarm run-local: no ComfyUI to run on: pass --comfyui-dir DIR (or --comfyui-url "
                              "URL), set COMFYUI_DIR, or put comfyui_dir: in the config file")


NO_GPU = '{"no_gpu": true}'


def comfyui_args_seen(scratch: Path) -> List[str]:
    """The command lines ComfyUI was started with, from the start lines of its logs under ``scratch``."""
    logs = sorted(scratch.glob("jobs/*/comfyui-*/comfyui.log"))
    lines = [line for log in logs for line in log.read_text().splitlines()]
    return [line for line in lines if line.startswith("=== comfyfarm: starting ")]


def test_without_a_gpu_run_local_refuses_before_starting_anything_and_names_both_fixes(plate: str,
                                                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path, faults=NO_GPU)
    python = sys.executable
    message = bad_input(tmp_path, plate, "--frames", "1001-1002", "--output", str(tmp_path / "o" / "o.####.exr"),
                        config=config)
    assert message == (f"comfyfarm run-local: ComfyUI's Python {python} sees no GPU (torch 2.13.0+double finds no "
                       "CUDA device): pass --cpu to run on the CPU (much slower), or install the NVIDIA driver and a "
                       "CUDA build of torch into that Python")
    assert fake_processes(tmp_path / "ComfyUI") == []
    assert not (tmp_path / "o").exists()


def test_run_local_cpu_starts_comfyui_with_cpu_and_writes_the_frames(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, faults=NO_GPU)
    result = run_local(config, "--workflow", "invert", "--input", plate, "--frames", "1001-1004", "--cpu",
                       "--instances", "2", "--chunk-size", "2", "--output", str(tmp_path / "o" / "inv.####.exr"))
    assert result.returncode == 0, result.stderr
    assert frame_names(tmp_path / "o", "inv") == [f"inv.{frame}.exr" for frame in range(1001, 1005)]
    starts = comfyui_args_seen(tmp_path / "scratch")
    assert len(starts) == 2 and all(start.endswith(" --cpu") for start in starts)
    assert len(re.findall(r"starting ComfyUI on port \d+ \(CPU\)", result.stderr)) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--cpu", "--gpus", "0,1"], "--cpu and --gpus 0,1: choose one (--instances N sets how many CPU instances)"),
    (["--cpu", "--comfyui-url", "http://127.0.0.1:9"], "--cpu starts ComfyUI on the CPU, but run-local attaches to "
     "the running ComfyUI at http://127.0.0.1:9: start that one with --cpu, or leave out --comfyui-url"),
    (["--gpus", "0,3", "--chunk-size", "1"], "GPU 3 does not exist: ComfyUI's Python sees 1 CUDA GPU(s), numbered "
     "from 0: list those in --gpus (or gpus: in the config)"),
])
def test_cpu_and_gpu_choices_that_cannot_work(plate: str, tmp_path: Path, args: List[str], message: str) -> None:
    found = bad_input(tmp_path, plate, "--frames", "1001-1002", "--output", str(tmp_path / "o" / "o.####.exr"), *args)
    assert found == f"comfyfarm run-local: {message}"


def test_a_comfyui_python_without_torch_is_named_before_anything_starts(plate: str, tmp_path: Path) -> None:
    comfyui = make_fake_comfyui_dir(tmp_path / "ComfyUI")
    shutil.rmtree(comfyui / "torch")
    message = bad_input(tmp_path, plate, "--frames", "1001", "--output", str(tmp_path / "o" / "o.####.exr"),
                        config=write_config(tmp_path, comfyui_dir=comfyui))
    assert message == (f"comfyfarm run-local: ComfyUI's Python {sys.executable} cannot import torch "
                       "(ModuleNotFoundError: No module named 'torch'): install ComfyUI's requirements into it (pip "
                       "install -r requirements.txt in its venv), or point --comfyui-python at the Python of "
                       "ComfyUI's venv")


def test_demo_on_a_machine_without_a_gpu_runs_on_the_cpu_and_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, faults=NO_GPU)
    result = subprocess.run([sys.executable, "-m", "flame_submitter.cli", "demo", "--dir", str(tmp_path / "demo"),
                             "--quiet", "--instances", "1"], env=environment(config), capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("comfyfarm demo: ComfyUI's Python sees no GPU: running ComfyUI on the "
                                             "CPU (slower; pass --cpu to say so yourself)")
    for workflow in ("invert", "blur"):
        assert frame_names(tmp_path / "demo" / workflow, workflow) == [f"{workflow}.{f}.exr" for f in FRAMES]
    assert all(start.endswith(" --cpu") for start in comfyui_args_seen(tmp_path / "scratch"))


def passthrough_package(folder: Path) -> Path:
    """A package that does nothing: core LoadImage straight into SaveImage, as ComfyUI's UI exports it."""
    folder.mkdir(parents=True)
    (folder / "workflow.json").write_text(json.dumps({
        "1": {"class_type": "LoadImage", "inputs": {"image": "frame.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfarm/pass"}}}))
    (folder / "workflow.yaml").write_text(yaml.safe_dump({
        "schema": 1, "title": "Passthrough", "description": "Nothing", "category": "Utility", "mode": "per_frame",
        "template": "default", "input": {"node": "1", "input": "image"},
        "output": {"node": "2", "input": "filename_prefix"}, "requirements": {"nodes": ["LoadImage", "SaveImage"]}}))
    return folder


def scene_linear_rgba_plate(folder: Path, frames: int = 3) -> str:
    """Half-float RGBA frames with values from -0.5 to 4.0 and an alpha ramp, with timecode."""
    folder.mkdir(parents=True)
    for index in range(frames):
        pixels = np.linspace(-0.5, 4.0, 9 * 16 * 4, dtype=np.float32).reshape(9, 16, 4) + index / 64
        pixels[..., 3] = np.linspace(0.0, 1.0, 9 * 16, dtype=np.float32).reshape(9, 16)
        write_frame(folder / f"plate.{1001 + index}.exr", pixels,
                    metadata={"smpte:TimeCode": (0x01000000 + index, 0), "FramesPerSecond": (24, 1)})
    return str(folder / "plate.####.exr")


def test_float_and_alpha_come_back_whole_through_comfyfarms_frame_nodes(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate")
    result = run_local(write_config(tmp_path), "--workflow", str(passthrough_package(tmp_path / "passthrough")),
                       "--input", plate, "--output", str(tmp_path / "o" / "o.####.exr"))
    assert result.returncode == 0, result.stderr
    assert "INFO farm_plugin.runner.chunk: full precision: float frames with alpha through comfyfarm's frame nodes" \
        in result.stderr.splitlines()
    for index, frame in enumerate(range(1001, 1004)):
        info = probe(tmp_path / "o" / f"o.{frame}.exr")
        assert (info.channel_names, info.pixel_type, info.timecode) == (("R", "G", "B", "A"), "half",
                                                                        f"01:00:00:{index:02d}")
        assert np.array_equal(read_pixels(info.path), read_pixels(plate.replace("####", str(frame))))


def test_a_comfyui_without_the_frame_nodes_falls_back_to_8_bit_and_says_so(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate", frames=1)
    fake = start_fake_comfyui(tmp_path / "attached", extra_args=["--disable-all-custom-nodes"])
    try:
        result = run_local(write_config(tmp_path), "--workflow", str(passthrough_package(tmp_path / "passthrough")),
                           "--input", plate, "--output", str(tmp_path / "o" / "o.####.exr"), "--comfyui-url",
                           fake.url)
    finally:
        fake.stop()
    assert result.returncode == 0, result.stderr
    assert (f"WARNING farm_plugin.runner.chunk: 8-bit path: the ComfyUI at {fake.url} lacks comfyfarm's frame nodes "
            "(ComfyFarmLoadFrames, ComfyFarmSaveFrames): values are clipped to 0..1 and quantised to 8 bits, and the "
            "plate's alpha is dropped; start it with comfyfarm's custom-nodes folder (farm_plugin/ComfyUINodes) to "
            "keep float and alpha") \
        in result.stderr.splitlines()
    written = read_pixels(tmp_path / "o" / "o.1001.exr")
    assert written.shape[2] == 3 and written.max() <= 1.0 + 1e-3


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    """The README's first command: a generated 48-frame plate through invert and blur on two instances."""
    config = write_config(tmp_path)
    result = subprocess.run([sys.executable, "-m", "flame_submitter.cli", "demo", "--dir", str(tmp_path / "demo"),
                             "--quiet"], env=environment(config), capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    for workflow in ("invert", "blur"):
        assert "48 frame(s) in 6 chunk(s) on 2 ComfyUI instance(s)" in result.stderr
        assert frame_names(tmp_path / "demo" / workflow, workflow) == [f"{workflow}.{f}.exr" for f in FRAMES]
        assert probe(tmp_path / "demo" / workflow / f"{workflow}.1001.exr").timecode == "01:00:00:00"
        assert probe(tmp_path / "demo" / workflow / f"{workflow}.1048.exr").timecode == "01:00:01:23"


def test_real_comfyui_runs_invert_and_blur_on_two_instances(plate: str, tmp_path: Path) -> None:
    comfyui_dir, url = os.environ.get("COMFYUI_DIR"), os.environ.get("COMFYUI_URL")
    if not (comfyui_dir or url):
        pytest.skip(REAL_SKIP_REASON)
    extra = {"comfyui_url": url} if url else {"comfyui_python": os.environ.get("COMFYUI_PYTHON") or None,
                                              "comfyui_args": os.environ.get("COMFYUI_ARGS", "--cpu")}
    config = write_config(tmp_path, comfyui_dir=Path(comfyui_dir or tmp_path), **extra)
    for workflow in ("invert", "blur"):
        out = tmp_path / workflow
        result = run_local(config, "--workflow", workflow, "--input", plate, "--frames", "1001-1016",
                           "--output", str(out / f"{workflow}.####.exr"), "--instances", "2", "--chunk-size", "4",
                           timeout_s=300)
        assert result.returncode == 0, result.stderr
        assert frame_names(out, workflow) == [f"{workflow}.{f}.exr" for f in range(1001, 1017)]
    source = read_pixels(plate.replace("####", "1010"))[..., :3]
    inverted = read_pixels(tmp_path / "invert" / "invert.1010.exr")[..., :3]
    assert np.abs(inverted - expected_invert_float(source)).max() < 2e-3


def test_the_configured_gpus_get_one_instance_each(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, faults='{"gpu_count": 2}')
    settings = yaml.safe_load(config.read_text())
    settings["gpus"] = ["0", "1"]
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "invert"
    result = run_local(config, "--workflow", "invert", "--input", plate, "--frames", "1001-1016",
                       "--output", str(out / "invert.####.exr"), "--chunk-size", "8")
    assert result.returncode == 0, result.stderr
    assert "16 frame(s) in 2 chunk(s) on 2 ComfyUI instance(s)" in result.stderr


def test_a_2x_interpolation_writes_the_in_betweens_under_their_own_numbers(plate: str, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = tmp_path / "rife"
    result = run_local(config, "--workflow", "rife_frame_interpolation", "--input", plate, "--frames", "1001-1020",
                       "--output", str(out / "rife.####.exr"), "--instances", "2", "--chunk-size", "6")
    assert result.returncode == 0, result.stderr
    assert "20 frame(s) in 4 chunk(s) on 2 ComfyUI instance(s), 39 frame(s) out" in result.stderr
    assert frame_names(out, "rife") == [f"rife.{f}.exr" for f in range(1001, 1040)]
    assert probe(out / "rife.1004.exr").timecode == "01:00:00:01"  # the in-between after source 1002


# -- output formats: what each holds of a float plate and of an alpha --------------------------------


def integer_plate(folder: Path, ending: str, bit_depth: str, *, channels: int = 3, frames: int = 2) -> str:
    """Frames of an integer format, a smooth ramp in 0..1 (colour no brighter than the alpha, where there is one,
    as OpenImageIO holds RGBA)."""
    folder.mkdir(parents=True)
    ramp = np.linspace(0.0, 1.0, 27 * 48, dtype=np.float32).reshape(27, 48, 1)
    rgb = np.concatenate([ramp, ramp[::-1], np.full_like(ramp, 0.25)], axis=2)
    pixels = np.concatenate([rgb * ramp[:, ::-1], ramp[:, ::-1]], axis=2) if channels == 4 else rgb
    for frame in range(1001, 1001 + frames):
        write_frame(folder / f"plate.{frame}.{ending}", pixels, bit_depth=bit_depth)
    return str(folder / f"plate.####.{ending}")


def keyer_package(folder: Path) -> Path:
    """The passthrough package whose one pass gives an alpha (the loader's MASK), as a keyer's matte."""
    passthrough_package(folder)
    manifest = yaml.safe_load((folder / "workflow.yaml").read_text())
    manifest["output"]["alpha"] = {"node": "1", "output": 1}
    (folder / "workflow.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_a_keyers_alpha_into_jpeg_is_refused_before_anything_starts(tmp_path: Path) -> None:
    plate = integer_plate(tmp_path / "plate", "png", "uint8")
    output = tmp_path / "o" / "key.####.jpg"
    message = bad_input(tmp_path, plate, "--workflow", str(keyer_package(tmp_path / "keyer")), "--output",
                        str(output))
    assert message == (f"comfyfarm run-local: output pattern '{output}': JPEG cannot hold the alpha that the result "
                       "pass of workflow keyer gives: end it in .exr, .tif, .png or .dpx")
    assert fake_processes(tmp_path / "ComfyUI") == []
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("ending", "label", "file_format"), [("dpx", "DPX", "dpx"), ("png", "PNG", None),
                                                              ("jpg", "JPEG", None)])
def test_a_float_plate_into_a_format_that_would_clip_it_is_refused(plate: str, tmp_path: Path, ending: str,
                                                                   label: str, file_format: Optional[str]) -> None:
    output = tmp_path / "o" / f"blur.####.{ending}"
    message = bad_input(tmp_path, plate, "--output", str(output), *(["--format", file_format] if file_format else []))
    assert message == (f"comfyfarm run-local: output pattern '{output}': {label} cannot hold the half-float pixels "
                       f"of the plate {plate.replace('####', '1001')}: its values outside 0..1 would be clipped: end "
                       "it in .exr or .tif")
    assert not (tmp_path / "o").exists()


def test_a_half_exr_plate_into_tiff_gives_a_float_tiff_with_its_alpha(tmp_path: Path) -> None:
    plate = scene_linear_rgba_plate(tmp_path / "plate", frames=2)
    result = run_local(write_config(tmp_path), "--workflow", str(passthrough_package(tmp_path / "passthrough")),
                       "--input", plate, "--output", str(tmp_path / "o" / "o.####.tif"), "--format", "tiff")
    assert result.returncode == 0, result.stderr
    for frame in (1001, 1002):
        info = probe(tmp_path / "o" / f"o.{frame}.tif")
        assert (info.format, info.pixel_type, info.channel_names) == ("tiff", "float", ("R", "G", "B", "A"))
        source = read_pixels(plate.replace("####", str(frame)))
        # -0.5 and 4.0 come back, within half precision (the colour conversions run in float32)
        assert np.abs(read_pixels(info.path) - source).max() <= 4.0 * 2.0 ** -11


@pytest.mark.parametrize(("ending", "bit_depth", "tolerance"), [("dpx", "uint10", 1.0 / 1023 + 1e-6),
                                                                ("tif", "uint16", 1e-6), ("png", "uint16", 1e-6),
                                                                ("exr", "half", 2.0 ** -11)])
def test_an_rgba_plate_keeps_its_alpha_in_dpx_tiff_png_and_exr(tmp_path: Path, ending: str, bit_depth: str,
                                                               tolerance: float) -> None:
    plate = integer_plate(tmp_path / "plate", "tif", "uint16", channels=4)
    result = run_local(write_config(tmp_path), "--workflow", str(passthrough_package(tmp_path / "passthrough")),
                       "--input", plate, "--output", str(tmp_path / "o" / f"o.####.{ending}"))
    assert result.returncode == 0, result.stderr
    info = probe(tmp_path / "o" / f"o.1001.{ending}")
    assert (info.channel_names, info.bit_depth) == (("R", "G", "B", "A"), bit_depth)
    assert np.abs(read_pixels(info.path) - read_pixels(plate.replace("####", "1001"))).max() <= tolerance


@pytest.mark.parametrize("channels", [3, 4])
def test_jpeg_from_an_rgb_plate_and_from_an_rgba_plate_whose_workflow_gives_no_alpha(tmp_path: Path,
                                                                                    channels: int) -> None:
    """JPEG holds no alpha: the plate's own alpha, which the workflow only carries, is left out."""
    plate = integer_plate(tmp_path / "plate", "png", "uint16", channels=channels)
    result = run_local(write_config(tmp_path), "--workflow", str(passthrough_package(tmp_path / "passthrough")),
                       "--input", plate, "--output", str(tmp_path / "o" / "o.####.jpg"))
    assert result.returncode == 0, result.stderr
    assert frame_names(tmp_path / "o", "o") == ["o.1001.jpg", "o.1002.jpg"]
    info = probe(tmp_path / "o" / "o.1001.jpg")
    assert (info.format, info.channel_names, info.bit_depth) == ("jpeg", ("R", "G", "B"), "uint8")
    source = read_pixels(plate.replace("####", "1001"))[..., :3]
    assert np.abs(read_pixels(info.path) - source).mean() < 0.01
