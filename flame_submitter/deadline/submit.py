"""Submitting to Deadline: preflight, job folders, then the Web Service; nothing half-done on failure.

Every check runs before anything is written or sent: the workflow validates, the frames exist on shared
storage the farm can reach, the output and jobs folders are on shared storage and writable, the Web
Service answers and the credentials work, the pools, groups and Limits the jobs name exist (a group a GPU
class chose, a model family's Limit: docs/farm_scheduling.md). Then the job folders are written and
the jobs submitted, one ``POST /api/jobs`` each (client.py says why not a batch): per clip its preview (if
any) and that one's hand-back job, then its main job, waiting for the preview, and that one's hand-back job.

A submission that fails part-way leaves no job behind that the artist does not know about: what it
submitted is deleted again, newest first (a hand-back job before the job it waits for, which would release
it), and the folders are removed; if something cannot be deleted, or a job may exist although its answer
never came, the error names each job that may exist, and the folders stay.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from farm_plugin.errors import BadInput
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import RelinkIdentity, WorkflowSpec
from farm_plugin.paths import is_mapped, under_any
from farm_plugin.runner.preflight import check_clip, check_output, check_pass_formats
from farm_plugin.workflow.package import WorkflowPackage
from flame_submitter.config import Config
from flame_submitter.deadline.client import DeadlineClient
from flame_submitter.deadline.errors import DeadlineError, DeadlineRejected, DeadlineTimeout
from flame_submitter.jobs.builder import (
    FarmPaths,
    JobFolders,
    PlannedJob,
    explicit_group,
    hand_back_of,
    plan_jobs,
    waiting_for,
)
from flame_submitter.jobs.record import SourceClip, check_workflow, colour_spec, source_clip, workflow_spec
from flame_submitter.jobs.submission import JobSubmission
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
                    file_format: Optional[str] = None, exr_layers: bool = False) -> List[SourceClip]:
    """Check each clip's frames and output, and that the output format holds what ``workflow`` writes (in
    ``file_format``, the job template's; with ``exr_layers``, its passes as the layers of one EXR: an EXR
    output); returns the clips with what their plates' headers say."""
    clips = []
    for request in requests:
        source = FramePattern.parse(request.pattern, role="input")
        output = FramePattern.parse(request.output_pattern, role="output")
        check_shared(request.pattern, "the input", config)
        check_shared(request.output_pattern, "the output", config)
        plate = check_clip(source, output, request.frames, read_whole=False)
        check_pass_formats(workflow, output, plate, file_format=file_format, exr_layers=exr_layers)
        clips.append(source_clip(request.name, request.pattern, request.frames, request.output_pattern, plate,
                                 relink=request.relink))
    return clips


def preflight_farm(client: DeadlineClient, template: JobTemplate, jobs: Sequence[PlannedJob] = ()) -> None:
    """The Web Service answers, the credentials work, and the pools, groups and Limits exist: the template's,
    the group a GPU class chose (``gpu_groups``) and the model family's Limit (``family_limits``) of each of
    ``jobs``; without ``jobs``, every group of the template's ``gpu_groups`` and every Limit it names."""
    client.ping()
    pools = client.pool_names()
    groups = client.group_names()
    for what, value, known in (("pool", template.pool, pools), ("secondary pool", template.secondary_pool, pools),
                               ("group", template.group, groups), ("finish group", template.finish_group, groups)):
        if value and value not in known:
            raise SubmitError(f"{what} '{value}' does not exist on the farm: use one of {', '.join(known)}")
    for group, memory in _gpu_class_groups(template, jobs):
        if group not in groups:
            raise SubmitError(f"group '{group}' (the {memory:g} GB GPU class of job template '{template.name}', "
                              f"gpu_groups) does not exist on the farm: create it in Deadline Monitor and add the "
                              f"Workers with that much GPU memory to it, or change gpu_groups in "
                              f"{template.path or 'the template'} (groups: {', '.join(groups)})")
    needed = _limits_named(template, jobs)
    if needed:
        _check_limits(client, needed, template)


def _gpu_class_groups(template: JobTemplate, jobs: Sequence[PlannedJob]) -> List[Tuple[str, float]]:
    """(group, GB) of each GPU class group the jobs go to; without jobs, every class of the template's, unless
    it names a group (which wins)."""
    if jobs:
        return sorted({(job.scheduling.group, job.scheduling.gpu_class) for job in jobs
                       if job.scheduling is not None and job.scheduling.gpu_class is not None})
    if explicit_group(template.group):
        return []
    return [(group, memory) for memory, group in template.gpu_groups]


def _limits_named(template: JobTemplate, jobs: Sequence[PlannedJob]) -> Dict[str, str]:
    """Each Limit the jobs name (JobInfo ``LimitGroups``), and where it comes from; without jobs, the
    template's ``limit_groups`` and the Limits its ``family_limits`` mapping names."""
    origin = {limit: f"limit_groups of job template '{template.name}'" for limit in template.limit_groups}
    families = {limit: family for family, limit in template.family_limits.names}
    for job in jobs:
        placed = job.scheduling
        if placed is not None and placed.family_limit:
            families[placed.family_limit] = placed.model_family
    for limit, family in families.items():
        origin.setdefault(limit, f"model family {family}, family_limits of job template '{template.name}'")
    if not jobs:
        return origin
    sent = {name for job in jobs for name in job.submission.job_info.get("LimitGroups", "").split(",") if name}
    return {limit: origin.get(limit, "JobInfo LimitGroups") for limit in sorted(sent)}


def _check_limits(client: DeadlineClient, needed: Mapping[str, str], template: JobTemplate) -> None:
    """Every Limit in ``needed`` exists. A Web Service that cannot list Limits (404) is let through, with a
    warning: the jobs go as they are."""
    try:
        known = client.limit_names()
    except DeadlineRejected as exc:
        if exc.status != 404:
            raise
        logger.warning("the Deadline Web Service cannot list Limits (GET /api/limitgroups: HTTP 404): not checked "
                       "that %s exist(s)", ", ".join(needed))
        return
    for limit, origin in needed.items():
        if limit in known:
            continue
        if origin.startswith("model family"):
            fix = (f"create it in Deadline Monitor (the Limits panel, as a super user) with the number of Workers "
                   f"that may run the family at once, or set family_limits: false in {template.path or 'the template'}")
        else:
            fix = "create it in Deadline Monitor (the Limits panel, as a super user), or leave it out of limit_groups"
        raise SubmitError(f"Limit '{limit}' ({origin}) does not exist on the farm: {fix} "
                          f"(Limits: {', '.join(known) or 'none'})")


def plan(
    requests: Sequence[ClipRequest],
    *,
    workflow: WorkflowPackage,
    parameters: Mapping[str, Any],
    template: JobTemplate,
    config: Config,
    comment: str = "",
    hand_back: bool = True,
) -> List[PlannedJob]:
    """Every local check, then the plan. Nothing is written. ``hand_back=False``: no hand-back jobs and no inbox
    (``plan_jobs``): nothing brings the frames into Flame."""
    check_workflow(workflow)
    paths = farm_paths(config)
    if not hand_back:
        paths = replace(paths, inbox_root=None)
    check_shared(str(paths.jobs_root), "the jobs root", config)
    clips = preflight_clips(requests, config, workflow=workflow_spec(workflow, parameters),
                            file_format=template.output_format, exr_layers=template.exr_layers)
    check_writable_folder(paths.jobs_root, "the jobs root")
    if paths.inbox_root is not None:
        check_shared(str(paths.inbox_root), "the inbox", config)
        check_writable_folder(paths.inbox_root, "the inbox")
    colour = colour_spec(config.ocio_config, config.working_space)
    return plan_jobs(clips, workflow=workflow, parameters=parameters, template=template, paths=paths,
                     user=submitting_user(config), comment=comment, colour=colour, hand_back=hand_back)


@dataclass(frozen=True)
class SubmittedJob:
    """A planned job as Deadline has it: its id, and its hand-back job's."""

    planned: PlannedJob
    job_id: str
    hand_back_id: Optional[str] = None


def submit(jobs: Sequence[PlannedJob], client: DeadlineClient) -> List[str]:
    """Write the job folders and submit; returns the Deadline ids of ``jobs`` (their hand-back jobs' are in
    :func:`submit_jobs`' answer and the log). Raises as :func:`submit_jobs` does."""
    return [sent.job_id for sent in submit_jobs(jobs, client)]


def submit_jobs(jobs: Sequence[PlannedJob], client: DeadlineClient) -> List[SubmittedJob]:
    """Write the job folders and submit each job, then its hand-back job (see the module docstring).

    A POST that times out may have been carried out all the same: the job is looked for by its PluginInfo
    (its record, part and mode are unique to it). When a POST fails, what this call submitted is deleted
    again and the folders removed: the error is the Web Service's (nothing was submitted), with the ids
    deleted again (:class:`SubmissionWithdrawn`). When a job cannot be deleted
    (:class:`SubmissionIncomplete`) or may exist unconfirmed (:class:`SubmissionUncertain`), the error names
    each such job and the folders stay."""
    folders = JobFolders(jobs)
    folders.write()
    sent: List[Tuple[str, str]] = []  # (Deadline id, name), in submission order
    ids: Dict[Tuple[str, str], str] = {}
    submitted: List[SubmittedJob] = []
    try:
        for job in jobs:
            submission = job.submission
            if job.waits_for:
                submission = waiting_for(submission, ids[(job.key, job.waits_for)])
            job_id = _send(client, submission, sent)
            ids[(job.key, job.part)] = job_id
            hand_back_id = _send(client, hand_back_of(job, job_id), sent) if job.hand_back is not None else None
            submitted.append(SubmittedJob(job, job_id, hand_back_id))
    except BaseException as exc:
        error = _withdraw(exc, sent, client, folders, jobs)
        if error is exc:
            raise
        raise error from exc
    for item in submitted:
        logger.info("submitted %s (%s) as Deadline job %s, handed back by job %s", item.planned.key,
                    item.planned.part, item.job_id, item.hand_back_id or "(none)")
    return submitted


class _Unconfirmed(DeadlineError):
    """A POST timed out and its job was not found: it may still appear (turned into SubmissionUncertain)."""

    def __init__(self, name: str, cause: DeadlineTimeout) -> None:
        super().__init__(str(cause))
        self.name = name
        self.cause = cause


def _send(client: DeadlineClient, submission: JobSubmission, sent: List[Tuple[str, str]]) -> str:
    """Submit one job and note it in ``sent``; a timed-out POST is looked for before it counts as failed."""
    name = submission.job_info["Name"]
    try:
        job_id = client.submit_job(submission)
    except DeadlineTimeout as exc:
        found = _find_submitted(submission, client)
        if found is None:
            raise _Unconfirmed(name, exc) from exc
        logger.info("the Web Service did not answer in time, but it has '%s' as job %s", name, found)
        job_id = found
    sent.append((job_id, name))
    return job_id


def _find_submitted(submission: JobSubmission, client: DeadlineClient) -> Optional[str]:
    """The id of the one job whose PluginInfo holds ``submission``'s (record, part, mode, finished job), or
    None when the farm has none, or cannot say."""
    try:
        known = client.get_jobs()
    except DeadlineError:
        return None
    wanted = dict(submission.plugin_info)
    match = [str(j.get("_id")) for j in known
             if all(((j.get("Props") or {}).get("PlugInfo") or {}).get(key) == value for key, value in wanted.items())]
    return match[0] if len(match) == 1 else None


def _withdraw(exc: BaseException, sent: Sequence[Tuple[str, str]], client: DeadlineClient, folders: JobFolders,
              jobs: Sequence[PlannedJob]) -> BaseException:
    """After ``exc`` stopped a submission: delete what it submitted, newest first; the error to raise."""
    unconfirmed = exc if isinstance(exc, _Unconfirmed) else None
    cause: BaseException = unconfirmed.cause if unconfirmed is not None else exc
    deleted: List[str] = []
    left: List[Tuple[str, str]] = []
    for job_id, name in reversed(sent):
        try:
            client.delete_job(job_id)
            deleted.append(job_id)
            logger.info("deleted Deadline job %s (%s) again: the submission failed", job_id, name)
        except DeadlineError as error:
            logger.warning("could not delete Deadline job %s (%s) again: %s", job_id, name, error)
            left.append((job_id, name))
    deleted.reverse()
    left.reverse()
    if unconfirmed is None and not left:
        folders.remove()
        if not deleted or not isinstance(cause, Exception):  # nothing left behind (or Ctrl-C: it goes on up)
            return cause
        return SubmissionWithdrawn(cause, deleted)
    if unconfirmed is not None:
        return SubmissionUncertain(jobs, cause, unconfirmed.name, deleted, left)
    return SubmissionIncomplete(jobs, cause, deleted, left)


def _deleted_text(deleted: Sequence[str]) -> str:
    return f"; the job(s) it had submitted were deleted again ({', '.join(deleted)})" if deleted else ""


def _left_text(left: Sequence[Tuple[str, str]]) -> str:
    return ", ".join(f"{job_id} ('{name}')" for job_id, name in left)


def _folders_text(jobs: Sequence[PlannedJob]) -> str:
    return ", ".join(sorted({str(j.folder) for j in jobs}))


class SubmissionWithdrawn(DeadlineError):
    """A POST failed part-way; everything this submission had sent was deleted again: nothing was submitted."""

    def __init__(self, cause: BaseException, deleted: Sequence[str]) -> None:
        self.deleted = tuple(deleted)
        super().__init__(f"{cause}{_deleted_text(deleted)}")


class SubmissionIncomplete(DeadlineError):
    """A POST failed part-way, and jobs this submission had sent could not be deleted again: they exist."""

    def __init__(self, jobs: Sequence[PlannedJob], cause: BaseException, deleted: Sequence[str],
                 left: Sequence[Tuple[str, str]]) -> None:
        self.deleted = tuple(deleted)
        self.left = tuple(job_id for job_id, _name in left)
        super().__init__(
            f"{cause}{_deleted_text(deleted)}; these Deadline jobs of the submission exist and could not be deleted "
            f"again: {_left_text(left)}: delete them in Deadline Monitor before submitting again (job folder kept: "
            f"{_folders_text(jobs)})"
        )


class SubmissionUncertain(DeadlineError):
    """The Web Service did not confirm a job that it may still create; what was confirmed was deleted again."""

    def __init__(self, jobs: Sequence[PlannedJob], cause: BaseException, name: str, deleted: Sequence[str] = (),
                 left: Sequence[Tuple[str, str]] = ()) -> None:
        self.deleted = tuple(deleted)
        self.left = tuple(job_id for job_id, _name in left)
        still = (f"; these Deadline jobs of the submission exist and could not be deleted again: {_left_text(left)}"
                 if left else "")
        super().__init__(
            f"{cause}; the job '{name}' may have been submitted all the same: look for it in Deadline Monitor and "
            f"delete it before submitting again{_deleted_text(deleted)}{still} (job folder kept: "
            f"{_folders_text(jobs)})"
        )


def dry_run_document(jobs: Sequence[PlannedJob]) -> Dict[str, Any]:
    """What ``submit`` would send: each job, the part it waits for (its ``JobDependencies``), and its hand-back
    job (whose ``JobDependencies`` and PluginInfo ``FinishesJob`` are the job's id, known once it is sent)."""
    return {"jobs": [{"JobInfo": dict(job.submission.job_info), "PluginInfo": dict(job.submission.plugin_info),
                      "WaitsFor": job.waits_for, "JobRecord": str(job.record_path), "part": job.part,
                      "HandBack": None if job.hand_back is None else {
                          "JobInfo": dict(job.hand_back.job_info), "PluginInfo": dict(job.hand_back.plugin_info)}}
                     for job in jobs]}
