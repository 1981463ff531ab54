"""Contract tests of comfyfarm's frame nodes, ``ComfyFarmLoadFrames`` and ``ComfyFarmSaveFrames`` (the pack
farm_plugin/ComfyUINodes/comfyfarm_frames; its ``__init__.py`` docstring is the contract), and of core
``InvertMask``, in the ComfyUI double.

The tests that run prompts run against the double and, in the real tier (``COMFYUI_DIR``, or ``COMFYUI_URL``
of a ComfyUI that already has the pack), against a real ComfyUI started with the pack as comfyfarm gives it:
an ``--extra-model-paths-config`` file whose ``custom_nodes:`` entry names farm_plugin/ComfyUINodes. Where
the two must differ (tracebacks, ``current_inputs``) nothing is asserted.

Evidence in real ComfyUI 0.3.64 (commit a125cd84):

* execution.py ``validate_inputs`` (lines 740-750, 923-946): a ``VALIDATE_INPUTS`` that returns a string
  gives ``custom_validation_failed`` "Custom validation failed for node", details ``"<input> - <text>"``,
  ``extra_info {input_name}``; a linked input reaches it as no value (``get_input_data``, lines 153-158);
* execution.py ``IsChangedCache.get`` (lines 54-86) and comfy_execution/caching.py
  ``get_immediate_node_signature`` (lines 101-117): ``IS_CHANGED``'s answer is part of the cache key, so an
  unchanged answer serves the cached output and a NaN (never equal to itself) runs the node every time;
* server.py ``node_info`` (lines 592-625): the /object_info entry of a classic custom node;
* comfy_extras/nodes_mask.py ``InvertMask.invert`` (lines 197-199): ``1.0 - mask``, in float32;
* nodes.py ``LoadImage.load_image``: ``mask = 1. - torch.from_numpy(alpha)``, and a 64x64 zero mask without
  alpha; the pack's loader gives 0 of the frames' size instead (its docstring says so).

``1 - (1 - a)`` in float32 is ``a`` exactly when ``1 - a`` is exact: for every half-float alpha in 0..4 and
every negative one from -2^-13 down; a negative half-float alpha closer to 0 than 2^-13 or a float32 alpha
below 0.5 with bits finer than 2^-24 comes back as ``fl32(1 - fl32(1 - a))``, in torch as in numpy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import OpenImageIO as oiio
import pytest
import requests
import websocket

from tests.doubles.comfyui.harness import COMFYFARM_NODES_DIR as PACK_FOLDER
from tests.doubles.comfyui.harness import REPO_ROOT, comfyfarm_nodes_args, start_fake_comfyui
from tests.real_comfyui import REAL_SKIP_REASON, real_comfyui_config
from tests.recorded import OBJECT_INFO

DOUBLE_DEFINITIONS = REPO_ROOT / "tests" / "doubles" / "comfyui" / "object_info"
RECORDED_PACK = OBJECT_INFO / "comfyfarm_frames.json"
FRAME_CLASSES = ("ComfyFarmLoadFrames", "ComfyFarmSaveFrames")
H, W = 4, 6


# ---------------------------------------------------------------------------------------------------------
# a ComfyUI with the pack: the double, and in the real tier a real one


@dataclasses.dataclass
class Comfy:
    kind: str  # "double" or "real"
    url: str


def _real_comfyui(scratch: Path, with_pack: List[str]) -> Iterator[Comfy]:
    from farm_plugin.comfyui.server import ComfyUIServer

    config = real_comfyui_config(scratch, port=18288)
    if config is None:
        url = os.environ.get("COMFYUI_URL", "").rstrip("/")
        if not url:
            pytest.skip(REAL_SKIP_REASON)
        if not requests.get(f"{url}/object_info/ComfyFarmLoadFrames", timeout=30).json():
            pytest.skip(f"the ComfyUI at {url} has no comfyfarm_frames pack: set COMFYUI_DIR to start one with it")
        yield Comfy("real", url)
        return
    config = dataclasses.replace(config, extra_args=config.extra_args + tuple(with_pack),
                                 extra_env={**config.extra_env, "PYTHONDONTWRITEBYTECODE": "1"})
    server = ComfyUIServer(config)
    server.start()
    try:
        yield Comfy("real", server.url)
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["double", pytest.param("real", marks=pytest.mark.real_comfyui)])
def comfy(request, tmp_path_factory) -> Iterator[Comfy]:
    scratch = tmp_path_factory.mktemp(f"frames-{request.param}")
    with_pack = comfyfarm_nodes_args(scratch / "extra_model_paths.yaml")
    if request.param == "real":
        yield from _real_comfyui(scratch, with_pack)
        return
    fake = start_fake_comfyui(scratch / "comfyui", extra_args=with_pack)
    try:
        yield Comfy("double", fake.url)
    finally:
        fake.stop()


class Session:
    """One WebSocket client: queue prompts, collect their messages until ``executing`` with no node."""

    def __init__(self, comfy: Comfy):
        self.url = comfy.url
        self.client_id = f"frames-{uuid.uuid4().hex[:8]}"
        host = comfy.url.split("://", 1)[1]
        self.ws = websocket.create_connection(f"ws://{host}/ws?clientId={self.client_id}", timeout=30)
        self.ws.recv()  # the first status

    def post(self, prompt: dict) -> requests.Response:
        return requests.post(f"{self.url}/prompt", json={"prompt": prompt, "client_id": self.client_id}, timeout=30)

    def run(self, prompt: dict, timeout_s: float = 60.0) -> List[dict]:
        r = self.post(prompt)
        assert r.status_code == 200, r.text
        prompt_id = r.json()["prompt_id"]
        messages: List[dict] = []
        deadline = time.monotonic() + timeout_s
        while True:
            self.ws.settimeout(max(0.01, deadline - time.monotonic()))
            raw = self.ws.recv()
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            if message["data"].get("prompt_id") not in (None, prompt_id):
                continue
            messages.append(message)
            if message["type"] == "executing" and message["data"]["node"] is None:
                return messages

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def session(comfy: Comfy) -> Iterator[Session]:
    s = Session(comfy)
    try:
        yield s
    finally:
        s.close()


def of_type(messages: List[dict], kind: str) -> List[dict]:
    return [m["data"] for m in messages if m["type"] == kind]


def saved(messages: List[dict], node: str = "3") -> List[dict]:
    """The ``comfyfarm_frames`` UI output of the saver's ``executed`` message (asserted to be its only key)."""
    outputs = [m["output"] for m in of_type(messages, "executed") if m["node"] == node]
    assert len(outputs) == 1, messages
    assert list(outputs[0]) == ["comfyfarm_frames"]
    return outputs[0]["comfyfarm_frames"]


# ---------------------------------------------------------------------------------------------------------
# frames and graphs


def write_frame(path: Path, pixels: np.ndarray) -> Path:
    """A frame file as the runner writes it: numpy.save of little-endian float32 (format 1.0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(pixels, dtype="<f4"))
    return path


def rewrite_frame(path: Path, pixels: np.ndarray) -> None:
    """Replace a frame atomically (a new file renamed over the old one, so a new inode)."""
    temporary = path.with_name(f".{path.name}.new.npy")
    write_frame(temporary, pixels)
    os.replace(temporary, path)


def lines(paths: List[Path]) -> str:
    return "\n".join(str(p) for p in paths)


def load(frames: str) -> dict:
    return {"class_type": "ComfyFarmLoadFrames", "inputs": {"frames": frames}}


def save(images: list, directory: Path, prefix: str = "frame", pass_name: str = "rgba",
         mask: Optional[list] = None) -> dict:
    inputs: Dict[str, Any] = {"images": images, "directory": str(directory), "prefix": prefix, "pass_name": pass_name}
    if mask is not None:
        inputs["mask"] = mask
    return {"class_type": "ComfyFarmSaveFrames", "inputs": inputs}


def round_trip(frames: str, directory: Path, **save_inputs: Any) -> dict:
    """Load → InvertMask (MASK = 1 - alpha back to alpha) → Save(images, mask)."""
    return {"1": load(frames), "2": {"class_type": "InvertMask", "inputs": {"mask": ["1", 1]}},
            "3": save(["1", 0], directory, mask=["2", 0], **save_inputs)}


def plain(frames: str, directory: Path, **save_inputs: Any) -> dict:
    """Load → Save(images) with no mask."""
    return {"1": load(frames), "3": save(["1", 0], directory, **save_inputs)}


def half_alpha(rng: np.random.Generator, shape: Tuple[int, ...]) -> np.ndarray:
    """Half-float alphas from -0.5 to 4.0, without the negative ones closer to 0 than 2^-13 (whose
    ``1 - a`` is not exact in float32: see the module docstring)."""
    a = rng.uniform(-0.5, 4.0, size=shape).astype(np.float16).astype(np.float32)
    a[(a < 0) & (a > -(2.0 ** -13))] = 0.0
    a.flat[:6] = [0.0, 1.0, -0.5, 4.0, 2.0 ** -24, 0.5]  # the ends, the smallest half, one half
    return a


def rgba_frames(n: int, seed: int) -> List[np.ndarray]:
    """n RGBA frames: float32 colour from -0.5 to 4.0 (any bits: colour is only copied), half-float alpha."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        rgb = rng.uniform(-0.5, 4.0, size=(H, W, 3)).astype(np.float32)
        rgb.flat[:3] = [-0.5, 4.0, np.float32(1e-30)]
        frames.append(np.concatenate([rgb, half_alpha(rng, (H, W, 1))], axis=2))
    return frames


def expected_ui(directory: Path, count: int, channels: int, prefix: str = "frame", pass_name: str = "rgba",
                height: int = H, width: int = W) -> List[dict]:
    return [{"path": str(directory / f"{prefix}.{pass_name}.{i:05d}.npy"), "pass": pass_name, "index": i,
             "width": width, "height": height, "channels": channels} for i in range(count)]


# ---------------------------------------------------------------------------------------------------------
# definitions


def test_definitions_are_served(comfy):
    """The double's definitions are what this real ComfyUI serves for the pack (server.py node_info), and
    the recorded file's once it exists; InvertMask is core's entry (tests/data/comfyui/object_info/core.json)."""
    everything = requests.get(f"{comfy.url}/object_info", timeout=30).json()
    recorded = json.loads(RECORDED_PACK.read_text(encoding="utf-8")) if RECORDED_PACK.exists() else None
    for cls in FRAME_CLASSES:
        served = requests.get(f"{comfy.url}/object_info/{cls}", timeout=30).json()
        assert list(served) == [cls]
        assert everything[cls] == served[cls]
        assert served[cls] == json.loads((DOUBLE_DEFINITIONS / f"{cls}.json").read_text(encoding="utf-8")), cls
        if recorded is not None:
            assert served[cls] == recorded[cls], cls
        assert served[cls]["python_module"] == "custom_nodes.comfyfarm_frames"
    load_info, save_info = everything["ComfyFarmLoadFrames"], everything["ComfyFarmSaveFrames"]
    assert (load_info["output"], load_info["output_node"]) == (["IMAGE", "MASK"], False)
    assert load_info["input"]["required"]["frames"][1]["multiline"] is True
    assert (save_info["output"], save_info["output_node"]) == ([], True)
    assert save_info["input_order"] == {"required": ["images", "directory", "prefix", "pass_name"],
                                        "optional": ["mask"]}
    core = json.loads((OBJECT_INFO / "core.json").read_text(encoding="utf-8"))
    assert everything["InvertMask"] == core["InvertMask"]


@pytest.mark.skipif(not RECORDED_PACK.exists(), reason=f"{RECORDED_PACK.name} is not recorded yet")
def test_the_double_holds_the_recorded_definitions():
    recorded = json.loads(RECORDED_PACK.read_text(encoding="utf-8"))
    assert sorted(recorded) == sorted(FRAME_CLASSES)
    for cls in FRAME_CLASSES:
        assert json.loads((DOUBLE_DEFINITIONS / f"{cls}.json").read_text(encoding="utf-8")) == recorded[cls], cls


# ---------------------------------------------------------------------------------------------------------
# pixels


def test_float_rgba_round_trips_bit_for_bit(comfy, session, tmp_path):
    """Colour and alpha from -0.5 to 4.0 through Load → InvertMask → Save(mask): each written file is the
    input file, byte for byte; the saver creates its folder and reports every file it wrote."""
    inputs = [write_frame(tmp_path / "in" / f"plate.{i:04d}.npy", f) for i, f in enumerate(rgba_frames(3, seed=1))]
    out = tmp_path / "out" / "nested"
    messages = session.run(round_trip(lines(inputs), out, prefix="plate", pass_name="beauty"))
    assert saved(messages) == expected_ui(out, 3, 4, prefix="plate", pass_name="beauty")
    for i, source in enumerate(inputs):
        assert (out / f"plate.beauty.{i:05d}.npy").read_bytes() == source.read_bytes(), f"frame {i}"
    assert sorted(p.name for p in out.iterdir()) == [f"plate.beauty.{i:05d}.npy" for i in range(3)]  # no .tmp
    history = requests.get(f"{comfy.url}/history/{of_type(messages, 'execution_start')[0]['prompt_id']}",
                           timeout=30).json()
    (entry,) = history.values()
    assert entry["outputs"]["3"] == {"comfyfarm_frames": saved(messages)}
    assert entry["status"]["status_str"] == "success"


def test_a_float32_alpha_comes_back_as_float32_arithmetic_gives_it(session, tmp_path):
    """Alpha with bits finer than 2^-24 below 0.5: ``1 - a`` rounds, so the round trip gives
    ``fl32(1 - fl32(1 - a))``, within 3e-8 of ``a`` (torch and numpy do the same float32 subtraction)."""
    rng = np.random.default_rng(2)
    pixels = rng.uniform(0.0, 1.0, size=(H, W, 4)).astype(np.float32)
    source = write_frame(tmp_path / "fine.npy", pixels)
    saved(session.run(round_trip(str(source), tmp_path / "out")))
    alpha = np.load(tmp_path / "out" / "frame.rgba.00000.npy")[..., 3]
    one = np.float32(1.0)
    assert np.array_equal(alpha, one - (one - pixels[..., 3]))
    assert np.abs(alpha - pixels[..., 3]).max() <= 3e-8
    assert not np.array_equal(alpha, pixels[..., 3])  # some do round


def test_rgb_frames_without_a_mask(session, tmp_path):
    """RGB in, no mask: RGB files equal to the inputs. The loader's MASK of RGB frames is 0 of the frames'
    size (LoadImage would give 64x64): inverted it is an opaque alpha that fits the images."""
    rng = np.random.default_rng(3)
    inputs = [write_frame(tmp_path / f"rgb.{i}.npy", rng.uniform(-0.5, 4.0, size=(H, W, 3))) for i in range(2)]
    messages = session.run(plain(lines(inputs), tmp_path / "rgb"))
    assert saved(messages) == expected_ui(tmp_path / "rgb", 2, 3)
    for i, source in enumerate(inputs):
        assert (tmp_path / "rgb" / f"frame.rgba.{i:05d}.npy").read_bytes() == source.read_bytes()

    saved(session.run(round_trip(lines(inputs), tmp_path / "opaque")))
    for i, source in enumerate(inputs):
        written = np.load(tmp_path / "opaque" / f"frame.rgba.{i:05d}.npy")
        assert written.shape == (H, W, 4) and written.dtype == np.dtype("<f4")
        assert np.array_equal(written[..., :3], np.load(source)) and np.all(written[..., 3] == 1.0)


def test_batches_keep_their_order(session, tmp_path):
    """Frame i of the batch is line i of ``frames`` (blank lines ignored), RGB and RGBA mixed; one mask of
    one frame is the alpha of every image."""
    frames = rgba_frames(5, seed=4)
    frames[2] = frames[2][..., :3]  # an RGB frame among RGBA ones: its alpha comes back as 1
    inputs = [write_frame(tmp_path / f"f{i}.npy", f) for i, f in enumerate(frames)]
    order = [3, 0, 4, 2, 1]
    text = "\n\n".join(str(inputs[i]) for i in order) + "\n  \n"
    saved(session.run(round_trip(text, tmp_path / "batch")))
    for index, source in enumerate(order):
        written = np.load(tmp_path / "batch" / f"frame.rgba.{index:05d}.npy")
        assert np.array_equal(written[..., :3], frames[source][..., :3]), index
        alpha = frames[source][..., 3] if frames[source].shape[2] == 4 else np.ones((H, W), np.float32)
        assert np.array_equal(written[..., 3], alpha), index

    one_mask = {"1": load(lines(inputs[:3])), "4": load(str(inputs[4])),
                "2": {"class_type": "InvertMask", "inputs": {"mask": ["4", 1]}},
                "3": save(["1", 0], tmp_path / "shared", mask=["2", 0])}
    assert saved(session.run(one_mask)) == expected_ui(tmp_path / "shared", 3, 4)
    for index in range(3):
        written = np.load(tmp_path / "shared" / f"frame.rgba.{index:05d}.npy")
        assert np.array_equal(written[..., 3], frames[4][..., 3])


# ---------------------------------------------------------------------------------------------------------
# caching: IS_CHANGED


def test_a_rewritten_frame_runs_again_and_the_saver_runs_every_time(session, tmp_path):
    """The loader's IS_CHANGED (path, size, mtime, inode of each file) serves it from the cache while its
    files stay as they are; the saver's IS_CHANGED is NaN, so it writes its files for every prompt."""
    frames = rgba_frames(2, seed=5)
    inputs = [write_frame(tmp_path / f"c{i}.npy", f) for i, f in enumerate(frames)]
    out = tmp_path / "cached"
    prompt = round_trip(lines(inputs), out)

    first = session.run(prompt)
    assert of_type(first, "execution_cached")[0]["nodes"] == []
    for path in out.iterdir():
        path.unlink()

    again = session.run(prompt)
    assert sorted(of_type(again, "execution_cached")[0]["nodes"]) == ["1", "2"]
    assert [m["node"] for m in of_type(again, "executing")] == ["3", None]
    assert saved(again) == saved(first)
    assert (out / "frame.rgba.00001.npy").read_bytes() == inputs[1].read_bytes()  # written again

    changed = frames[1].copy()
    changed[..., 0] += 1.0
    rewrite_frame(inputs[1], changed)
    third = session.run(prompt)
    assert of_type(third, "execution_cached")[0]["nodes"] == []
    assert (out / "frame.rgba.00001.npy").read_bytes() == inputs[1].read_bytes()
    assert np.array_equal(np.load(out / "frame.rgba.00001.npy"), changed)


# ---------------------------------------------------------------------------------------------------------
# validation errors (HTTP 400, the shape of tests/data/comfyui/captures/e_invalid_prompts.json)


def invalid_frames(text: str) -> dict:
    """The 400 body of a prompt whose loader (node 1) refuses ``frames`` with ``text``."""
    return {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                  "details": "", "extra_info": {}},
        "node_errors": {"1": {"errors": [{"type": "custom_validation_failed",
                                          "message": "Custom validation failed for node",
                                          "details": f"frames - {text}", "extra_info": {"input_name": "frames"}}],
                              "dependent_outputs": ["3"], "class_type": "ComfyFarmLoadFrames"}},
    }


def numpy_refusal(path: Path) -> str:
    """What NumPy's .npy reader says of a file that is not one."""
    with open(path, "rb") as stream, pytest.raises(ValueError) as refused:
        np.lib.format.read_magic(stream)
    return str(refused.value)


def test_validation_refuses_bad_frames(session, tmp_path):
    good = write_frame(tmp_path / "good.npy", np.zeros((H, W, 4)))
    missing = tmp_path / "missing.npy"
    doubles = tmp_path / "float64.npy"
    np.save(doubles, np.zeros((H, W, 3), np.float64))
    two_channels = write_frame(tmp_path / "two.npy", np.zeros((H, W, 2)))
    flat = write_frame(tmp_path / "flat.npy", np.zeros((H, W)))
    bigger = write_frame(tmp_path / "bigger.npy", np.zeros((H + 1, W + 2, 3)))
    text = tmp_path / "text.npy"
    text.write_text("not a frame file, just text\n")
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:200])
    header = len(good.read_bytes()) - H * W * 4 * 4
    cases = [
        (str(missing), f"frame file {missing} does not exist: write every frame before queueing the prompt, on the "
                       "machine that runs this ComfyUI"),
        (str(doubles), f"frame file {doubles} holds <f8 pixels, not little-endian float32 ('<f4'): save "
                       "pixels.astype('<f4')"),
        (str(two_channels), f"frame file {two_channels} has the shape ({H}, {W}, 2), not (height, width, 3) for RGB "
                            "or (height, width, 4) for RGBA"),
        (str(flat), f"frame file {flat} has the shape ({H}, {W}), not (height, width, 3) for RGB or "
                    "(height, width, 4) for RGBA"),
        (lines([good, bigger]), f"frame file {bigger} is {W + 2}x{H + 1} but {good} is {W}x{H}: every frame of one "
                                "batch has the same size"),
        (str(text), f"frame file {text} is not a NumPy .npy file ({numpy_refusal(text)}): write frames with "
                    "numpy.save"),
        (str(cut), f"frame file {cut} has 200 bytes where its header says {header + H * W * 4 * 4}: it was cut "
                   "short or written over; write it again"),
        (str(tmp_path), f"cannot read frame file {tmp_path}: Is a directory"),
        ("good.npy", "frame file path 'good.npy' is not absolute: give the full path of each frame file (ComfyUI's "
                     "working folder is not the job's)"),
        ("\n \n", "frames names no frame file: give one absolute path of a .npy frame file per line"),
    ]
    for frames, message in cases:
        r = session.post(plain(frames, tmp_path / "never"))
        assert r.status_code == 400, frames
        assert r.json() == invalid_frames(message), frames
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------------------------------------------
# execution errors


def run_failing(session: Session, prompt: dict) -> dict:
    """Run a prompt that passes validation and fails in the saver (node 3); its execution_error."""
    messages = session.run(prompt)
    assert of_type(messages, "execution_success") == []
    (error,) = of_type(messages, "execution_error")
    assert (error["node_id"], error["node_type"]) == ("3", "ComfyFarmSaveFrames")
    return error


def test_the_saver_refuses_a_mask_that_does_not_fit_and_a_bad_name(session, tmp_path):
    small = [write_frame(tmp_path / f"s{i}.npy", f) for i, f in enumerate(rgba_frames(2, seed=6))]
    large = [write_frame(tmp_path / f"l{i}.npy", np.zeros((H + 1, W + 2, 4))) for i in range(2)]
    three = [write_frame(tmp_path / f"t{i}.npy", np.zeros((H, W, 4))) for i in range(3)]
    out = tmp_path / "refused"

    def with_mask_of(mask_frames: List[Path]) -> dict:
        return {"1": load(lines(small)), "4": load(lines(mask_frames)),
                "2": {"class_type": "InvertMask", "inputs": {"mask": ["4", 1]}},
                "3": save(["1", 0], out, mask=["2", 0])}

    cases = [
        (with_mask_of(large), f"mask is {W + 2}x{H + 1} but the images are {W}x{H}: give a mask of the images' size "
                              "(scale or crop it to them)"),
        (with_mask_of(three), "mask has 3 masks for 2 images: give one mask per image, or one for all"),
        (round_trip(lines(small), out, pass_name="beauty pass"),
         "pass name 'beauty pass' is not letters, digits, _ and - only: name the pass as the workflow's manifest "
         "does (rgba, depth, matte...)"),
        (round_trip(lines(small), out, prefix="sub/frame"),
         "prefix 'sub/frame' is not a file name's start: give one with no path separator that does not begin with "
         "a dot"),
        (plain(lines(small), Path("relative")),
         "directory 'relative' is not an absolute folder: give the full path (ComfyUI's working folder is not the "
         "job's)"),
    ]
    for prompt, message in cases:
        error = run_failing(session, prompt)
        assert (error["exception_type"], error["exception_message"]) == ("ValueError", message + "\n")
    assert not out.exists()  # refused before anything is written


def test_a_matte_becomes_alpha_on_both_paths(comfy, session, tmp_path):
    """What the runner binds for a pass with an alpha (farm_plugin/runner/binding.py), on a keyer-like graph:
    the matte is the red channel (core ``ImageToMask``). Full precision: the saver's ``mask`` is the matte,
    float as it is. 8-bit: core ``JoinImageWithAlpha`` takes a ComfyUI mask (1 - alpha, hence ``InvertMask``)
    and ``SaveImage`` writes RGBA, 255 * x clipped and truncated (nodes.py ``SaveImage``); ``MaskToImage``
    gives the matte as grey RGB. comfy_extras/nodes_compositing.py ``JoinImageWithAlpha.execute`` and
    nodes_mask.py ``ImageToMask``/``MaskToImage`` (0.3.64)."""
    frames = rgba_frames(1, seed=9)
    source = write_frame(tmp_path / "key.npy", frames[0])
    matte = {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}}
    full = {"1": load(str(source)), "2": matte, "3": save(["1", 0], tmp_path / "full", pass_name="rgba", mask=["2", 0])}
    saved(session.run(full))
    written = np.load(tmp_path / "full" / "frame.rgba.00000.npy")
    assert np.array_equal(written[..., :3], frames[0][..., :3]) and np.array_equal(written[..., 3], frames[0][..., 0])

    prefix = f"comfyfarm-contract/alpha-{uuid.uuid4().hex[:8]}"
    eight = {"1": load(str(source)), "2": matte,
             "4": {"class_type": "InvertMask", "inputs": {"mask": ["2", 0]}},
             "5": {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["1", 0], "alpha": ["4", 0]}},
             "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": prefix}},
             "7": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 0]}},
             "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": prefix + "-matte"}}}
    messages = session.run(eight)
    executed = {m["node"]: m["output"]["images"][0] for m in of_type(messages, "executed")}

    def png(node: str) -> np.ndarray:
        answer = requests.get(f"{comfy.url}/view", params=executed[node], timeout=30)
        assert answer.status_code == 200
        path = tmp_path / f"{node}.png"
        path.write_bytes(answer.content)
        config = oiio.ImageSpec()
        config.attribute("oiio:UnassociatedAlpha", 1)  # the colour as the PNG stores it, straight
        image = oiio.ImageBuf(str(path), 0, 0, config)
        return image.get_pixels(oiio.UINT8)

    def eight_bit(values: np.ndarray) -> np.ndarray:
        return np.clip(255.0 * values, 0, 255).astype(np.uint8)

    one = np.float32(1.0)
    rgba = png("6")
    assert rgba.shape == (H, W, 4)
    assert np.array_equal(rgba[..., :3], eight_bit(frames[0][..., :3]))
    assert np.abs(rgba[..., 3].astype(int) - eight_bit(one - (one - frames[0][..., 0])).astype(int)).max() <= 1
    grey = png("8")
    assert grey.shape == (H, W, 3) and np.array_equal(grey, np.repeat(eight_bit(frames[0][..., :1]), 3, axis=2))


def comfyui_blend(a: np.ndarray, b: np.ndarray, factor: float, mode: str) -> np.ndarray:
    """ComfyUI 0.3.64's ImageBlend (comfy_extras/nodes_post_processing.py, Blend.execute and blend_mode) in
    float32 NumPy: the blend of the mode, mixed by the factor, then torch.clamp(…, 0, 1)."""
    one = np.float32(1)
    if mode == "soft_light":
        g = np.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, np.sqrt(np.maximum(a, 0)))
        blended = np.where(b <= 0.5, a - (1 - 2 * b) * a * (one - a), a + (2 * b - 1) * (g - a))
    else:
        blended = {"normal": b, "multiply": a * b, "screen": one - (one - a) * (one - b), "difference": a - b,
                   "overlay": np.where(a <= 0.5, 2 * a * b, one - 2 * (one - a) * (one - b))}[mode]
    return np.clip(a * (one - np.float32(factor)) + blended * np.float32(factor), 0, 1)


@pytest.mark.parametrize("mode", ["normal", "multiply", "screen", "overlay", "soft_light", "difference"])
def test_image_blend_mixes_and_clamps_as_comfyui_does(session, tmp_path, mode):
    """The workflows clamp a frame to 0..1 with core ImageBlend (the frame with itself at factor 1); every mode,
    on float frames from -0.5 to 4.0, as ComfyUI's own code computes it (the real tier runs the same graph)."""
    rng = np.random.default_rng(11)
    a, b = (rng.uniform(-0.5, 4.0, size=(1, H, W, 3)).astype(np.float32) for _ in range(2))
    first = write_frame(tmp_path / "a.npy", a[0])
    second = write_frame(tmp_path / "b.npy", b[0])
    prompt = {"1": load(str(first)), "2": load(str(second)),
              "4": {"class_type": "ImageBlend", "inputs": {"image1": ["1", 0], "image2": ["2", 0],
                                                           "blend_factor": 0.7, "blend_mode": mode}},
              "3": save(["4", 0], tmp_path / "out")}
    saved(session.run(prompt))
    got = np.load(tmp_path / "out" / "frame.rgba.00000.npy")
    np.testing.assert_allclose(got, comfyui_blend(a[0], b[0], 0.7, mode), atol=2e-6)
    assert got.min() >= 0 and got.max() <= 1


def test_a_failed_write_leaves_no_partial_file(session, tmp_path):
    """The second frame's name is taken by a folder: the rename fails, its hidden temporary file is removed,
    the first frame stays whole."""
    inputs = [write_frame(tmp_path / f"w{i}.npy", f) for i, f in enumerate(rgba_frames(2, seed=7))]
    out = tmp_path / "blocked"
    (out / "frame.rgba.00001.npy").mkdir(parents=True)
    error = run_failing(session, round_trip(lines(inputs), out))
    assert error["exception_type"] == "IsADirectoryError"
    assert re.fullmatch(rf"\[Errno 21\] Is a directory: '{re.escape(str(out))}/\.frame\.rgba\.00001\.npy\.[0-9a-f]{{8}}"
                        rf"\.tmp' -> '{re.escape(str(out / 'frame.rgba.00001.npy'))}'\n", error["exception_message"])
    assert sorted(p.name for p in out.iterdir()) == ["frame.rgba.00000.npy", "frame.rgba.00001.npy"]
    assert (out / "frame.rgba.00000.npy").read_bytes() == inputs[0].read_bytes()


# ---------------------------------------------------------------------------------------------------------
# where the pack is loaded (the double only; checked on real ComfyUI 0.3.64 with --quick-test-for-ci)


def frame_nodes_served(url: str) -> List[str]:
    names = requests.get(f"{url}/object_info", timeout=10).json()
    return sorted(n for n in names if n in FRAME_CLASSES)


def test_the_pack_loads_only_from_an_extra_custom_nodes_path(fake_comfyui_factory, tmp_path):
    """utils/extra_config.py load_extra_path_config adds every ``custom_nodes:`` entry (relative entries
    from the YAML's folder, or from ``base_path``); nodes.py init_external_custom_nodes loads the folders
    found there. Real 0.3.64 logs "Adding extra search path custom_nodes <path>" and lists the pack under
    "Import times for custom nodes"."""
    plain_double = fake_comfyui_factory()
    assert frame_nodes_served(plain_double.url) == []
    r = requests.post(f"{plain_double.url}/prompt", json={"prompt": plain("/x.npy", tmp_path)}, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"error": {"type": "invalid_prompt",
                                  "message": "Cannot execute because node ComfyFarmLoadFrames does not exist.",
                                  "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}}

    empty = tmp_path / "empty_nodes"
    empty.mkdir()
    elsewhere = fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "empty.yaml", empty))
    assert frame_nodes_served(elsewhere.url) == []

    shipped = fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "pack.yaml"))
    assert frame_nodes_served(shipped.url) == sorted(FRAME_CLASSES)
    log = shipped.log_text()
    assert f"Adding extra search path custom_nodes {PACK_FOLDER}" in log
    assert f"   0.0 seconds: {PACK_FOLDER / 'comfyfarm_frames'}" in log

    relative = tmp_path / "configs"
    relative.mkdir()
    (relative / "rel.yaml").write_text(f"a:\n  base_path: {PACK_FOLDER.parent}\n  custom_nodes: {PACK_FOLDER.name}\n"
                                       "b:\n  custom_nodes: ../empty_nodes\n", encoding="utf-8")
    based = fake_comfyui_factory(extra_args=["--extra-model-paths-config", str(relative / "rel.yaml")])
    assert frame_nodes_served(based.url) == sorted(FRAME_CLASSES)
    assert f"Adding extra search path custom_nodes {empty}" in based.log_text()

    root = tmp_path / "beside_main"  # main.py's own extra_model_paths.yaml (the double's folder: its cwd)
    root.mkdir()
    comfyfarm_nodes_args(root / "extra_model_paths.yaml")
    assert frame_nodes_served(fake_comfyui_factory(root).url) == sorted(FRAME_CLASSES)


def test_a_pack_folder_is_needed_and_a_missing_path_stops_the_start(fake_comfyui_factory, tmp_path):
    """A folder named comfyfarm_frames without __init__.py fails to import (nodes.py load_custom_node);
    a custom_nodes path that does not exist ends the start (main.py execute_prestartup_script lists it):
    on real 0.3.64 ``FileNotFoundError: [Errno 2] No such file or directory: '<path>'``, status 1."""
    hollow = tmp_path / "hollow"
    (hollow / "comfyfarm_frames").mkdir(parents=True)
    started = fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "hollow.yaml", hollow))
    assert frame_nodes_served(started.url) == []
    assert (f"Cannot import {hollow / 'comfyfarm_frames'} module for custom nodes: [Errno 2] No such file or "
            f"directory: '{hollow / 'comfyfarm_frames' / '__init__.py'}'") in started.log_text()
    assert f"   0.0 seconds (IMPORT FAILED): {hollow / 'comfyfarm_frames'}" in started.log_text()

    missing = tmp_path / "missing"
    with pytest.raises(RuntimeError) as failed:
        fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "missing.yaml", missing))
    assert "exited with status 1" in str(failed.value)
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{missing}'" in str(failed.value)

    with pytest.raises(RuntimeError) as failed:
        fake_comfyui_factory(extra_args=["--extra-model-paths-config", str(tmp_path / "no.yaml")])
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{tmp_path / 'no.yaml'}'" in str(failed.value)


def test_disable_all_custom_nodes_drops_the_pack(fake_comfyui_factory, tmp_path):
    """--disable-all-custom-nodes with no whitelist loads no custom node and lists no folder (so a missing
    one does not stop the start): "Skipping loading of custom nodes". With a whitelist, each folder not
    named is skipped: "Skipping <folder> due to disable_all_custom_nodes and whitelist_custom_nodes"."""
    with_pack = comfyfarm_nodes_args(tmp_path / "pack.yaml")
    off = fake_comfyui_factory(extra_args=[*with_pack, "--disable-all-custom-nodes"])
    assert frame_nodes_served(off.url) == []
    assert "Skipping loading of custom nodes" in off.log_text()
    assert "InvertMask" in requests.get(f"{off.url}/object_info", timeout=10).json()  # core stays

    missing = comfyfarm_nodes_args(tmp_path / "missing.yaml", tmp_path / "missing")
    assert frame_nodes_served(fake_comfyui_factory(extra_args=[*missing, "--disable-all-custom-nodes"]).url) == []

    kept = fake_comfyui_factory(extra_args=[*with_pack, "--disable-all-custom-nodes",
                                            "--whitelist-custom-nodes", "comfyfarm_frames"])
    names = requests.get(f"{kept.url}/object_info", timeout=10).json()
    assert frame_nodes_served(kept.url) == sorted(FRAME_CLASSES) and "RIFE VFI" not in names
    assert "Skipping ComfyUI-Frame-Interpolation due to disable_all_custom_nodes and whitelist_custom_nodes" \
        in kept.log_text()

    others = fake_comfyui_factory(extra_args=[*with_pack, "--disable-all-custom-nodes",
                                              "--whitelist-custom-nodes", "ComfyUI-Frame-Interpolation"])
    assert frame_nodes_served(others.url) == []
    assert "Skipping comfyfarm_frames due to disable_all_custom_nodes and whitelist_custom_nodes" in others.log_text()
