"""Custom-node folders of the ComfyUI double: where ComfyUI looks for packs and which ones it loads.

ComfyUI 0.3.64 (commit a125cd84) keeps one list of ``custom_nodes`` folders (folder_paths.py: the ComfyUI
folder's own ``custom_nodes``, or ``<--base-directory>/custom_nodes``); utils/extra_config.py adds to it
from ``extra_model_paths.yaml`` beside main.py and from every ``--extra-model-paths-config`` file;
main.py's execute_prestartup_script lists every folder (``os.listdir``: a folder that does not exist stops
the start with FileNotFoundError); nodes.py's init_external_custom_nodes imports each entry of each folder
unless ``--disable-all-custom-nodes`` skips it (with ``--whitelist-custom-nodes`` naming the ones kept);
with ``--disable-all-custom-nodes`` and no whitelist, neither runs: "Skipping loading of custom nodes".

The double runs no foreign code, so a pack is a name it knows:

* ``ComfyUI-Frame-Interpolation`` and ``comfyfarm_test_double`` (nodes.py) count as installed in the
  ComfyUI's own custom_nodes folder, whether or not that folder exists on disk;
* ``comfyfarm_frames`` (frame_nodes.py) loads only from a folder of that name, with an ``__init__.py``, in
  one of the custom_nodes folders: the way comfyfarm gives it to the ComfyUIs it starts (an extra
  ``custom_nodes:`` path naming farm_plugin/ComfyUINodes);
* any other folder or .py file found there fails to import (logged as ComfyUI logs an import failure).
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from .frame_nodes import FRAME_NODES
from .nodes import NODE_CLASS_MAPPINGS, definition

log = logging.getLogger("comfyui")


def _bundled_packs() -> Dict[str, Tuple[str, ...]]:
    """The packs of nodes.py's NODE_CLASS_MAPPINGS (a definition's ``python_module`` is
    ``custom_nodes.<folder>``): folder -> class names. Every double has them, as if installed in the ComfyUI's
    own custom_nodes folder."""
    packs: Dict[str, Tuple[str, ...]] = {}
    for class_type in NODE_CLASS_MAPPINGS:
        module = definition(class_type).get("python_module") or ""
        if module.startswith("custom_nodes."):
            folder = module.split(".", 1)[1]
            packs[folder] = packs.get(folder, ()) + (class_type,)
    return packs


BUNDLED_PACKS = _bundled_packs()  # {"ComfyUI-Frame-Interpolation": ("RIFE VFI",), "comfyfarm_test_double": ...}
# packs the double loads only from a custom_nodes folder that holds them: folder -> node classes
PACKS_ON_DISK: Dict[str, tuple] = {"comfyfarm_frames": FRAME_NODES}


class FolderPaths:
    """folder_paths.folder_names_and_paths, reduced to the folder names and their paths."""

    def __init__(self, base_path: str):
        self.default_custom_nodes = os.path.join(base_path, "custom_nodes")
        self.paths: Dict[str, List[str]] = {"custom_nodes": [self.default_custom_nodes]}

    def add_model_folder_path(self, folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
        folder_name = {"unet": "diffusion_models", "clip": "text_encoders"}.get(folder_name, folder_name)
        paths = self.paths.setdefault(folder_name, [])
        if full_folder_path in paths:
            if is_default and paths[0] != full_folder_path:
                paths.remove(full_folder_path)
                paths.insert(0, full_folder_path)
        elif is_default:
            paths.insert(0, full_folder_path)
        else:
            paths.append(full_folder_path)

    def custom_nodes(self) -> List[str]:
        return list(self.paths["custom_nodes"])


def load_extra_path_config(yaml_path: str, folders: FolderPaths) -> None:
    """utils/extra_config.py load_extra_path_config, line for line (its errors are ComfyUI's: a missing file
    is FileNotFoundError, an empty one TypeError, a value that is not a string AttributeError)."""
    with open(yaml_path, encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    yaml_dir = os.path.dirname(os.path.abspath(yaml_path))
    for c in config:
        conf = config[c]
        if conf is None:
            continue
        base_path = None
        if "base_path" in conf:
            base_path = conf.pop("base_path")
            base_path = os.path.expandvars(os.path.expanduser(base_path))
            if not os.path.isabs(base_path):
                base_path = os.path.abspath(os.path.join(yaml_dir, base_path))
        is_default = False
        if "is_default" in conf:
            is_default = conf.pop("is_default")
        for x in conf:
            for y in conf[x].split("\n"):
                if len(y) == 0:
                    continue
                full_path = y
                if base_path:
                    full_path = os.path.join(base_path, full_path)
                elif not os.path.isabs(full_path):
                    full_path = os.path.abspath(os.path.join(yaml_dir, y))
                normalized_path = os.path.normpath(full_path)
                log.info("Adding extra search path %s %s", x, normalized_path)
                folders.add_model_folder_path(x, normalized_path, is_default)


def apply_custom_paths(folders: FolderPaths, comfyui_dir: str, config_args: Optional[Sequence[Sequence[str]]]) -> None:
    """main.py apply_custom_paths: ``extra_model_paths.yaml`` beside main.py, then each
    ``--extra-model-paths-config`` file (the argument is ``nargs="+"`` with ``action="append"``)."""
    beside_main = os.path.join(comfyui_dir, "extra_model_paths.yaml")
    if os.path.isfile(beside_main):
        load_extra_path_config(beside_main, folders)
    for group in config_args or []:
        for config_path in group:
            load_extra_path_config(config_path, folders)


def _entries(folders: FolderPaths, path: str) -> List[str]:
    """What ``os.listdir`` gives for one custom_nodes folder; the ComfyUI's own folder also holds the
    bundled packs. A folder that does not exist raises FileNotFoundError, as in ComfyUI."""
    names: List[str] = []
    if path == folders.default_custom_nodes:
        names = list(BUNDLED_PACKS)
        if not os.path.isdir(path):
            return names
    return names + [n for n in os.listdir(os.path.realpath(path)) if n not in names]


def check_custom_node_folders(folders: FolderPaths, disable_all: bool, whitelist: Sequence[str]) -> None:
    """main.py execute_prestartup_script: it lists every custom_nodes folder (unless custom nodes are off
    altogether), so a missing one raises FileNotFoundError there, before anything loads."""
    if disable_all and len(whitelist) == 0:
        return
    for path in folders.custom_nodes():
        _entries(folders, path)


def init_custom_nodes(folders: FolderPaths, disable_all: bool, whitelist: Sequence[str]) -> None:
    """nodes.py init_extra_nodes / init_external_custom_nodes: register the packs of every custom_nodes
    folder in NODE_CLASS_MAPPINGS; drop the bundled packs that were skipped."""
    loaded: List[str] = []
    import_times: List[Tuple[float, str, bool]] = []
    if disable_all and len(whitelist) == 0:
        log.info("Skipping loading of custom nodes")
    else:
        for path in folders.custom_nodes():
            for name in _entries(folders, path):
                module_path = os.path.join(path, name)
                if name == "__pycache__" or module_path.endswith(".disabled"):
                    continue
                if os.path.isfile(module_path) and os.path.splitext(module_path)[1] != ".py":
                    continue
                if disable_all and name not in whitelist:
                    log.info("Skipping %s due to disable_all_custom_nodes and whitelist_custom_nodes", name)
                    continue
                success = _load(module_path, name)
                if success:
                    loaded.append(name)
                import_times.append((0.0, module_path, success))
    for folder, class_names in BUNDLED_PACKS.items():
        if folder not in loaded:
            for class_name in class_names:
                NODE_CLASS_MAPPINGS.pop(class_name, None)
    if import_times:
        log.info("\nImport times for custom nodes:")
        for seconds, module_path, success in sorted(import_times):
            log.info("%6.1f seconds%s: %s", seconds, "" if success else " (IMPORT FAILED)", module_path)
        log.info("")


def _load(module_path: str, name: str) -> bool:
    if name in BUNDLED_PACKS:
        return True
    init_py = os.path.join(module_path, "__init__.py")
    if name in PACKS_ON_DISK and os.path.isfile(init_py):
        for cls in PACKS_ON_DISK[name]:
            NODE_CLASS_MAPPINGS[cls.CLASS_TYPE] = cls
        return True
    if os.path.isdir(module_path) and not os.path.isfile(init_py):
        reason = f"[Errno 2] No such file or directory: '{init_py}'"
    else:
        reason = f"the ComfyUI test double cannot run it (it models only {', '.join(PACKS_ON_DISK)})"
    log.warning("Cannot import %s module for custom nodes: %s", module_path, reason)
    return False
