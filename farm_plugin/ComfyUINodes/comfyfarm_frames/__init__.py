"""comfyfarm's frame nodes: frames in and out of ComfyUI as float data with alpha, no PNG, no clipping.

The runner and ComfyUI run on the same machine and share its scratch folder, so frames move as files of
raw float32 pixels that the nodes map, instead of 8-bit PNGs through core ``LoadImage`` / ``SaveImage``.

**Frame file**: a NumPy ``.npy`` file (format 1.0), little-endian float32, C order, shape (height, width, 3)
for RGB or (height, width, 4) for RGBA, values as they are (below 0, above 1: nothing clamps them).

**ComfyFarmLoadFrames** ("Load Frames (comfyfarm)", category ``comfyfarm``)
  input  ``frames`` STRING (multiline): one absolute path of a frame file per line, in batch order; blank
         lines are ignored; every frame the same size.
  output ``IMAGE`` (batch, height, width, 3) float32, and ``MASK`` (batch, height, width) float32 that is
         ``1 - alpha`` where the frames have alpha and 0 where they have none: the same meaning as core
         ``LoadImage``'s MASK, so a graph built on LoadImage takes this node in its place unchanged. (Where
         an image has no alpha, LoadImage gives a 64x64 zero mask; this node gives one of the frames' size,
         so that the mask fits the images it came with.) ``1 - alpha`` here and ``1 - mask`` downstream
         (InvertMask) give the alpha back bit for bit when it is a multiple of 2^-24 in 0..1, as every
         half-float alpha is; a float32 alpha below 0.5 with finer bits comes back within 3e-8.
  ``IS_CHANGED``: the path, size, modification time and inode of every file, so a rewritten frame runs
         again (an atomic rewrite is a new inode, even within one tick of the clock).
  ``VALIDATE_INPUTS``: no path, a path that is not absolute, a missing file, a file that is not a frame file
         (not .npy, not float32 RGB/RGBA, cut short), or frames of different sizes are refused at validation
         (``custom_validation_failed``), naming the file and what is wrong with it. Where ``frames`` is
         linked from another node ComfyUI gives validation no value: the same checks fail the node when it
         runs, and ``IS_CHANGED`` is NaN (it always runs).

**ComfyFarmSaveFrames** ("Save Frames (comfyfarm)", category ``comfyfarm``, an output node)
  inputs ``images`` IMAGE (RGB; an RGBA IMAGE keeps its alpha); ``directory`` STRING (an absolute folder,
         created if missing); ``prefix`` STRING (default "frame"; no path separator, not starting with a
         dot); ``pass_name`` STRING (default "rgba"; letters, digits, ``_`` and ``-``); optional ``mask``
         MASK: the alpha (1 = opaque, as keyers and background removal give it; it replaces an RGBA IMAGE's
         own), of the images' size, one per image or one for all (a (height, width) mask is one for all).
         This is the opposite of the loader's MASK (and of core ``JoinImageWithAlpha``'s ``alpha`` input,
         which takes LoadImage's meaning): the loader's own alpha goes back through ``InvertMask``.
  writes ``<directory>/<prefix>.<pass_name>.<index:05d>.npy`` for each image of the batch (index from 0),
         RGB, or RGBA with the mask as alpha; each file is written under a hidden temporary name
         (``.<name>.<random>.tmp``) and renamed into place, so a file that exists is complete.
  returns the UI output ``{"comfyfarm_frames": [{"path", "pass", "index", "width", "height", "channels"}]}``,
         which the ``executed`` message carries to the runner.
  ``IS_CHANGED`` is NaN: ComfyUI runs it for every prompt, so it always writes its files (never a cached
         answer naming files that an earlier prompt wrote).
  A mask of another size than the images (or of another count), a pass name with other characters, a
  prefix or directory as above, or images that are not RGB/RGBA fail the node (``execution_error``) with a
  message naming the value.

Every message is a ``ValueError`` that names the value and the fix. Custom-node folder: ComfyUI imports
every ``.py`` file and folder in the folder this pack lies in (``farm_plugin/ComfyUINodes``), so nothing but
the pack and README.md lies there.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
