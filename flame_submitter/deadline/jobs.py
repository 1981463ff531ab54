"""Reading comfyfarm's jobs out of the Web Service's job list: whose, how recent, how far along."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from flame_submitter.deadline.client import JOB_STATES
from flame_submitter.jobs.builder import HAND_BACK_MODE

CHUNK_COUNTERS = ("CompletedChunks", "QueuedChunks", "SuspendedChunks", "RenderingChunks", "FailedChunks",
                  "PendingChunks")


def recent_jobs(jobs: Sequence[Mapping[str, Any]], user: str, *, all_users: bool = False) -> List[Dict[str, Any]]:
    """comfyfarm's render jobs (those with a job record, hand-back jobs left out) of ``user`` (or everyone's),
    newest first."""
    mine = [dict(j) for j in jobs if (all_users or (j.get("Props") or {}).get("User") == user)
            and (j.get("Props") or {}).get("PlugInfo", {}).get("JobRecord")
            and (j.get("Props") or {}).get("PlugInfo", {}).get("Mode") != HAND_BACK_MODE]
    return sorted(mine, key=lambda j: str(j.get("Date", "")), reverse=True)


def task_counts(job: Mapping[str, Any]) -> Tuple[int, int]:
    """``(completed, total)`` tasks, from the job's chunk counters."""
    total = sum(int(job.get(key, 0) or 0) for key in CHUNK_COUNTERS)
    return int(job.get("CompletedChunks", 0) or 0), total


def job_outputs(job: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """``(pass, path)`` of each output the job names (``OutDir``/``OutFile``, from JobInfo's ``OutputDirectory<i>``
    and ``OutputFilename<i>``, in the farm's paths): the pass names of a several-pass job from its
    ``comfyfarm_passes`` extra info, ``""`` for a one-pass job's only output, and for a job whose passes are the
    layers of its one output (``comfyfarm_exr_layers``) ``output (passes a, b as layers)``."""
    folders, files = list(job.get("OutDir") or []), list(job.get("OutFile") or [])
    extra = (job.get("Props") or {}).get("ExDic") or {}
    names = [name for name in str(extra.get("comfyfarm_passes") or "").split(",") if name]
    paths = [_joined(str(folder), str(name)) for folder, name in zip(folders, files)]
    if len(paths) == 1 and not names:
        return [("", paths[0])]
    if len(paths) == 1 and str(extra.get("comfyfarm_exr_layers") or "") == "true":
        return [(f"output (passes {', '.join(names)} as layers)", paths[0])]
    return [(names[index] if index < len(names) else f"output {index}", path) for index, path in enumerate(paths)]


def _joined(folder: str, name: str) -> str:
    """A farm folder and a file name, with the folder's own separator (a Windows farm's ``\\server\\out``)."""
    if not folder:
        return name
    separator = "\\" if "\\" in folder and "/" not in folder else "/"
    return f"{folder.rstrip(separator)}{separator}{name}"


def state_of(job: Mapping[str, Any]) -> str:
    return JOB_STATES.get(job.get("Stat"), "?")
