"""Which path a job's frames take through ComfyUI, and the graph bound to it.

**Full precision** where it can: a workflow built on core ``LoadImage`` → … → ``SaveImage`` gets comfyfarm's
``ComfyFarmLoadFrames`` and ``ComfyFarmSaveFrames`` in their place (farm_plugin/ComfyUINodes/comfyfarm_frames:
float32 frame files with alpha, nothing clamped), with no edit to the package. That needs a ComfyUI that has
the nodes (its ``/object_info`` says so) and that reads and writes this machine's files (it answers on the
loopback address: the one the runner, run-local or the Deadline plugin started here). **8-bit** otherwise,
through the core nodes and ``/upload/image`` and ``/view``: a ComfyUI attached by another address, one
without the nodes, or a sequence workflow (its windows and cross-fades are not on the full-precision path
yet). ``choose_path`` says which, and why, in one line for the log and the task's status.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Sequence
from urllib.parse import urlsplit

from farm_plugin.jobrecord import WorkflowSpec

LOADER = "ComfyFarmLoadFrames"
SAVER = "ComfyFarmSaveFrames"
CORE_LOADER = "LoadImage"
CORE_SAVER = "SaveImage"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PASS_NAME = "rgba"
OFF = "8-bit path: comfyfarm's frame nodes are turned off for this run"

__all__ = ["LOADER", "OFF", "SAVER", "FramePath", "bind_frame_nodes", "choose_path"]


@dataclass(frozen=True)
class FramePath:
    """``full_precision`` or not, and the one line that says so."""

    full_precision: bool
    reason: str


def choose_path(workflow: WorkflowSpec, url: str, classes: Dict[str, Any]) -> FramePath:
    """The path for ``workflow`` on the ComfyUI at ``url`` whose ``/object_info`` answers ``classes``
    (class name → definition, only the two frame nodes need be asked)."""
    graph = workflow.graph
    loader = graph.get(workflow.input_node, {}).get("class_type")
    saver = graph.get(workflow.output_node, {}).get("class_type")
    if workflow.mode == "sequence":
        return FramePath(False, "8-bit path: sequence workflows do not take comfyfarm's frame nodes yet")
    if (loader, saver) != (CORE_LOADER, CORE_SAVER):
        return FramePath(False, f"8-bit path: the workflow loads with {loader} and saves with {saver}, not "
                                f"{CORE_LOADER} and {CORE_SAVER}")
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        return FramePath(False, f"8-bit path: the ComfyUI at {url} is not on this machine, so it cannot read "
                                "comfyfarm's frame files: values are clipped to 0..1 and alpha is dropped")
    missing = [name for name in (LOADER, SAVER) if name not in classes]
    if missing:
        return FramePath(False, f"8-bit path: the ComfyUI at {url} lacks comfyfarm's frame nodes "
                                f"({', '.join(missing)}): values are clipped to 0..1 and alpha is dropped; start it "
                                "with comfyfarm's custom-nodes folder (farm_plugin/ComfyUINodes) to keep float and "
                                "alpha")
    return FramePath(True, "full precision: float frames with alpha through comfyfarm's frame nodes")


def bind_frame_nodes(workflow: WorkflowSpec, frame_files: Sequence[str], directory: str, prefix: str
                     ) -> Dict[str, Any]:
    """``workflow``'s graph with comfyfarm's loader reading ``frame_files`` (in batch order) in place of its
    ``LoadImage`` and comfyfarm's saver writing ``<directory>/<prefix>.rgba.<index>.npy`` in place of its
    ``SaveImage``. Every link to or from those nodes stays: the loader's outputs are LoadImage's (IMAGE,
    MASK), the saver takes SaveImage's ``images``."""
    graph = copy.deepcopy(workflow.graph)
    loader = graph[workflow.input_node]
    loader["class_type"] = LOADER
    loader["inputs"] = {"frames": "\n".join(frame_files)}
    saver = graph[workflow.output_node]
    saver["class_type"] = SAVER
    saver["inputs"] = {"images": saver["inputs"]["images"], "directory": directory, "prefix": prefix,
                       "pass_name": PASS_NAME}
    return graph
