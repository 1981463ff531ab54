"""Which path a job's frames take through ComfyUI, and the graph bound to it.

**Full precision** where it can: a workflow built on core ``LoadImage`` → … → ``SaveImage`` gets comfyfarm's
``ComfyFarmLoadFrames`` and ``ComfyFarmSaveFrames`` in their place (farm_plugin/ComfyUINodes/comfyfarm_frames:
float32 frame files with alpha, nothing clamped), with no edit to the package. That needs a ComfyUI that has
the nodes (its ``/object_info`` says so) and that reads and writes this machine's files (it answers on the
loopback address: the one the runner, run-local or the Deadline plugin started here). **8-bit** otherwise,
through the core nodes and ``/upload/image`` and ``/view``: a ComfyUI attached by another address, or one
without the nodes. A sequence workflow's window is one batch either way: the loader reads the window's frame
files in order (8-bit: a multi-page TIFF). ``choose_path`` says which, and why, in one line for the log and
the task's status.
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
LOSSES = "values are clipped to 0..1 and quantised to 8 bits, and the plate's alpha is dropped"
OFF = "8-bit path: comfyfarm's frame nodes are turned off for this run"

__all__ = ["LOADER", "OFF", "SAVER", "FramePath", "bind_core_nodes", "bind_frame_nodes", "choose_path"]


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
    savers = sorted({graph.get(spec.node, {}).get("class_type") or "?" for spec in workflow.passes})
    if loader != CORE_LOADER or savers != [CORE_SAVER]:
        return FramePath(False, f"8-bit path: the workflow loads with {loader} and saves with {', '.join(savers)}, "
                                f"not {CORE_LOADER} and {CORE_SAVER}")
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        return FramePath(False, f"8-bit path: the ComfyUI at {url} is not on this machine, so it cannot read "
                                f"comfyfarm's frame files: {LOSSES}")
    missing = [name for name in (LOADER, SAVER) if name not in classes]
    if missing:
        return FramePath(False, f"8-bit path: the ComfyUI at {url} lacks comfyfarm's frame nodes "
                                f"({', '.join(missing)}): {LOSSES}; start it with comfyfarm's custom-nodes folder "
                                "(farm_plugin/ComfyUINodes) to keep float and alpha")
    return FramePath(True, "full precision: float frames with alpha through comfyfarm's frame nodes")


def bind_frame_nodes(workflow: WorkflowSpec, frame_files: Sequence[str], directory: str, prefix: str
                     ) -> Dict[str, Any]:
    """``workflow``'s graph with comfyfarm's loader reading ``frame_files`` (in batch order) in place of its
    ``LoadImage`` and, for each pass, comfyfarm's saver writing ``<directory>/<prefix>.<pass>.<index>.npy``
    in place of its ``SaveImage``, with the pass's alpha (a MASK) as its ``mask``. Every link to or from
    those nodes stays: the loader's outputs are LoadImage's (IMAGE, MASK), the saver takes SaveImage's
    ``images``."""
    graph = copy.deepcopy(workflow.graph)
    loader = graph[workflow.input_node]
    loader["class_type"] = LOADER
    loader["inputs"] = {"frames": "\n".join(frame_files)}
    for spec in workflow.passes:
        saver = graph[spec.node]
        saver["class_type"] = SAVER
        saver["inputs"] = {"images": saver["inputs"]["images"], "directory": directory, "prefix": prefix,
                           "pass_name": spec.name}
        if spec.alpha is not None:
            saver["inputs"]["mask"] = [spec.alpha[0], spec.alpha[1]]
    return graph


def bind_core_nodes(workflow: WorkflowSpec, image: str, prefix: str) -> Dict[str, Any]:
    """``workflow``'s graph for the 8-bit path: its loader reads the uploaded ``image``, each pass's
    ``SaveImage`` writes under ``<prefix>.<pass>`` (a fresh prefix per attempt: ComfyUI always writes a new
    file, never serves a stale cached one), and a pass with an alpha saves RGBA: its images joined with the
    alpha by core ``JoinImageWithAlpha``, which takes a ComfyUI mask (1 - alpha), hence the ``InvertMask``."""
    graph = copy.deepcopy(workflow.graph)
    graph[workflow.input_node]["inputs"][workflow.input_name] = image
    for spec in workflow.passes:
        saver = graph[spec.node]
        if spec.prefix_input:
            saver["inputs"][spec.prefix_input] = f"{prefix}.{spec.name}"
        if spec.alpha is None:
            continue
        invert, join = f"comfyfarm_{spec.name}_invert_alpha", f"comfyfarm_{spec.name}_with_alpha"
        graph[invert] = {"class_type": "InvertMask", "inputs": {"mask": [spec.alpha[0], spec.alpha[1]]}}
        graph[join] = {"class_type": "JoinImageWithAlpha",
                       "inputs": {"image": saver["inputs"]["images"], "alpha": [invert, 0]}}
        saver["inputs"]["images"] = [join, 0]
    return graph
