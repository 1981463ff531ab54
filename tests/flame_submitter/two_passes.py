"""A several-pass job for the workstation side's tests: ``workflows/invert`` with a second SaveImage node bound as
a second pass, and a job of it finished the way the farm finishes one (frames written at each pass's pattern,
real EXRs with timecode, or with ``exr_layers`` one EXR per frame holding both passes as the farm names its
channels; the completion record built by the farm's own ``build_completion``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence

import numpy as np
import yaml

from farm_plugin.completion.record import CompletionRecord, build_completion
from farm_plugin.frames.image_io import timecode_bcd, write_frame
from farm_plugin.frames.layers import layer_channel_names
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import (
    JobRecord,
    OutputSpec,
    RelinkIdentity,
    SourceSpec,
    WorkflowSpec,
    layered,
    pass_patterns,
)
from farm_plugin.workflow.package import WorkflowPackage, load_package
from farm_plugin.workflow.params import apply_parameters
from flame_submitter.cli.demo_plate import frame_timecode

REPO = Path(__file__).resolve().parents[2]
PASSES = ("inverted", "original")
FRAMES = tuple(range(1001, 1025))


def two_pass_package(folder: Path) -> Path:
    """``folder`` (named ``invert``, title Invert): node 3 saves the inverted frame as the pass ``inverted``, a
    new node 4 the frame as it came in as the pass ``original``."""
    shutil.copytree(REPO / "workflows" / "invert", folder)
    graph = json.loads((folder / "workflow.json").read_text())
    graph["4"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "comfyfarm/original"}}
    (folder / "workflow.json").write_text(json.dumps(graph, indent=2))
    manifest = yaml.safe_load((folder / "workflow.yaml").read_text())
    del manifest["output"]
    manifest["outputs"] = {"inverted": {"node": "3", "input": "filename_prefix"},
                           "original": {"node": "4", "input": "filename_prefix"}}
    (folder / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def job_record(package: WorkflowPackage, output_pattern: str, *, frames: Sequence[int] = FRAMES,
               job_id: str = "20261124-120000_sh010_plate_invert_beef", exr_layers: bool = False) -> JobRecord:
    return JobRecord(job_id=job_id, name="sh010_plate - Invert",
                     workflow=WorkflowSpec.from_package(package, apply_parameters(package, {}), {}),
                     source=SourceSpec("/plates/sh010_plate.####.exr", tuple(frames), fps=24.0,
                                       timecode="01:00:00:00"),
                     output=OutputSpec(output_pattern, exr_layers=exr_layers),
                     relink=RelinkIdentity(project="show_2026", clip_name="sh010_plate", user="ann"))


def write_frames(pattern_path: str, frames: Iterable[int], value: float = 0.5,
                 layers: Sequence[str] = ()) -> None:
    """Real EXRs at ``pattern_path`` (``####``), 16x9, with the SMPTE timecode of 01:00:00:00 + index @ 24 fps;
    with ``layers`` (pass names) RGB for each, as the layers of one file (``R, G, B, <pass>.R, …``)."""
    names = layer_channel_names([(name, 3) for name in layers]) if layers else None
    for index, frame in enumerate(frames):
        path = Path(FramePattern.parse(pattern_path).path(frame))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_frame(path, np.full((9, 16, 3 * max(1, len(layers))), value, np.float32), file_format="exr",
                    metadata={"smpte:TimeCode": [timecode_bcd(frame_timecode(index, 24)), 0],
                              "FramesPerSecond": (24, 1)}, channel_names=names)


def render_passes(record: JobRecord, rendered: Optional[Dict[str, Sequence[int]]] = None) -> None:
    """Write every pass of ``record`` where the farm writes it (``rendered``: the frames of a pass, if not all; for
    a job with ``exr_layers``, of the one file holding every pass)."""
    if layered(record):
        pattern = record.output.pattern
        frames = (rendered or {}).get("all", record.source.frames)
        write_frames(pattern, frames, 0.5, layers=[spec.name for spec in record.workflow.passes])
        return
    for name, pattern in pass_patterns(record).items():
        frames = (rendered or {}).get(name, record.source.frames)
        write_frames(pattern.to_hashes(), frames, 0.5 if name == "inverted" else 0.25)


def finished_job(tmp_path: Path, *, job_id: str = "job2", rendered: Optional[Dict[str, Sequence[int]]] = None,
                 package: Optional[WorkflowPackage] = None, exr_layers: bool = False) -> CompletionRecord:
    """A two-pass job of sh010_plate, rendered into ``tmp_path/renders/<job_id>/``, as its completion record."""
    package = package or load_package(two_pass_package(tmp_path / "invert")
                                      if not (tmp_path / "invert").exists() else tmp_path / "invert")
    record = job_record(package, str(tmp_path / "renders" / job_id / "sh010_plate.####.exr"), exr_layers=exr_layers)
    render_passes(record, rendered)
    return build_completion(record, deadline_job_id=job_id, job_failed=False)
