"""Submitting to Deadline: preflight, job folders, then the Web Service; nothing half-done on failure.

Every check runs before anything is written or sent: the workflow validates, the frames exist on shared
storage the farm can reach, the output and jobs folders are on shared storage and writable, the Web
Service answers and the credentials work, the pool and group exist. Then the job folders are written and
the jobs submitted; if the submission fails, the folders are removed again.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from farm_plugin.errors import BadInput
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import RelinkIdentity, WorkflowSpec
from farm_plugin.paths import is_mapped, under_any
from farm_plugin.runner.preflight import check_clip, check_output, check_pass_formats
from farm_plugin.workflow.package import WorkflowPackage
from flame_submitter.config import Config
from flame_submitter.deadline.client import DeadlineClient
from flame_submitter.deadline.errors import DeadlineError, DeadlineTimeout
from flame_submitter.jobs.builder import FarmPaths, JobFolders, PlannedJob, plan_jobs
from flame_submitter.jobs.record import SourceClip, check_workflow, colour_spec, source_clip, workflow_spec
from flame_submitter.jobs.templates import JobTemplate

logger = logging.getLogger(__name__)


class SubmitError(BadInput):
    """Something stops the submission before anything reached the farm."""


def deadline_client(config: Config) -> DeadlineClient:
    if not config.deadline_url:
        raise SubmitError("no Deadline Web Service configured: set deadline_url in the config file or "
                          "COMFYFARM_DEADLINE_URL (e.g. http://deadline:8081)")
    return DeadlineClient(config.deadline_url, user=config.deadline_user, password=config.deadline_password,
                          ca_file=config.deadline_ca_file, insecure=config.deadline_insecure,
                          timeout_s=config.deadline_timeout_s)


def submitting_user(config: Config) -> str:
    return config.deadline_user or getpass.getuser()


def farm_paths(config: Config) -> FarmPaths:
    if not config.jobs_root:
        raise SubmitError("no jobs root configured: set jobs_root (COMFYFARM_JOBS_ROOT) to a folder on shared "
                          "storage that the farm can read, e.g. /mnt/projects/comfyfarm/jobs")
    inbox = Path(config.inbox_root).expanduser() if config.inbox_root else None
    return FarmPaths(jobs_root=Path(config.jobs_root).expanduser(), mappings=config.path_mappings,
                     workstation_os=config.workstation_os, farm_os=config.farm_os, inbox_root=inbox)


def check_shared(path: str, what: str, config: Config) -> None:
    """``path`` must be on storage the farm reaches: under a path mapping or a shared root."""
    if not config.shared_roots and not config.path_mappings:
        raise SubmitError("no shared storage configured: set shared_roots (folders the farm sees at the same path) "
                          "or path_mappings in the config file, so that comfyfarm can tell what the farm reaches")
    if under_any(path, config.shared_roots, config.workstation_os) or is_mapped(
            path, config.path_mappings, config.workstation_os):
        return
    roots = list(config.shared_roots) + [p for m in config.path_mappings
                                         for os_name, p in m.prefixes if os_name == config.workstation_os]
    raise SubmitError(f"{what} {path} is not on shared storage the farm can reach (configured: {', '.join(roots)}): "
                      "copy or render it there first")


def check_writable_folder(folder: Path, what: str) -> None:
    pattern = FramePattern.parse(str(folder / "probe.#.tmp"))
    try:
        check_output(pattern)
    except Exception as exc:
        raise SubmitError(f"{what}: {exc}") from exc


@dataclass(frozen=True)
class ClipRequest:
    name: str
    pattern: str
    frames: Sequence[int]
    output_pattern: str
    relink: RelinkIdentity = RelinkIdentity()


def preflight_clips(requests: Sequence[ClipRequest], config: Config, *, workflow: WorkflowSpec,
                    file_format: Optional[str] = None) -> List[SourceClip]:
    """Check each clip's frames and output, and that the output format holds what ``workflow`` writes (in
    ``file_format``, the job template's); returns the clips with what their plates' headers say."""
    clips = []
    for request in requests:
        source = FramePattern.parse(request.pattern, role="input")
        output = FramePattern.parse(request.output_pattern, role="output")
        check_shared(request.pattern, "the input", config)
        check_shared(request.output_pattern, "the output", config)
        plate = check_clip(source, output, request.frames, read_whole=False)
        check_pass_formats(workflow, output, plate, file_format=file_format)
        clips.append(source_clip(request.name, request.pattern, request.frames, request.output_pattern, plate,
                                 relink=request.relink))
    return clips


def preflight_farm(client: DeadlineClient, template: JobTemplate) -> None:
    """The Web Service answers, the credentials work, and the template's pool and group exist."""
    client.ping()
    pools = client.pool_names()
    groups = client.group_names()
    for what, value, known in (("pool", template.pool, pools), ("secondary pool", template.secondary_pool, pools),
                               ("group", template.group, groups)):
        if value and value not in known:
            raise SubmitError(f"{what} '{value}' does not exist on the farm: use one of {', '.join(known)}")


def plan(
    requests: Sequence[ClipRequest],
    *,
    workflow: WorkflowPackage,
    parameters: Mapping[str, Any],
    template: JobTemplate,
    config: Config,
    comment: str = "",
) -> List[PlannedJob]:
    """Every local check, then the plan. Nothing is written."""
    check_workflow(workflow)
    paths = farm_paths(config)
    check_shared(str(paths.jobs_root), "the jobs root", config)
    clips = preflight_clips(requests, config, workflow=workflow_spec(workflow, parameters),
                            file_format=template.output_format)
    check_writable_folder(paths.jobs_root, "the jobs root")
    if paths.inbox_root is not None:
        check_shared(str(paths.inbox_root), "the inbox", config)
        check_writable_folder(paths.inbox_root, "the inbox")
    colour = colour_spec(config.ocio_config, config.working_space)
    return plan_jobs(clips, workflow=workflow, parameters=parameters, template=template, paths=paths,
                     user=submitting_user(config), comment=comment, colour=colour)


def submit(jobs: Sequence[PlannedJob], client: DeadlineClient) -> List[str]:
    """Write the job folders and submit; returns Deadline job ids.

    When the Web Service refuses or is unreachable the folders are removed: nothing was submitted. When it
    does not answer in time the jobs may exist all the same, so the folders stay and the jobs are looked
    for by their record path; if they cannot be found, :class:`SubmissionUncertain` says what to check.
    """
    folders = JobFolders(jobs)
    folders.write()
    try:
        if len(jobs) == 1:
            ids = [client.submit_job(jobs[0].submission)]
        else:
            ids = client.submit_jobs([job.submission for job in jobs])
    except DeadlineTimeout as exc:
        found = _find_submitted(jobs, client)
        if found is None:
            raise SubmissionUncertain(jobs, exc) from exc
        ids = found
    except BaseException:
        folders.remove()
        raise
    for job, job_id in zip(jobs, ids):
        logger.info("submitted %s as Deadline job %s", job.key, job_id)
    return ids


class SubmissionUncertain(DeadlineError):
    """The Web Service did not confirm a submission that it may still carry out."""

    def __init__(self, jobs: Sequence[PlannedJob], cause: Exception) -> None:
        names = ", ".join(sorted({j.submission.job_info["Name"] for j in jobs}))
        folders = ", ".join(sorted({str(j.folder) for j in jobs}))
        super().__init__(
            f"{cause}; the job(s) may have been submitted all the same: look for '{names}' in Deadline Monitor "
            f"before submitting again (job folder kept: {folders})"
        )


def _find_submitted(jobs: Sequence[PlannedJob], client: DeadlineClient) -> Optional[List[str]]:
    """The ids of ``jobs`` if the farm has them (matched by record path and part), else None."""
    try:
        known = client.get_jobs()
    except DeadlineError:
        return None
    ids = []
    for job in jobs:
        record = job.submission.plugin_info.get("JobRecord")
        match = [j.get("_id") for j in known
                 if (j.get("Props") or {}).get("PlugInfo", {}).get("JobRecord") == record
                 and (j.get("Props") or {}).get("PlugInfo", {}).get("Part") == job.part]
        if len(match) != 1:
            return None
        ids.append(str(match[0]))
    return ids


def dry_run_document(jobs: Sequence[PlannedJob]) -> Dict[str, Any]:
    return {"jobs": [{"JobInfo": dict(job.submission.job_info), "PluginInfo": dict(job.submission.plugin_info),
                      "DependsOnPrevious": job.submission.depends_on_previous, "JobRecord": str(job.record_path),
                      "part": job.part} for job in jobs]}
