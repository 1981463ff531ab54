"""Reading comfyfarm's jobs out of the Web Service's job list: whose, how recent, how far along."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from flame_submitter.deadline.client import JOB_STATES

CHUNK_COUNTERS = ("CompletedChunks", "QueuedChunks", "SuspendedChunks", "RenderingChunks", "FailedChunks",
                  "PendingChunks")


def recent_jobs(jobs: Sequence[Mapping[str, Any]], user: str, *, all_users: bool = False) -> List[Dict[str, Any]]:
    """comfyfarm's jobs (those with a job record) of ``user`` (or everyone's), newest first."""
    mine = [dict(j) for j in jobs if (all_users or (j.get("Props") or {}).get("User") == user)
            and (j.get("Props") or {}).get("PlugInfo", {}).get("JobRecord")]
    return sorted(mine, key=lambda j: str(j.get("Date", "")), reverse=True)


def task_counts(job: Mapping[str, Any]) -> Tuple[int, int]:
    """``(completed, total)`` tasks, from the job's chunk counters."""
    total = sum(int(job.get(key, 0) or 0) for key in CHUNK_COUNTERS)
    return int(job.get("CompletedChunks", 0) or 0), total


def state_of(job: Mapping[str, Any]) -> str:
    return JOB_STATES.get(job.get("Stat"), "?")
