"""The job, whatever runs it: the job record from what was asked (``record``), the job folders and
Deadline jobs planned from it (``builder``, ``submission``), and the farm presets (``templates``)."""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "builder": (
        "FarmPaths", "HAND_BACK_MODE", "JobFolders", "PlannedJob", "explicit_group", "hand_back_of", "plan_jobs",
        "waiting_for", "whole_windows",
    ),
    "record": (
        "SourceClip", "check_workflow", "clip_name", "colour_spec", "job_record", "load_workflow", "requested_frames",
        "source_clip", "workflow_spec",
    ),
    "submission": ("JobSubmission",),
    "templates": (
        "JobTemplate", "OUTPUT_FORMATS", "TemplateError", "load_template", "load_template_file", "template_dirs",
    ),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
