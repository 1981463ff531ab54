"""How Flame starts the comfyfarm command ("Run locally"): which program, and an environment without Flame's.

Inside Flame, ``sys.executable`` is Flame's own binary, not a Python that can run ``-m flame_submitter.cli``
(tk-flame passes Flame's Python to its engine in TOOLKIT_FLAME_PYTHON_BINARY for that reason; flameTimewarpML
and Autodesk's export_selection.py name ``/opt/Autodesk/python/<version>/bin/python3``). So the program is:

1. the ``comfyfarm`` command the workstation installation wrote (its manifest, ``details["command"]``); else
2. this Flame's own Python, ``<Autodesk root>/python/<Flame version>/bin/python3``, told where comfyfarm is
   (the folder holding this package, and its ``python3.X`` packages folder), as the command itself does.

Flame's process carries its own library and Python paths (tk-flame's bootstrap prepends
``<root>/python/<version>/lib`` and ``<root>/lib64/<version>`` to LD_LIBRARY_PATH, ``<root>/flame_<version>/python``
to PYTHONPATH). The command, and the ComfyUI it starts, get the environment without them:
:func:`clean_environment` drops the variables that redirect a Python interpreter and takes the Autodesk folders
out of the dynamic loader's paths; everything else (the configuration's variables, CUDA's paths) stays.

``flame.execute_command`` (Flame 2022.2+) avoids forking Flame, but forwards no environment and either blocks
until the command ends or returns nothing of it (Autodesk's path_of_selected_clips.py, tk-flame's
execute_command hook, which keeps subprocess as its default); Run locally needs the progress lines as they come
and a Stop that interrupts. So the command runs with ``subprocess`` from a worker thread, ``close_fds`` on (none
of Flame's files reach ComfyUI). Python 3.10 and later (Flame 2025+) start it with vfork, which copies nothing
of Flame's memory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from farm_plugin.errors import BadInput
from farm_plugin.installation import layout
from farm_plugin.installation.manifest import ManifestError, read_manifest

logger = logging.getLogger(__name__)

# Variables that make a Python load other modules or another standard library: Flame's, never the command's.
PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE")
# Search paths of the dynamic loader (and Qt's plugin paths): entries inside an Autodesk installation go.
LIBRARY_PATH_VARIABLES = ("LD_LIBRARY_PATH", "LD_PRELOAD", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH",
                          "DYLD_FRAMEWORK_PATH", "DYLD_INSERT_LIBRARIES", "QT_PLUGIN_PATH", "QML2_IMPORT_PATH")
AUTODESK_INSTALL_ROOTS = (Path("/opt/Autodesk"), Path("/usr/discreet"))  # /usr/discreet: Flame before 2016


class LaunchError(BadInput):
    """No program can run the comfyfarm command from this Flame: the message says what to install."""


def _inside(path: str, roots: Sequence[Path]) -> bool:
    if not path:
        return False
    candidate = os.path.normpath(os.path.abspath(path))
    return any(candidate == str(root) or candidate.startswith(str(root).rstrip(os.sep) + os.sep) for root in roots)


def clean_environment(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``environ`` (default: this process's) as the comfyfarm command should get it from Flame: without
    PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONEXECUTABLE, and without Autodesk's folders (the Autodesk root
    comfyfarm uses, ``/opt/Autodesk``, ``/usr/discreet``) in the loader's paths; a path variable left empty
    is dropped."""
    source = dict(os.environ if environ is None else environ)
    roots = [layout.autodesk_root(environ=source), *AUTODESK_INSTALL_ROOTS]
    roots = [Path(os.path.normpath(os.path.abspath(str(root)))) for root in roots]
    cleaned = {key: value for key, value in source.items() if key not in PYTHON_VARIABLES}
    for key in LIBRARY_PATH_VARIABLES:
        if key not in cleaned:
            continue
        separator = " " if key == "LD_PRELOAD" and " " in cleaned[key] else os.pathsep
        kept = [entry for entry in cleaned[key].split(separator) if entry and not _inside(entry, roots)]
        if kept:
            cleaned[key] = separator.join(kept)
        else:
            del cleaned[key]
    return cleaned


def installed_command() -> Optional[Path]:
    """The ``comfyfarm`` command of the workstation installation this code runs from, when there is one."""
    prefix = layout.running_prefix("workstation")
    if prefix is None:
        return None
    try:
        manifest = read_manifest(layout.manifest_path("workstation", prefix))
    except ManifestError as exc:
        logger.warning("comfyfarm: the installation at %s: %s", prefix, exc)
        return None
    command = (manifest.details.get("command") if manifest is not None else None) or ""
    path = Path(command)
    return path if command and path.is_file() and os.access(path, os.X_OK) else None


def flame_python(flame_version: str, environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """This Flame's own Python: ``<Autodesk root>/python/<Flame version>/bin/python3`` (or ``python``)."""
    folder = layout.autodesk_root(environ=os.environ if environ is None else environ) / "python" / flame_version
    for name in ("python3", "python"):
        candidate = folder / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def bootstrap_code() -> str:
    """``python -c`` code that runs the comfyfarm command from the comfyfarm this code is part of: its folder
    first on ``sys.path`` and its packages folder for this Python's version (``python3.X``) last, as the
    installed command does (install/comfyfarm_install/common.py ``command_script``)."""
    lib = Path(__file__).resolve().parents[2]  # <lib>/flame_submitter/flame/launch.py
    deps = layout.deps_dir(lib, sys.version_info[:2])
    code = f"import sys; sys.path[0:0] = [{json.dumps(str(lib))}]; "
    if deps.is_dir():
        code += f"sys.path.append({json.dumps(str(deps))}); "
    return code + "from flame_submitter.cli import main; sys.exit(main())"


def comfyfarm_command(flame_version: str, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The program and first arguments that run ``comfyfarm`` from this Flame (the subcommand follows)."""
    command = installed_command()
    if command is not None:
        return [str(command)]
    python = flame_python(flame_version, environ)
    if python is not None:
        return [str(python), "-c", bootstrap_code()]
    root = layout.autodesk_root(environ=os.environ if environ is None else environ)
    raise LaunchError(f"cannot run comfyfarm from Flame {flame_version}: no comfyfarm command is installed (bash "
                      f"install/install.sh workstation) and Flame's Python {root}/python/{flame_version}/bin/python3 "
                      f"is not there (set {layout.AUTODESK_ROOT_ENV} when Flame is installed elsewhere)")
