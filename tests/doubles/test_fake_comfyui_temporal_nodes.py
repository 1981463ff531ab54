"""Contract tests of the ComfyUI double's temporal nodes: ``RIFE VFI`` (the pack
Fannovel16/ComfyUI-Frame-Interpolation) and the test-only ``ComfyFarmTemporalMean``.

Every prompt runs through the double's subprocess the way comfyfarm runs a sequence window: the window's
frames are one multi-page 8-bit TIFF (farm_plugin/frames/staging.py ``stage_window``) that ``LoadImage``
reads as one IMAGE batch, and ``SaveImage`` writes one PNG per frame of the result.

Expected pixels follow SaveImage's conversion: ``uint8(clip(255 * x))``, truncated, on float32 values.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest
import requests

from tests.doubles.comfyui.harness import REPO_ROOT, FakeComfyUI, start_fake_comfyui
from tests.recorded import OBJECT_INFO

oiio = pytest.importorskip("OpenImageIO")

RECORDED_PACK = OBJECT_INFO / "ComfyUI-Frame-Interpolation.json"
DOUBLE_DEFINITIONS = REPO_ROOT / "tests" / "doubles" / "comfyui" / "object_info"
RIFE_PACKAGE = REPO_ROOT / "workflows" / "rife_frame_interpolation"

H, W = 6, 8


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> FakeComfyUI:
    server = start_fake_comfyui(tmp_path_factory.mktemp("comfyui"))
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------------------
# helpers


def write_window(path: Path, frames: List[np.ndarray]) -> str:
    """Write 8-bit RGB frames as one multi-page TIFF, one page per frame (as stage_window does)."""
    specs = []
    for _ in frames:
        spec = oiio.ImageSpec(W, H, 3, "uint8")
        spec.attribute("tiff:write_exif", 0)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), specs), oiio.geterror()
    for page, frame in enumerate(frames):
        if page:
            assert out.open(str(path), specs[page], "AppendSubimage"), out.geterror()
        assert out.write_image(np.ascontiguousarray(frame, dtype=np.uint8)), out.geterror()
    out.close()
    return path.name


def read_png(path: Path) -> np.ndarray:
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    pixels = np.asarray(inp.read_image("uint8"))
    inp.close()
    return pixels


def as_float(frames_u8: np.ndarray) -> np.ndarray:
    """LoadImage's conversion: float32 v / 255."""
    return frames_u8.astype(np.float32) / np.float32(255.0)


def save_image_u8(x: np.ndarray) -> np.ndarray:
    """SaveImage's conversion: 255 * x in float32, clipped, truncated."""
    return np.clip(np.float32(255.0) * np.asarray(x, dtype=np.float32), 0, 255).astype(np.uint8)


def run_prompt(fake: FakeComfyUI, prompt: dict, timeout: float = 30.0) -> dict:
    """POST the prompt, wait for its history entry; return it (status success asserted)."""
    r = requests.post(f"{fake.url}/prompt", json={"prompt": prompt, "client_id": "temporal-tests"}, timeout=10)
    assert r.status_code == 200, r.text
    prompt_id = r.json()["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = requests.get(f"{fake.url}/history/{prompt_id}", timeout=10).json().get(prompt_id)
        if entry and (entry["status"]["completed"] or entry["status"]["status_str"] == "error"):
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)
            return entry
        time.sleep(0.02)
    raise AssertionError(f"prompt {prompt_id} did not finish within {timeout} s")


def saved_frames(fake: FakeComfyUI, entry: dict, node: str, prefix: str) -> List[np.ndarray]:
    """The PNGs the SaveImage node wrote, in the order its history output lists them (checked to be the
    counter order prefix_00001_, prefix_00002_, ...)."""
    images = entry["outputs"][node]["images"]
    subfolder, name = prefix.rsplit("/", 1)
    assert [i["filename"] for i in images] == [f"{name}_{n:05}_.png" for n in range(1, len(images) + 1)]
    assert all(i["subfolder"] == subfolder and i["type"] == "output" for i in images)
    written = sorted(p.name for p in (fake.output_dir / subfolder).iterdir() if p.name.startswith(name + "_"))
    assert written == [i["filename"] for i in images]
    return [read_png(fake.output_dir / subfolder / i["filename"]) for i in images]


def rife_prompt(image: str, prefix: str, m: int, **overrides) -> dict:
    rife = {"frames": ["1", 0], "ckpt_name": "rife49.pth", "clear_cache_after_n_frames": 10,
            "multiplier": m, "fast_mode": True, "ensemble": True, "scale_factor": 1.0,
            "dtype": "float32", "torch_compile": False, "batch_size": 1}
    rife.update(overrides)
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "RIFE VFI", "inputs": rife},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def mean_prompt(image: str, prefix: str, radius: int) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "ComfyFarmTemporalMean", "inputs": {"image": ["1", 0], "radius": radius}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def odd_step_frames(n: int, seed: int) -> np.ndarray:
    """n 8-bit frames where each pixel changes by an odd amount from one frame to the next: then every
    in-between a + (b - a) * k / m (m = 2 or 4, 0 < k < m) lies 0.25 level or more from an integer, so the
    truncated 8-bit value is the same for any float error far below a level."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(100, 156, size=(H, W, 3))]
    for _ in range(n - 1):
        step = 2 * rng.integers(-12, 13, size=(H, W, 3)) + 1  # odd, -23 .. 25
        frames.append(frames[-1] + step)
    out = np.stack(frames)
    assert out.min() >= 0 and out.max() <= 255
    return out.astype(np.uint8)


def expected_rife(frames: np.ndarray, m: int) -> List[np.ndarray]:
    """The pack's order: frame i, its m - 1 in-betweens, ..., the last frame once. In-between k of the
    double is (1 - k/m) * a + (k/m) * b; on odd steps its truncation is floor of the exact value."""
    out: List[np.ndarray] = []
    src = frames.astype(np.int64)
    for i in range(len(frames) - 1):
        out.append(frames[i])
        for k in range(1, m):
            exact_times_m = src[i] * (m - k) + src[i + 1] * k  # m * (the exact 8-bit in-between)
            out.append((exact_times_m // m).astype(np.uint8))
    out.append(frames[-1])
    return out


# ---------------------------------------------------------------------------------------------------------
# definitions


def test_definitions_are_served(fake):
    everything = requests.get(f"{fake.url}/object_info", timeout=10).json()
    rife = requests.get(f"{fake.url}/object_info/RIFE VFI", timeout=10).json()
    assert list(rife) == ["RIFE VFI"] and everything["RIFE VFI"] == rife["RIFE VFI"]
    assert rife["RIFE VFI"] == json.loads((DOUBLE_DEFINITIONS / "RIFE VFI.json").read_text(encoding="utf-8"))
    # copied unchanged from the recorded pack
    assert rife["RIFE VFI"] == json.loads(RECORDED_PACK.read_text(encoding="utf-8"))["RIFE VFI"]
    assert "rife49.pth" in rife["RIFE VFI"]["input"]["required"]["ckpt_name"][0]

    mean = requests.get(f"{fake.url}/object_info/ComfyFarmTemporalMean", timeout=10).json()
    assert list(mean) == ["ComfyFarmTemporalMean"]
    info = mean["ComfyFarmTemporalMean"]
    assert everything["ComfyFarmTemporalMean"] == info
    assert set(info) == set(rife["RIFE VFI"])  # the shape ComfyUI gives a classic custom node
    assert info["category"] == "comfyfarm/testing"
    assert info["description"].startswith("Not a real ComfyUI node")
    assert info["input"]["required"]["image"][0] == "IMAGE"
    assert info["input"]["required"]["radius"] == [
        "INT", {"default": 2, "min": 0, "max": 64, "step": 1,
                "tooltip": "Frames on each side averaged into each output frame."}]
    assert info["input_order"] == {"required": ["image", "radius"]}
    assert (info["output"], info["output_is_list"], info["output_node"]) == (["IMAGE"], [False], False)


# ---------------------------------------------------------------------------------------------------------
# RIFE VFI


@pytest.mark.parametrize("m", [2, 4])
def test_rife_vfi_returns_n_minus_1_times_m_plus_1_frames_in_order(fake, m):
    frames = odd_step_frames(5, seed=m)
    image = write_window(fake.input_dir / f"rife_window_{m}.tif", list(frames))
    prefix = f"rife{m}/frame"
    entry = run_prompt(fake, rife_prompt(image, prefix, m))
    got = saved_frames(fake, entry, "3", prefix)
    assert len(got) == (len(frames) - 1) * m + 1
    want = expected_rife(frames, m)
    for j, (g, w) in enumerate(zip(got, want)):
        assert g.shape == (H, W, 3)
        assert np.array_equal(g, w), f"output frame {j} (pair {j // m}, in-between {j % m})"
    # the source frames pass through unchanged, at 0, m, 2m, ...
    for i in range(len(frames)):
        assert np.array_equal(got[i * m], frames[i])


@pytest.mark.parametrize("n, m, count", [(1, 2, 1), (1, 4, 1), (3, 1, 3), (2, 3, 4)])
def test_rife_vfi_edge_counts(fake, n, m, count):
    """N = 1 gives its one frame back (the pack's RIFE loop has no minimum); multiplier 1 gives the
    frames back; N = 2, m = 3: a, 2/3 a + 1/3 b, 1/3 a + 2/3 b, b."""
    frames = odd_step_frames(n, seed=10 + n)
    image = write_window(fake.input_dir / f"rife_edge_{n}_{m}.tif", list(frames))
    prefix = f"rife_edge_{n}_{m}/frame"
    got = saved_frames(fake, run_prompt(fake, rife_prompt(image, prefix, m)), "3", prefix)
    assert len(got) == count
    assert np.array_equal(got[0], frames[0]) and np.array_equal(got[-1], frames[-1])
    if (n, m) == (2, 3):
        a, b = frames.astype(np.float32) / np.float32(255.0)
        for k in (1, 2):
            mix = np.float32(1 - k / 3) * a + np.float32(k / 3) * b
            assert np.array_equal(got[k], save_image_u8(mix))


def test_rife_vfi_float16_rounds_the_source_frames_too(fake):
    """The pack casts every output frame, source frames included, to ``dtype`` before returning float32."""
    levels = np.arange(6 * 8 * 3 * 2, dtype=np.int64).reshape(2, H, W, 3) % 256
    frames = levels.astype(np.uint8)
    image = write_window(fake.input_dir / "rife_f16.tif", list(frames))
    prefix = "rife_f16/frame"
    got = saved_frames(fake, run_prompt(fake, rife_prompt(image, prefix, 2, dtype="float16")), "3", prefix)
    assert len(got) == 3
    for i, j in ((0, 0), (1, 2)):
        want = save_image_u8(as_float(frames[i]).astype(np.float16).astype(np.float32))
        assert np.array_equal(got[j], want)
        assert not np.array_equal(got[j], frames[i])  # some levels come out one lower
        assert (frames[i].astype(int) - got[j].astype(int)).max() == 1


def test_rife_vfi_validates_its_inputs(fake):
    frames = odd_step_frames(2, seed=3)
    image = write_window(fake.input_dir / "rife_invalid.tif", list(frames))
    for overrides, error_type in (({"ckpt_name": "rife99.pth"}, "value_not_in_list"),
                                  ({"multiplier": 0}, "value_smaller_than_min"),
                                  ({"scale_factor": 3.0}, "value_not_in_list"),
                                  ({"dtype": "float64"}, "value_not_in_list")):
        prompt = rife_prompt(image, "rife_invalid/frame", 2, **overrides)
        r = requests.post(f"{fake.url}/prompt", json={"prompt": prompt}, timeout=10)
        assert r.status_code == 400, overrides
        errors = r.json()["node_errors"]["2"]["errors"]
        assert [e["type"] for e in errors] == [error_type], errors
    for ckpt in json.loads((DOUBLE_DEFINITIONS / "RIFE VFI.json").read_text())["input"]["required"]["ckpt_name"][0]:
        prompt = rife_prompt(image, f"rife_ckpt/{ckpt}", 2, ckpt_name=ckpt)
        run_prompt(fake, prompt)


# ---------------------------------------------------------------------------------------------------------
# ComfyFarmTemporalMean


def expected_mean(frames: np.ndarray, radius: int) -> List[np.ndarray]:
    """out[i] = mean(in[max(0, i - r) .. min(N - 1, i + r)]) of LoadImage's float32 frames, taken in
    float64, stored as float32, then SaveImage's truncation."""
    x = as_float(frames).astype(np.float64)
    n = len(frames)
    return [save_image_u8(x[max(0, i - radius):min(n - 1, i + radius) + 1].mean(axis=0).astype(np.float32))
            for i in range(n)]


@pytest.mark.parametrize("radius", [0, 1, 2, 64])
def test_temporal_mean_is_the_running_mean_clipped_to_the_batch(fake, radius):
    rng = np.random.default_rng(100 + radius)
    frames = rng.integers(0, 256, size=(7, H, W, 3)).astype(np.uint8)
    image = write_window(fake.input_dir / f"mean_{radius}.tif", list(frames))
    prefix = f"mean{radius}/frame"
    got = saved_frames(fake, run_prompt(fake, mean_prompt(image, prefix, radius)), "3", prefix)
    assert len(got) == len(frames)
    want = expected_mean(frames, radius)
    for i, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, w), f"frame {i}"
        # and within the truncation of the exact rational mean
        lo, hi = max(0, i - radius), min(len(frames) - 1, i + radius)
        exact = frames[lo:hi + 1].astype(np.float64).mean(axis=0)
        assert np.abs(g.astype(np.float64) - np.floor(exact)).max() <= 1
    if radius == 0:
        assert all(np.array_equal(g, f) for g, f in zip(got, frames))
    if radius == 64:
        assert all(np.array_equal(g, got[0]) for g in got)


def test_temporal_mean_edges_see_fewer_neighbours(fake):
    """Frames whose value is their index times 30: with radius 2, frame 0 averages frames 0..2 (30), frame 3
    frames 1..5 (90), frame 6 frames 4..6 (150). Cutting the batch in two changes the frames at the cut:
    the seam that naive chunking shows."""
    frames = np.stack([np.full((H, W, 3), 30 * i, np.uint8) for i in range(7)])
    whole = write_window(fake.input_dir / "ramp.tif", list(frames))
    first = write_window(fake.input_dir / "ramp_first.tif", list(frames[:4]))
    got = saved_frames(fake, run_prompt(fake, mean_prompt(whole, "ramp/frame", 2)), "3", "ramp/frame")
    exact = [np.mean(np.arange(max(0, i - 2), min(6, i + 2) + 1) * 30) for i in range(7)]
    assert exact == [30, 45, 60, 90, 120, 135, 150]
    for g, e in zip(got, exact):
        # an integral 8-bit mean may truncate one level lower, as SaveImage does on real ComfyUI
        assert set(np.unique(g).tolist()) <= {int(e), int(e) - 1}
    chunk = saved_frames(fake, run_prompt(fake, mean_prompt(first, "ramp_first/frame", 2)), "3", "ramp_first/frame")
    assert all(np.array_equal(chunk[i], got[i]) for i in (0, 1))
    assert int(chunk[3][0, 0, 0]) in (59, 60) and int(got[3][0, 0, 0]) in (89, 90)  # 1..3 vs 1..5
    r = requests.post(f"{fake.url}/prompt", json={"prompt": mean_prompt(whole, "ramp/bad", 65)}, timeout=10)
    assert r.status_code == 400
    assert r.json()["node_errors"]["2"]["errors"][0]["type"] == "value_bigger_than_max"


def test_rife_then_temporal_mean_in_one_prompt(fake):
    frames = odd_step_frames(3, seed=21)
    image = write_window(fake.input_dir / "chain.tif", list(frames))
    prompt = rife_prompt(image, "chain/rife", 2)
    prompt["4"] = {"class_type": "ComfyFarmTemporalMean", "inputs": {"image": ["2", 0], "radius": 1}}
    prompt["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "chain/mean"}}
    entry = run_prompt(fake, prompt)
    assert len(saved_frames(fake, entry, "3", "chain/rife")) == 5
    mean = saved_frames(fake, entry, "5", "chain/mean")
    assert len(mean) == 5


# ---------------------------------------------------------------------------------------------------------
# the shipped package against the double


def comfyfarm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flame_submitter.cli", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_rife_package_validates_against_the_double(fake, tmp_path):
    live = comfyfarm("validate", str(RIFE_PACKAGE), "--comfyui-url", fake.url)
    assert live.returncode == 0, live.stdout + live.stderr
    assert live.stdout == ""
    assert f"1 package(s) checked against {fake.url}: 0 problem(s)" in live.stderr

    saved = tmp_path / "object_info.json"
    saved.write_text(requests.get(f"{fake.url}/object_info", timeout=10).text, encoding="utf-8")
    offline = comfyfarm("validate", str(RIFE_PACKAGE), "--object-info", str(saved), "--check-models")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout == ""


def test_rife_package_graph_runs_on_the_double(fake):
    """The package's own workflow.json, with its input set to a staged window, gives 2N - 1 frames."""
    graph = json.loads((RIFE_PACKAGE / "workflow.json").read_text(encoding="utf-8"))
    frames = odd_step_frames(4, seed=42)
    graph["1"]["inputs"]["image"] = write_window(fake.input_dir / "package_window.tif", list(frames))
    graph["3"]["inputs"]["filename_prefix"] = "package/frame"
    got = saved_frames(fake, run_prompt(fake, graph), "3", "package/frame")
    multiplier = graph["2"]["inputs"]["multiplier"]
    assert len(got) == (len(frames) - 1) * multiplier + 1
    assert all(np.array_equal(g, w) for g, w in zip(got, expected_rife(frames, multiplier)))


# ---------------------------------------------------------------------------------------------------------
# a core-only double


def test_disable_all_custom_nodes_gives_a_core_only_double(fake_comfyui_factory):
    core = fake_comfyui_factory(extra_args=["--disable-all-custom-nodes"])
    names = set(requests.get(f"{core.url}/object_info", timeout=10).json())
    assert "RIFE VFI" not in names and "ComfyFarmTemporalMean" not in names and "LoadImage" in names
    assert requests.get(f"{core.url}/object_info/RIFE VFI", timeout=10).json() == {}
    r = requests.post(f"{core.url}/prompt", json={"prompt": rife_prompt("x.tif", "x/frame", 2)}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_prompt"
    # nodes.py init_extra_nodes: with no whitelist no custom_nodes folder is even listed
    assert "Skipping loading of custom nodes" in core.log_text()
    assert "Skipping ComfyUI-Frame-Interpolation" not in core.log_text()

    kept = fake_comfyui_factory(extra_args=["--disable-all-custom-nodes",
                                            "--whitelist-custom-nodes", "ComfyUI-Frame-Interpolation"])
    names = set(requests.get(f"{kept.url}/object_info", timeout=10).json())
    assert "RIFE VFI" in names and "ComfyFarmTemporalMean" not in names
    skipped = "Skipping comfyfarm_test_double due to disable_all_custom_nodes and whitelist_custom_nodes"
    assert skipped in kept.log_text()
