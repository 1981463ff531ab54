from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.recorded import CAPTURES, OBJECT_INFO

REPO = Path(__file__).resolve().parents[2]


def comfyfarm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flame_submitter.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_shipped_workflows_pass_against_recorded_definitions() -> None:
    packages = sorted(str(p.parent) for p in (REPO / "workflows").glob("*/workflow.yaml"))
    result = comfyfarm("validate", *packages, "--object-info", str(OBJECT_INFO))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"{len(packages)} package(s) checked against {OBJECT_INFO}: 0 problem(s)" in result.stderr


def test_broken_package_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(REPO / "workflows" / "invert", broken)
    graph = json.loads((broken / "workflow.json").read_text())
    graph["2"]["class_type"] = "ImageInvertt"
    graph["3"]["inputs"]["images"] = ["7", 0]
    graph["4"] = {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "sigma": 1.0}}
    (broken / "workflow.json").write_text(json.dumps(graph))
    definitions = tmp_path / "object_info.json"
    capture = CAPTURES
    answer = {}
    for name in ("LoadImage", "ImageBlur", "SaveImage"):
        path = capture / f"a_object_info_{name}.json"
        answer.update(json.loads(path.read_text())["json"])
    definitions.write_text(json.dumps(answer))
    allow = tmp_path / "allow.txt"
    allow.write_text("# core only\nLoadImage\nImageInvert\nSaveImage\n")

    result = comfyfarm("validate", str(broken), "--object-info", str(definitions), "--allow-nodes", str(allow))

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{broken}: node 3 (SaveImage) input 'images': links to node 7, which does not exist [dangling_link]",
        f"{broken}: node 2 (ImageInvertt): class 'ImageInvertt' is not in the allow-list [node_not_allowed]",
        f"{broken}: node 4 (ImageBlur): class 'ImageBlur' is not in the allow-list [node_not_allowed]",
        f"{broken}: required node class 'ImageInvert' is not installed (not in {definitions}): install the pack "
        "that provides it [missing_node_class]",
        f"{broken}: node 2 (ImageInvertt): class 'ImageInvertt' is not a node ComfyUI knows (not in {definitions}): "
        "install its pack or fix the name [unknown_class]",
        f"{broken}: node 4 (ImageBlur) input 'blur_radius': required input is missing (type INT) "
        "[required_input_missing]",
    ]
    assert "1 package(s) checked" in result.stderr


def test_missing_definitions_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = comfyfarm("validate", str(REPO / "workflows" / "invert"), "--object-info", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert f"{tmp_path / 'nope'}: no such file or folder for --object-info" in result.stderr


def test_unreachable_comfyui_is_a_usage_error() -> None:
    result = comfyfarm("validate", str(REPO / "workflows" / "invert"), "--comfyui-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "ComfyUI is not reachable at http://127.0.0.1:9 (connection refused): start it" in result.stderr
