"""install.sh / uninstall.sh worker: the runtime in ComfyUI's Python, and ComfyUI started on each GPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from farm_plugin import __version__
from tests.doubles.comfyui.harness import free_port
from tests.farm_plugin.runner.conftest import make_record, write_plate

from .conftest import MODERN, Studio, run_installer, run_script, snapshot


def install(studio: Studio, *args: str):
    return run_installer("install", "worker", "--prefix", str(studio.worker_prefix), "--comfyui-dir",
                         str(studio.comfyui_dir), *args)


def site_packages(studio: Studio, python=None) -> str:
    python = python or studio.comfyui_python
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_install_into_comfyuis_environment_then_check_comfyui_on_each_gpu(gpu_node: Studio,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMFYFARM_SERVICE_DIR", str(gpu_node.root / "state"))  # this machine's own service is not asked
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
    assert checks[4] == ("OK    worker      frame nodes (full precision): ComfyFarmLoadFrames and ComfyFarmSaveFrames "
                         f"load from {prefix}/lib/farm_plugin/ComfyUINodes: frames keep float and alpha")
    assert checks[5] == (f"OK    worker      comfyfarm service: none on this Worker (no state in "
                         f"{gpu_node.root / 'state'}): the plugin starts ComfyUI for each job; install.sh worker "
                         "--service keeps one warm")
    assert len(checks) == 6
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
    assert f"next: Deadline Monitor > Configure Plugins > ComfyUI: Python Executable {venv}/bin/python" \
        in out.splitlines()
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


WHERE_IS_OPENIMAGEIO = "import OpenImageIO; print(OpenImageIO.__file__)"


def runs_a_chunk(python: Path, url: str, folder: Path) -> str:
    """``python -m farm_plugin.runner`` as the Deadline plugin runs it, one chunk of invert; its last line."""
    plate = write_plate(folder / "plate", frames=[1001, 1002])
    record = make_record(plate, str(folder / "out" / "inv.####.exr"), frames=[1001, 1002]).write(folder / "job.json")
    result = subprocess.run([str(python), "-I", "-m", "farm_plugin.runner", "--job", str(record), "--frames",
                             "1001-1002", "--comfyui-url", url, "--scratch", str(folder / "scratch")],
                            capture_output=True, text=True, timeout=120, cwd=str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["inv.1001.exr", "inv.1002.exr"]
    return result.stdout.splitlines()[-1]


def test_reruns_keep_the_packages_comfyfarm_installed(gpu_node_without_openimageio: Studio, openimageio_wheels: Path,
                                                      fake_comfyui, tmp_path: Path) -> None:
    node = gpu_node_without_openimageio
    manifest_file = node.worker_prefix / ".comfyfarm" / "worker.json"
    deps = node.worker_prefix / "lib" / f"python{MODERN[0]}.{MODERN[1]}"
    manifests = []
    for run in (1, 2, 3):
        before = snapshot(node.root)
        code, out = install(node, "--wheels", str(openimageio_wheels), "--skip-check")
        assert code == 0, out
        lines = out.splitlines()
        if run == 1:
            assert f"  Python {MODERN[0]}.{MODERN[1]} lacks OpenImageIO>=2.5: pip provided openimageio 3.2.2.0" in lines
        else:  # ComfyUI's Python imports OpenImageIO through comfyfarm.pth now: still not a package of its own
            assert (f"  Python {MODERN[0]}.{MODERN[1]} lacks OpenImageIO>=2.5: kept what comfyfarm installed for it "
                    "before (openimageio 3.2.2.0)") in lines
            assert lines[-3].startswith(f"nothing to do: comfyfarm {__version__} is installed as it should be")
            assert snapshot(node.root) == before
        assert lines[-2].startswith(f"checked       ComfyUI's Python ({node.comfyui_python}) imports comfyfarm "
                                    f"{__version__} and OpenImageIO, numpy, yaml, requests, websocket (Python ")
        manifests.append(manifest_file.read_text())
        where = subprocess.run([str(node.comfyui_python), "-I", "-c", WHERE_IS_OPENIMAGEIO], capture_output=True,
                               text=True, cwd=str(tmp_path))
        assert where.stdout.strip() == f"{deps}/OpenImageIO/__init__.py", (run, out, where.stderr)
        assert runs_a_chunk(node.comfyui_python, fake_comfyui.url, tmp_path / f"run{run}").endswith(
            "2 frame(s) written, 0 already there")
    assert manifests[1] == manifests[0] and manifests[2] == manifests[0]


def test_a_rerun_puts_back_a_package_file_removed_by_hand(gpu_node_without_openimageio: Studio,
                                                           openimageio_wheels: Path, tmp_path: Path) -> None:
    node = gpu_node_without_openimageio
    assert install(node, "--wheels", str(openimageio_wheels), "--skip-check")[0] == 0
    module = node.worker_prefix / "lib" / f"python{MODERN[0]}.{MODERN[1]}" / "OpenImageIO" / "__init__.py"
    module.unlink()
    code, out = install(node, "--wheels", str(openimageio_wheels), "--skip-check")
    assert code == 0, out
    assert f"restored      {module} (it was missing)" in out.splitlines()
    where = subprocess.run([str(node.comfyui_python), "-I", "-c", WHERE_IS_OPENIMAGEIO], capture_output=True,
                           text=True, cwd=str(tmp_path))
    assert where.stdout.strip() == str(module), where.stderr


def test_a_runtime_that_does_not_import_fails_the_install_in_one_line(gpu_node_without_openimageio: Studio) -> None:
    node = gpu_node_without_openimageio
    python = node.comfyui_python
    # What a half-done uninstall leaves: the package's metadata without its module.
    remains = Path(site_packages(node)) / "OpenImageIO-2.5.0.dist-info"
    remains.mkdir()
    (remains / "METADATA").write_text("Metadata-Version: 2.1\nName: OpenImageIO\nVersion: 2.5.0\n")
    result = run_script("install.sh", "worker", "--prefix", str(node.worker_prefix), "--comfyui-dir",
                        str(node.comfyui_dir), "--cpu")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        f"install.sh worker: ComfyUI's Python ({python}) cannot import OpenImageIO (ModuleNotFoundError: No module "
        "named 'OpenImageIO'), so comfyfarm does not run there: that Python lists OpenImageIO among its packages but "
        f"cannot import it: reinstall it there ({python} -m pip install --force-reinstall 'OpenImageIO>=2.5'), or "
        "remove it there and run install.sh worker again\n")
    assert f"  Python {MODERN[0]}.{MODERN[1]}: has every package comfyfarm needs" in result.stdout.splitlines()
    assert "checking:" not in result.stdout and "next:" not in result.stdout  # nothing more before that is fixed


def test_without_its_packages_the_runtime_is_a_warning_that_names_them(gpu_node_without_openimageio: Studio) -> None:
    node = gpu_node_without_openimageio
    code, out = install(node, "--no-deps", "--skip-check")
    assert code == 0, out
    assert (f"warning       ComfyUI's Python ({node.comfyui_python}) lacks OpenImageIO (--no-deps), so comfyfarm does "
            "not run there yet: install them into that Python yourself, or run install.sh worker without "
            "--no-deps") in out.splitlines()


def test_another_comfyfarm_in_comfyuis_environment_fails_the_install(gpu_node: Studio) -> None:
    site = Path(site_packages(gpu_node))
    (site / "farm_plugin").mkdir()
    (site / "farm_plugin" / "__init__.py").write_text('__version__ = "0.0.9"\n')
    code, out = install(gpu_node, "--skip-check")
    assert code == 1
    assert out.splitlines()[-1] == (
        f"install.sh worker: ComfyUI's Python ({gpu_node.comfyui_python}) imports comfyfarm 0.0.9 from "
        f"{site}/farm_plugin, not comfyfarm {__version__} from {gpu_node.worker_prefix}/lib: remove that other "
        f"comfyfarm from that Python ({gpu_node.comfyui_python} -m pip uninstall comfyfarm)")


def test_the_service_is_installed_runs_warm_comfyuis_and_goes_with_uninstall(gpu_node: Studio, tmp_path: Path) -> None:
    before = snapshot(gpu_node.root)
    code, out = install(gpu_node, "--skip-check", "--service", "--gpus", "0,1")
    assert code == 0, out
    prefix = gpu_node.worker_prefix
    launcher, unit = prefix / "bin" / "comfyfarm-serve", prefix / "systemd" / "comfyfarm-comfyui.service"
    lines = out.splitlines()
    assert f"installed     {launcher}" in lines and f"installed     {unit}" in lines
    assert f"ExecStart={launcher}" in unit.read_text().splitlines()
    assert any(line.startswith(f"next: start the service as the user the Deadline Worker runs as: systemctl --user "
                               f"link {unit} && systemctl --user enable --now comfyfarm-comfyui") for line in lines)
    manifest = json.loads((prefix / ".comfyfarm" / "worker.json").read_text())
    assert manifest["details"]["service"] is True
    # the launcher as systemd runs it: a warm ComfyUI per GPU, found where the plugin looks
    state = tmp_path / "state"
    service = subprocess.Popen([str(launcher), "--base-port", str(free_port()), "--startup-timeout-s", "30"],
                               env={**os.environ, "COMFYFARM_SERVICE_DIR": str(state)}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, cwd=str(tmp_path), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while sorted(p.name for p in state.glob("gpu-*.json")) != ["gpu-0.json", "gpu-1.json"]:
            assert service.poll() is None and time.monotonic() < deadline, service.stdout.read().decode()
            time.sleep(0.1)
        status = subprocess.run([str(gpu_node.comfyui_python), "-m", "farm_plugin.service", "status"],
                                env={**os.environ, "COMFYFARM_SERVICE_DIR": str(state)}, capture_output=True,
                                text=True, timeout=60, cwd=str(tmp_path))
        assert [entry["gpu"] for entry in json.loads(status.stdout)] == ["0", "1"], status.stderr
        assert all(entry["starts"] == 1 and "error" not in entry for entry in json.loads(status.stdout))
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=60)
    assert list(state.glob("gpu-*.json")) == []  # stopped cleanly: its state went with it
    code, out = run_installer("uninstall", "worker", "--prefix", str(prefix))
    assert code == 0, out
    assert snapshot(gpu_node.root) == before
