"""The Flame workstation: the hook where Flame finds it, importable by each Flame Python, Qt, the command.

Each Flame Python is asked for real (``python -I``, as Flame starts it): it loads the installed hook file,
lets it put ``.lib`` on its path as it does inside Flame, and imports everything the menu actions use.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from farm_plugin import __version__
from farm_plugin.installation import layout
from flame_submitter.doctor.installed import manifest_checks, reinstall
from flame_submitter.doctor.report import Check, fail, ok, skip

logger = logging.getLogger(__name__)

IMPORT_TIMEOUT_SECONDS = 120.0
COMMAND_TIMEOUT_SECONDS = 60.0
MODULES = ("flame_submitter.flame.app", "flame_submitter.flame.submit", "flame_submitter.flame.media",
           "flame_submitter.flame.relink", "flame_submitter.deadline.submit", "flame_submitter.deadline.client")

_IMPORT_CHECK = r"""
import importlib, importlib.util, json, sys
prefix, modules = sys.argv[1], sys.argv[2].split(",")
answer = {"python": ".".join(str(p) for p in sys.version_info[:3])}
answer["qt"] = next((m for m in ("PySide6", "PySide2") if importlib.util.find_spec(m)), None)
try:
    spec = importlib.util.spec_from_file_location("comfyfarm_hooks", prefix + "/comfyfarm_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    answer["hook_version"] = getattr(hooks, "COMFYFARM_VERSION", None)
    hooks._add_lib()
    import farm_plugin
    answer["lib_version"], answer["lib_file"] = farm_plugin.__version__, farm_plugin.__file__
    for name in modules:
        importlib.import_module(name)
except BaseException as exc:
    answer["error"] = type(exc).__name__ + ": " + str(exc)
    answer["missing"] = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
print(json.dumps(answer))
"""


def find_prefix(explicit: Optional[str], root: Path, environ: Optional[Mapping[str, str]] = None) -> Path:
    """``--prefix``, else the installation running this, else the first of Flame's hook folders holding a
    comfyfarm installation, else the default."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ if environ is None else environ
    running = layout.running_prefix("workstation")
    candidates = ([running] if running else []) + [layout.workstation_prefix(root)]
    candidates += [Path(p).expanduser() / "comfyfarm" for p in env.get(layout.HOOK_PATH_ENV, "").split(os.pathsep)
                   if p.strip()]
    for candidate in candidates:
        if layout.manifest_path("workstation", candidate).is_file():
            return candidate
    return layout.workstation_prefix(root)


def ask_flame_python(executable: Path, prefix: Path) -> Dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        result = subprocess.run([str(executable), "-I", "-c", _IMPORT_CHECK, str(prefix), ",".join(MODULES)],
                                capture_output=True, text=True, timeout=IMPORT_TIMEOUT_SECONDS, env=environment,
                                cwd=str(prefix) if prefix.is_dir() else None, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"cannot run it: {exc}"}
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"it failed (exit {result.returncode}): {last}"}


def flame_python_checks(flame: layout.FlamePython, prefix: Path) -> List[Check]:
    """Two lines for one Flame: the hook and comfyfarm import in its Python; its Qt binding."""
    label = f"Flame {flame.flame_version}"
    answer = ask_flame_python(flame.executable, prefix)
    python = f"Python {answer['python']}" if "python" in answer else str(flame.executable)
    version = tuple(int(part) for part in answer.get("python", "3.11").split(".")[:2])
    if version < layout.MINIMUM_PYTHON:
        return [skip("workstation", label, f"{python} is older than comfyfarm supports (Flame 2023 and later)")]
    fix = reinstall("workstation", prefix)
    if "error" in answer:
        missing = answer.get("missing")
        if missing and missing.split(".")[0] not in ("farm_plugin", "flame_submitter", "comfyfarm_hooks"):
            fix += f" without --no-deps (it installs what {label}'s Python lacks), or install {missing} there"
        hook = fail("workstation", f"{label} hook importable", f"{python} ({flame.executable}): {answer['error']}", fix)
    elif answer.get("hook_version") != __version__ or answer.get("lib_version") != __version__:
        hook = fail("workstation", f"{label} hook importable", f"the hook file is comfyfarm "
                    f"{answer.get('hook_version') or '(no version)'}, its .lib comfyfarm {answer.get('lib_version')}; "
                    f"this is comfyfarm {__version__}", fix)
    elif not str(answer.get("lib_file", "")).startswith(str(prefix / layout.HOOK_LIB)):
        hook = fail("workstation", f"{label} hook importable", f"{python} takes comfyfarm from {answer['lib_file']}, "
                    f"not from {prefix / layout.HOOK_LIB}", "remove the other comfyfarm from Flame's Python")
    else:
        hook = ok("workstation", f"{label} hook importable", f"{python} loads the hook and comfyfarm {__version__}")
    wanted = "PySide6" if version >= (3, 11) else "PySide2"
    if answer.get("qt"):
        qt = ok("workstation", f"{label} Qt binding", f"{answer['qt']}")
    else:
        qt = fail("workstation", f"{label} Qt binding", f"neither PySide6 nor PySide2 in {python}: the submit dialog "
                  "cannot open", f"{label}'s Python ships {wanted}: repair the Flame installation")
    return [hook, qt]


def command_check(command: Path) -> Check:
    try:
        result = subprocess.run([str(command), "--version"], capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
        answer = (result.stdout + result.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        answer = f"cannot run it: {exc}"
    if answer == f"comfyfarm {__version__}":
        return ok("workstation", "comfyfarm command", f"{command} is comfyfarm {__version__}")
    return fail("workstation", "comfyfarm command", f"{command} answers {answer!r}",
                "rerun install/install.sh workstation, and put its --bin-dir on PATH")


def workstation_checks(prefix_option: Optional[str], root_option: Optional[str]) -> List[Check]:
    root = layout.autodesk_root(root_option)
    prefix = find_prefix(prefix_option, root)
    checks, manifest = manifest_checks("workstation", prefix)
    hook_dir = layout.flame_finds(prefix, root)
    if hook_dir is not None:
        checks.append(ok("workstation", "hook where Flame looks", f"{prefix / layout.HOOK_FILE} (under {hook_dir})"))
    else:
        checks.append(fail("workstation", "hook where Flame looks", f"Flame does not load hooks from {prefix}",
                           f"add {prefix.parent} to {layout.HOOK_PATH_ENV} in Flame's environment, or install into "
                           f"{root / 'shared' / 'python'}"))
    flames = layout.flame_pythons(root)
    if not flames:
        checks.append(fail("workstation", "Flame", f"no Flame Python under {root / 'python'}",
                           "install Flame 2023 or later, or pass --autodesk-root"))
    for flame in flames:
        checks.extend(flame_python_checks(flame, prefix))
    command = manifest.details.get("command") if manifest is not None else None
    if command:
        checks.append(command_check(Path(command)))
    return checks
