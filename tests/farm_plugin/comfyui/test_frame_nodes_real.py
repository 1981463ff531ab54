"""comfyfarm's frame nodes (farm_plugin/ComfyUINodes/comfyfarm_frames) in a real ComfyUI.

One ComfyUI for the module, started with comfyfarm's lifecycle code and the custom-nodes folder added as
comfyfarm adds it: an ``extra_model_paths.yaml`` entry ``custom_nodes:`` (``--extra-model-paths-config``).
Real tier: skipped without COMFYUI_DIR (a ComfyUI attached by COMFYUI_URL cannot be given the pack).

``COMFYFARM_RECORD_OBJECT_INFO=1`` writes the nodes' /object_info entries into
tests/data/comfyui/object_info/comfyfarm_frames.json (then say so in tests/data/comfyui/README.md); without
it the test checks that the recording still matches.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pytest
import websocket
import yaml

from farm_plugin.comfyui.client import ComfyUIClient
from farm_plugin.comfyui.errors import PromptExecutionError, PromptValidationError
from farm_plugin.comfyui.server import ComfyUIServer
from tests.doubles.comfyui.harness import free_port
from tests.farm_plugin.comfyui.frame_plates import plate, write
from tests.real_comfyui import REAL_SKIP_REASON, real_comfyui_config
from tests.recorded import OBJECT_INFO

REPO = Path(__file__).resolve().parents[3]
NODES_FOLDER = REPO / "farm_plugin" / "ComfyUINodes"
RECORDED = OBJECT_INFO / "comfyfarm_frames.json"
CLASSES = ("ComfyFarmLoadFrames", "ComfyFarmSaveFrames")
PROMPT_TIMEOUT_SECONDS = 60.0


@dataclasses.dataclass
class FramesComfyUI:
    server: ComfyUIServer
    client: ComfyUIClient


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FramesComfyUI]:
    folder = tmp_path_factory.mktemp("frames-comfyui")
    config = real_comfyui_config(folder / "scratch", port=free_port())
    if config is None:
        pytest.skip(REAL_SKIP_REASON)
    paths_file = folder / "extra_model_paths.yaml"
    paths_file.write_text(yaml.safe_dump({"comfyfarm": {"custom_nodes": str(NODES_FOLDER)}}), encoding="utf-8")
    config = dataclasses.replace(
        config,
        extra_args=(*config.extra_args, "--extra-model-paths-config", str(paths_file)),
        extra_env={"PYTHONDONTWRITEBYTECODE": "1"},  # no __pycache__ in the source tree
    )
    server = ComfyUIServer(config)
    server.start()
    try:
        yield FramesComfyUI(server, server.client())
    finally:
        server.stop()


def graph(frames: Sequence[str], directory: Path, *, with_mask: bool = True, pass_name: str = "rgba",
          mask_frames: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """ComfyFarmLoadFrames → (InvertMask →) ComfyFarmSaveFrames; the mask from ``mask_frames`` when given."""
    nodes: Dict[str, Any] = {"1": {"class_type": "ComfyFarmLoadFrames", "inputs": {"frames": "\n".join(frames)}}}
    save: Dict[str, Any] = {"images": ["1", 0], "directory": str(directory), "prefix": "shot",
                            "pass_name": pass_name}
    if with_mask:
        mask_source = "1"
        if mask_frames is not None:
            nodes["4"] = {"class_type": "ComfyFarmLoadFrames", "inputs": {"frames": "\n".join(mask_frames)}}
            mask_source = "4"
        nodes["2"] = {"class_type": "InvertMask", "inputs": {"mask": [mask_source, 1]}}
        save["mask"] = ["2", 0]
    nodes["3"] = {"class_type": "ComfyFarmSaveFrames", "inputs": save}
    return nodes


@dataclasses.dataclass
class Finished:
    """A prompt that ran: the nodes ComfyUI took from its cache, and the saver's UI output as its ``executed``
    message carried it (the runner reads it there; /history is written after the prompt's end message)."""

    cached_nodes: List[str]
    frames: List[Dict[str, Any]]


def run(comfyui: FramesComfyUI, nodes: Dict[str, Any]) -> Finished:
    """Queue ``nodes`` and follow them on a WebSocket of their own to their end; raises PromptExecutionError."""
    client_id = uuid.uuid4().hex
    socket = websocket.create_connection(f"{comfyui.client.websocket_url}?clientId={client_id}",
                                         timeout=PROMPT_TIMEOUT_SECONDS)
    try:
        prompt_id = comfyui.client.submit(nodes, client_id=client_id).prompt_id
        finished = Finished([], [])
        while True:
            frame = socket.recv()
            message = json.loads(frame) if isinstance(frame, str) and frame else {}
            data = message.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            if message["type"] == "execution_cached":
                finished.cached_nodes = [str(node) for node in data["nodes"]]
            elif message["type"] == "executed" and data["node"] == "3":
                finished.frames = data["output"]["comfyfarm_frames"]
            elif message["type"] == "execution_error":
                raise PromptExecutionError.from_message(data)
            elif message["type"] == "execution_success":
                return finished
    finally:
        socket.close()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- the pack in ComfyUI ----------------------------------------------------------------------------------------

def test_object_info_lists_both_nodes_as_the_contract_and_the_recording_say(comfyui: FramesComfyUI) -> None:
    everything = comfyui.client.object_info()
    live = {name: everything[name] for name in CLASSES}
    if os.environ.get("COMFYFARM_RECORD_OBJECT_INFO") == "1":
        RECORDED.write_text(json.dumps(live, indent=1, sort_keys=True), encoding="utf-8")
    assert live == json.loads(RECORDED.read_text(encoding="utf-8"))

    loader, saver = live["ComfyFarmLoadFrames"], live["ComfyFarmSaveFrames"]
    assert loader["display_name"] == "Load Frames (comfyfarm)" and saver["display_name"] == "Save Frames (comfyfarm)"
    assert loader["category"] == saver["category"] == "comfyfarm"
    assert loader["python_module"] == saver["python_module"] == "custom_nodes.comfyfarm_frames"
    assert loader["input"]["required"]["frames"][0] == "STRING"
    assert loader["input"]["required"]["frames"][1]["multiline"] is True
    assert (loader["output"], loader["output_name"], loader["output_node"]) == (["IMAGE", "MASK"], ["IMAGE", "MASK"],
                                                                                False)
    assert {name: spec[0] for name, spec in saver["input"]["required"].items()} == {
        "images": "IMAGE", "directory": "STRING", "prefix": "STRING", "pass_name": "STRING"}
    assert saver["input"]["required"]["prefix"][1]["default"] == "frame"
    assert saver["input"]["required"]["pass_name"][1]["default"] == "rgba"
    assert saver["input"]["optional"]["mask"][0] == "MASK"
    assert (saver["output"], saver["output_node"]) == ([], True)


def test_the_custom_nodes_folder_holds_the_pack_alone_and_it_imports(comfyui: FramesComfyUI) -> None:
    assert sorted(path.name for path in NODES_FOLDER.iterdir() if path.name != "__pycache__") == [
        "README.md", "comfyfarm_frames"]
    log = comfyui.server.log_path.read_text(encoding="utf-8", errors="replace")
    imports = [line.strip() for line in log.splitlines() if str(NODES_FOLDER) in line and "seconds" in line]
    assert len(imports) == 1 and imports[0].endswith(f": {NODES_FOLDER / 'comfyfarm_frames'}"), imports
    assert "IMPORT FAILED" not in imports[0]
    assert "README.md" not in log  # ComfyUI skips a file that is not .py: it never tried the README


# -- frames through ComfyUI -----------------------------------------------------------------------------------

def test_a_scene_linear_rgba_plate_comes_back_bit_for_bit_alpha_included(comfyui: FramesComfyUI,
                                                                         tmp_path: Path) -> None:
    pixels = plate()
    (entry,) = run(comfyui, graph([write(tmp_path / "plate.npy", pixels)], tmp_path / "out")).frames
    path = str(tmp_path / "out" / "shot.rgba.00000.npy")
    assert entry == {"path": path, "pass": "rgba", "index": 0, "width": 8, "height": 6, "channels": 4}
    back = np.load(path)
    assert same_bits(back, pixels)
    assert back.min() == -0.5 and back.max() == 4.0
    assert sorted(os.listdir(tmp_path / "out")) == ["shot.rgba.00000.npy"]  # no temporary file left


def test_an_rgb_plate_comes_back_bit_for_bit_opaque_with_a_mask_and_rgb_without(comfyui: FramesComfyUI,
                                                                               tmp_path: Path) -> None:
    pixels = plate(channels=3)
    frame = write(tmp_path / "plate.npy", pixels)
    (entry,) = run(comfyui, graph([frame], tmp_path / "masked")).frames
    back = np.load(entry["path"])
    assert entry["channels"] == 4 and same_bits(back[..., :3], pixels) and (back[..., 3] == 1.0).all()

    (entry,) = run(comfyui, graph([frame], tmp_path / "plain", with_mask=False)).frames
    assert entry["channels"] == 3 and same_bits(np.load(entry["path"]), pixels)

    rgba = plate()  # an RGBA plate without a mask into the saver: RGB only, as the IMAGE has no alpha
    (entry,) = run(comfyui, graph([write(tmp_path / "rgba.npy", rgba)], tmp_path / "rgb", with_mask=False)).frames
    assert entry["channels"] == 3 and same_bits(np.load(entry["path"]), rgba[..., :3])


def test_a_batch_of_three_keeps_its_order_and_count(comfyui: FramesComfyUI, tmp_path: Path) -> None:
    frames = [plate(seed=seed) for seed in range(3)]
    paths = [write(tmp_path / f"plate.{number}.npy", pixels) for number, pixels in zip((1003, 1001, 1002), frames)]
    entries = run(comfyui, graph(paths, tmp_path / "out")).frames
    assert [entry["index"] for entry in entries] == [0, 1, 2]
    assert [Path(entry["path"]).name for entry in entries] == [f"shot.rgba.{i:05d}.npy" for i in range(3)]
    for entry, pixels in zip(entries, frames):
        assert same_bits(np.load(entry["path"]), pixels)


def test_a_rewritten_frame_runs_again(comfyui: FramesComfyUI, tmp_path: Path) -> None:
    frame = tmp_path / "plate.npy"
    write(frame, plate(seed=1))
    nodes = graph([str(frame)], tmp_path / "out")
    run(comfyui, nodes)
    write(frame, plate(seed=2))  # the same size, rewritten
    result = run(comfyui, nodes)
    assert "1" not in result.cached_nodes
    (entry,) = result.frames
    assert same_bits(np.load(entry["path"]), plate(seed=2))


def test_a_second_identical_prompt_still_writes_its_files(comfyui: FramesComfyUI, tmp_path: Path) -> None:
    nodes = graph([write(tmp_path / "plate.npy", plate())], tmp_path / "out")
    (first,) = run(comfyui, nodes).frames
    os.remove(first["path"])
    result = run(comfyui, nodes)
    assert {"1", "2"} <= set(result.cached_nodes) and "3" not in result.cached_nodes
    (entry,) = result.frames
    assert entry == first and same_bits(np.load(entry["path"]), plate())


# -- bad input ------------------------------------------------------------------------------------------------

def bad_frames(kind: str, folder: Path) -> tuple:
    """(frames, the file the message names, what it says)"""
    good = write(folder / "good.npy", plate())
    if kind == "missing":
        missing = str(folder / "missing.npy")
        return [good, missing], missing, "does not exist"
    if kind == "dtype":
        return [write(folder / "double.npy", plate().astype(np.float64))], str(folder / "double.npy"), \
            "holds <f8 pixels, not little-endian float32"
    if kind == "shape":
        return [write(folder / "flat.npy", plate()[..., 0])], str(folder / "flat.npy"), \
            "has the shape (6, 8), not (height, width, 3)"
    small = write(folder / "small.npy", plate(4, 4))
    return [good, small], small, f"is 4x4 but {good} is 8x6"


@pytest.mark.parametrize("kind", ["missing", "dtype", "shape", "mixed sizes"])
def test_bad_frame_files_are_refused_at_validation_naming_the_file(comfyui: FramesComfyUI, tmp_path: Path,
                                                                   kind: str) -> None:
    frames, named, says = bad_frames(kind, tmp_path)
    with pytest.raises(PromptValidationError) as refused:
        comfyui.client.submit(graph(frames, tmp_path / "out"))
    assert refused.value.type == "prompt_outputs_failed_validation"
    (error,) = refused.value.node_errors["1"]["errors"]
    assert error["type"] == "custom_validation_failed"
    assert error["details"].startswith(f"frames - frame file {named} ") and says in error["details"]
    assert not (tmp_path / "out").exists()


def test_a_mask_of_another_size_fails_the_run_naming_it(comfyui: FramesComfyUI, tmp_path: Path) -> None:
    images = write(tmp_path / "plate.npy", plate())
    mask = write(tmp_path / "small.npy", plate(3, 4))
    with pytest.raises(PromptExecutionError) as failed:
        run(comfyui, graph([images], tmp_path / "out", mask_frames=[mask]))
    assert (failed.value.node_id, failed.value.node_type, failed.value.exception_type) == (
        "3", "ComfyFarmSaveFrames", "ValueError")
    assert "mask is 4x3 but the images are 8x6" in failed.value.exception_message
    assert not (tmp_path / "out").exists()


def test_a_bad_pass_name_fails_the_run_naming_it(comfyui: FramesComfyUI, tmp_path: Path) -> None:
    images = write(tmp_path / "plate.npy", plate())
    with pytest.raises(PromptExecutionError) as failed:
        run(comfyui, graph([images], tmp_path / "out", pass_name="depth pass"))
    assert (failed.value.node_type, failed.value.exception_type) == ("ComfyFarmSaveFrames", "ValueError")
    assert "pass name 'depth pass' is not letters, digits, _ and - only" in failed.value.exception_message
