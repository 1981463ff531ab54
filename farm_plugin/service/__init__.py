"""comfyfarm's ComfyUI service on a Worker: one ComfyUI per GPU, kept warm across jobs.

``python -m farm_plugin.service serve`` (started by the Worker's init system: ``install.sh worker --service``)
starts one ComfyUI per GPU on loopback, with comfyfarm's frame nodes, restarts one that stops, and says where
each is in a state file per GPU (``state``). The Deadline plugin and the OpenJD step attach to the ComfyUI of
their GPU instead of starting their own, after ``python -m farm_plugin.service prepare`` has checked it and
done the hygiene between tasks (``prepare``: no foreign queue, memory and prompt limits, free VRAM); where no
service answers they start their own ComfyUI, as without the service. See docs/warm_workers.md.
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use (comfyfarm doctor), by the module it lives in; tests/test_public_api.py keeps it
# true. A name is imported on first use.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "prepare": ("NotReady", "inspect", "prepare"),
    "state": ("ServiceUnavailable", "default_state_dir", "service_gpus"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
