"""comfyfarm's own client for the Deadline 10 Web Service, and what it sends (JobInfo, PluginInfo)."""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "client": ("DeadlineClient", "JOB_STATES", "TASK_STATES"),
    "connection": ("try_deadline_connection",),
    "errors": ("DeadlineAuthError", "DeadlineError", "DeadlineTimeout", "DeadlineUnreachable"),
    "jobs": ("job_outputs", "recent_jobs", "state_of", "task_counts"),
    "submit": (
        "submit", "ClipRequest", "SubmissionIncomplete", "SubmissionUncertain", "SubmissionWithdrawn", "SubmitError",
        "SubmittedJob", "check_shared", "deadline_client", "dry_run_document", "plan", "preflight_farm",
        "submit_jobs", "submitting_user",
    ),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
