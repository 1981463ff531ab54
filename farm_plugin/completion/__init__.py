"""The completion record: ``<inbox>/<deadline job id>.json``, what Flame imports when a farm job ends.

Written by the job's Deadline hand-back job (through ``python -m farm_plugin.completion.cli``), on a farm
Worker, once the job has ended however it ended (or by an OpenJD job's Finish step): the outputs are
checked against the job's frame list on disk, and the record says what was verified, in the artist's
paths (mapped back through the job record's path mappings). It is written atomically (temp file + rename)
and never twice: a repeated hand-back finds it and writes nothing. A complete job's record names its contact sheet
(``contact_sheet.py``: each pass's first, middle and last frame in one JPEG beside the frames).
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing this package does not import OpenImageIO.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "contact_sheet": (
        "CONTACT_SUFFIX",
        "Cell",
        "ContactSheet",
        "ContactSheetError",
        "add_contact_sheet",
        "contact_sheet_path",
        "display_pixels",
        "make_contact_sheet",
        "sheet_frames",
        "source_timecode",
        "write_thumbnail",
    ),
    "progress": ("THUMBNAIL_WIDTH", "PassProgress", "pass_progress", "write_latest_thumbnail"),
    "record": (
        "COMPLETION_SCHEMA",
        "HANDLED_FOLDER",
        "STATUS_COMPLETED",
        "STATUS_FAILED",
        "CompletionRecord",
        "PassOutput",
        "artist_path",
        "build_completion",
        "completion_summary",
        "read_completion",
        "write_completion",
    ),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
