"""Named passes: the manifest's ``outputs:``, the job record's passes, their patterns, and their binding."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, OutputSpec, PassSpec, SourceSpec, WorkflowSpec, pass_patterns
from farm_plugin.runner.binding import SAVER, bind_core_nodes, bind_frame_nodes
from farm_plugin.workflow.object_info import load_definitions
from farm_plugin.workflow.package import Link, OutputBinding, WorkflowPackageError, load_package
from farm_plugin.workflow.validate import validate_package
from tests.recorded import OBJECT_INFO

KEYED = {"keyed": {"node": "3", "input": "filename_prefix", "alpha": {"node": "5", "output": 0}},
         "plate": {"node": "4", "input": "filename_prefix"}}


def keyed_graph(graph: Dict[str, Any]) -> None:
    """invert's graph plus a second saver of the plate and a matte (the red channel) for the first."""
    graph["4"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfarm/plate"}}
    graph["5"] = {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}}


def with_outputs(outputs: Any) -> Callable[[Dict[str, Any]], None]:
    def edit(manifest: Dict[str, Any]) -> None:
        manifest.pop("output")
        manifest["outputs"] = outputs
    return edit


def test_named_passes_in_the_manifests_order_with_their_alpha(make_package) -> None:
    package = load_package(make_package("invert", graph_edit=keyed_graph, manifest_edit=with_outputs(KEYED)))
    assert package.outputs == (OutputBinding(node="3", input="filename_prefix", name="keyed", alpha=Link("5", 0)),
                               OutputBinding(node="4", input="filename_prefix", name="plate"))
    assert package.output.name == "keyed"
    spec = WorkflowSpec.from_package(package, package.graph, {})
    assert spec.passes == (PassSpec("keyed", "3", "filename_prefix", ("5", 0)),
                           PassSpec("plate", "4", "filename_prefix"))
    assert validate_package(package, load_definitions([OBJECT_INFO / "core.json"])) == []


def test_one_output_is_one_pass_named_result() -> None:
    package = load_package(Path(__file__).resolve().parents[3] / "workflows" / "invert")
    assert [(o.name, o.node, o.alpha) for o in package.outputs] == [("result", "3", None)]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.update(outputs={"a": {"node": "3"}}), "outputs: give either output: (one result) or outputs: (named "
     "passes), and only one of them"),
    (lambda m: m.pop("output"), "outputs: give either output: (one result) or outputs: (named passes), and only one "
     "of them"),
    (with_outputs({}), 'outputs: names no pass: give at least one, e.g. depth: {node: "4"}'),
    (with_outputs({"Depth Map": {"node": "3"}}), "outputs.Depth Map: 'Depth Map' is not a pass name: use lower-case "
     "letters, digits, _ and - (up to 32, starting with a letter), e.g. depth, normals, matte"),
    (with_outputs({"a": {"node": "3"}, "b": {"node": "3"}}), "outputs: passes a, b are all saved by node 3: give "
     "each pass its own save node"),
    (with_outputs({"a": {"node": "3", "alpha": {"node": "1", "output": -1}}}), "outputs.a.alpha.output: expected the "
     "index of the node's MASK output (0, 1, …), got -1"),
    (with_outputs({"a": {"node": "3", "alpha": "1"}}), "outputs.a.alpha: expected a mapping (key: value lines), "
     "got str"),
])
def test_manifest_mistakes_name_the_key_and_the_fix(make_package, edit, message: str) -> None:
    folder = make_package("invert", manifest_edit=edit)
    with pytest.raises(WorkflowPackageError, match=re.escape(f"{folder / 'workflow.yaml'}: {message}")):
        load_package(folder)


def test_a_sequence_workflow_writes_one_pass(make_package) -> None:
    folder = make_package("sequence_invert", manifest_edit=with_outputs({"a": {"node": "3"}, "b": {"node": "4"}}))
    with pytest.raises(WorkflowPackageError, match="outputs: a sequence workflow writes one pass in this comfyfarm, "
                                                   "not 2: keep one, or make the workflow per_frame"):
        load_package(folder)


def test_the_validator_checks_the_alpha_the_pass_names_and_unbound_savers(make_package) -> None:
    def graph_edit(graph: Dict[str, Any]) -> None:
        keyed_graph(graph)
        graph["3"] = {"class_type": "ComfyFarmSaveFrames", "inputs": {
            "images": ["2", 0], "directory": "/x", "prefix": "f", "pass_name": "beauty"}}
        graph["6"] = {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "stray"}}

    folder = make_package("invert", graph_edit=graph_edit, manifest_edit=with_outputs({
        "keyed": {"node": "3", "alpha": {"node": "2", "output": 0}},
        "plate": {"node": "4", "alpha": {"node": "9"}}}))
    definitions = load_definitions([OBJECT_INFO / "core.json", OBJECT_INFO / "comfyfarm_frames.json"])
    assert [str(p).split(": ", 1)[1] for p in validate_package(load_package(folder), definitions)] == [
        "node 3 (ComfyFarmSaveFrames) input 'pass_name': saves the pass 'beauty', which the manifest does not "
        "declare (it binds this node to the pass 'keyed'): name them alike [bad_binding]",
        "output plate: its alpha comes from node 9, which is not a node of workflow.json [bad_binding]",
        "node 6 (SaveImage): saves images that no pass of the manifest binds: ComfyUI would compute them and "
        "comfyfarm would not deliver them; add the node to outputs: or remove it [unbound_output]",
        "node 2 (ImageInvert): output keyed: its alpha must be a MASK, and output 0 of node 2 is IMAGE: give the "
        "index of a MASK output [bad_binding]",
    ]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("/o/sh010.####.exr", "/o/sh010_depth.####.exr"),
    ("/o/sh010_####.exr", "/o/sh010_depth_####.exr"),
    ("/o/sh010-%04d.dpx", "/o/sh010_depth-####.dpx"),
    ("/o/sh010####.exr", "/o/sh010_depth####.exr"),
    ("/o/####.exr", "/o/depth.####.exr"),
    ("/o/.####.exr", "/o/depth.####.exr"),
    ("sh010.$F4.tif", "sh010_depth.####.tif"),
])
def test_each_pass_has_its_own_sequence_beside_the_jobs(pattern: str, expected: str) -> None:
    assert FramePattern.parse(pattern).for_pass("depth").to_hashes() == expected


def record_with(passes: tuple) -> JobRecord:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
             "2": {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}},
             "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}}}
    workflow = WorkflowSpec(name="w", title="W", mode="per_frame", graph=graph, input_node="1", input_name="image",
                            passes=passes)
    return JobRecord(job_id="j", name="j", workflow=workflow, source=SourceSpec("/p.####.exr", (1, 2)),
                     output=OutputSpec("/o/sh010.####.exr"))


def test_pass_patterns_keep_a_one_pass_jobs_pattern() -> None:
    one = record_with((PassSpec("result", "3", "filename_prefix"),))
    assert {k: v.to_hashes() for k, v in pass_patterns(one).items()} == {"result": "/o/sh010.####.exr"}
    two = record_with((PassSpec("keyed", "3", "filename_prefix", ("2", 0)), PassSpec("plate", "4")))
    assert {k: v.to_hashes() for k, v in pass_patterns(two, "/farm/sh010.####.exr").items()} == {
        "keyed": "/farm/sh010_keyed.####.exr", "plate": "/farm/sh010_plate.####.exr"}


def test_a_schema_1_record_reads_as_one_pass(tmp_path: Path) -> None:
    data = record_with((PassSpec("result", "3", "filename_prefix"),)).to_dict()
    data["schema"] = 1
    workflow = data["workflow"]
    workflow.pop("passes")
    workflow.update(output_node="3", output_prefix_input="filename_prefix")
    (tmp_path / "job.json").write_text(json.dumps(data))
    again = JobRecord.from_dict(json.loads((tmp_path / "job.json").read_text()))
    assert again.workflow.passes == (PassSpec("result", "3", "filename_prefix"),)


def test_passes_and_alpha_survive_the_round_trip(tmp_path: Path) -> None:
    record = record_with((PassSpec("keyed", "3", "filename_prefix", ("2", 0)), PassSpec("plate", "4")))
    path = record.write(tmp_path / "job.json")
    assert JobRecord.from_dict(json.loads(path.read_text())) == record


def test_full_precision_binds_a_saver_per_pass_with_its_mask() -> None:
    record = record_with((PassSpec("keyed", "3", "filename_prefix", ("2", 0)), PassSpec("plate", "4")))
    graph = bind_frame_nodes(record.workflow, ["/s/a.npy"], "/r", "1001")
    assert graph["3"] == {"class_type": SAVER, "inputs": {"images": ["1", 0], "directory": "/r", "prefix": "1001",
                                                          "pass_name": "keyed", "mask": ["2", 0]}}
    assert graph["4"] == {"class_type": SAVER, "inputs": {"images": ["1", 0], "directory": "/r", "prefix": "1001",
                                                          "pass_name": "plate"}}


def test_the_8_bit_path_joins_the_alpha_with_core_nodes() -> None:
    record = record_with((PassSpec("keyed", "3", "filename_prefix", ("2", 0)), PassSpec("plate", "4")))
    graph = bind_core_nodes(record.workflow, "comfyfarm/j/up.png", "comfyfarm/j/try/1001")
    assert graph["1"]["inputs"] == {"image": "comfyfarm/j/up.png"}
    assert graph["comfyfarm_keyed_invert_alpha"] == {"class_type": "InvertMask", "inputs": {"mask": ["2", 0]}}
    assert graph["comfyfarm_keyed_with_alpha"] == {"class_type": "JoinImageWithAlpha", "inputs": {
        "image": ["1", 0], "alpha": ["comfyfarm_keyed_invert_alpha", 0]}}
    assert graph["3"]["inputs"] == {"images": ["comfyfarm_keyed_with_alpha", 0],
                                    "filename_prefix": "comfyfarm/j/try/1001.keyed"}
    assert graph["4"]["inputs"] == {"images": ["1", 0], "filename_prefix": "b"}  # no file-name input bound
