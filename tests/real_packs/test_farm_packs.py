"""The shipped several-pass and keyer packages on the emulated farm with their real packs: submitted with
``comfyfarm submit``, rendered by the real ComfyUI plugin on one emulated Worker whose ComfyUI is the packs'
(``--cpu``, stand-in weights where the real ones are not installed), handed back into the inbox and relinked
into the Flame double. What a user checks: every pass's frames under the source numbers, float EXR at the
plate's size with the plate's alpha (the keyer's: its matte), values that make sense for the pass, the
completion record listing the passes, and one clip per pass in Flame (one multi-channel clip with
``--exr-layers``).

The Workers' Python is ComfyUI's with comfyfarm's runtime on top, as ``install.sh worker --venv`` makes it
(install/comfyfarm_install/worker.py): a venv on the packs' Python that sees the packs' environment first,
then comfyfarm's runtime (``farm_plugin``, and OpenImageIO, which the packs' environment lacks) linked from
this checkout and the test environment. Nothing is fetched and the packs' environment is not touched.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import OpenImageIO
import pytest

from farm_plugin.frames.image_io import probe, read_pixels
from farm_plugin.workflow.package import load_package
from flame_submitter.flame.relink import RelinkWatcher
from tests.farm.conftest import Studio, make_studio
from tests.farm_emulator.farm import Farm, start_farm
from tests.real_packs.plates import HEIGHT, WIDTH, subject_plate
from tests.real_packs.plugin import REPO, SKIP_REASON, PacksSetup, packs_setup
from tests.real_packs.test_depth_normal_packs import assert_depth, assert_unit_normals
from tests.real_packs.test_matte_and_upscale_packs import assert_matte_pass

FRAMES = (1001, 1002)
CLIP = "sh010_plate"
PASSES = ("depth", "normals", "ao")  # depth_normal_ao_maps' passes, in its manifest's order
MODELS: Dict[str, Sequence[str]] = {
    "depth_normal_ao_maps": ["dsine.pt", "depth_anything_v2_vitl_fp32.safetensors"],
    "rembg_matte": ["isnet-general-use.onnx"],  # the faster keyer of the tier (a small stand-in network)
}
# The packs' first start imports GeekyRemB's dependencies for about a minute; Depth Anything's ViT-L on 2 CPU
# cores may be silent for a while within a prompt.
STARTUP_TIMEOUT_SECONDS = 600
IDLE_TIMEOUT_SECONDS = 900
JOB_TIMEOUT_SECONDS = 1200
# A real Deadline calls a Worker stalled after minutes; the emulator's 3 s default is for the doubles, and a
# ComfyUI busy on both CPU cores may hold the Worker's heartbeat thread back longer than that.
STALL_TIMEOUT_SECONDS = 120
FULL_PRECISION_STATUS = "full precision: float frames with alpha through comfyfarm's frame nodes"
RUNTIME_CHECK = ("import importlib.util, farm_plugin.runner.__main__, farm_plugin.completion.cli, "
                 "farm_plugin.frames.image_io; assert importlib.util.find_spec('torch'), 'no torch'")


@dataclasses.dataclass(frozen=True)
class PacksWorker:
    setup: PacksSetup
    python: Path  # the Workers' PythonExecutable: the packs' Python with comfyfarm's runtime on top


def _python_path(python: str, key: str) -> str:
    done = subprocess.run([python, "-c", f"import sysconfig; print(sysconfig.get_paths()[{key!r}])"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def worker_python(comfyui_python: str, folder: Path) -> Path:
    """A venv on ``comfyui_python`` that imports the packs' packages first, then comfyfarm's runtime (see the
    module docstring)."""
    venv = folder / "venv"
    subprocess.run([comfyui_python, "-m", "venv", "--without-pip", str(venv)], capture_output=True, timeout=120,
                   check=True)
    python = venv / "bin" / "python"
    lib = folder / "lib"
    lib.mkdir()
    (lib / "farm_plugin").symlink_to(REPO / "farm_plugin")
    (lib / "OpenImageIO").symlink_to(Path(OpenImageIO.__file__).parent)
    site_packages = Path(_python_path(str(python), "purelib"))
    packs_site = _python_path(comfyui_python, "purelib")
    (site_packages / "comfyfarm.pth").write_text(f"import site; site.addsitedir({json.dumps(packs_site)})\n{lib}\n")
    check = subprocess.run([str(python), "-c", RUNTIME_CHECK], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    return python


@pytest.fixture(scope="module")
def packs_worker(tmp_path_factory: pytest.TempPathFactory) -> PacksWorker:
    setup = packs_setup()
    if setup is None:
        pytest.skip(SKIP_REASON)
    return PacksWorker(setup, worker_python(setup.python, tmp_path_factory.mktemp("packs-worker")))


@pytest.fixture
def packs_farm(tmp_path: Path) -> Iterator[Farm]:
    """The farm fixture's emulated farm, with a stall timeout for a Worker busy on every core."""
    farm = start_farm(tmp_path, stall_timeout_s=STALL_TIMEOUT_SECONDS)
    try:
        yield farm
    finally:
        farm.close()
        leftovers = farm.leftover_processes()
        assert not leftovers, f"the farm left processes behind: {leftovers}"


def packs_studio(farm: Farm, tmp_path: Path, worker: PacksWorker, package: str) -> Studio:
    """A studio whose Workers start the packs' ComfyUI, with the tier's plate (96x63, FRAMES) to submit."""
    packs = load_package(REPO / "workflows" / package).requirements.packs
    missing = worker.setup.missing_packs(packs)
    if missing:
        pytest.skip(f"{package}: pack(s) not in {worker.setup.comfyui_dir / 'custom_nodes'}: {', '.join(missing)} "
                    "(docs/real_packs.md)")
    for name in MODELS[package]:
        worker.setup.weights(name)
    studio = make_studio(farm, tmp_path, frame_count=1)
    plate = subject_plate(studio.root / "sh010" / "packs_plate", frames=len(FRAMES))
    studio = dataclasses.replace(studio, comfyui_dir=worker.setup.comfyui_dir, plate=plate)
    studio.configure(
        ComfyUIDirectory=str(worker.setup.comfyui_dir), PythonExecutable=str(worker.python),
        ExtraArguments=shlex.join(worker.setup.args),
        ExtraEnvironment="\n".join(f"{key}={value}" for key, value in worker.setup.environment.items()),
        StartupTimeoutSeconds=STARTUP_TIMEOUT_SECONDS, IdleTimeoutSeconds=IDLE_TIMEOUT_SECONDS)
    return studio


def render(studio: Studio, worker: PacksWorker, package: str, *options: str) -> Tuple[str, Dict[str, Any]]:
    """Submit ``package`` on the plate, render it on one Worker and wait for its hand-back; returns the job id
    and its completion record. The Worker started the packs' ComfyUI with its arguments and comfyfarm's frame
    nodes, and the frames took the full-precision path."""
    inbox = studio.hand_back()
    job_id = studio.submit("--project", "show_2026", "--name", CLIP, *options, workflow=package,
                           frames=f"{FRAMES[0]}-{FRAMES[-1]}")
    (name,) = studio.farm.start_workers(1)
    status = studio.farm.wait_for_job(job_id, timeout_s=JOB_TIMEOUT_SECONDS)
    log = studio.farm.worker_log(name)
    assert status == "Completed", f"{status}\n{studio.farm.describe(job_id)}\n{log}"
    (arguments,) = [line for line in log.splitlines() if "Argument: main.py" in line]
    assert arguments.rstrip().endswith(shlex.join(worker.setup.args)), arguments  # ExtraArguments: --cpu
    assert "starting ComfyUI on GPU(s) [0] at http://127.0.0.1:" in log
    assert f"from {worker.setup.comfyui_dir}" in log
    assert "loads comfyfarm's frame nodes from" in log
    assert f"STATUS {FULL_PRECISION_STATUS}" in log
    return job_id, studio.record(inbox, job_id, timeout_s=120)


def relink(flame_session: Any, studio: Studio, package: str) -> List[Any]:
    """The relink watcher's import of the inbox into the Flame double: the clips of the workflow's folder."""
    RelinkWatcher(flame_session.flame, studio.root / "comfyfarm" / "inbox", user="ann").start()
    flame_session.pump_idle(seconds=1)
    library = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    title = load_package(REPO / "workflows" / package).title
    return next(f for f in library.folders if f.name.get_value() == title).clips


def assert_float_exr(path: Path, channels: Sequence[str]) -> None:
    """A float EXR at the plate's size with ``channels`` (in any order: OpenEXR stores layers sorted by name)."""
    info = probe(path)
    assert (info.format, info.width, info.height) == ("openexr", WIDTH, HEIGHT), path
    assert sorted(info.channel_names) == sorted(channels), info.channel_names
    assert info.pixel_type in ("half", "float"), info.pixel_type


def channels_of(path: Path, names: Sequence[str]) -> np.ndarray:
    """The pixels of the channels ``names`` of ``path``, in that order."""
    stored = probe(path).channel_names
    return read_pixels(path)[..., [stored.index(name) for name in names]]


def assert_clip(clip: Any, name: str) -> Tuple[str, ...]:
    """An imported clip named ``name`` with the source's frames, start frame, timecode and size; returns the
    channels of its media (the first frame's, as Flame read them)."""
    assert clip.name.get_value() == name
    assert clip.start_frame == FRAMES[0] and clip.duration.frame == len(FRAMES)
    assert str(clip.start_time) == "01:00:00+00"
    assert (clip.width, clip.height) == (WIDTH, HEIGHT)
    return probe(clip.versions[0].tracks[0].segments[0].file_path).channel_names


def plate_frame(studio: Studio, frame: int) -> np.ndarray:
    return read_pixels(studio.plate.replace("####", str(frame)))


def assert_passes(passes: Dict[str, np.ndarray], plate: np.ndarray) -> None:
    """depth_normal_ao_maps' passes of one frame (RGB or RGBA each): the plate's alpha carried where a pass
    has one, a depth that varies, normals of unit length, an AO in 0..1."""
    assert sorted(passes) == sorted(PASSES)
    for name, pixels in passes.items():
        assert pixels.shape[2] == 3 or np.array_equal(pixels[..., 3], plate[..., 3]), name
    assert_depth(passes["depth"][..., :3])
    assert_unit_normals(passes["normals"][..., :3])
    ao = passes["ao"][..., :3]
    assert ao.min() >= -1e-3 and ao.max() <= 1 + 4e-3


@pytest.mark.timeout(2400)
def test_depth_normal_ao_maps_on_the_farm_comes_back_into_flame_as_three_clips(
        packs_worker: PacksWorker, packs_farm: Farm, flame_session, tmp_path: Path) -> None:
    package = "depth_normal_ao_maps"
    studio = packs_studio(packs_farm, tmp_path, packs_worker, package)
    job_id, record = render(studio, packs_worker, package)
    outputs = studio.root / "sh010" / "comfy"
    assert studio.outputs() == sorted(f"{package}_{name}.{frame}.exr" for name in PASSES for frame in FRAMES)
    for frame in FRAMES:
        for name in PASSES:
            path = outputs / f"{package}_{name}.{frame}.exr"
            assert_float_exr(path, ("R", "G", "B", "A"))
            assert probe(path).metadata.get("oiio:ColorSpace") == "data", path  # written as the models gave it
        assert_passes({name: read_pixels(outputs / f"{package}_{name}.{frame}.exr") for name in PASSES},
                      plate_frame(studio, frame))

    assert (record["status"], record["missing_frames"], record["width"], record["height"]) == (
        "completed", [], WIDTH, HEIGHT)
    assert [(p["name"], p["output_pattern"], p["frames"], p["missing_frames"], p["channels"])
            for p in record["passes"]] == [
        (name, f"{outputs}/{package}_{name}.####.exr", list(FRAMES), [], 4) for name in PASSES]
    assert record["contact_sheet"] == f"{outputs}/{package}_contact.jpg" and Path(record["contact_sheet"]).is_file()

    clips = relink(flame_session, studio, package)
    assert len(clips) == len(PASSES)
    for clip, name in zip(clips, PASSES):
        assert assert_clip(clip, f"{CLIP}_{package}_{name}_v001") == ("R", "G", "B", "A")
    assert [i.path for i in flame_session.imports if i.error is None] == [
        f"{outputs}/{package}_{name}.[{FRAMES[0]}-{FRAMES[-1]}].exr" for name in PASSES]
    assert (studio.root / "comfyfarm" / "inbox" / "imported" / f"{job_id}.json").is_file()


@pytest.mark.timeout(2400)
def test_depth_normal_ao_maps_with_exr_layers_comes_back_as_one_multi_channel_clip(
        packs_worker: PacksWorker, packs_farm: Farm, flame_session, tmp_path: Path) -> None:
    package = "depth_normal_ao_maps"
    studio = packs_studio(packs_farm, tmp_path, packs_worker, package)
    _job_id, record = render(studio, packs_worker, package, "--exr-layers")
    outputs = studio.root / "sh010" / "comfy"
    assert studio.outputs() == [f"{package}.{frame}.exr" for frame in FRAMES]
    # docs/frames.md: the first pass in R, G, B with the plate's alpha in A, each other pass a layer of its RGB
    layers = {"depth": ("R", "G", "B", "A"), **{name: tuple(f"{name}.{c}" for c in "RGB") for name in PASSES[1:]}}
    for frame in FRAMES:
        path = outputs / f"{package}.{frame}.exr"
        assert_float_exr(path, [channel for names in layers.values() for channel in names])
        assert_passes({name: channels_of(path, names) for name, names in layers.items()}, plate_frame(studio, frame))
        assert probe(path).metadata.get("oiio:ColorSpace") == "data"  # its R, G, B are the depth pass: data
    assert [(p["name"], p["output_pattern"], p["frames"], p["channels"]) for p in record["passes"]] == [
        (name, f"{outputs}/{package}.####.exr", list(FRAMES), len(layers[name])) for name in PASSES]

    (clip,) = relink(flame_session, studio, package)
    channels = assert_clip(clip, f"{CLIP}_{package}_v001")
    assert sorted(channels) == sorted(channel for names in layers.values() for channel in names)  # every layer
    assert [i.path for i in flame_session.imports] == [f"{outputs}/{package}.[{FRAMES[0]}-{FRAMES[-1]}].exr"]


@pytest.mark.timeout(2400)
def test_rembg_matte_on_the_farm_comes_back_into_flame_with_its_matte_as_alpha(
        packs_worker: PacksWorker, packs_farm: Farm, flame_session, tmp_path: Path) -> None:
    package = "rembg_matte"
    studio = packs_studio(packs_farm, tmp_path, packs_worker, package)
    _job_id, record = render(studio, packs_worker, package)
    outputs = studio.root / "sh010" / "comfy"
    assert studio.outputs() == [f"{package}.{frame}.exr" for frame in FRAMES]
    for frame in FRAMES:
        path = outputs / f"{package}.{frame}.exr"
        assert_float_exr(path, ("R", "G", "B", "A"))
        assert_matte_pass(read_pixels(path), plate_frame(studio, frame))
    assert [(p["name"], p["output_pattern"], p["frames"], p["channels"]) for p in record["passes"]] == [
        ("result", f"{outputs}/{package}.####.exr", list(FRAMES), 4)]

    (clip,) = relink(flame_session, studio, package)
    assert assert_clip(clip, f"{CLIP}_{package}_v001") == ("R", "G", "B", "A")  # the matte in the clip's alpha
    assert [i.path for i in flame_session.imports] == [f"{outputs}/{package}.[{FRAMES[0]}-{FRAMES[-1]}].exr"]
