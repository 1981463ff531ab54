"""Frames: frame lists, frame-numbered path patterns, plate I/O, colour and staging for ComfyUI.

``framelist`` parses and formats Deadline frame lists and cuts them into chunks; ``pattern`` turns
``plate.####.exr`` into paths and finds frames on disk; ``image_io`` reads and writes plates with
OpenImageIO (atomic writes, headers carried over); ``colour`` converts between a plate's colour space and
the workflow's working space with OpenColorIO (``curves``: by table where the conversion is a curve);
``layers`` names the channels of passes written as the layers of one EXR; ``staging`` prepares inputs for
ComfyUI and turns its results back into plates; ``retime`` numbers the output frames of a workflow that
changes the frame count. Errors live in ``errors``.
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "colour": ("ColourPolicy", "from_working", "to_working"),
    "errors": ("FrameError", "FrameListError", "MissingFramesError", "MixedResolutionError", "PlateError"),
    "framelist": ("chunk_frames", "format_frame_list", "parse_frame_list"),
    "image_io": ("FLOAT_FORMATS", "FORMATS_WITHOUT_ALPHA", "PlateInfo", "probe", "read_pixels", "timecode_after",
                 "timecode_bcd", "verify_frame", "writable_format", "write_frame"),
    "layers": ("layer_channel_names", "pass_channels"),
    "pattern": ("FramePattern",),
    "retime": ("Retime", "RetimeError", "ratio_steps"),
    "staging": ("load_frame_file", "read_frame_file", "read_result_image", "stage_frame", "stage_frame_files",
                "stage_window", "unstage_layers", "unstage_pixels", "unstage_result"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
