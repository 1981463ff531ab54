"""Machines to install comfyfarm on, in temporary folders: a Flame workstation (``opt/Autodesk`` with a Flame
Python per version: real interpreters in venvs of their own), a Deadline repository, a GPU node with ComfyUI
(the ComfyUI test double) and its Python environment. Plus a snapshot of a folder tree to compare before and
after, and the installer run in-process or through its shell scripts."""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import pytest

from tests.doubles.comfyui.harness import make_fake_comfyui_dir

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install"
if str(INSTALL) not in sys.path:
    sys.path.insert(0, str(INSTALL))

from comfyfarm_install.cli import main as installer_main  # noqa: E402

TEST_SITE_PACKAGES = sysconfig.get_path("purelib")  # this test run's packages (numpy, yaml, requests...)
MODERN = sys.version_info[:2]  # the Python of the newest emulated Flame: this one's, so its packages load


def find_python(minor: Tuple[int, int]) -> Optional[str]:
    """An interpreter of that version on this machine (this run's own base, pyenv's, or on PATH)."""
    candidates = [str(Path(sys.base_prefix) / "bin" / f"python{minor[0]}.{minor[1]}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor[0]}.{minor[1]}.*/bin/python3")))
    # pyenv's versions, wherever pyenv lives (HOME may be elsewhere in CI): beside the shims on PATH
    shim = shutil.which(f"python{minor[0]}.{minor[1]}")
    if shim and Path(shim).parent.name == "shims":
        versions = Path(shim).parent.parent / "versions"
        candidates += sorted(glob.glob(str(versions / f"{minor[0]}.{minor[1]}.*" / "bin" / "python3")))
    candidates += [shutil.which(f"python{minor[0]}.{minor[1]}") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            check = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                   text=True)
            if check.returncode == 0 and check.stdout.strip() == str(minor):
                return candidate
    return None


def make_python_env(base: str, folder: Path, *, with_packages: bool = False, qt: Optional[str] = None,
                    packages: Optional[Path] = None) -> Path:
    """A Python environment at ``folder`` (a venv without pip): ``with_packages`` makes this test run's
    packages visible in it (an environment that has comfyfarm's requirements already), ``packages`` another
    folder of them instead; ``qt`` drops an empty PySide package in, as Flame's Python ships one."""
    subprocess.run([base, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    site = Path(subprocess.run([str(folder / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], check=True, capture_output=True, text=True).stdout.strip())
    if with_packages or packages is not None:
        (site / "test_run_packages.pth").write_text(str(packages or TEST_SITE_PACKAGES) + "\n")
    if qt:
        (site / qt).mkdir()
        (site / qt / "__init__.py").write_text("")
    return folder / "bin" / "python"


@dataclass
class Studio:
    """The temporary machine: ``root`` holds every folder the tests install into."""

    root: Path

    @property
    def autodesk(self) -> Path:
        return self.root / "opt" / "Autodesk"

    @property
    def hook_prefix(self) -> Path:
        return self.autodesk / "shared" / "python" / "comfyfarm"

    @property
    def bin_dir(self) -> Path:
        return self.root / "usr" / "local" / "bin"

    @property
    def repository(self) -> Path:
        return self.root / "DeadlineRepository10"

    @property
    def worker_prefix(self) -> Path:
        return self.root / "opt" / "comfyfarm"

    @property
    def comfyui_dir(self) -> Path:
        return self.root / "opt" / "ComfyUI"

    @property
    def comfyui_python(self) -> Path:
        return self.comfyui_dir / "venv" / "bin" / "python"


def add_flame(studio: Studio, flame_version: str, minor: Tuple[int, int], *, with_packages: bool) -> Path:
    base = find_python(minor)
    if base is None:
        pytest.skip(f"needs a Python {minor[0]}.{minor[1]} to emulate Flame {flame_version}'s")
    qt = "PySide6" if minor >= (3, 11) else "PySide2"
    return make_python_env(base, studio.autodesk / "python" / flame_version, with_packages=with_packages, qt=qt)


@pytest.fixture
def studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Studio:
    """An empty machine; no comfyfarm configuration or installer setting leaks in from the real one."""
    for name in list(os.environ):
        if name.startswith(("COMFYFARM_", "COMFYUI_")) or name == "DL_PYTHON_HOOK_PATH":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    return Studio(tmp_path / "machine")


@pytest.fixture
def workstation(studio: Studio) -> Studio:
    """Flame 2024.2 (Python 3.9, PySide2, none of comfyfarm's packages) and Flame 2025.1 (this run's Python,
    PySide6, with comfyfarm's packages), plus another studio tool's hook in the shared hook folder."""
    add_flame(studio, "2024.2", (3, 9), with_packages=False)
    add_flame(studio, "2025.1", MODERN, with_packages=True)
    other = studio.autodesk / "shared" / "python" / "studio_tools"
    other.mkdir(parents=True)
    (other / "studio_tools_hook.py").write_text("def get_main_menu_custom_ui_actions():\n    return []\n")
    (studio.autodesk / "presets" / "2025.1").mkdir(parents=True)
    (studio.autodesk / "presets" / "2025.1" / "readme.txt").write_text("Flame's presets\n")
    studio.bin_dir.mkdir(parents=True)
    (studio.bin_dir / "ffmpeg").write_text("#!/bin/sh\n")
    return studio


@pytest.fixture
def repository(studio: Studio) -> Studio:
    """A Deadline 10 repository: stock plugins, settings, and another vendor's custom plugin."""
    repo = studio.repository
    for folder in ("plugins/Python", "events/Sample", "settings", "custom/plugins/Redshift", "custom/events",
                   "custom/scripts"):
        (repo / folder).mkdir(parents=True)
    (repo / "plugins" / "Python" / "Python.py").write_text("# stock plugin\n")
    (repo / "settings" / "repository.ini").write_text("[General]\n")
    (repo / "custom" / "plugins" / "Redshift" / "Redshift.py").write_text("# the studio's Redshift plugin\n")
    return studio


@pytest.fixture
def gpu_node(studio: Studio) -> Studio:
    """ComfyUI (the test double) in /opt/ComfyUI with its venv, which has comfyfarm's packages already."""
    make_fake_comfyui_dir(studio.comfyui_dir)
    base = find_python(MODERN)
    assert base is not None
    make_python_env(base, studio.comfyui_dir / "venv", with_packages=True)
    return studio


def packages_without(folder: Path, distribution: str) -> Path:
    """This test run's packages less one distribution (its modules and its metadata), as links in ``folder``:
    a Python that lacks only that one of comfyfarm's requirements."""
    files = metadata.distribution(distribution).files or []
    tops = {Path(str(f)).parts[0] for f in files if not str(f).startswith("..")}
    folder.mkdir(parents=True)
    for entry in Path(TEST_SITE_PACKAGES).iterdir():
        if entry.name not in tops and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


def wheel_of_installed(folder: Path, distribution: str) -> Path:
    """The wheel pip would download for a distribution this test run has, rebuilt from its installed files
    (compiled modules included, with the platform tag they were built for)."""
    dist = metadata.distribution(distribution)
    tag = next(line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
               if line.startswith("Tag:"))
    info = next(f for f in dist.files or [] if f.name == "METADATA").parts[0]
    skipped = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
    members = [f for f in dist.files or [] if not str(f).startswith("..") and "__pycache__" not in f.parts
               and not (f.parts[0] == info and f.name in skipped)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{info[: -len('.dist-info')]}-{tag}.whl"
    record: List[str] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as wheel:
        for member in members:
            data = Path(str(dist.locate_file(member))).read_bytes()
            wheel.writestr(str(member), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="session")
def openimageio_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``--wheels`` for a Python that lacks OpenImageIO: its wheel and its dependency's (numpy), as an offline
    studio keeps them."""
    folder = tmp_path_factory.mktemp("wheels")
    wheel_of_installed(folder, "OpenImageIO")
    wheel_of_installed(folder, "numpy")
    return folder


@pytest.fixture
def gpu_node_without_openimageio(studio: Studio) -> Studio:
    """ComfyUI (the test double) whose venv has every package comfyfarm needs but OpenImageIO."""
    make_fake_comfyui_dir(studio.comfyui_dir)
    base = find_python(MODERN)
    assert base is not None
    packages = packages_without(studio.root / "site-packages-without-openimageio", "OpenImageIO")
    make_python_env(base, studio.comfyui_dir / "venv", packages=packages)
    return studio


def snapshot(*roots: Path) -> Dict[str, str]:
    """Every file (its hash), link (its target) and folder under ``roots``."""
    found: Dict[str, str] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            if path.is_symlink():
                found[str(path)] = f"link {os.readlink(path)}"
            elif path.is_dir():
                found[str(path)] = "folder"
            else:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_installer(*args: str) -> Tuple[int, str]:
    """The installer in this process (``install`` or ``uninstall`` first), with what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = installer_main(list(args))
    return code, out.getvalue()


def run_script(script: str, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """``bash install/<script> ...`` as a person runs it."""
    return subprocess.run(["bash", str(INSTALL / script), *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=str(REPO.parent))


def make_wheel(folder: Path, name: str, version: str, modules: Dict[str, str],
               requires: Iterable[str] = ()) -> Path:
    """A pure-Python wheel, as a package index would serve it."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {path: text.encode() for path, text in modules.items()}
    files[f"{info}/METADATA"] = ("Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record: List[str] = []
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, data in files.items():
            wheel.writestr(member, data)
            digest = hashlib.sha256(data).digest()
            record.append(f"{member},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path
