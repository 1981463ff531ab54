"""``comfyfarm submit | status | jobs | cancel``: the farm from the command line.

``status`` also shows, per pass, how many of the job's frames are on disk and whole, the frame written last and a
thumbnail of it (``latest_<pass>.jpg`` in the job folder): results as they arrive, read from the job record and the
output folders through this machine's path mappings (``farm_plugin/completion/progress.py``). ``status --json``
prints the same as one JSON object (``status_document``), for the submit dialog, which follows a job through it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from farm_plugin.errors import BadInput, ComfyfarmError, UsageError, exit_code
from farm_plugin.frames.framelist import parse_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import RelinkIdentity, read_job_record
from farm_plugin.paths import map_path
from farm_plugin.workflow.params import parse_assignments, resolve_parameters
from flame_submitter.config import Config, load_config
from flame_submitter.deadline.client import JOB_STATES, TASK_STATES, DeadlineClient
from flame_submitter.deadline.jobs import job_outputs, recent_jobs, state_of, task_counts
from flame_submitter.deadline.submit import (
    ClipRequest,
    SubmissionIncomplete,
    SubmissionUncertain,
    deadline_client,
    dry_run_document,
    plan,
    preflight_farm,
    submit_jobs,
    submitting_user,
)
from flame_submitter.deadline_cloud.bundle import BundleOptions, build_bundles
from flame_submitter.deadline_cloud.cli import find_cli
from flame_submitter.deadline_cloud.submit import PartlySubmitted, submit_bundles, write_bundles
from flame_submitter.jobs.builder import PlannedJob
from flame_submitter.jobs.record import clip_name, load_workflow, requested_frames
from flame_submitter.jobs.templates import load_template
from flame_submitter.preview.progress import PassFrames

BACKENDS = ("deadline", "deadline-cloud")
CLOUD_ONLY = (("bundle_dir", "--bundle-dir"), ("cpu", "--cpu"), ("job_param", "--job-param"))


def add_parsers(commands: Any) -> None:
    parser = commands.add_parser("submit", help="submit a workflow over a frame sequence to Deadline",
                                 description="Check everything, then submit one Deadline job (two with a preview "
                                             "template), each with a hand-back job that brings its result back to "
                                             "Flame however it ends, and print the render job id(s).")
    parser.add_argument("--workflow", required=True, metavar="NAME|PATH")
    parser.add_argument("--input", required=True, metavar="PATTERN", help="source frames on shared storage")
    parser.add_argument("--frames", metavar="LIST", help="Deadline frame list; default: every frame on disk")
    parser.add_argument("--output", required=True, metavar="PATTERN", help="results on shared storage")
    parser.add_argument("--name", help="the clip's name in Deadline (default: from --input)")
    parser.add_argument("--template", help="job template (default: the workflow's, else 'default')")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a workflow parameter")
    parser.add_argument("--chunk-size", type=int, metavar="N")
    parser.add_argument("--priority", type=int, metavar="N")
    parser.add_argument("--pool")
    parser.add_argument("--group")
    parser.add_argument("--farm", action="append", default=[], metavar="KEY=VALUE",
                        help="override any job template field, e.g. --farm machine_limit=4 --farm limit_groups=nuke")
    parser.add_argument("--exr-layers", action="store_true",
                        help="a workflow with several passes writes them as the layers of one EXR per frame at "
                             "--output, imported into Flame as one clip (the template's exr_layers: true; "
                             "--farm exr_layers=false turns a template's off); needs an .exr output")
    parser.add_argument("--project", help="the Flame project the results go back to (relink)")
    parser.add_argument("--comment", default="")
    parser.add_argument("--dry-run", action="store_true", help="print JobInfo and PluginInfo as JSON (with "
                        "--backend deadline-cloud: the job bundle); write and send nothing")
    parser.add_argument("--backend", choices=BACKENDS, default="deadline",
                        help="deadline: Deadline 10, through its Web Service (default); deadline-cloud: an Open Job "
                             "Description job bundle for AWS Deadline Cloud, submitted with the 'deadline' CLI")
    parser.add_argument("--bundle-dir", metavar="DIR",
                        help="deadline-cloud: write the job bundle into DIR and submit nothing")
    parser.add_argument("--cpu", action="store_true",
                        help="deadline-cloud: run ComfyUI on CPU (--cpu), with no GPU host requirement")
    parser.add_argument("--job-param", action="append", default=[], metavar="NAME=VALUE",
                        help="deadline-cloud: a worker parameter of the bundle, e.g. ComfyUIDir=/opt/ComfyUI, "
                             "ComfyFarmPython=/opt/comfyfarm/bin/python")
    parser.set_defaults(run=run_submit)

    status = commands.add_parser("status", help="a Deadline job's state, tasks and errors, and the frames done per "
                                                "pass with a thumbnail of the latest")
    status.add_argument("job_id", metavar="JOB_ID")
    status.add_argument("--json", action="store_true",
                        help="print one JSON object: job, name, state, tasks_done, tasks, progress (0-100), errors, "
                             "passes [{name, done, total, latest, thumbnail, thumbnail_error}], frames_error and "
                             "error (the latest error report, or what stopped the command; null for none)")
    status.set_defaults(run=run_status)

    jobs = commands.add_parser("jobs", help="your recent Deadline jobs")
    jobs.add_argument("--all-users", action="store_true")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(run=run_jobs)

    cancel = commands.add_parser("cancel", help="stop a Deadline job (marks it failed; finished frames stay)")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.add_argument("--delete", action="store_true", help="delete the job from Deadline instead")
    cancel.set_defaults(run=run_cancel)


def _fail(error: BaseException, prefix: str = "") -> int:
    """Say on one line what stopped the command; its exit status by the error's category (``exit_code``)."""
    print(f"comfyfarm: {prefix}{error}", file=sys.stderr)
    return exit_code(error)


def run_submit(args: argparse.Namespace) -> int:
    misplaced = [flag for key, flag in CLOUD_ONLY if getattr(args, key)] if args.backend == "deadline" else []
    if misplaced:
        return _fail(UsageError(f"{', '.join(misplaced)} only go with --backend deadline-cloud"))
    try:
        config = load_config()
        package = load_workflow(args.workflow, config.workflows_dirs)
        parameters = resolve_parameters(package, parse_assignments(args.set))
        template = load_template(args.template or package.template, list(config.job_templates_dirs))
        overrides = {key: value for key, value in (("chunk_size", args.chunk_size), ("priority", args.priority),
                                                   ("pool", args.pool), ("group", args.group),
                                                   ("exr_layers", True if args.exr_layers else None))
                     if value is not None}
        template = template.with_overrides({**parse_assignments(args.farm, option="--farm", example="chunk_size=8"),
                                              **overrides})
        source = FramePattern.parse(args.input, role="input")
        frames = requested_frames(args.frames, source)
        name = args.name or clip_name(source, package)
        relink = RelinkIdentity(project=args.project, clip_name=name, user=submitting_user(config))
        request = ClipRequest(name=name, pattern=args.input, frames=frames, output_pattern=args.output,
                              relink=relink)
        jobs = plan([request], workflow=package, parameters=parameters, template=template, config=config,
                    comment=args.comment)
    except ComfyfarmError as exc:
        return _fail(exc)
    if args.backend == "deadline-cloud":
        return run_submit_bundle(args, jobs, config)
    placed = jobs[0].scheduling if jobs else None  # one workflow and one template: the same for every job
    for note in placed.notes() if placed is not None else []:
        print(f"comfyfarm: {note}", file=sys.stderr)  # what the template's gpu_groups / family_limits chose
    if args.dry_run:
        print(json.dumps(dry_run_document(jobs), indent=2))
        return 0
    try:
        client = deadline_client(config)
        preflight_farm(client, template, jobs)
        submitted = submit_jobs(jobs, client)
    except (BadInput, SubmissionIncomplete, SubmissionUncertain) as exc:  # the last two: say which jobs may exist
        return _fail(exc)
    except (ComfyfarmError, OSError) as exc:
        return _fail(exc, "nothing was submitted: ")
    for item in submitted:
        info = item.planned.submission.job_info
        print(item.job_id)
        hand_back = f", handed back by job {item.hand_back_id}" if item.hand_back_id else ""
        print(f"comfyfarm: {info['Name']} → Deadline job {item.job_id} (frames {info['Frames']}{hand_back}, record "
              f"{item.planned.record_path})", file=sys.stderr)
    return 0


def run_submit_bundle(args: argparse.Namespace, jobs: List[PlannedJob], config: Config) -> int:
    """``--backend deadline-cloud``: write the job bundle(s) into --bundle-dir, or submit them with ``deadline``."""
    try:
        options = BundleOptions(cpu=args.cpu, inbox=str(Path(config.inbox_root).expanduser()) if config.inbox_root
                                else None, job_parameters=parse_assignments(
                                    args.job_param, option="--job-param", example="ComfyUIDir=/opt/ComfyUI"))
        if args.dry_run:
            print(json.dumps({"bundles": [{"template": b.template, "parameterValues": b.parameter_values}
                                          for b in build_bundles(jobs, options)]}, indent=2))
            return 0
        if args.bundle_dir:
            written = write_bundles(jobs, options, Path(args.bundle_dir).expanduser())
            for item in written:
                print(item.folder)
                print(f"comfyfarm: {item.bundle.name} → job bundle {item.folder} (job folder {item.job_folder})\n"
                      f"  submit it: deadline bundle submit {item.folder}\n  or run it here: {item.run_command()}",
                      file=sys.stderr)
            return 0
        cli = find_cli()
        submitted = submit_bundles(jobs, options, cli)
    except (BadInput, PartlySubmitted) as exc:  # no Deadline Cloud CLI is bad input; some jobs exist: say which
        return _fail(exc)
    except (ComfyfarmError, OSError) as exc:
        return _fail(exc, "nothing was submitted: ")
    for item, job_id in submitted:
        print(job_id)
        print(f"comfyfarm: {item.bundle.name} → Deadline Cloud job {job_id} (farm {cli.farm_id}, queue {cli.queue_id}, "
              f"bundle {item.folder})", file=sys.stderr)
    return 0


def _client() -> DeadlineClient:
    return deadline_client(load_config())


@dataclass(frozen=True)
class JobStatus:
    """A job as ``status`` shows it: its state ("Queued" or "Rendering" for an Active job), tasks and errors."""

    state: str
    tasks_done: int
    tasks: int
    errors: int

    @property
    def progress(self) -> float:
        """Percent of the tasks completed, 0-100."""
        return 100.0 * self.tasks_done / self.tasks if self.tasks else 0.0


def job_status(job: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> JobStatus:
    state = JOB_STATES.get(job.get("Stat"), f"state {job.get('Stat')}")
    if state == "Active":
        state = "Rendering" if any(t.get("Stat") == 4 for t in tasks) else "Queued"
    return JobStatus(state=state, tasks_done=sum(1 for t in tasks if t.get("Stat") == 5), tasks=len(tasks),
                     errors=int(job.get("Errs", 0) or 0))


def describe_job(job: Dict[str, Any], tasks: List[Dict[str, Any]], frames: Sequence[str] = ()) -> List[str]:
    """What ``status`` prints of a job: its state, its outputs, then ``frames`` (``frames_lines``), then its
    rendering and failed tasks."""
    props = job.get("Props") or {}
    summary = job_status(job, tasks)
    lines = [
        f"{job.get('_id')}  {props.get('Name', '')}",
        f"  state: {summary.state}    tasks: {summary.tasks_done}/{summary.tasks} done    progress: "
        f"{summary.progress:.0f} %    errors: {job.get('Errs', 0)}",
        f"  user: {props.get('User', '')}    frames: {props.get('Frames', '')}    workflow: {props.get('Ex0', '')}",
    ]
    lines += [f"  {name or 'output'}: {path}" for name, path in job_outputs(job)]
    lines += list(frames)
    for task in tasks:
        if task.get("Stat") in (4, 6):
            status = task.get("RndStat") or ""
            lines.append(f"  task {task.get('TaskID')} ({task.get('Frames')}): "
                         f"{TASK_STATES.get(task.get('Stat'))} {task.get('Prog', '')} {status}".rstrip())
    return lines


@dataclass(frozen=True)
class FramesDone:
    """Each pass's frames (``passes``), or why they were not counted (``error``)."""

    passes: Tuple[PassFrames, ...] = ()
    error: Optional[str] = None


def frames_done(job: Mapping[str, Any], config: Config) -> FramesDone:
    """Per pass, the job's frames on disk and whole and the latest, from the job record the job names, its farm
    paths read through ``config``'s path mappings; the latest frame's thumbnail is written into the job folder
    (``latest_<pass>.jpg``). No pass for a job without a record; ``error`` where the record cannot be read."""
    from farm_plugin.completion.contact_sheet import ContactSheetError
    from farm_plugin.completion.progress import pass_progress, write_latest_thumbnail

    props = job.get("Props") or {}
    farm_record = str((props.get("PlugInfo") or {}).get("JobRecord") or "")
    if not farm_record:
        return FramesDone()

    def here(path: str) -> str:
        return map_path(path, config.path_mappings, source_os=config.farm_os, target_os=config.workstation_os)

    try:
        record = read_job_record(here(farm_record))
        frames = parse_frame_list(str(props["Frames"])) if props.get("Frames") else None
        progress = pass_progress(record, frames, output_pattern=here(record.output.pattern))
    except ComfyfarmError as exc:  # the record's errors say which file, and why
        return FramesDone(error=str(exc))
    passes = []
    for item in progress:
        thumbnail, why = None, None
        if item.latest is not None:
            try:
                written = write_latest_thumbnail(record, item, Path(here(farm_record)).parent)
                thumbnail = str(written) if written is not None else None
            except ContactSheetError as exc:
                why = str(exc)
        passes.append(PassFrames(name=item.name, done=len(item.done), total=item.total, latest=item.latest,
                                 thumbnail=thumbnail, thumbnail_error=why))
    return FramesDone(passes=tuple(passes))


def frames_lines(frames: FramesDone) -> List[str]:
    """``status``'s lines of ``frames``: ``  inverted frames: 12/24 done, latest 1012 (thumbnail /jobs/…/
    latest_inverted.jpg)`` per pass (a one-pass job: ``  frames: …``), or one line saying why they were not
    counted."""
    if frames.error is not None:
        return [f"  frames: not counted: {frames.error}"]
    lines = []
    for item in frames.passes:
        label = f"{item.name} frames" if len(frames.passes) > 1 else "frames"
        line = f"  {label}: {item.done}/{item.total} done"
        if item.latest is not None:
            shown = f"thumbnail {item.thumbnail}" if item.thumbnail else f"no thumbnail: {item.thumbnail_error}"
            line += f", latest {item.latest} ({shown})"
        lines.append(line)
    return lines


def report_line(report: Mapping[str, Any]) -> str:
    """An error report as ``status`` shows it: ``on <Worker> (task N): <its first line>``."""
    text = str(report.get("ErrorMessage") or report.get("Title") or "").strip().splitlines()
    return f"on {report.get('Slave', '?')} (task {report.get('Task', '?')}): {text[0] if text else ''}"


def status_document(job: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], frames: FramesDone,
                    errors: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """``status --json``: what the text shows, as one object; ``error`` is the latest error report (null: none)."""
    summary = job_status(job, tasks)
    return {
        "job": job.get("_id"), "name": (job.get("Props") or {}).get("Name", ""), "state": summary.state,
        "tasks_done": summary.tasks_done, "tasks": summary.tasks, "progress": round(summary.progress, 1),
        "errors": summary.errors,
        "passes": [item.to_mapping() for item in frames.passes],
        "frames_error": frames.error,
        "error": report_line(errors[-1]) if errors else None,
    }


def failed_status_document(job_id: str, error: BaseException) -> Dict[str, Any]:
    """``status --json`` when the job could not be read: ``error`` says why; nothing else is known."""
    return {"job": job_id, "name": None, "state": None, "tasks_done": 0, "tasks": 0, "progress": 0.0, "errors": 0,
            "passes": [], "frames_error": None, "error": str(error)}


def run_status(args: argparse.Namespace) -> int:
    try:
        config = load_config()
        client = deadline_client(config)
        job = client.get_job(args.job_id)
        tasks = client.get_job_tasks(args.job_id)["Tasks"]
        errors = client.job_reports(args.job_id, "error") if job.get("Errs") else []
    except ComfyfarmError as exc:
        if args.json:
            print(json.dumps(failed_status_document(args.job_id, exc)))
        return _fail(exc)
    frames = frames_done(job, config)
    if args.json:
        print(json.dumps(status_document(job, tasks, frames, errors)))
        return 0
    for line in describe_job(job, tasks, frames_lines(frames)):
        print(line)
    for report in errors[-3:]:
        print(f"  error {report_line(report)}")
    return 0


def run_jobs(args: argparse.Namespace) -> int:
    try:
        config = load_config()
        client = deadline_client(config)
        jobs = client.get_jobs()
    except ComfyfarmError as exc:
        return _fail(exc)
    user = submitting_user(config)
    mine = recent_jobs(jobs, user, all_users=args.all_users)
    for job in mine[:args.limit]:
        props = job.get("Props") or {}
        done, total = task_counts(job)
        print(f"{job.get('_id')}  {state_of(job):<9}  {done}/{total} tasks  {props.get('Ex0', '')}  "
              f"{props.get('Name', '')}")
    if not mine:
        print(f"comfyfarm: no comfyfarm jobs for {user}", file=sys.stderr)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    try:
        client = _client()
        client.get_job(args.job_id)
        if args.delete:
            client.delete_job(args.job_id)
        else:
            client.fail_job(args.job_id)
    except ComfyfarmError as exc:
        return _fail(exc)
    print(f"comfyfarm: job {args.job_id} {'deleted' if args.delete else 'cancelled (failed); finished frames stay'}; "
          "its hand-back job tells Flame which frames exist", file=sys.stderr)
    return 0
