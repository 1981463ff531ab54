"""install.sh / uninstall.sh workstation: the Flame hook, comfyfarm for each Flame Python, the comfyfarm command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from farm_plugin import __version__
from farm_plugin.installation.manifest import file_sha256

from .conftest import (
    MODERN,
    REPO,
    Studio,
    find_python,
    make_python_env,
    make_wheel,
    packages_without,
    run_installer,
    run_script,
    snapshot,
)

sys.path.insert(0, str(REPO / "install"))
from comfyfarm_install.product import product_files  # noqa: E402

OLD = "Flame 2024.2"
NEW = "Flame 2025.1"
MODERN_TEXT = f"{MODERN[0]}.{MODERN[1]}"


def install(studio: Studio, *args: str):
    return run_installer("install", "workstation", "--autodesk-root", str(studio.autodesk), "--bin-dir",
                         str(studio.bin_dir), *args)


def doctor(studio: Studio, *args: str) -> subprocess.CompletedProcess:
    """``comfyfarm doctor`` as the installed command runs it."""
    return subprocess.run([str(studio.bin_dir / "comfyfarm"), "doctor", "--role", "workstation", "--autodesk-root",
                           str(studio.autodesk), "--no-workflows", *args], capture_output=True, text=True,
                          timeout=300, cwd=str(studio.root))


def check_lines(output: str, where: str = "workstation") -> dict:
    """``{what: line}`` for one place's check lines."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("OK", "WARN", "FAIL", "SKIP") and rest.strip().startswith(where + " "):
            what = rest.strip()[len(where):].strip().split(":")[0]
            found[what] = line
    return found


def test_install_lays_out_the_hook_and_comfyfarm_file_by_file(workstation: Studio) -> None:
    before = snapshot(workstation.root)
    code, out = install(workstation, "--no-deps")
    assert code == 0, out
    prefix = workstation.hook_prefix
    assert file_sha256(prefix / "comfyfarm_hooks.py") == file_sha256(REPO / "flame_submitter/hooks/comfyfarm_hooks.py")
    for relative in product_files():
        assert file_sha256(prefix / ".lib" / relative) == file_sha256(REPO / relative), relative
    after = snapshot(workstation.root)
    assert {p: after[p] for p in before} == before  # Flame, the other hook, ffmpeg: untouched
    files = {Path(p) for p, h in after.items() if p not in before and h != "folder"}
    assert files == ({prefix / ".lib" / r for r in product_files()} | {
        prefix / "comfyfarm_hooks.py", workstation.bin_dir / "comfyfarm", prefix / ".comfyfarm" / "workstation.json"})
    lines = out.splitlines()
    assert lines[:5] == [
        f"comfyfarm {__version__}: the workstation role in {prefix}",
        f"  {OLD}: Python 3.9.{lines[1].split('3.9.')[1].split(' ')[0]} "
        f"({workstation.autodesk}/python/2024.2/bin/python3), PySide2",
        lines[2],
        "  Python 3.9: third-party packages not managed (--no-deps)",
        f"  Python {MODERN_TEXT}: third-party packages not managed (--no-deps)",
    ]
    assert lines[2].startswith(f"  {NEW}: Python {MODERN_TEXT}.") and lines[2].endswith(", PySide6")
    count = sum(1 for r in product_files() if r.parts[0] == "farm_plugin")
    assert f"installed     {prefix}/.lib/farm_plugin/ ({count} files)" in lines
    assert f"installed     {prefix}/comfyfarm_hooks.py" in lines
    assert "next: restart Flame (or Rescan Python Hooks) to load the ComfyUI Farm menu" in lines
    command = subprocess.run([str(workstation.bin_dir / "comfyfarm"), "--version"], capture_output=True, text=True)
    assert command.stdout == f"comfyfarm {__version__}\n"
    assert f"{workstation.autodesk}/python/2025.1/bin/python3" in (workstation.bin_dir / "comfyfarm").read_text()


def test_doctor_asks_each_flame_python_for_real(workstation: Studio) -> None:
    assert install(workstation, "--no-deps")[0] == 0
    result = doctor(workstation)
    checks = check_lines(result.stdout)
    prefix = workstation.hook_prefix
    assert result.returncode == 1  # Flame 2024.2 lacks comfyfarm's packages (installed with --no-deps)
    assert checks["installation"].startswith(f"OK    workstation installation: comfyfarm {__version__} in {prefix}")
    assert checks["hook where Flame looks"] == (f"OK    workstation hook where Flame looks: {prefix}/comfyfarm_hooks."
                                                f"py (under {workstation.autodesk}/shared/python)")
    assert checks[f"{NEW} hook importable"].startswith(f"OK    workstation {NEW} hook importable: Python "
                                                       f"{MODERN_TEXT}.")
    assert checks[f"{NEW} hook importable"].endswith(f"loads the hook and comfyfarm {__version__}")
    old = checks[f"{OLD} hook importable"]
    assert old.startswith(f"FAIL  workstation {OLD} hook importable: Python 3.9.")
    assert "ModuleNotFoundError: No module named 'yaml'" in old
    assert old.endswith(f"-> run install/install.sh workstation --prefix {prefix} from comfyfarm {__version__} "
                        f"without --no-deps (it installs what {OLD}'s Python lacks), or install yaml there")
    assert checks[f"{OLD} Qt binding"] == f"OK    workstation {OLD} Qt binding: PySide2"
    assert checks[f"{NEW} Qt binding"] == f"OK    workstation {NEW} Qt binding: PySide6"
    assert checks["comfyfarm command"] == (f"OK    workstation comfyfarm command: {workstation.bin_dir}/comfyfarm is "
                                           f"comfyfarm {__version__}")


def test_packages_a_flame_python_lacks_come_from_local_wheels(workstation: Studio, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "comfyfarm_needs", "1.0", {"comfyfarm_needs/__init__.py": "READY = True\n"},
               requires=["already_there"])
    make_wheel(wheels, "already_there", "2.0", {"already_there.py": "FROM = 'the wheel'\n"})
    # Flame 2025.1's Python ships already_there: comfyfarm must use that copy, not install its own.
    site = workstation.autodesk / "python" / "2025.1" / "lib" / f"python{MODERN_TEXT}" / "site-packages"
    (site / "already_there.py").write_text("FROM = 'Flame'\n")
    (site / "already_there-1.5.dist-info").mkdir()
    (site / "already_there-1.5.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: already_there\n"
                                                                    "Version: 1.5\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("comfyfarm_needs>=1.0\n")
    code, out = install(workstation, "--wheels", str(wheels), "--requirements", str(requirements))
    assert code == 0, out
    lib = workstation.hook_prefix / ".lib"
    assert "  Python 3.9 lacks comfyfarm_needs>=1.0: pip provided already-there 2.0, comfyfarm-needs 1.0" in out
    assert (f"  Python {MODERN_TEXT} lacks comfyfarm_needs>=1.0: pip provided comfyfarm-needs 1.0") in out
    assert f"  Python {MODERN_TEXT} already has already-there: its own copies are used" in out
    assert (lib / "python3.9" / "comfyfarm_needs" / "__init__.py").read_text() == "READY = True\n"
    assert (lib / "python3.9" / "already_there.py").is_file()
    assert not (lib / f"python{MODERN_TEXT}" / "already_there.py").exists()
    flame = workstation.autodesk / "python" / "2025.1" / "bin" / "python3"
    code = (f"import sys; sys.path.insert(0, {str(workstation.hook_prefix)!r}); import comfyfarm_hooks; "
            "comfyfarm_hooks._add_lib(); import comfyfarm_needs, already_there; "
            "print(comfyfarm_needs.READY, already_there.FROM)")
    probe = subprocess.run([str(flame), "-I", "-c", code], capture_output=True, text=True, cwd=str(workstation.root))
    assert probe.stdout == "True Flame\n", probe.stderr  # its own package wins; the missing one is comfyfarm's
    # Without the wheels, a rerun with --no-deps keeps the packages installed before.
    code, out = install(workstation, "--no-deps")
    assert code == 0 and f"\nnothing to do: comfyfarm {__version__} is installed as it should be" in out
    manifest = json.loads((workstation.hook_prefix / ".comfyfarm" / "workstation.json").read_text())
    assert str(lib / "python3.9" / "comfyfarm_needs" / "__init__.py") in manifest["files"]


def test_rerun_upgrade_and_uninstall_leave_the_machine_as_it_was(workstation: Studio) -> None:
    before = snapshot(workstation.root)
    assert install(workstation, "--no-deps")[0] == 0
    installed = snapshot(workstation.root)
    code, out = install(workstation, "--no-deps")
    assert code == 0 and snapshot(workstation.root) == installed
    assert f"\nnothing to do: comfyfarm {__version__} is installed as it should be" in out
    # An older comfyfarm's file, a hand-edited hook and a deleted file: the upgrade sorts each out.
    manifest_file = workstation.hook_prefix / ".comfyfarm" / "workstation.json"
    manifest = json.loads(manifest_file.read_text())
    old_module = workstation.hook_prefix / ".lib" / "farm_plugin" / "retired_in_this_version.py"
    old_module.write_text("OLD = True\n")
    manifest["files"][str(old_module)] = {"sha256": file_sha256(old_module), "backup": None}
    manifest["version"] = "0.0.9"
    manifest_file.write_text(json.dumps(manifest))
    hook = workstation.hook_prefix / "comfyfarm_hooks.py"
    hook.write_text(hook.read_text() + "# the studio's tweak\n")
    (workstation.hook_prefix / ".lib" / "job_templates" / "default.yaml").unlink()
    code, out = install(workstation, "--no-deps")
    assert code == 0, out
    lines = out.splitlines()
    assert f"removed       {old_module} (no longer part of comfyfarm)" in lines
    assert f"restored      {workstation.hook_prefix}/.lib/job_templates/default.yaml (it was missing)" in lines
    (hook_line,) = [line for line in lines if line.startswith(f"replaced      {hook}")]
    backup = Path(hook_line.split("your copy is kept in ")[1].rstrip(")"))
    assert backup.read_text().endswith("# the studio's tweak\n")
    assert ".comfyfarm/backup/" in str(backup)  # a dot-folder: Flame does not load the old hook copy
    assert file_sha256(hook) == file_sha256(REPO / "flame_submitter/hooks/comfyfarm_hooks.py")
    doctor(workstation)  # Flame's Pythons import comfyfarm: they leave bytecode behind, which uninstall removes
    code, out = run_installer("uninstall", "workstation", "--autodesk-root", str(workstation.autodesk))
    assert code == 0, out
    after = snapshot(workstation.root)
    assert {p: after.get(p) for p in before} == before
    # Left behind: only the hand-edited hook's backup, in comfyfarm's dot-folder.
    assert sorted(p for p in after if p not in before) == sorted(
        [str(workstation.hook_prefix)] + [str(p) for p in [backup, *backup.parents] if ".comfyfarm" in str(p)])
    assert f"kept          {backup} (your copy of a file changed by hand; comfyfarm never deletes those)" in out


def test_a_prefix_flame_does_not_scan_is_said_and_dl_python_hook_path_fixes_it(workstation: Studio,
                                                                                 monkeypatch) -> None:
    elsewhere = workstation.root / "studio" / "flame_hooks" / "comfyfarm"
    code, out = install(workstation, "--no-deps", "--prefix", str(elsewhere))
    assert code == 0
    assert (f"next: Flame does not look for hooks in {elsewhere}: add {elsewhere.parent} to DL_PYTHON_HOOK_PATH for "
            f"Flame, or install under {workstation.autodesk}/shared/python") in out.splitlines()
    found = check_lines(doctor(workstation, "--prefix", str(elsewhere)).stdout)
    assert found["hook where Flame looks"].startswith("FAIL  workstation hook where Flame looks: Flame does not load "
                                                      f"hooks from {elsewhere} -> add {elsewhere.parent} to "
                                                      "DL_PYTHON_HOOK_PATH")
    monkeypatch.setenv("DL_PYTHON_HOOK_PATH", str(elsewhere.parent))
    found = check_lines(doctor(workstation).stdout)  # and the doctor finds the installation there by itself
    assert found["hook where Flame looks"] == (f"OK    workstation hook where Flame looks: {elsewhere}/comfyfarm_hooks"
                                               f".py (under {elsewhere.parent})")


def test_no_flame_no_install(studio: Studio) -> None:
    code, out = run_installer("install", "workstation", "--autodesk-root", str(studio.autodesk), "--no-deps")
    assert code == 1
    assert out == (f"install.sh workstation: no Flame Python found under {studio.autodesk}/python "
                   "(<version>/bin/python3) for Flame 2023 or later: install Flame first, or pass --autodesk-root DIR "
                   "where it is installed\n")
    assert not studio.root.exists()


def test_the_shell_scripts_dry_run_then_install_and_uninstall(workstation: Studio) -> None:
    before = snapshot(workstation.root)
    common = ["--autodesk-root", str(workstation.autodesk), "--bin-dir", str(workstation.bin_dir), "--no-deps"]
    result = run_script("install.sh", "workstation", *common, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert snapshot(workstation.root) == before
    assert f"would install {workstation.hook_prefix}/comfyfarm_hooks.py" in result.stdout.splitlines()
    result = run_script("install.sh", "workstation", *common)
    assert result.returncode == 0, result.stderr
    assert (workstation.hook_prefix / ".lib" / "flame_submitter" / "cli" / "main.py").is_file()
    result = run_script("uninstall.sh", "workstation", "--autodesk-root", str(workstation.autodesk))
    assert result.returncode == 0, result.stderr
    assert snapshot(workstation.root) == before


def test_reruns_keep_the_packages_comfyfarm_installed(studio: Studio, openimageio_wheels: Path, tmp_path: Path) -> None:
    base = find_python(MODERN)
    assert base is not None
    packages = packages_without(studio.root / "site-packages-without-openimageio", "OpenImageIO")
    make_python_env(base, studio.autodesk / "python" / "2025.1", packages=packages, qt="PySide6")
    flame = studio.autodesk / "python" / "2025.1" / "bin" / "python3"
    manifest_file = studio.hook_prefix / ".comfyfarm" / "workstation.json"
    lib = studio.hook_prefix / ".lib"
    # What a menu action does in Flame: the hook puts .lib on the path, comfyfarm writes and reads a frame.
    code = (f"import sys; sys.path.insert(0, {str(studio.hook_prefix)!r}); import comfyfarm_hooks; "
            "comfyfarm_hooks._add_lib(); import numpy, OpenImageIO; "
            "from farm_plugin.frames.image_io import read_pixels, write_frame; "
            "write_frame(sys.argv[1], numpy.full((4, 6, 3), 0.25, numpy.float32), file_format='exr'); "
            "print(OpenImageIO.__file__, read_pixels(sys.argv[1]).shape)")
    manifests, outputs = [], []
    for run in (1, 2, 3):
        before = snapshot(studio.root)
        result, out = install(studio, "--wheels", str(openimageio_wheels))
        assert result == 0, out
        assert run == 1 or snapshot(studio.root) == before
        outputs.append(out)
        manifests.append(manifest_file.read_text())
        assert (f"checked       Flame 2025.1's Python ({flame}) imports comfyfarm {__version__} and OpenImageIO, "
                f"numpy, yaml, requests, websocket (Python {MODERN_TEXT}.") in out
        frame = tmp_path / f"run{run}.exr"
        flame_run = subprocess.run([str(flame), "-I", "-c", code, str(frame)], capture_output=True, text=True,
                                   cwd=str(tmp_path))
        assert flame_run.stdout == f"{lib}/python{MODERN_TEXT}/OpenImageIO/__init__.py (4, 6, 3)\n", flame_run.stderr
    assert f"  Python {MODERN_TEXT} lacks OpenImageIO>=2.5: pip provided openimageio " in outputs[0]
    assert manifests[1] == manifests[0] and manifests[2] == manifests[0]
    for out in outputs[1:]:
        assert f"  Python {MODERN_TEXT} lacks OpenImageIO>=2.5: kept what comfyfarm installed for it before " \
               "(openimageio " in out
        assert f"\nnothing to do: comfyfarm {__version__} is installed as it should be" in out
