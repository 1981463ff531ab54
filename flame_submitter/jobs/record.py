"""The job record, built in one place from what was asked: package, parameters, frames, plate header, colour.

``comfyfarm run-local`` (cli/run_local.py), ``comfyfarm submit`` and Flame's Submit (deadline/submit.py, then
``plan_jobs`` in builder.py) and the Deadline Cloud bundle (deadline_cloud/, built from the planned jobs)
resolve the same things here, the same way:

- :func:`load_workflow`, :func:`check_workflow`: the package, by name or folder, and valid;
- :func:`requested_frames`: ``--frames`` in Deadline's syntax, or every frame of the input on disk;
- :func:`source_clip`: the clip with what its first plate's header says (``check_clip`` in
  farm_plugin/runner/preflight.py reads it, after checking the frames and the output);
- :func:`colour_spec`: the OCIO config and colour spaces, the user's over the configuration's;
- :func:`workflow_spec`, :func:`job_record`: all of it as a :class:`~farm_plugin.jobrecord.JobRecord`.

Each side adds only what is its own: run-local its job id and scratch folder; the farm its paths as the farm
sees them, the relink identity, the job template and the job folders (builder.py).

Nothing here reads a plate, so builder.py, and the submit dialog that imports it, stay free of OpenImageIO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

from farm_plugin.frames.errors import FrameListError
from farm_plugin.frames.framelist import parse_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import ColourSpec, JobRecord, OutputSpec, RelinkIdentity, SourceSpec, WorkflowSpec
from farm_plugin.workflow.package import WorkflowPackage, WorkflowPackageError, find_package, load_package
from farm_plugin.workflow.params import apply_parameters
from farm_plugin.workflow.validate import validate_package


@dataclass(frozen=True)
class SourceClip:
    """A clip to process, as the artist's workstation sees it."""

    name: str
    pattern: str
    frames: Tuple[int, ...]
    output_pattern: str
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    timecode: Optional[str] = None
    colourspace: Optional[str] = None
    relink: RelinkIdentity = field(default_factory=RelinkIdentity)


class PlateHeader(Protocol):
    """What a plate's header says that the job record keeps (``farm_plugin.frames.image_io.PlateInfo``)."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def fps(self) -> Optional[float]: ...

    @property
    def timecode(self) -> Optional[str]: ...


def load_workflow(name_or_path: str, workflows_dirs: Sequence[Union[str, Path]]) -> WorkflowPackage:
    """The package named ``name_or_path`` (looked up in ``workflows_dirs``, then the bundled ones) or in that
    folder; :class:`WorkflowPackageError` when it cannot be read."""
    return load_package(find_package(name_or_path, list(workflows_dirs)))


def check_workflow(package: WorkflowPackage) -> None:
    """:class:`WorkflowPackageError`, listing every problem, unless the package validates."""
    problems = validate_package(package)
    if problems:
        raise WorkflowPackageError("the workflow package is not valid:\n" + "\n".join(f"  {p}" for p in problems))


def requested_frames(frames: Optional[str], source: FramePattern) -> List[int]:
    """The frames of ``--frames`` (Deadline's syntax), or without it every frame of ``source`` on disk;
    :class:`FrameListError` when that names none."""
    if frames is not None:
        if not frames.strip():
            raise FrameListError(f"--frames '{frames}' names no frames: give a list like 1001-1100, or leave out "
                                 "--frames for every frame of --input on disk")
        return parse_frame_list(frames)
    found = source.existing_frames()
    if not found:
        raise FrameListError(f"no frames match --input {source.to_hashes()}: check the path and the frame token")
    return found


def clip_name(source: FramePattern, package: WorkflowPackage) -> str:
    """A clip's name from its frames' names: ``sh010_plate`` for ``sh010_plate.####.exr``, else the package's."""
    return Path(source.head).name.rstrip("._") or package.name


def source_clip(name: str, pattern: str, frames: Sequence[int], output_pattern: str, plate: PlateHeader, *,
                colourspace: Optional[str] = None, relink: Optional[RelinkIdentity] = None) -> SourceClip:
    """The clip, with its first plate's size, frame rate and timecode."""
    return SourceClip(name=name, pattern=pattern, frames=tuple(frames), output_pattern=output_pattern,
                      width=plate.width, height=plate.height, fps=plate.fps, timecode=plate.timecode,
                      colourspace=colourspace, relink=relink or RelinkIdentity())


def colour_spec(ocio_config: str, working_space: Optional[str], *, user_ocio_config: Optional[str] = None,
                user_plate_space: Optional[str] = None, user_working_space: Optional[str] = None) -> ColourSpec:
    """The configuration's OCIO config and working space unless the user chose others. The plate space is
    the user's, or None: the worker reads it from each plate."""
    return ColourSpec(config=user_ocio_config or ocio_config, plate_space=user_plate_space,
                      working_space=user_working_space or working_space)


def workflow_spec(package: WorkflowPackage, parameters: Mapping[str, Any]) -> WorkflowSpec:
    """The workflow with the parameters' values (resolved: ``resolve_parameters``) applied to its graph."""
    return WorkflowSpec.from_package(package, apply_parameters(package, parameters), parameters)


def job_record(
    clip: SourceClip,
    *,
    job_id: str,
    name: str,
    workflow: WorkflowSpec,
    colour: ColourSpec,
    file_format: Optional[str] = None,
    exr_layers: bool = False,
    to_farm: Callable[[str], str] = str,
    relink: Optional[RelinkIdentity] = None,
    workstation_os: Optional[str] = None,
    farm_os: Optional[str] = None,
    path_mappings: Tuple[Mapping[str, str], ...] = (),
    inbox: Optional[str] = None,
) -> JobRecord:
    """The job record of ``clip``. ``exr_layers``: a several-pass workflow writes its passes as the layers of one
    EXR per frame at the output pattern (``farm_plugin.jobrecord.layered``). ``to_farm`` turns its paths into the
    farm's; the farm also gives the relink identity, both sides' operating systems with the path mappings, and
    the inbox (a farm path)."""
    return JobRecord(
        job_id=job_id,
        name=name,
        workflow=workflow,
        source=SourceSpec(pattern=to_farm(clip.pattern), frames=tuple(clip.frames), width=clip.width,
                          height=clip.height, fps=clip.fps, timecode=clip.timecode, colourspace=clip.colourspace),
        output=OutputSpec(pattern=to_farm(clip.output_pattern), file_format=file_format, exr_layers=exr_layers),
        colour=colour,
        relink=relink,
        workstation_os=workstation_os,
        farm_os=farm_os,
        path_mappings=path_mappings,
        inbox=inbox,
    )
