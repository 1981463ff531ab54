"""The job builder: source clips + workflow + parameters + job template → job records and Deadline jobs.

For each clip it plans a job folder on shared storage (``<jobs root>/<job>/job.json``, the job record in
the farm's paths) and a JobInfo/PluginInfo pair. A template with ``preview_every: N`` makes two jobs per
clip: every Nth frame first, then the rest, which waits for the preview (``waits_for``). Each of them has
its hand-back job (``hand_back``): one task of the ComfyUI plugin in its finish mode, which waits for the job
however it ends (completed, failed or cancelled, deleted), checks its frames on disk and writes the
completion record Flame imports; ``hand_back=False`` plans none, and no inbox in the record, for a job whose
frames Flame must not import (the submit dialog's preview). The ids those dependencies name exist only once
Deadline has the jobs:
``waiting_for`` and ``hand_back_of`` complete the submissions then. Job folders are written all or nothing:
a failure removes what this build wrote.

The record is built by record.py, as for ``run-local``; this module adds only the farm's part: the paths as
the farm sees them, the relink identity, the job template's settings and the job folders.

Where a job runs (``scheduling``, docs/farm_scheduling.md): the template's group, or, when it names none and has
``gpu_groups``, the group of the smallest GPU memory class that holds the workflow's ``requirements.vram_gb`` (a
workflow that needs more than the biggest class is refused, ``SchedulingError``); its Limits are the template's
``limit_groups`` and, with ``family_limits``, the Limit of the workflow's ``requirements.model_family``. The
job's ``ExtraInfoKeyValue`` entries say why (``comfyfarm_vram_gb``, ``comfyfarm_gpu_class``,
``comfyfarm_model_family``).
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from farm_plugin import __version__
from farm_plugin.errors import BadInput, ServiceError
from farm_plugin.frames.framelist import format_frame_list
from farm_plugin.jobrecord import ColourSpec, JobRecord, layered, output_frames, pass_patterns
from farm_plugin.paths import PathMapping, map_path
from farm_plugin.runner.units import window_budget
from farm_plugin.workflow.package import WorkflowPackage
from flame_submitter.jobs.record import SourceClip, job_record, workflow_spec
from flame_submitter.jobs.submission import JobSubmission
from flame_submitter.jobs.templates import JobTemplate

logger = logging.getLogger(__name__)

RECORD_KEY = "comfyfarm_job_record"
# A hand-back job: the ComfyUI plugin's finish mode (farm_plugin/ComfyUI/ComfyUI.py FINISH_MODE), told which
# job it hands back in PluginInfo (FINISHED_JOB_KEY), and, for a preview, which frames that job rendered.
HAND_BACK_MODE = "finish"
FINISHED_JOB_KEY = "FinishesJob"
FINISHED_FRAMES_KEY = "FinishesFrames"
HAND_BACK_TIMEOUT_MINUTES = 15  # it reads every frame's header: minutes for thousands on a slow share
HAND_BACK_TASK_ERRORS = 3  # a share that hiccups gets two more tries before the hand-back job fails
HAND_BACK_PRIORITY_BOOST = 10  # one short task the artist waits for: ahead of renders of its own priority
# Deadline releases a job whose dependencies all ended in a state these accept (JobInfo keys, DOC 10.1
# manual-submission): the hand-back runs however its job ends.
HAND_BACK_RESUME = {"ResumeOnCompleteDependencies": "true", "ResumeOnFailedDependencies": "true",
                    "ResumeOnDeletedDependencies": "true"}


@dataclass(frozen=True)
class FarmPaths:
    """Where job folders go and how workstation paths read on the farm."""

    jobs_root: Path
    mappings: Tuple[PathMapping, ...] = ()
    workstation_os: str = "linux"
    farm_os: str = "linux"
    inbox_root: Optional[Path] = None

    def to_farm(self, path: str) -> str:
        return map_path(path, self.mappings, source_os=self.workstation_os, target_os=self.farm_os)


class SchedulingError(BadInput):
    """A workflow cannot be placed on the farm the job template describes: the message says what to change."""


@dataclass(frozen=True)
class Scheduling:
    """Where a job runs and under which Limits, and why (``scheduling``)."""

    template: str  # the job template's name
    group: str  # JobInfo Group
    limit_groups: Tuple[str, ...] = ()  # JobInfo LimitGroups: the template's, then the family's
    vram_gb: Optional[float] = None  # the workflow's requirements.vram_gb
    gpu_class: Optional[float] = None  # the GPU memory class (GB) whose group this is; None: the template's group
    model_family: str = ""  # the workflow's requirements.model_family
    family_limit: str = ""  # the Limit family_limits gave that family ("" for none)

    def notes(self) -> List[str]:
        """What the template's scheduling fields chose, one line each, for the artist."""
        notes = []
        if self.gpu_class is not None and self.vram_gb is not None:
            notes.append(f"group {self.group}: the workflow needs {self.vram_gb:g} GB of GPU memory, the "
                         f"{self.gpu_class:g} GB class of job template '{self.template}' (gpu_groups)")
        if self.family_limit:
            notes.append(f"Limit {self.family_limit}: model family {self.model_family} (job template "
                         f"'{self.template}', family_limits)")
        return notes

    def extra_info(self) -> Dict[str, str]:
        """The ``ExtraInfoKeyValue`` entries that say why (empty values are left out)."""
        return {"comfyfarm_vram_gb": f"{self.vram_gb:g}" if self.vram_gb is not None else "",
                "comfyfarm_gpu_class": f"{self.gpu_class:g}" if self.gpu_class is not None else "",
                "comfyfarm_model_family": self.model_family}


def explicit_group(group: str) -> bool:
    """Whether a template (or the artist) named a group: anything but "" and Deadline's default "none"."""
    return bool(group.strip()) and group.strip().lower() != "none"


def scheduling(template: JobTemplate, workflow: WorkflowPackage) -> Scheduling:
    """The group and Limits of ``workflow``'s jobs under ``template``. A group the template (or the artist) names
    wins; else, with ``gpu_groups`` and a workflow that declares ``requirements.vram_gb``, the group of the
    smallest class that holds it; a workflow that needs more than the biggest class raises SchedulingError."""
    needs = workflow.requirements.vram_gb
    family = workflow.requirements.model_family
    group, gpu_class = template.group or "none", None
    if not explicit_group(template.group) and template.gpu_groups and needs is not None:
        fitting = [(memory, name) for memory, name in template.gpu_groups if memory >= needs]
        if not fitting:
            biggest, name = template.gpu_groups[-1]
            where = template.path or f"job template '{template.name}'"
            raise SchedulingError(
                f"workflow '{workflow.name}' needs {needs:g} GB of GPU memory (requirements.vram_gb), more than the "
                f"biggest GPU class of job template '{template.name}' ({biggest:g} GB, group {name}): add a bigger "
                f"class to gpu_groups in {where}, or choose a group whose GPUs hold it (--group)")
        gpu_class, group = fitting[0]
    limit = template.family_limits.limit_for(family)
    limits = tuple(dict.fromkeys(template.limit_groups + ((limit,) if limit else ())))
    return Scheduling(template=template.name, group=group, limit_groups=limits, vram_gb=needs, gpu_class=gpu_class,
                      model_family=family, family_limit=limit)


@dataclass(frozen=True)
class PlannedJob:
    key: str                # the job folder's name
    folder: Path            # on the workstation
    record: JobRecord       # paths as the farm sees them
    submission: JobSubmission
    part: str = "main"      # "preview" or "main"
    waits_for: Optional[str] = None  # the part of this clip's jobs that must complete first (main: "preview")
    hand_back: Optional[JobSubmission] = None  # runs after this job however it ends; see hand_back_of
    scheduling: Optional[Scheduling] = None  # its group and Limits, and why

    @property
    def record_path(self) -> Path:
        return self.folder / "job.json"


def waiting_for(submission: JobSubmission, job_id: str) -> JobSubmission:
    """``submission`` that Deadline keeps Pending until the job ``job_id`` completed (JobInfo
    ``JobDependencies``)."""
    return replace(submission, job_info={**submission.job_info, "JobDependencies": job_id})


def hand_back_of(job: PlannedJob, job_id: str) -> JobSubmission:
    """The hand-back job of ``job``, once Deadline named it ``job_id``: it waits for it, and hands it back."""
    if job.hand_back is None:
        raise ValueError(f"{job.key} ({job.part}) has no hand-back job")
    submission = waiting_for(job.hand_back, job_id)
    return replace(submission, plugin_info={**submission.plugin_info, FINISHED_JOB_KEY: job_id})


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "clip"


def plan_jobs(
    clips: Sequence[SourceClip],
    *,
    workflow: WorkflowPackage,
    parameters: Mapping[str, Any],
    template: JobTemplate,
    paths: FarmPaths,
    user: str,
    comment: str = "",
    colour: Optional[ColourSpec] = None,
    now: Optional[float] = None,
    token: Optional[str] = None,
    hand_back: bool = True,
) -> List[PlannedJob]:
    """Plan the jobs for ``clips``. ``now`` and ``token`` (the folder names' time and random part) are for
    reproducible tests. ``hand_back=False``: no hand-back job and no inbox in the record, so that nothing brings
    the frames into Flame (a preview)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    spec = workflow_spec(workflow, parameters)
    preview = template.preview_every if workflow.mode == "per_frame" else 0
    if template.preview_every and workflow.mode != "per_frame":
        logger.warning("template '%s' asks for a preview every %d frames: ignored for the sequence workflow '%s'",
                       template.name, template.preview_every, workflow.name)
    batch = f"{workflow.title} - {len(clips)} clip(s) - {user} - {stamp}"  # every clip has its hand-back job
    template = sequence_chunk_size(template, workflow)
    placed = scheduling(template, workflow)
    for note in placed.notes():  # the front ends show them (PlannedJob.scheduling)
        logger.debug("%s: %s", workflow.name, note)
    jobs: List[PlannedJob] = []
    for clip in clips:
        key = f"{stamp}_{_safe(clip.name)}_{workflow.name}_{token or secrets.token_hex(2)}"
        folder = paths.jobs_root / key
        record = job_record(
            clip,
            job_id=key,
            name=f"{clip.name} - {workflow.title}",
            workflow=spec,
            colour=colour or ColourSpec(),
            file_format=template.output_format,
            exr_layers=template.exr_layers,
            to_farm=paths.to_farm,
            relink=clip.relink,
            workstation_os=paths.workstation_os,
            farm_os=paths.farm_os,
            path_mappings=tuple(dict(m.prefixes) for m in paths.mappings),
            inbox=paths.to_farm(str(paths.inbox_root)) if paths.inbox_root and hand_back else None,
        )
        for warning in short_chunk_warnings(clip.frames, template.chunk_size, workflow):
            logger.warning("%s: %s", clip.name, warning)
        farm_record = paths.to_farm(str(folder / "job.json"))
        parts = _split_preview(list(clip.frames), preview)
        for index, (part, frames) in enumerate(parts):
            job_info = _job_info(record, clip, template, frames, user=user, comment=comment, batch=batch,
                                 farm_record=farm_record, part=part, preview=preview, paths=paths, placed=placed)
            submission = JobSubmission(job_info, _plugin_info(farm_record, template, part))
            finish = _hand_back(job_info, farm_record, template, part, frames) if hand_back else None
            jobs.append(PlannedJob(key, folder, record, submission, part,
                                   waits_for=parts[index - 1][0] if index else None, hand_back=finish,
                                   scheduling=placed))
    return jobs


def sequence_chunk_size(template: JobTemplate, workflow: WorkflowPackage) -> JobTemplate:
    """A sequence workflow renders windows of ``context`` frames and keeps at most ``window_budget`` of them
    (the rest are handle frames): a chunk is a whole number of full windows, at least one, or it pays for
    a window's handles to keep a few frames. The chunk size is rounded to the nearest such size."""
    if workflow.sequence is None:
        return template
    keeps = window_budget(workflow.sequence)
    chunk = whole_windows(template.chunk_size, keeps)
    if chunk == template.chunk_size:
        return template
    logger.warning("chunk size %d changed to %d for '%s': each %d-frame window keeps %d frame(s), so a chunk is "
                   "a whole number of windows", template.chunk_size, chunk, workflow.name,
                   workflow.sequence.context_frames, keeps)
    return replace(template, chunk_size=chunk)


def whole_windows(chunk_size: int, keeps: int) -> int:
    """The whole number of windows (of ``keeps`` own frames) nearest ``chunk_size``, halves up, at least one."""
    return max(keeps, keeps * ((chunk_size + keeps // 2) // keeps))


def short_chunk_warnings(frames: Sequence[int], chunk_size: int, workflow: WorkflowPackage) -> List[str]:
    """Warnings for chunks shorter than the cross-fade: their frames are all faded in, and where the next
    chunk's fade begins before theirs has ended the join is less smooth."""
    sequence = workflow.sequence
    if sequence is None or sequence.blend != "crossfade" or not sequence.overlap_frames or not frames:
        return []
    overlap = sequence.overlap_frames
    warnings = []
    if chunk_size < overlap and len(frames) > chunk_size:
        warnings.append(f"chunks of {chunk_size} frame(s) are shorter than the {overlap}-frame cross-fade of "
                        f"'{workflow.name}': each chunk's fade is cut short by the next; use a chunk size of at least "
                        f"{overlap}")
    last = len(frames) % chunk_size
    if last and last < overlap and len(frames) > chunk_size:
        warnings.append(f"the last chunk holds {last} frame(s) ({format_frame_list(list(frames)[-last:])}), fewer "
                        f"than the {overlap}-frame cross-fade of '{workflow.name}': they are all cross-faded, from "
                        f"the chunk before's look toward their own")
    return warnings


def _split_preview(frames: List[int], every: int) -> List[Tuple[str, List[int]]]:
    if every <= 1 or len(frames) <= every:
        return [("main", frames)]
    first = frames[::every]
    chosen = set(first)
    return [("preview", first), ("main", [f for f in frames if f not in chosen])]


def _job_info(record: JobRecord, clip: SourceClip, template: JobTemplate, frames: List[int], *, user: str,
              comment: str, batch: str, farm_record: str, part: str, preview: int,
              paths: FarmPaths, placed: Scheduling) -> Dict[str, str]:
    name = record.name if part == "main" else f"{record.name} [preview: every {preview}th frame]"
    info: Dict[str, str] = {
        "Plugin": template.plugin,
        "Name": name,
        "UserName": user,
        "Comment": comment or f"comfyfarm {__version__}: {record.workflow.name} on {clip.name}",
        "Frames": format_frame_list(frames),
        "ChunkSize": str(1 if part == "preview" else template.chunk_size),
        "Pool": template.pool,
        "Group": placed.group,
        "Priority": str(min(100, template.priority + (10 if part == "preview" else 0))),
        "ConcurrentTasks": str(template.concurrent_tasks),
        "MachineLimit": str(template.machine_limit),
        "OnJobComplete": template.on_complete,
        "InitialStatus": template.initial_status,
        **output_keys(record),
        "ExtraInfo0": record.workflow.name,
        "ExtraInfo1": clip.name,
        "ExtraInfo2": user,
        "ExtraInfo3": clip.relink.project or "",
        "ExtraInfo4": f"comfyfarm {__version__}",
        "BatchName": batch,
    }
    if template.secondary_pool:
        info["SecondaryPool"] = template.secondary_pool
    if placed.limit_groups:
        info["LimitGroups"] = ",".join(placed.limit_groups)
    if template.task_timeout_minutes:
        info["TaskTimeoutMinutes"] = str(template.task_timeout_minutes)
        info["OnTaskTimeout"] = "Error"
    if template.failure_detection.task_errors:
        info["OverrideTaskFailureDetection"] = "true"
        info["FailureDetectionTaskErrors"] = str(template.failure_detection.task_errors)
    if template.failure_detection.job_errors:
        info["OverrideJobFailureDetection"] = "true"
        info["FailureDetectionJobErrors"] = str(template.failure_detection.job_errors)
    relink = {
        RECORD_KEY: farm_record,
        "comfyfarm_part": part,
        "comfyfarm_version": __version__,
        "flame_project": clip.relink.project,
        "flame_library": clip.relink.library,
        "flame_clip_name": clip.relink.clip_name or clip.name,
        "flame_clip_uid": clip.relink.clip_uid,
        "flame_user": clip.relink.user or user,
        "flame_host": clip.relink.host,
        "comfyfarm_passes": ",".join(p.name for p in record.workflow.passes) if record.workflow.several_passes else "",
        "comfyfarm_exr_layers": "true" if layered(record) else "",  # the passes are the layers of its one output
    }
    if record.workflow.sequence is not None and record.workflow.sequence.ratio != 1.0:
        relink["comfyfarm_output_frames"] = format_frame_list(output_frames(record, frames))
    relink.update(placed.extra_info())
    index = 0
    for key, value in relink.items():
        if value:
            info[f"ExtraInfoKeyValue{index}"] = f"{key}={value}"
            index += 1
    return info


def output_keys(record: JobRecord) -> Dict[str, str]:
    """``OutputDirectory<i>`` / ``OutputFilename<i>`` (``#`` padding) for each file sequence the job writes,
    i = 0…N-1, in the farm's paths: Deadline Monitor's output actions and the job's ``OutDir``/``OutFile`` lists.
    One per pass in the manifest's order; one in all for a job whose passes are the layers of one EXR
    (``layered``: every pass has the same pattern, and Deadline would list the same file N times)."""
    keys: Dict[str, str] = {}
    patterns = list({pattern.to_hashes(): pattern for pattern in pass_patterns(record).values()}.values())
    for index, pattern in enumerate(patterns):
        keys[f"OutputDirectory{index}"] = pattern.directory
        keys[f"OutputFilename{index}"] = f"{pattern.head}{'#' * pattern.padding}{pattern.tail}"
    return keys


def _plugin_info(farm_record: str, template: JobTemplate, part: str) -> Dict[str, str]:
    """PluginInfo: the record's path and what a wrangler may change in Job Properties."""
    return {
        "JobRecord": farm_record,
        "GPUsPerTask": str(template.gpus_per_task),
        "SelectGPUDevices": "",
        "ComfyFarmVersion": __version__,
        "Part": part,
    }


def _hand_back(job_info: Mapping[str, str], farm_record: str, template: JobTemplate, part: str,
               frames: List[int]) -> JobSubmission:
    """The hand-back job of a job whose JobInfo is ``job_info`` (its dependency and the id it hands back are
    added by ``hand_back_of``): one short task, promptly, on the job's pool and the template's
    ``finish_group`` (else the job's group, the GPU class's where gpu_groups chose it), where the runtime is
    installed. No GPU, no limit groups, no machine limit: it only reads frame headers and writes one file."""
    info = {
        "Plugin": template.plugin,
        "Name": f"{job_info['Name']} [hand back]",
        "UserName": job_info["UserName"],
        "Comment": f"comfyfarm {__version__}: checks the frames of '{job_info['Name']}' and hands them back",
        "BatchName": job_info["BatchName"],
        "Frames": "0",
        "ChunkSize": "1",
        "Pool": template.pool,
        "Group": template.finish_group or job_info["Group"],
        "Priority": str(min(100, int(job_info["Priority"]) + HAND_BACK_PRIORITY_BOOST)),
        "OnJobComplete": template.on_complete,
        "InitialStatus": "Active",  # Pending until its job ends: a suspended job's hand-back waits with it
        "TaskTimeoutMinutes": str(HAND_BACK_TIMEOUT_MINUTES),
        "OnTaskTimeout": "Error",
        "OverrideTaskFailureDetection": "true",
        "FailureDetectionTaskErrors": str(HAND_BACK_TASK_ERRORS),
        **HAND_BACK_RESUME,
        **{f"ExtraInfo{index}": job_info[f"ExtraInfo{index}"] for index in range(5)},
        "ExtraInfoKeyValue0": f"{RECORD_KEY}={farm_record}",
        "ExtraInfoKeyValue1": f"comfyfarm_part={part}",
        "ExtraInfoKeyValue2": f"comfyfarm_version={__version__}",
    }
    if template.secondary_pool:
        info["SecondaryPool"] = template.secondary_pool
    plugin = {"JobRecord": farm_record, "Mode": HAND_BACK_MODE, "Part": part, "ComfyFarmVersion": __version__}
    if part == "preview":  # the main job waits for the preview, so its hand-back checks the whole clip
        plugin[FINISHED_FRAMES_KEY] = format_frame_list(frames)
    return JobSubmission(info, plugin)


class JobFolderError(OSError, ServiceError):
    """A job folder cannot be written (a full disk, permissions): the message names it and the fix."""


class JobFolders:
    """Writes planned job folders all or nothing; ``remove()`` takes back what it wrote."""

    def __init__(self, jobs: Sequence[PlannedJob]) -> None:
        self.jobs = jobs
        self.written: List[Path] = []

    def write(self) -> None:
        try:
            for job in self.jobs:
                if job.folder in self.written:
                    continue
                temp = job.folder.with_name(f".{job.folder.name}.tmp")
                temp.mkdir(parents=True)
                job.record.write(temp / "job.json")
                temp.rename(job.folder)
                self.written.append(job.folder)
        except BaseException as exc:
            failed = job.folder
            self.remove()
            for job in self.jobs:
                shutil.rmtree(job.folder.with_name(f".{job.folder.name}.tmp"), ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, (JobFolderError, FileExistsError)):
                raise JobFolderError(f"cannot write the job folder {failed} ({exc.strerror or exc}): free some "
                                     "space there, or set jobs_root to a folder you can write to") from exc
            raise

    def remove(self) -> None:
        for folder in self.written:
            shutil.rmtree(folder, ignore_errors=True)
        self.written = []
