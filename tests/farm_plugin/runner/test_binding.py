"""Which path frames take through ComfyUI (full precision or 8-bit), and the graph bound to each."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm_plugin.runner.binding import LOADER, SAVER, bind_frame_nodes, choose_path
from tests.farm_plugin.runner.conftest import make_record

NODES = {LOADER: {}, SAVER: {}}


def test_a_local_comfyui_with_the_nodes_takes_full_precision() -> None:
    workflow = make_record("/p.####.exr", "/o.####.exr", "blur").workflow
    for url in ("http://127.0.0.1:8188", "http://localhost:9000", "http://[::1]:8188"):
        path = choose_path(workflow, url, NODES)
        assert path.full_precision and path.reason == ("full precision: float frames with alpha through comfyfarm's "
                                                       "frame nodes")


@pytest.mark.parametrize(("workflow", "url", "classes", "reason"), [
    ("blur", "http://render07:8188", NODES, "8-bit path: the ComfyUI at http://render07:8188 is not on this machine, "
     "so it cannot read comfyfarm's frame files: values are clipped to 0..1 and quantised to 8 bits, and the plate's "
     "alpha is dropped"),
    ("blur", "http://127.0.0.1:8188", {LOADER: {}}, "8-bit path: the ComfyUI at http://127.0.0.1:8188 lacks "
     "comfyfarm's frame nodes (ComfyFarmSaveFrames): values are clipped to 0..1 and quantised to 8 bits, and the "
     "plate's alpha is dropped; start it with comfyfarm's custom-nodes folder (farm_plugin/ComfyUINodes) to keep "
     "float and alpha"),
])
def test_the_8_bit_path_says_why(workflow: str, url: str, classes: dict, reason: str) -> None:
    path = choose_path(make_record("/p.####.exr", "/o.####.exr", workflow).workflow, url, classes)
    assert not path.full_precision and path.reason == reason


def test_a_workflow_that_does_not_load_and_save_with_the_core_nodes_keeps_its_own() -> None:
    workflow = make_record("/p.####.exr", "/o.####.exr", "invert").workflow
    workflow.graph[workflow.passes[0].node]["class_type"] = "PreviewImage"
    path = choose_path(workflow, "http://127.0.0.1:8188", NODES)
    assert path.reason == "8-bit path: the workflow loads with LoadImage and saves with PreviewImage, not LoadImage " \
                          "and SaveImage"


def test_binding_keeps_every_link_and_changes_nothing_else(tmp_path: Path) -> None:
    workflow = make_record("/p.####.exr", "/o.####.exr", "blur", radius=3).workflow
    graph = bind_frame_nodes(workflow, ["/s/a.00000.npy", "/s/a.00001.npy"], "/scratch/results", "1001-1002")
    loader, saver = graph[workflow.input_node], graph[workflow.passes[0].node]
    assert loader == {**workflow.graph[workflow.input_node], "class_type": LOADER,
                      "inputs": {"frames": "/s/a.00000.npy\n/s/a.00001.npy"}}
    assert saver["class_type"] == SAVER and saver["inputs"] == {
        "images": workflow.graph[workflow.passes[0].node]["inputs"]["images"], "directory": "/scratch/results",
        "prefix": "1001-1002", "pass_name": "result"}
    others = {node: spec for node, spec in graph.items() if node not in (workflow.input_node, workflow.passes[0].node)}
    assert others == {node: spec for node, spec in workflow.graph.items()
                      if node not in (workflow.input_node, workflow.passes[0].node)}
    assert workflow.graph[workflow.input_node]["class_type"] == "LoadImage"  # the record's graph is untouched
