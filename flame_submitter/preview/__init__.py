"""See before you send, and as it arrives: the submit dialog's preview frame, what it asks for and gives back
(``request``), rendered on the local ComfyUI through ``comfyfarm preview`` (``local``) or as a one-task farm job
(``farm``); and the submitted jobs' frames per pass as the farm reports them (``progress``). No Qt, no ``flame``."""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "farm": (
        "PreviewFarmError", "PreviewJob", "PreviewJobFailed", "PreviewStopped", "PreviewTimedOut",
        "submit_preview_job", "wait_for_job",
    ),
    "local": ("PREVIEW_TIMEOUT_S", "PROGRESS_LINE", "preview_command", "run_preview"),
    "progress": ("FarmWatcher", "JobProgress", "POLL_SECONDS", "PassFrames", "job_progress"),
    "request": (
        "PREVIEW_WIDTH", "PreviewError", "PreviewImage", "PreviewResult", "PreviewSettings", "RESULT_PREFIX",
        "image_names", "preview_frames",
    ),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
