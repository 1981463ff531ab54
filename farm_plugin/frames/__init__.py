"""Frames: frame lists, frame-numbered path patterns, plate I/O, colour and staging for ComfyUI.

``framelist`` parses and formats Deadline frame lists and cuts them into chunks; ``pattern`` turns
``plate.####.exr`` into paths and finds frames on disk; ``image_io`` reads and writes plates with
OpenImageIO (atomic writes, headers carried over); ``colour`` converts between a plate's colour space and
the workflow's working space with OpenColorIO; ``staging`` prepares 8-bit inputs for ComfyUI and turns its
results back into plates. Errors live in ``errors``.
"""
