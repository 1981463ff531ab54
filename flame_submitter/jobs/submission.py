"""One Deadline job as the job builder plans it and the Web Service client sends it: JobInfo and PluginInfo.

Plain data: ``builder`` makes it and :meth:`flame_submitter.deadline.client.DeadlineClient.submit_job` sends
it. It lives here, below the client, so that building a job needs nothing of the Web Service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True)
class JobSubmission:
    """One job of a submission: what Deadline calls JobInfo and PluginInfo, plus auxiliary files."""

    job_info: Mapping[str, str]
    plugin_info: Mapping[str, str]
    aux_files: Sequence[str] = field(default_factory=tuple)
