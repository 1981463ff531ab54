"""The check after the files: each Python that runs comfyfarm imports it, and what it needs, as the product
starts it.

The worker's Python is asked as the Deadline plugin runs it (``python -I``, from a folder of no checkout:
comfyfarm and its packages come through ``comfyfarm.pth``); each Flame Python as Flame does (it loads the
hook file, which puts ``.lib`` on its path). Each imports the third-party packages comfyfarm's runtime
imports, then comfyfarm's modules. A package that does not import is a failure when comfyfarm answers for
it, and a warning when it was left to the studio (``--no-deps``, or not in ``--requirements``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from farm_plugin.errors import ServiceError
from farm_plugin.installation.pythons import normalize

from .deps import Requirement

logger = logging.getLogger(__name__)

IMPORT_TIMEOUT_SECONDS = 120.0
# The third-party packages comfyfarm's runtime imports: import name -> distribution.
RUNTIME_PACKAGES = {"OpenImageIO": "OpenImageIO", "numpy": "numpy", "yaml": "PyYAML", "requests": "requests",
                    "websocket": "websocket-client"}
COMFYFARM_MODULES = ("farm_plugin", "flame_submitter", "comfyfarm_hooks")

_IMPORT_CHECK = r"""
import importlib, importlib.util, json, sys
hook, packages, modules = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
answer = {"python": ".".join(str(p) for p in sys.version_info[:3]), "failures": []}
def failure(module, exc):
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    text = (type(exc).__name__ + ": " + str(exc)).strip().splitlines()[0]
    answer["failures"].append({"module": module, "missing": missing, "error": text})
module = "comfyfarm_hooks"
try:
    if hook:  # as Flame loads it: the hook puts .lib on the path
        spec = importlib.util.spec_from_file_location("comfyfarm_hooks", hook)
        hooks = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hooks)
        hooks._add_lib()
    module = "farm_plugin"
    import farm_plugin
    answer["version"], answer["file"] = farm_plugin.__version__, farm_plugin.__file__
    for module in packages:
        try:
            importlib.import_module(module)
        except BaseException as exc:
            failure(module, exc)
    if not answer["failures"]:
        for module in modules:
            importlib.import_module(module)
except BaseException as exc:
    failure(module, exc)
print(json.dumps(answer))
"""


class RuntimeCheckError(ServiceError):
    """comfyfarm was installed but does not import where it runs: the message says what and the fix."""


@dataclass(frozen=True)
class Packages:
    """The third-party packages of one Python minor version, as the installation left them."""

    folder: Path  # comfyfarm's packages for it
    managed: Tuple[Requirement, ...]  # the requirements comfyfarm answers for (none with --no-deps)
    provided: Tuple[str, ...]  # the distributions comfyfarm installed in ``folder`` (normalized names)


@dataclass(frozen=True)
class RuntimeTarget:
    """One Python that runs comfyfarm once installed, and how the product starts comfyfarm in it."""

    label: str  # "ComfyUI's Python", "Flame 2025.1's Python"
    python: Path
    lib: Path  # where comfyfarm must come from
    modules: Tuple[str, ...]  # comfyfarm's modules the product imports there
    packages: Packages
    hook: Optional[Path] = None  # the hook file that puts ``lib`` on the path (Flame)


def ask(target: RuntimeTarget) -> Dict[str, Any]:
    """What ``target.python`` answers when it imports comfyfarm as the product does."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # -B: the check leaves no bytecode behind, so the installation holds only what its manifest lists
    command = [str(target.python), "-I", "-B", "-c", _IMPORT_CHECK, str(target.hook or ""), ",".join(RUNTIME_PACKAGES),
               ",".join(target.modules)]
    with tempfile.TemporaryDirectory(prefix="comfyfarm-check-") as neutral:  # no checkout on the path
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_SECONDS,
                                    cwd=neutral, env=environment, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"failures": [{"module": "farm_plugin", "missing": None, "error": f"cannot run it: {exc}"}]}
    try:
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))
    except (ValueError, TypeError, IndexError):
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failures": [{"module": "farm_plugin", "missing": None,
                              "error": f"it failed (exit {result.returncode}): {last}"}]}


def _distribution(module: str) -> str:
    """The distribution that provides a top-level module, as a user would install it."""
    return RUNTIME_PACKAGES.get(module, module)


def _requirement(distribution: str, packages: Packages) -> Optional[Requirement]:
    return next((r for r in packages.managed if r.name == normalize(distribution)), None)


def _fix(module: str, target: RuntimeTarget, role: str, prefix: Path) -> str:
    """What to do when ``module`` (top level) does not import in the target's Python."""
    if module in COMFYFARM_MODULES:
        return f"run install/install.sh {role} --prefix {prefix} again: it puts back comfyfarm's files"
    distribution = _distribution(module)
    requirement = _requirement(distribution, target.packages)
    wanted = requirement.text if requirement is not None else distribution
    if normalize(distribution) in target.packages.provided:
        return (f"comfyfarm's copy in {target.packages.folder} does not load in that Python: install {wanted} into "
                "that Python yourself (its own copy comes before comfyfarm's)")
    if requirement is not None:
        return (f"that Python lists {distribution} among its packages but cannot import it: reinstall it there "
                f"({target.python} -m pip install --force-reinstall '{wanted}'), or remove it there and run install.sh "
                f"{role} again")
    return f"install {wanted} into that Python ({target.python} -m pip install '{wanted}')"


def _left_to_the_studio(module: str, packages: Packages) -> bool:
    """A runtime package comfyfarm was told not to install for this Python (--no-deps, or --requirements)."""
    return module in RUNTIME_PACKAGES and _requirement(RUNTIME_PACKAGES[module], packages) is None


def _top(failure: Dict[str, Any]) -> str:
    """The top-level module a failure is about: the one missing, else the one that failed."""
    return str(failure.get("missing") or failure["module"]).split(".")[0]


def _other_comfyfarm(answer: Dict[str, Any], target: RuntimeTarget, version: str) -> bool:
    """Whether the Python imported a comfyfarm other than the one just installed (one in its own packages)."""
    if "file" not in answer:
        return False
    file = Path(str(answer["file"])).resolve()
    return answer.get("version") != version or not file.is_relative_to(target.lib.resolve())


def check_target(target: RuntimeTarget, *, role: str, prefix: Path, version: str, no_deps: bool) -> str:
    """One line: what ``target`` imports, or a warning; raises RuntimeCheckError when comfyfarm does not run."""
    answer = ask(target)
    where = f"{target.label} ({target.python})"
    if _other_comfyfarm(answer, target, version):
        raise RuntimeCheckError(f"{where} imports comfyfarm {answer.get('version')} from "
                                f"{Path(str(answer['file'])).parent}, not comfyfarm {version} from {target.lib}: "
                                f"remove that other comfyfarm from that Python ({target.python} -m pip uninstall "
                                "comfyfarm)")
    failures: List[Dict[str, Any]] = list(answer.get("failures") or [])
    studio = [f for f in failures if _left_to_the_studio(_top(f), target.packages)]
    for failure in failures:
        if failure not in studio:
            raise RuntimeCheckError(f"{where} cannot import {failure['module']} ({failure['error']}), so comfyfarm "
                                    f"does not run there: {_fix(_top(failure), target, role, prefix)}")
    if studio:
        lacking = ", ".join(_distribution(_top(f)) for f in studio)
        why = "--no-deps" if no_deps else "not in --requirements"
        fix = (f"run install.sh {role} without --no-deps" if no_deps else "add them to --requirements")
        return (f"{'warning':<13} {where} lacks {lacking} ({why}), so comfyfarm does not run there yet: install them "
                f"into that Python yourself, or {fix}")
    return (f"{'checked':<13} {where} imports comfyfarm {version} and {', '.join(RUNTIME_PACKAGES)} "
            f"(Python {answer.get('python')})")


def check_runtime(targets: Sequence[RuntimeTarget], *, role: str, prefix: Path, version: str,
                  no_deps: bool) -> List[str]:
    """A line per Python; raises RuntimeCheckError at the first one where comfyfarm does not run."""
    return [check_target(t, role=role, prefix=prefix, version=version, no_deps=no_deps) for t in targets]
