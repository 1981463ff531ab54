"""A job's passes as the layers of one multi-channel EXR per frame (the job's ``exr_layers`` setting).

The first pass takes the plain channels ``R, G, B`` (and ``A``): what a viewer shows, Nuke's ``rgba`` layer
and Flame's main channel. Every other pass is a layer named after it, ``<pass>.R, <pass>.G, <pass>.B``
(and ``<pass>.A``), as OpenEXR's naming convention has it; Nuke reads each as a layer, Flame (2022 and
later) imports the file as a multi-channel clip. One single-part file: every pass has the same size.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

COLOUR = ("R", "G", "B", "A")


def layer_channel_names(passes: Sequence[Tuple[str, int]]) -> List[str]:
    """The channel names of a frame holding ``passes`` (name, channel count: 3 or 4), in this order."""
    names: List[str] = []
    for index, (name, channels) in enumerate(passes):
        prefix = "" if index == 0 else f"{name}."
        names.extend(prefix + channel for channel in COLOUR[:channels])
    return names


def pass_channels(channel_names: Sequence[str], passes: Sequence[str]) -> Dict[str, List[str]]:
    """The channels of each of ``passes`` (in the job's order) in a file whose channels are ``channel_names``:
    the first pass's are the names without a layer, each other pass's those of its layer."""
    layers = set(passes[1:])
    found: Dict[str, List[str]] = {name: [] for name in passes}
    for channel in channel_names:
        layer, _, _ = channel.rpartition(".")
        if not layer:
            found[passes[0]].append(channel)
        elif layer in layers:
            found[layer].append(channel)
    return found
