"""install.sh / uninstall.sh worker: the runtime in ComfyUI's Python, and ComfyUI started on each GPU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from farm_plugin import __version__

from .conftest import MODERN, Studio, run_installer, run_script, snapshot


def install(studio: Studio, *args: str):
    return run_installer("install", "worker", "--prefix", str(studio.worker_prefix), "--comfyui-dir",
                         str(studio.comfyui_dir), *args)


def site_packages(studio: Studio, python=None) -> str:
    python = python or studio.comfyui_python
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_install_into_comfyuis_environment_then_check_comfyui_on_each_gpu(gpu_node: Studio) -> None:
    comfyui_before = snapshot(gpu_node.comfyui_dir)
    code, out = install(gpu_node, "--gpus", "0,1")
    assert code == 0, out
    prefix, site = gpu_node.worker_prefix, site_packages(gpu_node)
    lines = out.splitlines()
    assert lines[:3] == [
        f"comfyfarm {__version__}: the worker role in {prefix}",
        f"  ComfyUI's Python: {gpu_node.comfyui_python} (Python {lines[1].split('(Python ')[1]}",
        lines[2],
    ]
    assert lines[2].endswith(": has every package comfyfarm needs")  # nothing to download: the venv has them
    assert f"installed     {site}/comfyfarm.pth" in lines
    assert f"installed     {prefix}/bin/comfyfarm" in lines
    # Only one file went into ComfyUI's environment, and it appends comfyfarm after the environment's packages.
    comfyui_after = snapshot(gpu_node.comfyui_dir)
    assert sorted(set(comfyui_after) - set(comfyui_before)) == [f"{site}/comfyfarm.pth"]
    pth = Path(site, "comfyfarm.pth").read_text().splitlines()
    assert pth[1:] == [f"{prefix}/lib", f"{prefix}/lib/python{MODERN[0]}.{MODERN[1]}"]
    checks = [line for line in lines if line.startswith(("OK ", "FAIL ", "WARN "))]
    assert checks[0].startswith(f"OK    worker      installation: comfyfarm {__version__} in {prefix} (")
    assert checks[1].startswith(f"OK    worker      runtime importable: {gpu_node.comfyui_python} (Python ")
    assert checks[2].startswith("OK    worker      ComfyUI starts on GPU 0: ComfyUI 0.3.64 answered within ")
    assert checks[2].endswith("on cuda:0 ComfyUI test double GPU (CUDA_VISIBLE_DEVICES=0) : cudaMallocAsync")
    assert checks[3].endswith("on cuda:0 ComfyUI test double GPU (CUDA_VISIBLE_DEVICES=1) : cudaMallocAsync")
    assert len(checks) == 4
    # What the Deadline plugin runs, from a Worker's folder: the installed runtime.
    runner = subprocess.run([str(gpu_node.comfyui_python), "-m", "farm_plugin.runner", "--help"], capture_output=True,
                            text=True, cwd=str(gpu_node.root.parent))
    assert runner.returncode == 0 and "python -m farm_plugin.runner" in runner.stdout
    where = subprocess.run([str(gpu_node.comfyui_python), "-c", "import farm_plugin; print(farm_plugin.__file__)"],
                           capture_output=True, text=True, cwd=str(gpu_node.root.parent))
    assert where.stdout.strip() == f"{prefix}/lib/farm_plugin/__init__.py"


def test_rerun_changes_nothing_and_uninstall_leaves_comfyuis_environment_as_it_was(gpu_node: Studio) -> None:
    before = snapshot(gpu_node.root)
    assert install(gpu_node, "--skip-check")[0] == 0
    installed = snapshot(gpu_node.root)
    code, out = install(gpu_node, "--skip-check")
    assert code == 0 and snapshot(gpu_node.root) == installed
    assert "nothing to do" in out
    code, out = run_installer("uninstall", "worker", "--prefix", str(gpu_node.worker_prefix))
    assert code == 0, out
    assert f"removed       {site_packages(gpu_node)}/comfyfarm.pth" in out.splitlines()
    assert snapshot(gpu_node.root) == before


def test_a_venv_of_its_own_leaves_comfyuis_environment_untouched(gpu_node: Studio) -> None:
    before = snapshot(gpu_node.root)
    venv = gpu_node.root / "opt" / "comfyfarm-venv"
    code, out = install(gpu_node, "--venv", str(venv), "--cpu")
    assert code == 0, out
    assert f"created the venv {venv} (from {gpu_node.comfyui_python})" in out.splitlines()
    assert f"next: Deadline Monitor > Configure Plugins > ComfyUI and Configure Events > ComfyUIRelink: Python " \
           f"Executable {venv}/bin/python" in out.splitlines()
    assert "OK    worker      ComfyUI starts on the CPU: ComfyUI 0.3.64 answered within " in out
    comfyui = str(gpu_node.comfyui_dir)
    assert snapshot(gpu_node.comfyui_dir) == {p: h for p, h in before.items() if p.startswith(comfyui)}
    manifest = json.loads((gpu_node.worker_prefix / ".comfyfarm" / "worker.json").read_text())
    assert manifest["details"]["venv_created"] == str(venv)
    code, out = run_installer("uninstall", "worker", "--prefix", str(gpu_node.worker_prefix))
    assert code == 0
    assert f"removed       {venv}/ (the venv comfyfarm created)" in out.splitlines()
    assert snapshot(gpu_node.root) == before


def test_a_comfyui_that_cannot_start_fails_the_install_with_its_own_error(gpu_node: Studio, monkeypatch) -> None:
    monkeypatch.setenv("COMFYFARM_FAKE_FAULTS", json.dumps({"refuse_start": "RuntimeError: Found no NVIDIA driver"}))
    result = run_script("install.sh", "worker", "--prefix", str(gpu_node.worker_prefix), "--comfyui-dir",
                        str(gpu_node.comfyui_dir), "--gpus", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "ComfyUI starts on GPU 1" in line]
    assert line.startswith("FAIL  worker      ComfyUI starts on GPU 1: ComfyUI exited with code 1 while starting on "
                           "port ")
    assert "RuntimeError: Found no NVIDIA driver" in line
    assert line.endswith("-> see ComfyUI's log lines above; fix ComfyUI in its own environment (custom nodes, "
                         "drivers), then check again")
    assert (gpu_node.worker_prefix / "lib" / "farm_plugin" / "__init__.py").is_file()  # installed all the same


def test_no_comfyui_python_is_a_clear_refusal(studio: Studio) -> None:
    code, out = run_installer("install", "worker", "--prefix", str(studio.worker_prefix), "--comfyui-dir",
                              str(studio.comfyui_dir))
    assert code == 1
    assert out == (f"install.sh worker: no Python for ComfyUI in {studio.comfyui_dir} (venv/bin/python or "
                   ".venv/bin/python): pass --python, the Python that runs ComfyUI on this node, or --comfyui-dir\n")
    assert not studio.root.exists()
