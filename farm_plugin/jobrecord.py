"""The job record: ``jobs/<job>/job.json``, everything a task needs, written once and read by every chunk.

It holds the resolved workflow (graph with the artist's parameters applied), the source frames, the
output pattern and format, the colour and metadata policy, and the relink identity. Its ``schema`` says
which comfyfarm can read it, and ``created_by`` which comfyfarm wrote it: a worker refuses a schema outside
``OLDEST_READABLE_SCHEMA..SCHEMA_VERSION`` with both versions and the fix in the message (the Deadline
plugin, which cannot import this module, applies the same rule: ``JOB_RECORD_SCHEMAS`` in ComfyUI.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from farm_plugin import __version__
from farm_plugin.atomic import write_text_atomic
from farm_plugin.errors import BadInput
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.frames.retime import Retime
from farm_plugin.workflow.graph import Graph
from farm_plugin.workflow.package import DEFAULT_PASS, SequenceSettings, WorkflowPackage

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 3: exr_layers, vram_gb, data passes; 2: the workflow's named passes (1: one output node)
OLDEST_READABLE_SCHEMA = 1


class JobRecordError(BadInput):
    """A job record cannot be read or written: the message names the file and the fix."""


@dataclass(frozen=True)
class SourceSpec:
    """The plate: a frame pattern and the frames to process, with what Flame knows about it."""

    pattern: str
    frames: Tuple[int, ...]
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    timecode: Optional[str] = None
    colourspace: Optional[str] = None


@dataclass(frozen=True)
class OutputSpec:
    """Where results go: a frame pattern (source frame numbers), and a file format (None: the source's).
    ``exr_layers``: a several-pass job writes its passes as the layers of one EXR per frame at ``pattern``
    (``farm_plugin.frames.layers``) instead of one sequence per pass."""

    pattern: str
    file_format: Optional[str] = None
    exr_layers: bool = False


@dataclass(frozen=True)
class ColourSpec:
    """OCIO config and colour spaces; ``None`` spaces are chosen from the plate (see frames.colour)."""

    config: str = "ocio://default"
    plate_space: Optional[str] = None
    working_space: Optional[str] = None
    carry_metadata: bool = True


@dataclass(frozen=True)
class PassSpec:
    """One pass the job writes: its name, the node that saves it (and that node's file-name input), and the
    ``(node, output)`` of the MASK that becomes its alpha, if the workflow gives one."""

    name: str
    node: str
    prefix_input: Optional[str] = None
    alpha: Optional[Tuple[str, int]] = None
    data: bool = False  # values (depth, normals, AO), written without the colour conversion

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PassSpec:
        alpha = data.get("alpha")
        return cls(name=str(data["name"]), node=str(data["node"]), prefix_input=data.get("prefix_input"),
                   alpha=(str(alpha[0]), int(alpha[1])) if alpha else None, data=bool(data.get("data", False)))


@dataclass(frozen=True)
class WorkflowSpec:
    """The workflow as resolved at submit time: nothing on the worker re-reads the package."""

    name: str
    title: str
    mode: str
    graph: Graph
    input_node: str
    input_name: str
    passes: Tuple[PassSpec, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    sequence: Optional[SequenceSettings] = None
    vram_gb: Optional[float] = None  # the GPU memory the workflow needs free (its manifest's requirements)

    @property
    def several_passes(self) -> bool:
        """Whether each pass has a pattern of its own (``FramePattern.for_pass``), not the job's pattern."""
        return len(self.passes) > 1

    @classmethod
    def from_package(cls, package: WorkflowPackage, graph: Graph, parameters: Mapping[str, Any]) -> WorkflowSpec:
        return cls(
            name=package.name,
            title=package.title,
            mode=package.mode,
            graph=graph,
            input_node=package.input.node,
            input_name=str(package.input.input),
            passes=tuple(PassSpec(name=output.name, node=output.node, prefix_input=output.input,
                                  alpha=(output.alpha.node, output.alpha.output) if output.alpha else None,
                                  data=output.data)
                         for output in package.outputs),
            parameters=dict(parameters),
            sequence=package.sequence,
            vram_gb=package.requirements.vram_gb,
        )


@dataclass(frozen=True)
class RelinkIdentity:
    """Who and what the results go back to in Flame."""

    project: Optional[str] = None
    library: Optional[str] = None
    clip_name: Optional[str] = None
    clip_uid: Optional[str] = None
    user: Optional[str] = None
    host: Optional[str] = None


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    name: str
    workflow: WorkflowSpec
    source: SourceSpec
    output: OutputSpec
    colour: ColourSpec = field(default_factory=ColourSpec)
    relink: Optional[RelinkIdentity] = None
    workstation_os: Optional[str] = None  # with path_mappings: how to map farm paths back for the artist
    farm_os: Optional[str] = None
    path_mappings: Tuple[Mapping[str, str], ...] = ()
    inbox: Optional[str] = None  # where the completion record goes (farm path); None: no relink
    created_by: str = __version__
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "job record") -> JobRecord:
        schema = data.get("schema")
        if not isinstance(schema, int):
            raise JobRecordError(f"{origin}: no schema version: this is not a comfyfarm job record")
        if schema > SCHEMA_VERSION:
            raise JobRecordError(
                f"{origin}: written by comfyfarm {data.get('created_by', '?')} (job record schema {schema}); this "
                f"is comfyfarm {__version__} (schema {SCHEMA_VERSION}): upgrade comfyfarm on this machine"
            )
        if schema < OLDEST_READABLE_SCHEMA:
            raise JobRecordError(
                f"{origin}: written by comfyfarm {data.get('created_by', '?')} (job record schema {schema}), older "
                f"than comfyfarm {__version__} reads (schema {OLDEST_READABLE_SCHEMA} and later): resubmit the job"
            )
        try:
            workflow = dict(data["workflow"])
            sequence = workflow.pop("sequence", None)
            if schema == 1:  # one output node: one pass
                workflow["passes"] = [{"name": DEFAULT_PASS, "node": workflow.pop("output_node"),
                                       "prefix_input": workflow.pop("output_prefix_input")}]
            passes = tuple(PassSpec.from_dict(spec) for spec in workflow.pop("passes"))
            if not passes:
                raise KeyError("passes")
            return cls(
                job_id=str(data["job_id"]),
                name=str(data["name"]),
                workflow=WorkflowSpec(**workflow, passes=passes,
                                      sequence=SequenceSettings(**sequence) if sequence else None),
                source=SourceSpec(**{**data["source"], "frames": tuple(data["source"]["frames"])}),
                output=OutputSpec(**data["output"]),
                colour=ColourSpec(**data.get("colour", {})),
                relink=RelinkIdentity(**data["relink"]) if data.get("relink") else None,
                workstation_os=data.get("workstation_os"),
                farm_os=data.get("farm_os"),
                inbox=data.get("inbox"),
                path_mappings=tuple(dict(m) for m in data.get("path_mappings") or ()),
                created_by=str(data.get("created_by", "")),
                schema=schema,
            )
        except (KeyError, TypeError) as exc:
            raise JobRecordError(f"{origin}: malformed job record ({exc}): resubmit the job") from exc

    def write(self, path: str | Path) -> Path:
        """Write the record atomically. An existing record is never replaced by a different one."""
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        if target.exists():
            if target.read_text(encoding="utf-8") == text:
                return target
            raise JobRecordError(f"{target}: a different job record is already there: use a new job folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text, mode=0o644)  # Workers may run as another user than the artist
        logger.debug("wrote job record %s", target)
        return target


def read_job_record(path: str | Path) -> JobRecord:
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JobRecordError(f"{source}: no job record there: is the shared storage mounted on this machine?") from exc
    except (OSError, ValueError) as exc:
        raise JobRecordError(f"{source}: cannot read the job record: {exc}") from exc
    if not isinstance(data, dict):
        raise JobRecordError(f"{source}: not a comfyfarm job record")
    return JobRecord.from_dict(data, origin=str(source))


def job_retime(record: JobRecord) -> Retime:
    """The output numbering of a job record."""
    sequence = record.workflow.sequence
    return Retime(tuple(record.source.frames), sequence.ratio if sequence else 1.0)


def pass_patterns(record: JobRecord, output_pattern: Optional[str] = None) -> Dict[str, FramePattern]:
    """Each pass's output pattern, by pass name, in the manifest's order: the job's own pattern (or
    ``output_pattern``, where this machine sees it elsewhere) for a one-pass job and for every pass of a job
    that writes its passes as EXR layers (``layered``), ``FramePattern.for_pass`` of it for each pass of
    another several-pass job."""
    pattern = FramePattern.parse(output_pattern or record.output.pattern)
    if layered(record):
        return {spec.name: pattern for spec in record.workflow.passes}
    if not record.workflow.several_passes:
        return {record.workflow.passes[0].name: pattern}
    return {spec.name: pattern.for_pass(spec.name) for spec in record.workflow.passes}


def layered(record: JobRecord) -> bool:
    """Whether the job writes several passes as the layers of one EXR per frame."""
    return record.output.exr_layers and record.workflow.several_passes


def output_frames(record: JobRecord, frames: Optional[Sequence[int]] = None) -> List[int]:
    """The output frames the job (or its source ``frames``) promises, in order."""
    return job_retime(record).output_frames(frames)
