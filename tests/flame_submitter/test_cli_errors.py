"""Plausible mistakes on the command line: one line that names the value and the fix, no traceback, exit 2 for
bad input (1 for a disk that fills up while work runs), and nothing written or left half-written.

A full disk is simulated portably: the command runs with ``RLIMIT_FSIZE`` (and SIGXFSZ ignored), so a write
past the limit fails with EFBIG ("File too large") as a full disk fails with ENOSPC.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest
import yaml

from farm_plugin.frames.image_io import read_pixels, write_frame
from flame_submitter.cli.demo_plate import write_demo_plate
from tests.doubles.comfyui.harness import make_fake_comfyui_dir
from tests.flame_submitter import test_submit

REPO = Path(__file__).resolve().parents[2]


# -- helpers ----------------------------------------------------------------------------------------


def file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` under which writing past ``limit_bytes`` into a file fails like a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def comfyfarm(config: Path, *args: str, preexec_fn: Optional[Callable[[], None]] = None,
              extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYFARM_", "COMFYUI_"))}
    env.update(COMFYFARM_CONFIG=str(config), COMFYFARM_STUDIO_CONFIG=str(config), **(extra_env or {}))
    paths = [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run([sys.executable, "-m", "flame_submitter.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO, preexec_fn=preexec_fn)


def last_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The last line of stderr, after checking the exit code and that no traceback was printed."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def tree(folder: Path) -> List[str]:
    """Everything under ``folder`` (hidden files too), relative; [] when it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plate")
    write_demo_plate(folder, frame_count=4, width=16, height=16)
    return folder


@pytest.fixture
def local_config(tmp_path: Path) -> Path:
    """run-local's configuration: a ComfyUI folder (never started here) and a scratch folder."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"comfyui_dir": str(make_fake_comfyui_dir(tmp_path / "ComfyUI")),
                                      "comfyui_python": sys.executable, "scratch_dir": str(tmp_path / "scratch")}))
    return config


def run_local(config: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return comfyfarm(config, "run-local", "--quiet", "--workflow", "invert", *args, **kwargs)


# -- run-local: bad input, exit 2, nothing written ------------------------------------------------


def test_an_input_folder_that_is_a_file(plate: Path, local_config: Path, tmp_path: Path) -> None:
    pattern = f"{plate}/plate.1001.exr/plate.####.exr"
    result = run_local(local_config, "--input", pattern, "--output", str(tmp_path / "out" / "o.####.exr"))
    assert last_line(result, 2) == (f"comfyfarm run-local: no frames match --input {pattern}: check the path and "
                                    "the frame token")
    assert tree(tmp_path / "out") == [] and tree(tmp_path / "scratch") == []


def test_an_empty_frame_list(plate: Path, local_config: Path, tmp_path: Path) -> None:
    result = run_local(local_config, "--input", str(plate / "plate.####.exr"), "--frames", "",
                       "--output", str(tmp_path / "out" / "o.####.exr"))
    assert last_line(result, 2) == ("comfyfarm run-local: --frames '' names no frames: give a list like 1001-1100, "
                                    "or leave out --frames for every frame of --input on disk")
    assert tree(tmp_path / "out") == []


@pytest.mark.parametrize("output_name", ["plate.####.exr", "plate.#.exr"])
def test_an_output_that_would_overwrite_the_plate(plate: Path, local_config: Path, output_name: str) -> None:
    before = {p.name: p.read_bytes() for p in plate.iterdir()}
    result = run_local(local_config, "--input", str(plate / "plate.####.exr"), "--output", str(plate / output_name))
    output = str(plate / output_name)
    assert last_line(result, 2) == (f"comfyfarm run-local: the output {output} is the input plate "
                                    f"{plate}/plate.####.exr: the results would overwrite it: write them to another "
                                    "folder or under another name")
    assert {p.name: p.read_bytes() for p in plate.iterdir()} == before


@pytest.mark.parametrize(("output_name", "ending"), [("o.####.exr.bak", "'.bak'"), ("o.####", "no extension")])
def test_an_output_that_is_no_image_format(plate: Path, local_config: Path, tmp_path: Path, output_name: str,
                                           ending: str) -> None:
    output = tmp_path / "out" / output_name
    result = run_local(local_config, "--input", str(plate / "plate.####.exr"), "--output", str(output))
    assert last_line(result, 2) == (f"comfyfarm run-local: output pattern '{output}' ends in {ending}, not an image "
                                    "format comfyfarm writes: end it in .exr, .dpx, .tif, .png or .jpg")
    assert not (tmp_path / "out").exists()


def test_a_scratch_folder_that_cannot_be_written(plate: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "scratch"
    blocker.write_text("a file where the scratch folder should be")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"comfyui_dir": str(make_fake_comfyui_dir(tmp_path / "ComfyUI")),
                                      "scratch_dir": str(blocker)}))
    result = run_local(config, "--cpu", "--input", str(plate / "plate.####.exr"),
                       "--output", str(tmp_path / "out" / "o.####.exr"))
    assert last_line(result, 2) == (f"comfyfarm run-local: cannot write the job record into the scratch folder "
                                    f"{blocker} (Not a directory): set scratch_dir (now from {config}) to a folder "
                                    "you can write to, with free space")
    assert blocker.read_text() == "a file where the scratch folder should be"
    assert not (tmp_path / "out").exists()  # the output check made the folder and took it back


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--comfyui-url", "127.0.0.1:8188"],
         "ComfyUI address '127.0.0.1:8188' is not a web address (it does not start with http:// or https://): write "
         "it like http://127.0.0.1:8188"),
        (["--comfyui-url", "http://127.0.0.1:99999"],
         "ComfyUI address 'http://127.0.0.1:99999' has a port that is not a number from 1 to 65535: write it like "
         "http://127.0.0.1:8188"),
        (["--gpus", ","], "--gpus ',' names no GPU: list GPU indices like 0,1, or leave out --gpus"),
        (["--chunk-size", "0"], "--chunk-size 0: use at least 1 frame per chunk"),
    ],
)
def test_bad_options_are_named_before_anything_starts(plate: Path, local_config: Path, tmp_path: Path,
                                                      args: List[str], message: str) -> None:
    result = run_local(local_config, "--input", str(plate / "plate.####.exr"),
                       "--output", str(tmp_path / "out" / "o.####.exr"), *args)
    assert last_line(result, 2) == f"comfyfarm run-local: {message}"
    assert tree(tmp_path / "out") == [] and tree(tmp_path / "scratch") == []


def test_a_workflow_package_that_is_not_text(plate: Path, local_config: Path, tmp_path: Path) -> None:
    package = tmp_path / "broken"
    package.mkdir()
    (package / "workflow.json").write_text((REPO / "workflows" / "blur" / "workflow.json").read_text())
    (package / "workflow.yaml").write_bytes(b"\xff\xfe\x00binary")
    result = comfyfarm(local_config, "run-local", "--workflow", str(package), "--input", str(plate / "plate.####.exr"),
                       "--output", str(tmp_path / "out" / "o.####.exr"))
    assert last_line(result, 2) == (f"comfyfarm run-local: {package}/workflow.yaml: not a text file (it is not "
                                    "UTF-8): save it again as text")
    listing = comfyfarm(local_config, "workflows", "--dir", str(tmp_path))
    assert last_line(listing, 1).endswith(" workflow package(s)")  # the others are listed all the same
    assert (f"broken: cannot read the package: {package}/workflow.yaml: not a text file (it is not UTF-8): save it "
            "again as text") in listing.stderr.splitlines()


# -- the configuration file -------------------------------------------------------------------------


def test_a_configuration_file_with_a_yaml_mistake(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("comfyui_dir: [/opt/ComfyUI\nbase_port: 8188\n")
    result = comfyfarm(config, "config", "show")
    assert last_line(result, 2) == (f"comfyfarm: {config}: not valid YAML (line 2, column 10: expected ',' or ']', "
                                    "but got ':'): fix that line")


def test_a_configuration_file_that_is_not_text(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = comfyfarm(config, "config", "show")
    assert last_line(result, 2) == (f"comfyfarm: {config}: not a text file (it is not UTF-8): point at the YAML "
                                    "configuration file")


@pytest.mark.parametrize("command", [["jobs"], ["status", "abc"], ["cancel", "abc"]])
def test_a_deadline_url_without_its_scheme(tmp_path: Path, command: List[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("deadline_url: deadline:8081\n")
    result = comfyfarm(config, *command)
    assert last_line(result, 2) == (f"comfyfarm: {config}: deadline_url: 'deadline:8081' is not a web address (it "
                                    "does not start with http:// or https://): write it like http://deadline:8081")


def test_a_comfyui_url_from_the_environment_without_its_scheme(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    result = comfyfarm(config, "config", "show", extra_env={"COMFYUI_URL": "localhost:8188"})
    assert last_line(result, 2) == ("comfyfarm: $COMFYUI_URL: comfyui_url: 'localhost:8188' is not a web address (it "
                                    "does not start with http:// or https://): write it like http://localhost:8188")


# -- validate, doctor, demo -------------------------------------------------------------------------


def test_validate_with_unreadable_option_files(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    binary = tmp_path / "nodes.json"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    blur = str(REPO / "workflows" / "blur")
    result = comfyfarm(config, "validate", blur, "--allow-nodes", str(tmp_path / "missing.txt"))
    assert last_line(result, 2) == (f"comfyfarm validate: --allow-nodes {tmp_path}/missing.txt: cannot read it (No "
                                    "such file or directory): give a text file of node classes, one per line")
    result = comfyfarm(config, "validate", blur, "--allow-nodes", str(binary))
    assert last_line(result, 2) == (f"comfyfarm validate: --allow-nodes {binary}: cannot read it (not a text file): "
                                    "give a text file of node classes, one per line")
    for command in (["validate", blur], ["doctor"]):
        result = comfyfarm(config, *command, "--object-info", str(binary))
        message = last_line(result, 2)
        assert message.startswith(f"comfyfarm {command[0]}: {binary}: cannot read node definitions (")
        assert message.endswith("): save ComfyUI's /object_info answer there, as JSON")


def test_doctor_with_a_comfyui_url_without_its_scheme(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    result = comfyfarm(config, "doctor", "--comfyui-url", "localhost:8188")
    assert last_line(result, 2) == ("comfyfarm doctor: ComfyUI address 'localhost:8188' is not a web address (it does "
                                    "not start with http:// or https://): write it like http://localhost:8188")


def test_demo_into_a_folder_that_cannot_be_written(local_config: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = comfyfarm(local_config, "demo", "--cpu", "--quiet", "--dir", str(blocker / "demo"))
    assert last_line(result, 2) == (f"comfyfarm demo: cannot write the demo plate into {blocker}/demo/plate (Not a "
                                    "directory): choose a folder you can write to, with free space")


# -- a disk that fills up: the frame fails, nothing half-written stays --------------------------------


def test_run_local_onto_a_full_disk_leaves_no_partial_frame(fake_comfyui, tmp_path: Path) -> None:
    demo = write_demo_plate(tmp_path / "demo", frame_count=3, width=64, height=64)
    plate = tmp_path / "plate"  # 16-bit PNG: a half-float plate is refused DPX (values outside 0..1 would clip)
    plate.mkdir()
    for frame in range(1001, 1004):
        write_frame(plate / f"plate.{frame}.png", read_pixels(demo.replace("####", str(frame))), bit_depth="uint16")
    pattern = str(plate / "plate.####.png")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scratch_dir": str(tmp_path / "scratch")}))
    out = tmp_path / "out"
    # 64x64 10-bit DPX frames (18 KB) do not fit; the job record and the staged PNGs do.
    result = comfyfarm(config, "run-local", "--quiet", "--workflow", "invert", "--input", pattern,
                       "--output", str(out / "o.####.dpx"), "--comfyui-url", fake_comfyui.url,
                       preexec_fn=file_size_limit(12_000))
    assert last_line(result, 1) == ("comfyfarm run-local: 3 frame(s) not written (1001-1003): run the same command "
                                    "again to finish only those")
    assert f"comfyfarm run-local: frame 1001: cannot write the result: cannot write '{out}/o.1001.dpx': " \
        in result.stderr
    assert "(File too large)" in result.stderr
    assert tree(out) == []  # no frame, no hidden temporary file


def test_run_local_with_a_full_scratch_disk_fails_the_frames_without_a_traceback(fake_comfyui,
                                                                                 tmp_path: Path) -> None:
    pattern = write_demo_plate(tmp_path / "plate", frame_count=2, width=256, height=256)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"scratch_dir": str(tmp_path / "scratch")}))
    out = tmp_path / "out"
    # The job record and the staged PNGs (2 KB) fit; ComfyUI's 256x256 result does not.
    result = comfyfarm(config, "run-local", "--quiet", "--workflow", "invert", "--input", pattern,
                       "--output", str(out / "o.####.exr"), "--comfyui-url", fake_comfyui.url,
                       preexec_fn=file_size_limit(8192))
    assert last_line(result, 1) == ("comfyfarm run-local: 2 frame(s) not written (1001-1002): run the same command "
                                    "again to finish only those")
    scratch = re.escape(str(tmp_path / "scratch" / "jobs"))
    assert re.search(rf"^comfyfarm run-local: frame 1001: cannot save ComfyUI's result in the scratch folder "
                     rf"{scratch}/\S+/results \(File too large\): free some space there, or set scratch_dir to "
                     "another folder$", result.stderr, re.MULTILINE), result.stderr
    assert tree(out) == []
    assert list((tmp_path / "scratch").rglob("*.png")) == []  # the cut-off download is removed


# -- submit: bad input, exit 2, nothing submitted, no job folder ---------------------------------------


@pytest.fixture
def studio(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    write_demo_plate(root / "sh010" / "plate", frame_count=4, width=16, height=16)
    (root / "comfyfarm" / "jobs").mkdir(parents=True)
    return root


def submit_args(studio: Path, *extra: str, output: str = "sh010/comfy/blur.####.exr") -> List[str]:
    return ["submit", "--workflow", "blur", "--input", str(studio / "sh010" / "plate" / "plate.####.exr"),
            "--output", str(studio / output), *extra]


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("sh010/plate/plate.####.exr", [],
         "comfyfarm: the output {studio}/sh010/plate/plate.####.exr is the input plate "
         "{studio}/sh010/plate/plate.####.exr: the results would overwrite it: write them to another folder or under "
         "another name"),
        ("sh010/comfy/blur.####.exr.bak", [],
         "comfyfarm: output pattern '{studio}/sh010/comfy/blur.####.exr.bak' ends in '.bak', not an image format "
         "comfyfarm writes: end it in .exr, .dpx, .tif, .png or .jpg"),
        ("sh010/comfy/blur.####.exr", ["--frames", " "],
         "comfyfarm: --frames ' ' names no frames: give a list like 1001-1100, or leave out --frames for every frame "
         "of --input on disk"),
    ],
)
def test_submit_refuses_bad_input(fake_deadline, tmp_path: Path, studio: Path, output: str, extra: List[str],
                                  message: str) -> None:
    config = test_submit.write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio, *extra, output=output))
    assert last_line(result, 2) == message.format(studio=studio)
    assert fake_deadline.submissions() == []
    assert tree(studio / "comfyfarm" / "jobs") == [] and tree(studio / "sh010" / "comfy") == []


def test_submit_with_an_input_folder_that_is_a_file(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = test_submit.write_config(tmp_path, studio, fake_deadline.url)
    args = submit_args(studio)
    pattern = f"{studio}/sh010/plate/plate.1001.exr/plate.####.exr"
    args[args.index("--input") + 1] = pattern
    result = comfyfarm(config, *args)
    assert last_line(result, 2) == f"comfyfarm: no frames match --input {pattern}: check the path and the frame token"
    assert fake_deadline.submissions() == [] and tree(studio / "comfyfarm" / "jobs") == []


@pytest.mark.parametrize(("where", "reason"), [("file", "it is a file"), ("file/bundle", "Not a directory")])
def test_a_bundle_folder_that_cannot_be_written(tmp_path: Path, studio: Path, where: str, reason: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    config = test_submit.write_config(tmp_path, studio, "http://127.0.0.1:9")
    bundle_dir = tmp_path / where
    result = comfyfarm(config, *submit_args(studio, "--backend", "deadline-cloud", "--bundle-dir", str(bundle_dir)))
    assert last_line(result, 2) == (f"comfyfarm: cannot write the job bundle into {bundle_dir} ({reason}): choose a "
                                    "folder you can write to, with free space")
    assert tree(studio / "comfyfarm" / "jobs") == [] and (tmp_path / "file").read_text() == "not a folder"


def test_a_bundle_folder_on_a_full_disk(tmp_path: Path, studio: Path) -> None:
    config = test_submit.write_config(tmp_path, studio, "http://127.0.0.1:9")
    sizes = comfyfarm(config, *submit_args(studio, "--backend", "deadline-cloud", "--bundle-dir",
                                           str(tmp_path / "sizes")))
    assert sizes.returncode == 0, sizes.stderr
    (record,) = (studio / "comfyfarm" / "jobs").glob("*/job.json")
    record_bytes = record.stat().st_size
    template_bytes = (tmp_path / "sizes" / "template.yaml").stat().st_size
    assert record_bytes < template_bytes
    for path in sorted((studio / "comfyfarm" / "jobs").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    bundle_dir = tmp_path / "bundles" / "sh010"
    # The job record fits, the bundle's template does not.
    result = comfyfarm(config, *submit_args(studio, "--backend", "deadline-cloud", "--bundle-dir", str(bundle_dir)),
                       preexec_fn=file_size_limit((record_bytes + template_bytes) // 2))
    assert last_line(result, 2) == (f"comfyfarm: cannot write the job bundle into {bundle_dir} (File too large): "
                                    "choose a folder you can write to, with free space")
    assert tree(studio / "comfyfarm" / "jobs") == [] and not (tmp_path / "bundles").exists()


def test_a_jobs_root_on_a_full_disk_submits_nothing(fake_deadline, tmp_path: Path, studio: Path) -> None:
    config = test_submit.write_config(tmp_path, studio, fake_deadline.url)
    result = comfyfarm(config, *submit_args(studio), preexec_fn=file_size_limit(200))
    jobs = studio / "comfyfarm" / "jobs"
    assert re.fullmatch(rf"comfyfarm: nothing was submitted: cannot write the job folder {re.escape(str(jobs))}/\S+ "
                        r"\(File too large\): free some space there, or set jobs_root to a folder you can write to",
                        last_line(result, 1))
    assert fake_deadline.submissions() == [] and tree(jobs) == []
