"""Contract tests: the ComfyUI test double against recordings of the real ComfyUI 0.3.64.

The captures live in tests/data/comfyui/captures (where and when each was recorded: the README there);
where the double and a capture disagree, the capture is right.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pytest
import requests
import websocket

from tests.doubles.comfyui.harness import REPO_ROOT, FakeComfyUI, free_port, make_fake_comfyui_dir, start_fake_comfyui
from tests.recorded import CAPTURES

oiio = pytest.importorskip("OpenImageIO")

FAULTS = "COMFYFARM_FAKE_FAULTS"
SERVER_ERROR_TEXT = "500 Internal Server Error\n\nServer got itself in trouble"


def capture(name: str) -> Any:
    return json.loads((CAPTURES / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------
# helpers


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return type(value).__name__


def assert_same_shape(actual: Any, expected: Any, path: str = "$") -> None:
    """Same JSON types; for objects the same keys; for arrays, every element shaped like the capture's
    first element (when the capture has one)."""
    assert kind(actual) == kind(expected), f"{path}: {kind(actual)} != {kind(expected)} ({actual!r:.200})"
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_same_shape(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected:
        for i, item in enumerate(actual):
            assert_same_shape(item, expected[min(i, len(expected) - 1)], f"{path}[{i}]")


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """Write an 8-bit image with OpenImageIO (independent of the double's own encoder)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w, c = pixels.shape
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), oiio.ImageSpec(w, h, c, "uint8")), oiio.geterror()
    out.write_image(pixels)
    out.close()
    return path


def read_png(data_or_path) -> np.ndarray:
    path = data_or_path
    if isinstance(data_or_path, bytes):
        path = Path(f"/tmp/fake-comfyui-read-{uuid.uuid4().hex}.png")
        path.write_bytes(data_or_path)
    try:
        inp = oiio.ImageInput.open(str(path))
        assert inp is not None, oiio.geterror()
        pixels = inp.read_image("uint8")
        inp.close()
        return np.asarray(pixels)
    finally:
        if isinstance(data_or_path, bytes):
            path.unlink()


def png_text_chunks(data: bytes) -> Dict[str, str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(tag + payload)
        if tag == b"tEXt":
            key, _, value = payload.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return out


def upload(fake: FakeComfyUI, name: str, data: bytes, **fields: str) -> requests.Response:
    return requests.post(f"{fake.url}/upload/image", files={"image": (name, data, "image/png")}, data=fields,
                         timeout=10)


def png_bytes(tmp: Path, pixels: np.ndarray) -> bytes:
    path = tmp / f"src-{uuid.uuid4().hex}.png"
    write_image(path, pixels)
    return path.read_bytes()


def workflow(image: str, prefix: str, middle: Optional[dict] = None) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": middle or {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


class Client:
    """A WebSocket client like a ComfyUI API user: connect, queue, follow the messages."""

    def __init__(self, fake: FakeComfyUI, client_id: Optional[str] = None, feature_flags: Optional[dict] = None):
        self.fake = fake
        self.client_id = client_id or f"t-{uuid.uuid4().hex[:8]}"
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{fake.port}/ws?clientId={self.client_id}", timeout=10)
        self.first = json.loads(self.ws.recv())
        self.flags_reply = None
        if feature_flags is not None:
            self.ws.send(json.dumps({"type": "feature_flags", "data": feature_flags}))
            self.flags_reply = json.loads(self.ws.recv())

    def post(self, prompt: Any, with_client: bool = True, **extra) -> requests.Response:
        body = {"prompt": prompt, **extra}
        if with_client:
            body["client_id"] = self.client_id
        return requests.post(f"{self.fake.url}/prompt", json=body, timeout=10)

    def run(self, prompt: dict, **extra) -> tuple:
        r = self.post(prompt, **extra)
        assert r.status_code == 200, r.text
        prompt_id = r.json()["prompt_id"]
        return prompt_id, self.until_done(prompt_id)

    def collect(self, stop: Callable[[dict], bool], timeout: float = 15.0) -> List[dict]:
        messages: List[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(0.01, deadline - time.monotonic()))
            raw = self.ws.recv()
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            messages.append(message)
            if stop(message):
                return messages

    def until_done(self, prompt_id: str, timeout: float = 15.0) -> List[dict]:
        return self.collect(lambda m: m["type"] == "executing" and m["data"]["node"] is None
                            and m["data"].get("prompt_id") == prompt_id, timeout)

    def silent(self, seconds: float = 0.3) -> bool:
        self.ws.settimeout(seconds)
        try:
            self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return True
        return False

    def close(self) -> None:
        self.ws.close()


def types(messages: List[dict]) -> List[str]:
    return [m["type"] for m in messages]


def states(message: dict) -> Dict[str, str]:
    return {k: v["state"] for k, v in message["data"]["nodes"].items()}


def history(fake: FakeComfyUI, prompt_id: str) -> dict:
    return requests.get(f"{fake.url}/history/{prompt_id}", timeout=10).json()


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> FakeComfyUI:
    server = start_fake_comfyui(tmp_path_factory.mktemp("comfyui"))
    yield server
    server.stop()


@pytest.fixture
def clean_faults(fake):
    fake.set_faults()
    yield fake
    fake.set_faults()


# ---------------------------------------------------------------------------------------------------------
# endpoints at rest


def test_system_stats_has_the_captured_shape(fake):
    r = requests.get(f"{fake.url}/system_stats", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    expected = capture("a_system_stats.json")["json"]
    assert_same_shape(r.json(), expected)
    assert r.json()["system"]["comfyui_version"] == expected["system"]["comfyui_version"]
    assert "--cpu" in r.json()["system"]["argv"]
    assert r.json()["devices"][0]["type"] == "cpu"
    assert requests.get(f"{fake.url}/api/system_stats", timeout=10).json().keys() == expected.keys()


def test_idle_endpoints_match_the_captures(fake):
    for url, name in (("/queue", "a_queue_idle.json"), ("/api/queue", "a_api_prefix_queue.json"),
                      ("/prompt", "a_get_prompt_queue_info.json"), ("/features", "a_features.json"),
                      ("/object_info/NoSuchNode", "a_object_info_unknown_node.json"),
                      ("/history/does-not-exist", "c_history_unknown_id.json")):
        r = requests.get(fake.url + url, timeout=10)
        expected = capture(name)
        assert r.status_code == expected["status"], url
        assert r.headers["Content-Type"] == expected["headers"]["Content-Type"], url
        assert r.json() == expected["json"], url
        assert r.content == json.dumps(expected["json"]).encode(), url
    assert requests.post(f"{fake.url}/history", json={"clear": True}, timeout=10).status_code == 200
    assert requests.get(f"{fake.url}/history", timeout=10).json() == capture("a_history_empty.json")["json"]


def test_object_info_matches_the_captures(fake, tmp_path):
    (fake.input_dir / "sub").mkdir(exist_ok=True)
    for name in ("b_choice.png", "a_choice.jpg", "sub/nested.png"):
        write_image(fake.input_dir / name, np.zeros((4, 4, 3), np.uint8))
    (fake.input_dir / "notes.txt").write_text("not an image")
    everything = requests.get(f"{fake.url}/object_info", timeout=10).json()
    for cls in ("LoadImage", "ImageInvert", "SaveImage", "ImageBlur", "ImageScale", "ImageScaleBy", "ImageBatch",
                "PreviewImage"):
        expected = capture(f"a_object_info_{cls}.json")["json"]
        actual = requests.get(f"{fake.url}/object_info/{cls}", timeout=10).json()
        assert list(actual) == [cls]
        assert_same_shape(actual, expected)
        assert everything[cls] == actual[cls]
        if cls == "LoadImage":
            choices = actual[cls]["input"]["required"]["image"][0]
            assert choices == sorted(choices)
            assert {"a_choice.jpg", "b_choice.png"} <= set(choices)
            assert "notes.txt" not in choices and "sub/nested.png" not in choices and "nested.png" not in choices
            actual[cls]["input"]["required"]["image"][0] = expected[cls]["input"]["required"]["image"][0]
        assert actual == expected, cls


# ---------------------------------------------------------------------------------------------------------
# one prompt, caching


def test_invert_workflow_messages_history_and_pixels(fake, tmp_path):
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[...] = (200, 30, 30)
    assert upload(fake, "capture_test.png", png_bytes(tmp_path, pixels), overwrite="true").status_code == 200
    client = Client(fake)
    assert client.first == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                          "sid": client.client_id}}
    r = client.post(capture("c_workflow_api_format.json"))
    expected_response = capture("c_prompt_response.json")
    assert r.status_code == 200
    assert_same_shape(r.json(), expected_response["json"])
    prompt_id = r.json()["prompt_id"]
    messages = client.until_done(prompt_id)
    expected = capture("c_ws_messages.json")["messages"]

    assert types(messages) == [m["type"] for m in expected]
    for got, want in zip(messages, expected):
        assert_same_shape(got["data"], want["data"], got["type"])
        if got["type"] == "progress_state":
            assert states(got) == states(want)
            assert got["data"]["nodes"] == json.loads(json.dumps(want["data"]["nodes"]).replace(
                capture("c_ws_messages.json")["prompt_id"], prompt_id))
        if got["type"] in ("executing", "executed"):
            assert got["data"]["node"] == want["data"]["node"]
        if got["type"] == "executed":
            assert got["data"]["output"] == want["data"]["output"]
        if got["type"] == "status":
            assert got["data"] == want["data"]
        if "prompt_id" in got["data"]:
            assert got["data"]["prompt_id"] == prompt_id

    entry = history(fake, prompt_id)
    expected_entry = capture("c_history_prompt.json")["json"]
    assert_same_shape(entry, {prompt_id: next(iter(expected_entry.values()))})
    item = entry[prompt_id]
    assert item["prompt"] == [r.json()["number"], prompt_id, capture("c_workflow_api_format.json"),
                              {"client_id": client.client_id}, ["3"]]
    assert item["outputs"] == next(iter(expected_entry.values()))["outputs"]
    assert [m[0] for m in item["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert requests.get(f"{fake.url}/queue", timeout=10).json() == capture("c_queue_after.json")["json"]

    view = requests.get(f"{fake.url}/view", params=capture("c_view_output.json")["query"], timeout=10)
    assert view.status_code == 200
    assert view.headers["Content-Type"] == "image/png"
    assert view.headers["Content-Disposition"] == 'filename="frame_00001_.png"'
    assert all(header in view.headers for header in ("ETag", "Last-Modified", "Accept-Ranges"))
    decoded = read_png(view.content)
    assert decoded.shape == (48, 64, 3)
    assert decoded[0, 0].tolist() == capture("c_view_output.json")["decoded"]["pixel_0_0"] == [54, 225, 225]
    text = png_text_chunks(view.content)
    assert list(text) == capture("c_view_output.json")["decoded"]["png_text_keys"]
    assert {k: v["class_type"] for k, v in json.loads(text["prompt"]).items()} == {
        "1": "LoadImage", "2": "ImageInvert", "3": "SaveImage"}
    assert view.content == (fake.output_dir / "capture" / "frame_00001_.png").read_bytes()
    client.close()


def test_caching_resubmit_prefix_change_and_input_change(fake, tmp_path):
    pixels = np.full((16, 16, 3), 100, np.uint8)
    assert upload(fake, "cache_src.png", png_bytes(tmp_path, pixels), overwrite="true").status_code == 200
    client = Client(fake)
    wf = workflow("cache_src.png", "cache/frame")
    client.run(wf)
    files_before = sorted(os.listdir(fake.output_dir / "cache"))
    assert files_before == ["frame_00001_.png"]

    started = time.monotonic()
    _, same = client.run(workflow("cache_src.png", "cache/frame"))
    assert time.monotonic() - started < 2
    assert types(same) == [m["type"] for m in capture("d_resubmit_same.json")["messages"]]
    cached = next(m for m in same if m["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2", "3"]
    executed = next(m for m in same if m["type"] == "executed")
    assert executed["data"]["output"]["images"][0]["filename"] == "frame_00001_.png"
    final_state = next(m for m in same if m["type"] == "progress_state")["data"]["nodes"]["3"]
    assert (final_state["value"], final_state["max"], final_state["state"]) == (1, 1, "finished")
    assert sorted(os.listdir(fake.output_dir / "cache")) == files_before

    _, prefix = client.run(workflow("cache_src.png", "cache/other"))
    assert types(prefix) == [m["type"] for m in capture("d_resubmit_changed_prefix_only.json")["messages"]]
    assert next(m for m in prefix if m["type"] == "execution_cached")["data"]["nodes"] == ["1", "2"]
    assert [m["data"]["node"] for m in prefix if m["type"] == "executing"] == ["3", None]
    assert next(m for m in prefix if m["type"] == "executed")["data"]["output"]["images"][0]["filename"] == \
        "other_00001_.png"

    # The classic cache keeps only the latest prompt's nodes: going back re-runs SaveImage (a new file).
    _, back = client.run(workflow("cache_src.png", "cache/frame"))
    assert next(m for m in back if m["type"] == "execution_cached")["data"]["nodes"] == ["1", "2"]
    assert next(m for m in back if m["type"] == "executed")["data"]["output"]["images"][0]["filename"] == \
        "frame_00002_.png"

    assert upload(fake, "cache_src.png", png_bytes(tmp_path, pixels + 1), overwrite="true").status_code == 200
    _, changed = client.run(workflow("cache_src.png", "cache/frame"))
    assert types(changed) == [m["type"] for m in capture("d_resubmit_after_input_file_changed.json")["messages"]]
    assert next(m for m in changed if m["type"] == "execution_cached")["data"]["nodes"] == []
    assert next(m for m in changed if m["type"] == "executed")["data"]["output"]["images"][0]["filename"] == \
        "frame_00003_.png"
    # float32 truncation, as in ComfyUI: inverting 101 gives 153 (and 200 gives 54), not 154
    assert read_png(fake.output_dir / "cache" / "frame_00003_.png")[0, 0].tolist() == [153, 153, 153]
    client.close()


# ---------------------------------------------------------------------------------------------------------
# validation errors


def test_invalid_prompts_give_the_captured_errors(fake, tmp_path):
    assert upload(fake, "capture_test.png", png_bytes(tmp_path, np.zeros((8, 8, 3), np.uint8)),
                  overwrite="true").status_code == 200
    observer = Client(fake)
    cases = capture("e_invalid_prompts.json")
    base = workflow("capture_test.png", "capture/err")

    def scale(**inputs) -> dict:
        wf = json.loads(json.dumps(base))
        wf["2"] = {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                          "width": 32, "height": 32, "crop": "disabled", **inputs}}
        return wf

    def with_node2(node: dict) -> dict:
        wf = json.loads(json.dumps(base))
        wf["2"] = node
        return wf

    many = with_node2({"class_type": "NoSuchNodeClass", "inputs": {}})
    many["1"]["inputs"]["image"] = "does_not_exist.png"
    many["3"]["inputs"]["filename_prefix"] = 7
    bodies = {
        "i_unknown_class_type": {"prompt": with_node2({"class_type": "NoSuchNodeClass", "inputs": {}})},
        "ii_missing_required_input": {"prompt": with_node2({"class_type": "ImageInvert", "inputs": {}})},
        "iii_loadimage_missing_file": {"prompt": workflow("does_not_exist.png", "capture/err")},
        "iv_link_to_nonexistent_node": {"prompt": with_node2({"class_type": "ImageInvert",
                                                               "inputs": {"image": ["99", 0]}})},
        "v_c_json_array_body": [base],
        "vi_no_prompt_key": {"client_id": "x"},
        "vii_no_output_node": {"prompt": {k: v for k, v in base.items() if k != "3"}},
        "viii_b_non_numeric_int": {"prompt": scale(width="abc")},
        "viii_c_int_above_max": {"prompt": scale(width=999999)},
        "viii_d_invalid_combo_value": {"prompt": scale(upscale_method="magic")},
        "ix_link_type_mismatch_MASK_to_IMAGE": {"prompt": with_node2({"class_type": "ImageInvert",
                                                                       "inputs": {"image": ["1", 1]}})},
        "ix_b_link_output_index_out_of_range": {"prompt": with_node2({"class_type": "ImageInvert",
                                                                       "inputs": {"image": ["1", 5]}})},
        "x_missing_class_type": {"prompt": with_node2({"inputs": {"image": ["1", 0]}})},
        "xii_multiple_errors": {"prompt": many},
    }
    for name, body in bodies.items():
        expected = cases[name]
        r = requests.post(f"{fake.url}/prompt", json=body, timeout=10)
        assert r.status_code == expected["status"], name
        assert r.headers["Content-Type"] == "application/json; charset=utf-8", name
        got, want = r.json(), expected["json"]
        if name.startswith(("iv_", "ix_b")):
            for node_error in (got["node_errors"]["2"], want["node_errors"]["2"]):
                traceback_lines = node_error["errors"][0]["extra_info"].pop("traceback")
                assert traceback_lines and all(isinstance(line, str) for line in traceback_lines), name
        assert got == want, name

    for name, data in (("v_malformed_json_body", b'{"prompt": {'), ("v_b_empty_body", b""),
                       ("xi_prompt_is_list", json.dumps({"prompt": [base]}).encode())):
        r = requests.post(f"{fake.url}/prompt", data=data, timeout=10)
        assert (r.status_code, r.text) == (cases[name]["status"], cases[name]["text"]) == (500, SERVER_ERROR_TEXT)
        assert r.headers["Content-Type"].startswith("text/plain"), name
    assert observer.silent(0.3), "an invalid prompt must not queue anything"

    _, messages = observer.run(with_node2({"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}) | {
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": 123}}})
    want = next(m for m in cases["viii_a_wrong_primitive_type_coerced"]["ws_messages_after"] if m["type"] == "executed")
    assert next(m for m in messages if m["type"] == "executed")["data"]["output"] == want["data"]["output"]
    assert (fake.output_dir / "123_00001_.png").is_file()
    observer.close()


# ---------------------------------------------------------------------------------------------------------
# runtime errors, interrupt, queue operations


def test_runtime_error_sequence_and_history(fake):
    assert upload(fake, "not_an_image.png", b"not image", overwrite="true").status_code == 200
    client = Client(fake)
    r = client.post(workflow("not_an_image.png", "capture/never"))
    assert r.status_code == 200
    prompt_id = r.json()["prompt_id"]
    messages = client.until_done(prompt_id)
    expected = capture("e_runtime_error_execution_error.json")
    assert types(messages) == [m["type"] for m in expected["ws_messages"]]
    error = next(m for m in messages if m["type"] == "execution_error")["data"]
    want = next(m for m in expected["ws_messages"] if m["type"] == "execution_error")["data"]
    assert_same_shape(error, want)
    assert (error["node_id"], error["node_type"], error["executed"]) == ("1", "LoadImage", [])
    assert error["exception_type"] == want["exception_type"] == "PIL.UnidentifiedImageError"
    assert error["exception_message"].startswith("cannot identify image file '")
    assert error["exception_message"].endswith("not_an_image.png'\n")
    assert error["current_inputs"] == want["current_inputs"]
    assert sorted(error["current_outputs"]) == sorted(want["current_outputs"])
    entry = history(fake, prompt_id)[prompt_id]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["outputs"] == {}
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_error"]
    assert not (fake.output_dir / "capture" / "never_00001_.png").exists()
    client.close()


def test_filename_prefix_cannot_leave_the_output_folder(fake, tmp_path):
    assert upload(fake, "escape_src.png", png_bytes(tmp_path, np.full((4, 4, 3), 1, np.uint8)),
                  overwrite="true").status_code == 200
    client = Client(fake)
    for prefix in ("../escaped/frame", str(tmp_path / "abs" / "frame")):
        _, messages = client.run(workflow("escape_src.png", prefix))
        error = next(m for m in messages if m["type"] == "execution_error")["data"]
        assert (error["node_type"], error["exception_type"]) == ("SaveImage", "Exception")
        assert error["exception_message"].startswith(
            "**** ERROR: Saving image outside the output folder is not allowed.")
    assert not (fake.output_dir.parent / "escaped").exists() and not (tmp_path / "abs").exists()
    ids = list(requests.get(f"{fake.url}/history", timeout=10).json())
    assert list(requests.get(f"{fake.url}/history", params={"max_items": 2}, timeout=10).json()) == ids[-2:]
    assert list(requests.get(f"{fake.url}/history", params={"max_items": 1, "offset": 0},
                             timeout=10).json()) == ids[:1]
    client.close()


def blur_chain(image: str, prefix: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "b0": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "b1": {"class_type": "ImageBlur", "inputs": {"image": ["b0", 0], "blur_radius": 2, "sigma": 1.0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["b1", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def test_queue_delete_interrupt_and_next_prompt(clean_faults, tmp_path):
    fake = clean_faults
    assert upload(fake, "long_src.png", png_bytes(tmp_path, np.full((16, 16, 3), 7, np.uint8)),
                  overwrite="true").status_code == 200
    assert upload(fake, "short_src.png", png_bytes(tmp_path, np.full((16, 16, 3), 8, np.uint8)),
                  overwrite="true").status_code == 200
    fake.set_faults(node_delay_s=0.3)
    client = Client(fake)
    ids = {}
    for name, wf in (("A", blur_chain("long_src.png", "long/A")), ("B", blur_chain("long_src.png", "long/B")),
                     ("C", workflow("short_src.png", "long/C"))):
        r = client.post(wf)
        assert r.status_code == 200
        ids[name] = r.json()["prompt_id"]
    before = client.collect(lambda m: m["type"] == "executing" and m["data"]["node"] == "b0")

    queue = requests.get(f"{fake.url}/queue", timeout=10).json()
    assert [item[1] for item in queue["queue_running"]] == [ids["A"]]
    assert sorted(item[1] for item in queue["queue_pending"]) == sorted([ids["B"], ids["C"]])
    for item in queue["queue_running"] + queue["queue_pending"]:
        assert len(item) == 5 and isinstance(item[0], int) and isinstance(item[2], dict)
        assert item[3] == {"client_id": client.client_id} and isinstance(item[4], list)
    assert requests.get(f"{fake.url}/prompt", timeout=10).json() == {"exec_info": {"queue_remaining": 3}}

    assert requests.post(f"{fake.url}/queue", json={"delete": [ids["B"], ids["A"]]}, timeout=10).text == ""
    queue = requests.get(f"{fake.url}/queue", timeout=10).json()
    assert [item[1] for item in queue["queue_running"]] == [ids["A"]]
    assert [item[1] for item in queue["queue_pending"]] == [ids["C"]]
    assert requests.post(f"{fake.url}/free", json={"unload_models": True}, timeout=10).text == ""
    assert requests.post(f"{fake.url}/interrupt", json={"prompt_id": ids["C"]}, timeout=10).status_code == 200
    assert requests.post(f"{fake.url}/interrupt", json={"prompt_id": ids["A"]}, timeout=10).text == ""

    messages = before + client.until_done(ids["C"])
    cut = types(messages).index("execution_interrupted")
    interrupted = messages[cut]["data"]
    last_executing = [m for m in messages[:cut] if m["type"] == "executing"][-1]
    assert last_executing["data"]["node"] == interrupted["node_id"], "interrupted inside the running node"
    assert interrupted["node_id"] in ("b0", "b1") and interrupted["node_type"] == "ImageBlur"
    assert "1" in interrupted["executed"] and interrupted["node_id"] not in interrupted["executed"]
    assert set(interrupted) == {"prompt_id", "node_id", "node_type", "executed", "timestamp"}
    expected_tail = [m["type"] for m in capture("g_interrupt_queue_free.json")["ws_messages_from_interrupt_to_C_done"]]
    expected_tail = expected_tail[expected_tail.index("execution_interrupted"):]
    assert types(messages)[cut:] == expected_tail

    entry_a = history(fake, ids["A"])[ids["A"]]
    assert (entry_a["status"]["status_str"], entry_a["status"]["completed"], entry_a["outputs"]) == ("error", False, {})
    assert entry_a["status"]["messages"][-1][0] == "execution_interrupted"
    assert history(fake, ids["B"]) == {}
    entry_c = history(fake, ids["C"])[ids["C"]]
    assert entry_c["status"]["status_str"] == "success"
    assert entry_c["outputs"]["3"]["images"] == [{"filename": "C_00001_.png", "subfolder": "long", "type": "output"}]
    assert not (fake.output_dir / "long" / "A_00001_.png").exists()
    assert requests.post(f"{fake.url}/interrupt", timeout=10).status_code == 200  # idle, no body: harmless
    client.close()


def test_front_of_queue_runs_next(clean_faults, tmp_path):
    fake = clean_faults
    assert upload(fake, "front_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 9, np.uint8)),
                  overwrite="true").status_code == 200
    fake.set_faults(node_delay_s=0.1)
    client = Client(fake)
    slow = client.post(workflow("front_src.png", "front/slow")).json()
    client.collect(lambda m: m["type"] == "execution_start")
    normal = client.post(workflow("front_src.png", "front/normal")).json()
    front = client.post(workflow("front_src.png", "front/front"), front=True).json()
    assert front["number"] == -(normal["number"] + 1) and normal["number"] == slow["number"] + 1
    messages = client.until_done(normal["prompt_id"])
    starts = [m["data"]["prompt_id"] for m in messages if m["type"] == "execution_start"]
    assert starts == [front["prompt_id"], normal["prompt_id"]]
    client.close()


# ---------------------------------------------------------------------------------------------------------
# uploads and /view


def test_upload_rules_and_view_variants(fake, tmp_path):
    a = png_bytes(tmp_path, np.full((4, 4, 3), 1, np.uint8))
    b = png_bytes(tmp_path, np.full((4, 4, 3), 2, np.uint8))
    expected = capture("b_upload_responses.json")
    steps = [
        ("1_plain_overwrite_true", "/upload/image", "capture_test.png", a, {"overwrite": "true"}),
        ("2_same_name_same_bytes_no_overwrite_field", "/upload/image", "capture_test.png", a, {}),
        ("3_same_name_different_bytes_no_overwrite", "/upload/image", "capture_test.png", b, {}),
        ("4_same_name_different_bytes_overwrite_false", "/upload/image", "capture_test.png", b,
         {"overwrite": "false"}),
        ("5_subfolder_overwrite_true", "/upload/image", "capture_sub.png", a, {"subfolder": "capsub",
                                                                                "overwrite": "true"}),
        ("6_nested_subfolder", "/upload/image", "nested.png", a, {"subfolder": "capsub/deeper"}),
        ("7_subfolder_traversal_attempt", "/upload/image", "evil.png", a, {"subfolder": "../escape"}),
        ("8_type_temp", "/upload/image", "capture_temp.png", a, {"type": "temp"}),
        ("9_type_output", "/upload/image", "capture_out.png", a, {"type": "output", "subfolder": "uploaded"}),
        ("11_non_image_bytes", "/upload/image", "not_an_image.png", b"not image", {"overwrite": "true"}),
        ("12_api_prefix", "/api/upload/image", "capture_api.png", a, {}),
    ]
    (fake.input_dir / "capture_test (1).png").unlink(missing_ok=True)
    for name, url, filename, data, fields in steps:
        r = requests.post(fake.url + url, files={"image": (filename, data, "image/png")}, data=fields, timeout=10)
        assert r.status_code == expected[name]["status"], name
        if r.status_code == 200:
            assert r.json() == expected[name]["json"], name
        else:
            assert r.content == b"", name
    r = requests.post(f"{fake.url}/upload/image", files={"file": ("x.png", a, "image/png")}, timeout=10)
    assert (r.status_code, r.content) == (expected["10_wrong_field_name"]["status"], b"")

    assert (fake.input_dir / "capture_test.png").read_bytes() == a
    assert (fake.input_dir / "capture_test (1).png").read_bytes() == b
    assert (fake.input_dir / "capsub" / "deeper" / "nested.png").is_file()
    assert (fake.temp_dir / "capture_temp.png").is_file()
    assert (fake.output_dir / "uploaded" / "capture_out.png").is_file()
    assert not (fake.root / "escape").exists() and not (fake.input_dir.parent / "escape" / "evil.png").exists()

    choices = requests.get(f"{fake.url}/object_info/LoadImage", timeout=10).json()["LoadImage"]["input"]["required"]
    assert set(capture("b_object_info_LoadImage_after_upload.json")["image_choices"]) - {"example.png"} <= set(
        choices["image"][0])
    assert not any("/" in choice for choice in choices["image"][0])
    client = Client(fake)
    _, messages = client.run(workflow("capsub/capture_sub.png", "upload/sub"))
    assert "execution_success" in types(messages)
    client.close()

    variants = capture("c_view_variants.json")
    assert upload(fake, "capture_test.png", a, overwrite="true").status_code == 200
    out = fake.output_dir / "viewdir"
    out.mkdir(exist_ok=True)
    write_image(out / "frame_00001_.png", np.full((4, 4, 3), 5, np.uint8))
    for name in ("missing_file", "no_type_defaults_to_output", "wrong_type_input", "input_file", "annotated_filename",
                 "traversal", "no_filename", "channel_rgb", "channel_a", "preview_webp"):
        params = dict(variants[name]["params"])
        if params.get("subfolder") == "capture":
            params["subfolder"] = "viewdir"
        r = requests.get(f"{fake.url}/view", params=params, timeout=10)
        assert r.status_code == variants[name]["status"], name
        assert r.headers.get("Content-Type") == variants[name]["content_type"], name
        if r.status_code != 200:
            assert r.content == b"", name
        else:
            assert r.headers["Content-Disposition"] == variants[name]["content_disposition"], name
    view_input = requests.get(f"{fake.url}/view", params={"filename": "capture_test.png", "type": "input"}, timeout=10)
    assert view_input.content == a
    alpha = requests.get(f"{fake.url}/view", params={"filename": "frame_00001_.png", "subfolder": "viewdir",
                                                      "channel": "a"}, timeout=10)
    assert read_png(alpha.content)[..., 3].min() == 255


# ---------------------------------------------------------------------------------------------------------
# WebSocket routing


def test_websocket_handshake_takeover_and_prompts_without_client(fake, tmp_path):
    assert upload(fake, "ws_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 3, np.uint8)),
                  overwrite="true").status_code == 200
    flagged = Client(fake, feature_flags={"supports_preview_metadata": True})
    wanted = capture("c_ws_initial_messages.json")["feature_flags_client_received"]
    assert flagged.first["type"] == "status" and flagged.first["data"]["sid"] == flagged.client_id
    assert flagged.flags_reply == {"type": wanted[1]["type"], "data": wanted[1]["data"]}
    flagged.close()
    anonymous = websocket.create_connection(f"ws://127.0.0.1:{fake.port}/ws", timeout=10)
    sid = json.loads(anonymous.recv())["data"]["sid"]
    assert len(sid) == 32 and int(sid, 16) >= 0

    old = Client(fake, client_id="same-id")
    new = Client(fake, client_id="same-id")
    prompt_id, messages = new.run(workflow("ws_src.png", "ws/dup"))
    assert types(messages)[:3] == ["status", "status", "execution_start"]
    assert old.silent(0.3), "the replaced socket must receive nothing"

    observer = Client(fake)
    custom_id = str(uuid.uuid4())
    r = requests.post(f"{fake.url}/prompt", json={"prompt": workflow("ws_src.png", "ws/noclient"),
                                                  "prompt_id": custom_id}, timeout=10)
    assert r.json()["prompt_id"] == custom_id
    seen = observer.collect(lambda m: m["type"] == "status"
                            and m["data"]["status"]["exec_info"]["queue_remaining"] == 0)
    capture_seen = capture("d_no_client_id_and_custom_prompt_id.json")["messages_seen_by_observer"]
    assert types(seen) == [m["type"] for m in capture_seen]
    assert set(history(fake, custom_id)) == {custom_id}
    also_seen = new.collect(lambda m: m["type"] == "status"
                            and m["data"]["status"]["exec_info"]["queue_remaining"] == 0)
    assert types(also_seen) == types(seen), "a prompt without client_id sends only broadcasts, to everyone"
    assert new.silent(0.2)

    # As in ComfyUI's server.py: when the replaced socket closes, the clientId is dropped, so the socket
    # that took it over stops receiving (a client must not keep two sockets with one clientId).
    old.close()
    time.sleep(0.2)
    new.post(workflow("ws_src.png", "ws/after-close"))
    assert new.silent(0.5)
    new.close()
    observer.close()
    anonymous.close()


# ---------------------------------------------------------------------------------------------------------
# pixels


def test_blur_scale_and_batch_pixels(fake, tmp_path):
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:20, 0:24]
    src = (xx[..., None] * 6 + yy[..., None] * 4 + rng.integers(0, 30, size=(20, 24, 3))).astype(np.uint8)
    assert upload(fake, "pix_src.png", png_bytes(tmp_path, src), overwrite="true").status_code == 200
    client = Client(fake)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "pix_src.png"}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 0.7}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "pix/blur"}},
        "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                       "scale_by": 0.5}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "pix/half"}},
        "6": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                     "width": 48, "height": 40, "crop": "disabled"}},
        "7": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["6", 0]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "pix/batch"}},
    }
    _, messages = client.run(prompt)
    assert "execution_success" in types(messages)
    assert len([m for m in messages if m["type"] == "executed"]) == 3

    # ComfyUI's Blur: 2D gaussian on linspace(-1, 1), reflect padding, conv2d (float32 in torch).
    k = 7
    x, y = np.meshgrid(np.linspace(-1, 1, k, dtype=np.float32), np.linspace(-1, 1, k, dtype=np.float32),
                       indexing="ij")
    d = np.sqrt(x * x + y * y)
    g = np.exp(-(d * d) / (2.0 * 0.7 * 0.7))
    g = g / g.sum()
    img = src.astype(np.float32) / 255.0
    padded = np.pad(img, ((3, 3), (3, 3), (0, 0)), mode="reflect")
    ref = np.zeros_like(img, dtype=np.float64)
    for i in range(k):
        for j in range(k):
            ref += g[i, j] * padded[i:i + 20, j:j + 24]
    ref8 = np.clip(255.0 * ref, 0, 255).astype(np.uint8)
    blurred = read_png(fake.output_dir / "pix" / "blur_00001_.png")
    diff = np.abs(blurred.astype(int) - ref8.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.98
    assert not np.array_equal(blurred, src)

    # nearest-exact: source index floor((dst + 0.5) * in / out)
    half = read_png(fake.output_dir / "pix" / "half_00001_.png")
    assert half.shape == (10, 12, 3)
    assert np.array_equal(half, src[1::2, 1::2])

    batch = [read_png(fake.output_dir / "pix" / f"batch_{n:05}_.png") for n in (1, 2)]
    assert np.array_equal(batch[0], src) and batch[1].shape == src.shape
    assert np.abs(batch[1].astype(int) - src.astype(int)).mean() < 12
    client.close()


def test_multipage_tiff_is_one_batch(fake):
    path = fake.input_dir / "multi.tif"
    out = oiio.ImageOutput.create(str(path))
    specs = [oiio.ImageSpec(6, 4, 3, "uint8")] * 3
    assert out.open(str(path), specs)
    for page in range(3):
        if page:
            assert out.open(str(path), specs[page], "AppendSubimage")
        out.write_image(np.full((4, 6, 3), 40 * (page + 1), np.uint8))
    out.close()
    client = Client(fake)
    _, messages = client.run({
        "1": {"class_type": "LoadImage", "inputs": {"image": "multi.tif"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "multi/frame"}}})
    images = next(m for m in messages if m["type"] == "executed")["data"]["output"]["images"]
    assert [i["filename"] for i in images] == ["frame_00001_.png", "frame_00002_.png", "frame_00003_.png"]
    for page, image in enumerate(images):
        assert read_png(fake.output_dir / "multi" / image["filename"])[0, 0].tolist() == [40 * (page + 1)] * 3
    client.close()


def test_exr_is_not_an_image_for_loadimage(fake):
    path = fake.input_dir / "plate.exr"
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), oiio.ImageSpec(4, 4, 3, "half"))
    out.write_image(np.full((4, 4, 3), 0.5, np.float32))
    out.close()
    client = Client(fake)
    prompt_id, messages = client.run({
        "1": {"class_type": "LoadImage", "inputs": {"image": "plate.exr"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "exr/frame"}}})
    error = next(m for m in messages if m["type"] == "execution_error")["data"]
    assert error["exception_type"] == "PIL.UnidentifiedImageError"
    client.close()


# ---------------------------------------------------------------------------------------------------------
# fault injection


def test_fault_delay_and_stats(clean_faults, tmp_path):
    fake = clean_faults
    assert upload(fake, "delay_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 11, np.uint8)),
                  overwrite="true").status_code == 200
    fake.set_faults(node_delay_s=0.2)
    assert requests.get(f"{fake.url}/__fake__/faults", timeout=10).json() == {"node_delay_s": 0.2}
    before = fake.stats()
    client = Client(fake)
    started = time.monotonic()
    _, messages = client.run(workflow("delay_src.png", f"delay/{uuid.uuid4().hex[:6]}"))
    assert time.monotonic() - started >= 0.6
    assert "execution_success" in types(messages)
    after = fake.stats()
    assert after["prompts_executed"] == before["prompts_executed"] + 1
    assert after["nodes_executed"] - before["nodes_executed"] in (1, 3)  # 1 when LoadImage/Invert were cached
    bad = requests.post(f"{fake.url}/__fake__/faults", json={"no_such_fault": 1}, timeout=10)
    assert bad.status_code == 400 and "no_such_fault" in bad.json()["error"]
    client.close()


def test_fault_fail_node(clean_faults, tmp_path):
    fake = clean_faults
    assert upload(fake, "fail_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 12, np.uint8)),
                  overwrite="true").status_code == 200
    fake.set_faults(fail_node={"class_type": "ImageBlur", "exception_type": "torch.OutOfMemoryError",
                               "message": "CUDA out of memory.", "times": 1})
    client = Client(fake)
    wf = blur_chain("fail_src.png", "fail/frame")
    prompt_id, messages = client.run(wf)
    assert types(messages)[-3:] == ["execution_error", "status", "executing"]
    error = messages[-3]["data"]
    assert (error["node_id"], error["node_type"], error["exception_type"]) == ("b0", "ImageBlur",
                                                                              "torch.OutOfMemoryError")
    assert error["exception_message"].startswith("CUDA out of memory.\nThis error means you ran out of memory")
    assert error["traceback"] and error["executed"] == ["1"]
    assert set(error["current_inputs"]) == {"image", "blur_radius", "sigma"}
    assert history(fake, prompt_id)[prompt_id]["status"]["status_str"] == "error"
    _, again = client.run(blur_chain("fail_src.png", "fail/frame"))  # times=1: the retry succeeds
    assert "execution_success" in types(again)
    assert (fake.output_dir / "fail" / "frame_00001_.png").is_file()
    client.close()


def test_fault_die_on_prompt(fake_comfyui_factory, tmp_path):
    fake = fake_comfyui_factory(faults={"die_on_prompt": 2})
    assert upload(fake, "die_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 13, np.uint8))).status_code == 200
    client = Client(fake)
    _, first = client.run(workflow("die_src.png", "die/one"))
    assert "execution_success" in types(first)
    client.post(workflow("die_src.png", "die/two"))
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        client.collect(lambda m: False, timeout=10)
    assert fake.process.wait(timeout=10) == 1
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fake.url}/queue", timeout=5)
    assert not (fake.output_dir / "die" / "two_00001_.png").exists()
    assert "die_on_prompt" in fake.log_text()


def test_fault_kill_on_prompt_is_what_the_oom_killer_does(fake_comfyui_factory, tmp_path):
    """Linux's out-of-memory killer ends its victim with SIGKILL (mm/oom_kill.c, __oom_kill_process:
    do_send_sig_info(SIGKILL, ...)): no handler runs, nothing is printed, the WebSocket just drops, and the
    process's status is -9 (a shell's 137)."""
    fake = fake_comfyui_factory(faults={"kill_on_prompt": 2})
    assert upload(fake, "kill_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 14, np.uint8))).status_code == 200
    client = Client(fake)
    _, first = client.run(workflow("kill_src.png", "kill/one"))
    assert "execution_success" in types(first)
    client.post(workflow("kill_src.png", "kill/two"))
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        client.collect(lambda m: False, timeout=10)
    assert fake.process.wait(timeout=10) == -9
    assert not (fake.output_dir / "kill" / "two_00001_.png").exists()
    assert "[ComfyUI test double] fault" not in fake.log_text()  # a killed process says nothing


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the resident memory from /proc")
def test_fault_leak_mb_per_prompt_grows_the_resident_memory(fake_comfyui_factory, tmp_path):
    """A ComfyUI that grows over a long API session and never gives the memory back (ComfyUI's own tracker:
    RAM growth per prompt, /free not releasing it): each prompt keeps this much more resident."""
    fake = fake_comfyui_factory(faults={"leak_mb_per_prompt": 30})
    assert upload(fake, "leak_src.png", png_bytes(tmp_path, np.full((8, 8, 3), 15, np.uint8))).status_code == 200
    client = Client(fake)
    before = resident_mb(fake.process.pid)
    for index in range(3):
        assert "execution_success" in types(client.run(workflow("leak_src.png", f"leak/{index}"))[1])
    assert resident_mb(fake.process.pid) - before >= 3 * 30 * 0.9
    requests.post(f"{fake.url}/free", json={"unload_models": True, "free_memory": True}, timeout=10)
    assert resident_mb(fake.process.pid) - before >= 3 * 30 * 0.9  # /free gives none of it back
    client.close()


def test_fault_startup_delay(fake_comfyui_factory):
    started = time.monotonic()
    fake = fake_comfyui_factory(faults={"startup_delay_s": 1.0})
    assert time.monotonic() - started >= 1.0
    log_text = fake.log_text()
    assert log_text.index("startup_delay_s") < log_text.index("To see the GUI go to: http://127.0.0.1:")


def test_fault_refuse_start(tmp_path):
    text = "RuntimeError: Found no NVIDIA driver on your system."
    with pytest.raises(RuntimeError, match="exited with status 1"):
        start_fake_comfyui(tmp_path / "refuse", faults={"refuse_start": text}, timeout_s=10)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COMFYFARM_FAKE_FAULTS": json.dumps({"refuse_start": text})}
    done = subprocess.run([sys.executable, "-m", "tests.doubles.comfyui", "--port", str(port)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.rstrip("\n").endswith(text) and "Traceback" in done.stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/system_stats", timeout=2)


def test_fault_no_gpu_is_comfyuis_start_on_a_cpu_build_of_torch(tmp_path):
    """ComfyUI 0.3.64 without --cpu where torch has no CUDA: comfy/model_management.py (line 237 at a125cd84)
    computes total_vram from torch.cuda.current_device() at import, which raises in a CPU build of torch."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COMFYFARM_FAKE_FAULTS": json.dumps({"no_gpu": True})}
    done = subprocess.run([sys.executable, "-m", "tests.doubles.comfyui", "--port", str(free_port())], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "AssertionError: Torch not compiled with CUDA enabled"
    assert "total_vram = get_total_memory(get_torch_device())" in done.stderr
    fake = start_fake_comfyui(tmp_path / "cpu", faults={"no_gpu": True}, extra_args=["--cpu"], timeout_s=20)
    try:
        (device,) = requests.get(f"{fake.url}/system_stats", timeout=10).json()["devices"]
        assert device["type"] == "cpu"
    finally:
        fake.stop()


def test_the_torch_stand_in_counts_the_gpus_as_torch_would(tmp_path):
    root = make_fake_comfyui_dir(tmp_path / "ComfyUI")
    probe = ("import torch; print(torch.cuda.is_available(), torch.cuda.device_count(), "
             "torch.backends.mps.is_available())")
    env = {key: value for key, value in os.environ.items() if key not in ("CUDA_VISIBLE_DEVICES", FAULTS)}
    for extra, answer in (({}, "True 1 False"), ({FAULTS: '{"gpu_count": 4}'}, "True 4 False"),
                          ({FAULTS: '{"gpu_count": 4}', "CUDA_VISIBLE_DEVICES": "2,3"}, "True 2 False"),
                          ({"CUDA_VISIBLE_DEVICES": "-1"}, "False 0 False"),
                          ({FAULTS: '{"no_gpu": true}'}, "False 0 False")):
        done = subprocess.run([sys.executable, "-c", probe], cwd=root, env={**env, **extra}, capture_output=True,
                              text=True, timeout=30)
        assert done.stdout.strip() == answer, (extra, done.stderr)


def test_command_line_is_comfyuis(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("COMFYFARM_FAKE_FAULTS", None)
    for args, message in ((["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
                          (["--cpu", "--lowvram"], "not allowed with argument"),
                          (["--user-directory", str(tmp_path / "missing")], "does not exist")):
        done = subprocess.run([sys.executable, "-m", "tests.doubles.comfyui", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, args
        assert message in done.stderr and done.stderr.startswith("usage: main.py"), args


def test_fake_comfyui_dir_runs_like_a_checkout(tmp_path):
    root = make_fake_comfyui_dir(tmp_path / "ComfyUI")
    assert {p.name for p in root.iterdir()} >= {"main.py", "input", "output", "temp"}
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COMFYFARM_FAKE_FAULTS")}
    log_path = tmp_path / "log.txt"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(port),
                                    "--cuda-device", "3", "--lowvram", "--disable-auto-launch"],
                                   cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        stats = None
        for _ in range(200):
            try:
                stats = requests.get(f"http://127.0.0.1:{port}/system_stats", timeout=1).json()
                break
            except requests.ConnectionError:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.05)
        assert stats is not None, log_path.read_text()
        assert stats["system"]["argv"][0] == "main.py"
        assert "CUDA_VISIBLE_DEVICES=3" in stats["devices"][0]["name"]
        write_image(root / "input" / "src.png", np.full((4, 4, 3), 250, np.uint8))
        fake = FakeComfyUI(url=f"http://127.0.0.1:{port}", port=port, root=root, input_dir=root / "input",
                           output_dir=root / "output", temp_dir=root / "temp", process=process, log_path=log_path)
        client = Client(fake)
        _, messages = client.run(workflow("src.png", "dir/frame") | {
            "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
        previews = [m["data"]["output"]["images"][0] for m in messages
                    if m["type"] == "executed" and m["data"]["node"] == "4"]
        assert previews[0]["type"] == "temp" and previews[0]["filename"].startswith("ComfyUI_temp_")
        assert (root / "temp" / previews[0]["filename"]).is_file()
        assert read_png(root / "output" / "dir" / "frame_00001_.png")[0, 0].tolist() == [4, 4, 4]  # not 5
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "Set cuda device to: 3" in log_path.read_text()


def test_fixture_gives_a_running_double(fake_comfyui):
    assert requests.get(f"{fake_comfyui.url}/system_stats", timeout=5).status_code == 200
    assert fake_comfyui.input_dir.is_dir() and fake_comfyui.temp_dir == fake_comfyui.root / "temp"
    assert fake_comfyui.stats()["prompts_executed"] == 0
