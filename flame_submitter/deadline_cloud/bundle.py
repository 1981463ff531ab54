"""The job as an Open Job Description job bundle, for AWS Deadline Cloud (or ``openjd run`` anywhere).

A bundle is a folder with ``template.yaml`` (an OpenJD job template, specification ``jobtemplate-2023-09``)
and ``parameter_values.yaml`` (``parameterValues: [{name, value}, …]``, with Deadline Cloud's own
``deadline:priority``-style values), the layout ``deadline bundle submit`` reads (aws-deadline/deadline-cloud
``api/_submit_job_bundle.py``, ``job_bundle/submission.py``). It is built from the planned Deadline 10 jobs
(jobs/builder.py, whose records jobs/record.py builds as for run-local): the same job record in the same job
folder, the same frames, chunk size, priority, timeout and GPUs per task; nothing is decided twice.

The template, per job (one clip):

- Job parameters: ``JobRecord`` (PATH, the record on shared storage), ``InputDir`` and ``OutputDir`` (PATH,
  data flow IN and OUT: Deadline Cloud maps them to the worker's paths, and with job attachments moves the
  files), ``Inbox`` (PATH, only when an inbox is configured), and the worker side with defaults:
  ``ComfyFarmPython`` (the Python with comfyfarm installed), ``ComfyUIDir``, ``ComfyUIPython``,
  ``ComfyUIArgs``, ``ComfyUIURL`` (empty: the worker's ``COMFYUI_*`` variables), ``BasePort``,
  ``StartupTimeoutSeconds``, ``IdleTimeoutSeconds``, ``RestartLimit``.
- A render step per part (``Preview`` then ``Render`` with a preview template, else ``Render``): the task
  parameter ``Frame`` is ``CHUNK[INT]`` over the part's frames, in contiguous chunks of the job's chunk
  size (the ``TASK_CHUNKING`` extension, openjd-specifications RFC 0001; no ``targetRuntimeSeconds``, so
  chunks keep that size). A step environment starts ComfyUI on enter and stops it on exit
  (farm_plugin/openjd/env.py), so ComfyUI stays warm for every task of the step's session; each task runs
  the chunk runner through farm_plugin/openjd/task.py, which reports with ``openjd_progress:`` /
  ``openjd_status:`` lines and cancels cleanly (``NOTIFY_THEN_TERMINATE``). Host requirements ask for
  ``amount.worker.gpu`` (the template's GPUs per task) unless the job runs on CPU, and a POSIX worker.
- A ``Finish`` step after the render steps (farm_plugin/openjd/finish.py): cross-fades sequence
  workflows' chunk joins, verifies the frames, and writes the completion record beside the frames, in the
  job folder and, with an inbox, into the inbox for Flame.

Every pass of a several-pass workflow goes into ``OutputDir`` beside the others
(``farm_plugin.jobrecord.pass_patterns``: ``sh010.####.exr`` → ``sh010_depth.####.exr``, same folder): the
tasks and the Finish step get the job's pattern in ``OutputDir`` and derive each pass's from it, so the OUT data
flow, job attachments and ``deadline job download-output`` carry every pass, and the completion record lists
each (flame/bundle_import.py imports them all). A job whose passes are the layers of one EXR per frame (the
record's ``exr_layers``, ``farm_plugin.jobrecord.layered``) writes that one sequence at the job's own pattern:
the template's description says so, the completion record lists every pass at it, and the import brings it in
once, as one multi-channel clip.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from farm_plugin import __version__
from farm_plugin.errors import BadInput
from farm_plugin.frames.framelist import format_frame_list, parse_frame_list
from farm_plugin.frames.pattern import FramePattern
from farm_plugin.jobrecord import JobRecord, layered
from farm_plugin.paths import PathMapping, map_path
from flame_submitter.jobs.builder import PlannedJob

logger = logging.getLogger(__name__)

SPECIFICATION = "jobtemplate-2023-09"
TASK_CHUNKING = "TASK_CHUNKING"
TEMPLATE_FILE = "template.yaml"
PARAMETER_VALUES_FILE = "parameter_values.yaml"
FINISH_STEP = "Finish"
ENVIRONMENT_NAME = "ComfyUI"
STATE_FILE = "{{Session.WorkingDirectory}}/comfyfarm-comfyui.json"
ENTER_TIMEOUT_SECONDS = 1800  # above StartupTimeoutSeconds' maximum: ComfyUI's own start-up timeout says why first
EXIT_TIMEOUT_SECONDS = 120
FINISH_TIMEOUT_SECONDS = 3600
CANCEL_NOTIFY_SECONDS = 30  # the runner withdraws its prompts in well under this; OpenJD's maximum is 600
MAX_JOB_NAME = 128
STEP_NAMES = {"preview": "Preview", "main": "Render"}
POSIX_HOSTS = ["linux", "macos"]  # ComfyUI runs in its own process group (farm_plugin/comfyui/server.py)


class BundleError(BadInput):
    """A bundle cannot be built or written: the message says why and what to do."""


@dataclass(frozen=True)
class BundleOptions:
    """Choices that only a bundle has: CPU instead of GPU, the artist's inbox, worker parameter values."""

    cpu: bool = False
    inbox: Optional[str] = None  # the relink inbox, as the workstation sees it
    job_parameters: Mapping[str, str] = field(default_factory=dict)  # e.g. {"ComfyUIDir": "/opt/ComfyUI"}


@dataclass(frozen=True)
class JobBundle:
    key: str  # the job folder's name
    name: str
    template: Dict[str, Any]
    parameter_values: List[Dict[str, Any]]

    def write(self, folder: Path) -> Path:
        """Write ``template.yaml`` and ``parameter_values.yaml`` into ``folder``; returns the folder."""
        header = (f"# comfyfarm {__version__}: {self.name} (job {self.key}), an Open Job Description job bundle.\n"
                  f"# Submit: deadline bundle submit {folder}   Run here: openjd run {folder / TEMPLATE_FILE} -p …\n")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / TEMPLATE_FILE).write_text(header + _dump(self.template), encoding="utf-8")
            (folder / PARAMETER_VALUES_FILE).write_text(_dump({"parameterValues": self.parameter_values}),
                                                        encoding="utf-8")
        except OSError as exc:
            reason = "it is a file" if isinstance(exc, FileExistsError) else exc.strerror or exc
            raise BundleError(f"cannot write the job bundle into {folder} ({reason}): choose a folder you can write "
                              "to, with free space") from exc
        logger.debug("wrote the job bundle %s", folder)
        return folder

    def values(self) -> Dict[str, str]:
        """The job parameters' values (without Deadline Cloud's ``deadline:`` ones), e.g. for ``openjd run``."""
        return {v["name"]: str(v["value"]) for v in self.parameter_values if ":" not in v["name"]}


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, width=1000)


def openjd_range(frames: Sequence[int]) -> str:
    """Frames as an OpenJD range expression: ``1001-1024``, ``1001-1010,1012``, ``1-9:2``."""
    if not frames:
        raise BundleError("a step needs at least one frame")
    return format_frame_list(frames).replace("x", ":")


# -- parameters ------------------------------------------------------------------------------------------


def parameter_definitions(*, cpu: bool, inbox: bool) -> List[Dict[str, Any]]:
    definitions: List[Dict[str, Any]] = [
        {"name": "JobRecord", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
         "description": "The job record (job.json) in the job's folder on shared storage, written at submission."},
        {"name": "InputDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "IN",
         "description": "The folder of the source frames."},
        {"name": "OutputDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
         "description": "The folder the results are written to, with their completion record."},
    ]
    if inbox:
        definitions.append({"name": "Inbox", "type": "PATH", "objectType": "DIRECTORY",
                            "description": "The relink inbox: Flame imports the finished job from there."})
    definitions += [
        {"name": "ComfyFarmPython", "type": "STRING", "default": "python3", "minLength": 1,
         "description": "The Python on the worker that has comfyfarm installed (python -m farm_plugin.runner)."},
        {"name": "ComfyUIDir", "type": "STRING", "default": "",
         "description": "The worker's ComfyUI folder; empty: $COMFYUI_DIR on the worker."},
        {"name": "ComfyUIPython", "type": "STRING", "default": "",
         "description": "The Python that runs ComfyUI; empty: $COMFYUI_PYTHON, else ComfyUI's own venv."},
        {"name": "ComfyUIArgs", "type": "STRING", "default": "--cpu" if cpu else "",
         "description": "Extra ComfyUI arguments (one string); empty: $COMFYUI_ARGS."},
        {"name": "ComfyUIURL", "type": "STRING", "default": "",
         "description": "Use this running ComfyUI instead of starting one (e.g. http://127.0.0.1:8188)."},
        {"name": "BasePort", "type": "INT", "default": 8188, "minValue": 1024, "maxValue": 65435,
         "description": "ComfyUI's port on 127.0.0.1, or the next free one."},
        {"name": "StartupTimeoutSeconds", "type": "INT", "default": 300, "minValue": 10, "maxValue": 1700,
         "description": "How long ComfyUI may take to answer after it starts."},
        {"name": "IdleTimeoutSeconds", "type": "INT", "default": 900, "minValue": 10,
         "description": "The longest silence from ComfyUI while a prompt runs."},
        {"name": "RestartLimit", "type": "INT", "default": 2, "minValue": 0, "maxValue": 10,
         "description": "How many times a ComfyUI that died is restarted in one session."},
    ]
    return definitions


WORKER_PARAMETERS = ("ComfyFarmPython", "ComfyUIDir", "ComfyUIPython", "ComfyUIArgs", "ComfyUIURL", "BasePort",
                     "StartupTimeoutSeconds", "IdleTimeoutSeconds", "RestartLimit")


# -- steps -----------------------------------------------------------------------------------------------


def comfyui_environment() -> Dict[str, Any]:
    # Every option is one ``--name=value`` argument: a value that starts with '-' (ComfyUIArgs '--cpu', a
    # negative frame) would otherwise read as an option of its own.
    python = "{{Param.ComfyFarmPython}}"
    return {
        "name": ENVIRONMENT_NAME,
        "description": "ComfyUI, started once for the session; every task of the step uses it.",
        "script": {"actions": {
            "onEnter": {
                "command": python,
                "args": ["-m", "farm_plugin.openjd", "env", "enter", f"--state={STATE_FILE}",
                         "--comfyui-dir={{Param.ComfyUIDir}}", "--comfyui-python={{Param.ComfyUIPython}}",
                         "--comfyui-args={{Param.ComfyUIArgs}}", "--comfyui-url={{Param.ComfyUIURL}}",
                         "--base-port={{Param.BasePort}}", "--startup-timeout-s={{Param.StartupTimeoutSeconds}}",
                         "--restart-limit={{Param.RestartLimit}}"],
                "timeout": ENTER_TIMEOUT_SECONDS,
                "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": CANCEL_NOTIFY_SECONDS},
            },
            "onExit": {
                "command": python,
                "args": ["-m", "farm_plugin.openjd", "env", "exit", f"--state={STATE_FILE}"],
                "timeout": EXIT_TIMEOUT_SECONDS,
            },
        }},
    }


def host_requirements(gpus: int, *, cpu: bool) -> Dict[str, Any]:
    requirements: Dict[str, Any] = {"attributes": [{"name": "attr.worker.os.family", "anyOf": list(POSIX_HOSTS)}]}
    if gpus > 0 and not cpu:
        requirements["amounts"] = [{"name": "amount.worker.gpu", "min": gpus}]
    return requirements


def render_step(name: str, frames: Sequence[int], *, chunk_size: int, gpus: int, cpu: bool,
                timeout_s: int, source_name: str, output_name: str, after: Optional[str]) -> Dict[str, Any]:
    run: Dict[str, Any] = {
        "command": "{{Param.ComfyFarmPython}}",
        "args": ["-m", "farm_plugin.openjd", "task", f"--state={STATE_FILE}", "--job={{Param.JobRecord}}",
                 "--frames={{Task.Param.Frame}}",  # a chunk of negative frames starts with '-'
                 "--source-pattern={{Param.InputDir}}/" + source_name,
                 "--output-pattern={{Param.OutputDir}}/" + output_name,
                 "--idle-timeout-s={{Param.IdleTimeoutSeconds}}"],
        "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": CANCEL_NOTIFY_SECONDS},
    }
    if timeout_s > 0:
        run["timeout"] = timeout_s
    step: Dict[str, Any] = {
        "name": name,
        "description": f"{len(frames)} frame(s) in chunks of {chunk_size}, on one warm ComfyUI per session.",
        "parameterSpace": {"taskParameterDefinitions": [{
            "name": "Frame",
            "type": "CHUNK[INT]",
            "range": openjd_range(frames),
            "chunks": {"defaultTaskCount": chunk_size, "rangeConstraint": "CONTIGUOUS"},
        }]},
        "stepEnvironments": [comfyui_environment()],
        "script": {"actions": {"onRun": run}},
        "hostRequirements": host_requirements(gpus, cpu=cpu),
    }
    if after:
        step["dependencies"] = [{"dependsOn": after}]
    return step


def finish_step(frames: Sequence[int], *, output_name: str, after: Sequence[str], inbox: bool) -> Dict[str, Any]:
    args = ["-m", "farm_plugin.openjd", "finish", "--job={{Param.JobRecord}}", f"--frames={openjd_range(frames)}",
            "--output-pattern={{Param.OutputDir}}/" + output_name]
    if inbox:
        args.append("--inbox={{Param.Inbox}}")
    return {
        "name": FINISH_STEP,
        "description": "Joins, verifies the frames and writes the completion record for Flame.",
        "dependencies": [{"dependsOn": name} for name in after],
        "script": {"actions": {"onRun": {"command": "{{Param.ComfyFarmPython}}", "args": args,
                                         "timeout": FINISH_TIMEOUT_SECONDS}}},
        "hostRequirements": host_requirements(0, cpu=True),
    }


# -- the bundle --------------------------------------------------------------------------------------------


def workstation_path(record: JobRecord, path: str) -> str:
    """A farm path of the record as the submitting workstation sees it (the record holds farm paths)."""
    if not record.workstation_os or not record.farm_os:
        return path
    mappings = [PathMapping.from_dict(m) for m in record.path_mappings]
    return map_path(path, mappings, source_os=record.farm_os, target_os=record.workstation_os)


def _name_of(pattern: str) -> Tuple[str, str]:
    """``(folder, file name with its frame token)`` of a frame pattern."""
    parsed = FramePattern.parse(pattern)
    name = f"{parsed.head}{'#' * parsed.padding}{parsed.tail}"
    return parsed.directory or ".", name


def _int(info: Mapping[str, str], key: str, default: int = 0) -> int:
    value = str(info.get(key, "")).strip()
    return int(value) if re.fullmatch(r"-?\d+", value) else default


def build_bundle(parts: Sequence[PlannedJob], options: BundleOptions = BundleOptions()) -> JobBundle:
    """The bundle of one job (its parts, preview first, share one record and folder)."""
    if not parts or len({p.key for p in parts}) != 1:
        raise BundleError("a bundle holds the parts of one job")
    unknown = sorted(set(options.job_parameters) - set(WORKER_PARAMETERS))
    if unknown:
        raise BundleError(f"unknown job parameter(s) {', '.join(unknown)}: the bundle's worker parameters are "
                          f"{', '.join(WORKER_PARAMETERS)}")
    record = parts[0].record
    input_dir, source_name = _name_of(workstation_path(record, record.source.pattern))
    output_dir, output_name = _name_of(workstation_path(record, record.output.pattern))
    steps: List[Dict[str, Any]] = []
    previous: Optional[str] = None
    for part in parts:
        info, plugin = part.submission.job_info, part.submission.plugin_info
        name = STEP_NAMES.get(part.part, part.part.title())
        steps.append(render_step(
            name, parse_frame_list(info["Frames"]), chunk_size=max(1, _int(info, "ChunkSize", 1)),
            gpus=_int(plugin, "GPUsPerTask", 1), cpu=options.cpu, timeout_s=60 * _int(info, "TaskTimeoutMinutes"),
            source_name=source_name, output_name=output_name, after=previous))
        previous = name
    render_steps = [step["name"] for step in steps]
    steps.append(finish_step(record.source.frames, output_name=output_name, after=render_steps,
                             inbox=bool(options.inbox)))
    main = parts[-1].submission.job_info
    template = {
        "specificationVersion": SPECIFICATION,
        "extensions": [TASK_CHUNKING],
        "name": record.name[:MAX_JOB_NAME],
        "description": f"{main.get('Comment', '')} (comfyfarm job {record.job_id}, record {parts[0].record_path})"
                       + output_text(record, output_name),
        "parameterDefinitions": parameter_definitions(cpu=options.cpu, inbox=bool(options.inbox)),
        "steps": steps,
    }
    values: List[Dict[str, Any]] = [
        {"name": "JobRecord", "value": str(parts[0].record_path)},
        {"name": "InputDir", "value": input_dir},
        {"name": "OutputDir", "value": output_dir},
    ]
    if options.inbox:
        values.append({"name": "Inbox", "value": str(options.inbox)})
    values += [{"name": key, "value": value} for key, value in options.job_parameters.items()]
    values += deadline_values(parts)
    return JobBundle(parts[0].key, record.name, template, values)


def output_text(record: JobRecord, output_name: str) -> str:
    """What the job writes into ``OutputDir``, where one file holds several passes (``""`` otherwise: the file
    names say it)."""
    if not layered(record):
        return ""
    names = ", ".join(spec.name for spec in record.workflow.passes)
    return f"; writes {output_name} in OutputDir, one EXR per frame with the passes {names} as its layers"


def deadline_values(parts: Sequence[PlannedJob]) -> List[Dict[str, Any]]:
    """Deadline Cloud's own settings from the job template, as ``deadline:*`` parameter values
    (``priority``, ``targetTaskRunStatus``, ``maxRetriesPerTask``: deadline-cloud ``job_bundle/submission.py``)."""
    first = parts[0].submission.job_info  # the preview's priority, when there is one: it goes first
    values: List[Dict[str, Any]] = [
        {"name": "deadline:priority", "value": _int(first, "Priority", 50)},
        {"name": "deadline:targetTaskRunStatus",
         "value": "SUSPENDED" if first.get("InitialStatus") == "Suspended" else "READY"},
    ]
    task_errors = _int(first, "FailureDetectionTaskErrors")
    if task_errors > 0:  # Deadline 10 fails a task at its Nth error: N - 1 retries after the first attempt
        values.append({"name": "deadline:maxRetriesPerTask", "value": task_errors - 1})
    return values


def build_bundles(jobs: Sequence[PlannedJob], options: BundleOptions = BundleOptions()) -> List[JobBundle]:
    """One bundle per job folder, in the order planned."""
    keys: List[str] = []
    for job in jobs:
        if job.key not in keys:
            keys.append(job.key)
    return [build_bundle([j for j in jobs if j.key == key], options) for key in keys]


def bundle_folders(bundles: Sequence[JobBundle], bundle_dir: Path) -> List[Path]:
    """``bundle_dir`` for one bundle, ``bundle_dir/<job>`` for each of several."""
    if len(bundles) == 1:
        return [bundle_dir]
    return [bundle_dir / bundle.key for bundle in bundles]


def check_free(folder: Path) -> None:
    """A bundle folder must not hold a bundle already (nothing is overwritten)."""
    for name in (TEMPLATE_FILE, PARAMETER_VALUES_FILE):
        if (folder / name).exists():
            raise BundleError(f"{folder} already holds a job bundle ({name}): choose a new folder, or remove it")


def read_values(folder: Path) -> Dict[str, str]:
    """A written bundle's job parameter values (``parameter_values.yaml`` without the ``deadline:`` ones)."""
    data = yaml.safe_load((folder / PARAMETER_VALUES_FILE).read_text(encoding="utf-8")) or {}
    return {v["name"]: str(v["value"]) for v in data.get("parameterValues", []) if ":" not in v["name"]}


def job_record_of(folder: Path) -> Optional[Path]:
    """The job record a written bundle names (its ``JobRecord`` value), or None when it is no comfyfarm bundle."""
    try:
        value = read_values(folder).get("JobRecord")
    except (OSError, ValueError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return None
    return Path(value) if value else None
