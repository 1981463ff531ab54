"""The GPU worker: comfyfarm's runtime where the Deadline plugin's Python Executable finds it.

Into ComfyUI's own environment (``--python``, default ComfyUI's ``venv``): ``<prefix>/lib/`` and
``<prefix>/lib/python3.X/`` (what the environment lacks), made visible by one ``comfyfarm.pth`` in its
site-packages that appends them after the environment's own packages; nothing of ComfyUI's changes.

Or into a venv of its own (``--venv DIR``): created on top of ComfyUI's Python (system site-packages, and
ComfyUI's venv through the ``.pth`` when that Python is a venv), so that ComfyUI runs with it unchanged and
ComfyUI's environment is not touched at all. Then set the plugins' Python Executable to ``DIR/bin/python``.

Afterwards the Python imports comfyfarm's runtime as the plugin runs it (runtime.py), and ``comfyfarm doctor
--role worker`` checks that ComfyUI starts on each GPU (``--skip-check``: not).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from pathlib import Path
from typing import List, Optional

from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest
from farm_plugin.installation.pythons import PythonInfo, PythonProbeError, probe

from .common import InstallError, Options, RolePlan, add_dependencies, add_product, command_script
from .files import Bundle, Source
from .runtime import RuntimeTarget

logger = logging.getLogger(__name__)

COMFYUI_PYTHONS = ("venv/bin/python", ".venv/bin/python")
VENV_TIMEOUT_SECONDS = 300.0
RUNTIME_MODULES = ("farm_plugin.runner.__main__", "farm_plugin.completion.cli", "farm_plugin.frames.image_io")


def worker_prefix(options: Options) -> Path:
    return Path(options.prefix).expanduser().absolute() if options.prefix else layout.DEFAULT_WORKER_PREFIX


def comfyui_python(options: Options) -> Path:
    if options.python:
        return Path(options.python).expanduser().absolute()
    comfyui_dir = Path(options.comfyui_dir or layout.DEFAULT_COMFYUI_DIR).expanduser()
    for candidate in COMFYUI_PYTHONS:
        if (comfyui_dir / candidate).exists():
            return (comfyui_dir / candidate).absolute()
    raise InstallError(f"no Python for ComfyUI in {comfyui_dir} ({' or '.join(COMFYUI_PYTHONS)}): pass --python, "
                       "the Python that runs ComfyUI on this node, or --comfyui-dir")


def _probe(executable: Path) -> PythonInfo:
    try:
        info = probe(executable)
    except PythonProbeError as exc:
        raise InstallError(f"{exc}: pass --python, the Python that runs ComfyUI on this node") from exc
    if info.version[:2] < layout.MINIMUM_PYTHON:
        raise InstallError(f"{executable} is Python {info.version_text}: comfyfarm needs 3.9 or later")
    return info


def plan_worker(options: Options, version: str, staging: Path, previous: Optional[Manifest]) -> RolePlan:
    prefix = worker_prefix(options)
    comfyui = _probe(comfyui_python(options))
    notes = [f"ComfyUI's Python: {comfyui.executable} (Python {comfyui.version_text})"]
    lib = prefix / layout.WORKER_LIB
    deps_folder = layout.deps_dir(lib, comfyui.minor)
    pth_lines = [str(lib), str(deps_folder)]
    prepare = None
    details = {"prefix": str(prefix), "comfyui_python": str(comfyui.executable),
               "comfyui_dir": str(Path(options.comfyui_dir or layout.DEFAULT_COMFYUI_DIR).expanduser().absolute())}
    if options.venv:
        venv = Path(options.venv).expanduser().absolute()
        target = venv / "bin" / "python"
        purelib = venv / "lib" / f"python{comfyui.minor[0]}.{comfyui.minor[1]}" / "site-packages"
        if comfyui.in_venv:  # ComfyUI's packages (and their own .pth files) before comfyfarm's
            pth_lines.insert(0, f"import site; site.addsitedir({json.dumps(str(comfyui.purelib))})")
        created_before = previous is not None and previous.details.get("venv_created") == str(venv)
        if created_before or not venv.exists():
            details["venv_created"] = str(venv)
        if not target.exists():
            prepare = _venv_maker(comfyui.executable, venv)
            notes.append(f"a venv of its own: {venv}, on top of ComfyUI's Python")
        elif not created_before:
            notes.append(f"a venv of its own: {venv} (already there: used as it is)")
    else:
        target, purelib = comfyui.executable, comfyui.purelib
    details.update(python=str(target), site_packages=str(purelib))
    bundle = Bundle()
    add_product(bundle, lib)
    packages = add_dependencies(bundle, lib, [comfyui], options, staging, notes, previous)
    command = prefix / "bin" / layout.COMMAND
    bundle.add(command, Source(data=command_script(target, lib, deps_folder, version, "worker"), executable=True))
    pth = f"# comfyfarm {version}: its runtime, after this environment's own packages (install/install.sh worker)\n"
    bundle.add(purelib / layout.PTH_FILE, Source(data=(pth + "\n".join(pth_lines) + "\n").encode()))
    details["command"] = str(command)
    next_steps = [f"Deadline Monitor > Configure Plugins > ComfyUI: Python Executable {target}"]
    if options.service:
        add_service(bundle, prefix, target, comfyui.executable, Path(details["comfyui_dir"]), options, version,
                    details, next_steps)
    label = "comfyfarm's venv" if options.venv else "ComfyUI's Python"
    runtime = [RuntimeTarget(label, target, lib, RUNTIME_MODULES, packages[comfyui.minor])]
    plan = RolePlan("worker", prefix, bundle, details, notes, next_steps, prepare=prepare, runtime=runtime)
    if not options.skip_check:
        plan.check = lambda: check_comfyui(command, prefix, target, options)
        next_steps.append(f"check it again any time: {command} doctor --role worker")
    return plan


SERVICE_UNIT = "comfyfarm-comfyui"


def add_service(bundle: Bundle, prefix: Path, runtime_python: Path, comfyui_python: Path, comfyui_dir: Path,
                options: Options, version: str, details: dict, next_steps: List[str]) -> None:
    """comfyfarm's ComfyUI service (farm_plugin.service): ``bin/comfyfarm-serve`` runs it with this worker's
    runtime, on ``--gpus`` (default: every GPU torch sees, or the CPU with ``--cpu``), and
    ``systemd/comfyfarm-comfyui.service`` is a unit for it, to link into the Worker user's systemd."""
    launcher = prefix / "bin" / f"{layout.COMMAND}-serve"
    gpus = "cpu" if options.cpu else (options.gpus or "auto")
    arguments = ["-m", "farm_plugin.service", "serve", "--comfyui-dir", str(comfyui_dir), "--gpus", gpus,
                 "--python", str(comfyui_python)]
    script = (
        "#!/bin/sh\n"
        f"# comfyfarm {version}: comfyfarm's ComfyUI service, installed by install/install.sh worker --service.\n"
        "# More options (--max-rss-gb, --max-prompts, --min-free-vram-gb, --free-after-job): python -m "
        "farm_plugin.service serve --help\n"
        f"exec {shlex.quote(str(runtime_python))} {' '.join(shlex.quote(a) for a in arguments)} \"$@\"\n"
    )
    bundle.add(launcher, Source(data=script.encode(), executable=True))
    unit = prefix / "systemd" / f"{SERVICE_UNIT}.service"
    bundle.add(unit, Source(data=(
        "[Unit]\n"
        f"Description=comfyfarm {version}: a warm ComfyUI per GPU for the Deadline Worker\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        f"ExecStart={launcher}\n"
        "Restart=on-failure\n"
        "RestartSec=10\n"
        "TimeoutStopSec=60\n\n"
        "[Install]\n"
        "WantedBy=default.target\n").encode()))
    details.update(service=True, service_launcher=str(launcher), service_unit=str(unit))
    next_steps.append(
        f"start the service as the user the Deadline Worker runs as: systemctl --user link {unit} && systemctl "
        f"--user enable --now {SERVICE_UNIT} (and loginctl enable-linger that user), or run {launcher} from the "
        "Worker's own start-up; then the ComfyUI plugin's Worker Service setting uses it")


def _venv_maker(base: Path, venv: Path):
    def make() -> List[str]:
        try:
            subprocess.run([str(base), "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                           check=True, capture_output=True, text=True, timeout=VENV_TIMEOUT_SECONDS)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", "") or exc
            raise InstallError(f"could not create a venv at {venv} with {base}: {detail}") from exc
        return [f"created the venv {venv} (from {base})"]
    return make


def check_comfyui(command: Path, prefix: Path, python: Path, options: Options) -> int:
    """``comfyfarm doctor --role worker`` as installed: the runtime imports and ComfyUI starts on each GPU."""
    arguments = [str(command), "doctor", "--role", "worker", "--prefix", str(prefix), "--python", str(python),
                 "--no-workflows"]
    if options.comfyui_dir:
        arguments += ["--comfyui-dir", options.comfyui_dir]
    if options.gpus:
        arguments += ["--gpus", options.gpus]
    if options.cpu:
        arguments.append("--cpu")
    print(f"checking: {' '.join(arguments)}", flush=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    with subprocess.Popen(arguments, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=str(prefix)) as process:
        assert process.stdout is not None
        for line in process.stdout:  # ComfyUI can take minutes to start: show each line as it comes
            print(line, end="", flush=True)
    return process.returncode
