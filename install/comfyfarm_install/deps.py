"""Third-party packages for a Python that lacks them, without touching that Python's own environment.

Only what the target Python does not already have is installed, into a folder of comfyfarm's own
(``python3.X`` beside comfyfarm's files) that comes after the Python's own packages on ``sys.path``: Flame's
or ComfyUI's packages always win, so installing comfyfarm can never change the versions they run with.

What the Python "already has" is what it has without comfyfarm: once installed, comfyfarm's ``.pth`` makes
its own packages importable there too, and counting those would drop them on the next run
(``own_distributions``). Those comfyfarm installed before are kept as they are while they still satisfy the
requirements and nobody changed them (``installed_before``): a re-run changes nothing and needs no network.

Otherwise pip runs once per Python minor version (``--target`` a staging folder, wheels only, from the
configured index or from ``--wheels DIR`` offline); whatever it staged that the Python already has (a
dependency of a dependency) is dropped before anything is installed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from farm_plugin.errors import ServiceError
from farm_plugin.installation.manifest import Manifest, file_sha256
from farm_plugin.installation.pythons import PROBE_TIMEOUT_SECONDS, PythonInfo, normalize

logger = logging.getLogger(__name__)

PIP_TIMEOUT_SECONDS = 1800.0
PIP_MINIMUM_FOR_PYTHON_OPTION = (22, 3)

# Run in the target Python (-I): its distributions, leaving out every sys.path entry that is comfyfarm's,
# that is a folder under argv[2:] or a path line of a comfyfarm .pth (argv[1]) in one of its site folders.
_OWN_DISTRIBUTIONS = r"""
import json, os, re, sys
from importlib import metadata
pth, ours = sys.argv[1], [os.path.realpath(p) for p in sys.argv[2:]]
for entry in list(sys.path):
    try:
        with open(os.path.join(entry or ".", pth), encoding="utf-8") as stream:
            lines = [line.strip() for line in stream]
    except OSError:
        continue
    ours += [os.path.realpath(os.path.join(entry, line)) for line in lines
             if line and not line.startswith(("#", "import ", "import\t"))]
def own(entry):
    real = os.path.realpath(entry or ".")
    return not any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in ours)
dists = {}
for dist in metadata.distributions(path=[entry for entry in sys.path if own(entry)]):
    name = dist.metadata["Name"]
    if name:
        dists.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
print(json.dumps(dists))
"""


class DependencyError(ServiceError):
    """pip could not provide a requirement: the message says for which Python and what to do."""


@dataclass(frozen=True)
class Requirement:
    text: str
    name: str  # normalized
    operator: Optional[str] = None  # ">=" or "=="
    version: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> Requirement:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:(>=|==)\s*([0-9][0-9A-Za-z.]*))?\s*", text)
        if match is None:
            raise DependencyError(f"requirement {text!r}: comfyfarm's installer reads 'name', 'name>=version' or "
                                  "'name==version'")
        return cls(text.strip(), normalize(match.group(1)), match.group(2), match.group(3))

    def satisfied_by(self, version: Optional[str]) -> bool:
        if version is None or self.version is None:
            return version is not None
        if self.operator == "==":
            return _numbers(version) == _numbers(self.version)
        return _numbers(version) >= _numbers(self.version)


def read_requirements(path: Path) -> List[Requirement]:
    """One requirement per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DependencyError(f"--requirements {path}: cannot read it ({exc.strerror or exc})") from exc
    return [Requirement.parse(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]


def _numbers(version: str) -> Tuple[int, ...]:
    parts = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        parts.append(int(match.group(0)))
    return tuple(parts)


def own_distributions(python: PythonInfo, comfyfarm_folders: Sequence[Path], pth_name: str) -> PythonInfo:
    """``python`` with only the distributions it has without comfyfarm: none from ``comfyfarm_folders`` or
    from a folder a comfyfarm ``.pth`` (``pth_name``) puts on its path, whatever the prefix it came from."""
    command = [str(python.executable), "-I", "-c", _OWN_DISTRIBUTIONS, pth_name] + [str(f) for f in comfyfarm_folders]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"cannot run {python.executable} to list its packages: {exc}") from exc
    try:
        found = dict(json.loads(result.stdout.strip().splitlines()[-1]))
    except (ValueError, TypeError, IndexError) as exc:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DependencyError(f"{python.executable} failed when asked for its packages (exit {result.returncode}): "
                              f"{last}: repair that Python, or pass --no-deps and provide comfyfarm's requirements "
                              "yourself") from exc
    return dataclasses.replace(python, distributions={str(k): str(v) for k, v in found.items()})


def missing_requirements(requirements: Sequence[Requirement], pythons: Sequence[PythonInfo]
                         ) -> Tuple[List[Requirement], List[str]]:
    """The requirements one of ``pythons`` lacks, and notes on those present but older than wanted (kept:
    comfyfarm never replaces a package the Python ships)."""
    missing: List[Requirement] = []
    notes: List[str] = []
    for requirement in requirements:
        for python in pythons:
            version = python.distributions.get(requirement.name)
            if version is None:
                if requirement not in missing:
                    missing.append(requirement)
            elif not requirement.satisfied_by(version):
                notes.append(f"{python.executable} has {requirement.name} {version} (comfyfarm asks for "
                             f"{requirement.text}): kept as it is; upgrade it there if comfyfarm fails with it")
    return missing, notes


def pip_command(python: PythonInfo) -> List[str]:
    """The target Python's own pip, or this Python's pip acting for it (pip 22.3+ ``--python``)."""
    if python.has_pip:
        return [str(python.executable), "-m", "pip"]
    try:
        import pip
    except ImportError as exc:
        raise DependencyError(f"{python.executable} has no pip, and neither has {sys.executable}: install pip in "
                              "one of them, or install the packages yourself and use --no-deps") from exc
    if _numbers(pip.__version__) < PIP_MINIMUM_FOR_PYTHON_OPTION:
        raise DependencyError(f"{python.executable} has no pip, and {sys.executable}'s pip {pip.__version__} is too "
                              "old to install for another Python (22.3+): upgrade it, or use --no-deps")
    return [sys.executable, "-m", "pip", "--python", str(python.executable)]


def stage(requirements: Sequence[Requirement], python: PythonInfo, staging: Path, *,
          wheels: Optional[Path] = None) -> None:
    """``pip install --target staging`` for ``python``: wheels only, nothing compiled, nothing else touched."""
    command = pip_command(python) + [
        "install", "--target", str(staging), "--no-compile", "--only-binary=:all:", "--disable-pip-version-check",
        "--no-input", "--quiet",
    ]
    if wheels is not None:
        command += ["--no-index", "--find-links", str(wheels)]
    command += [r.text for r in requirements]
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_TARGET")}
    logger.debug("running %s", " ".join(command))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS,
                                env=environment, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"pip did not run for {python.executable}: {exc}") from exc
    if result.returncode != 0:
        tail = " | ".join(line.strip() for line in (result.stdout + result.stderr).splitlines()[-4:] if line.strip())
        where = f"the wheels in {wheels}" if wheels else "the package index"
        raise DependencyError(
            f"pip could not install {', '.join(r.text for r in requirements)} for Python {python.version_text} "
            f"({python.executable}) from {where}: {tail}: check the network or the index, or pass --wheels DIR "
            f"with wheels for Python {python.minor[0]}.{python.minor[1]}, or --no-deps"
        )


@dataclass(frozen=True)
class StagedDistribution:
    name: str  # normalized
    version: str
    files: Tuple[Path, ...]  # relative to the staging folder


def staged_distributions(staging: Path) -> List[StagedDistribution]:
    """What pip put in ``staging``, one entry per distribution, from each ``*.dist-info/RECORD``."""
    found = []
    for info in sorted(staging.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        files: Set[Path] = {p.relative_to(staging) for p in info.rglob("*") if p.is_file()}
        record = info / "RECORD"
        if record.is_file():
            for line in record.read_text(encoding="utf-8").splitlines():
                path = line.rsplit(",", 2)[0]
                if path and not path.startswith(("..", "/")) and (staging / path).is_file():
                    files.add(Path(path))
        kept = tuple(sorted(p for p in files if "__pycache__" not in p.parts and p.parts[0] != "bin"))
        found.append(StagedDistribution(normalize(name), version, kept))
    return found


def files_to_install(staging: Path, present: Set[str]) -> Tuple[Dict[Path, Path], List[StagedDistribution],
                                                                 List[StagedDistribution]]:
    """Staged files (relative path → staged file) of the distributions not in ``present``; also which
    distributions are kept and which are dropped because the Python has them already."""
    files: Dict[Path, Path] = {}
    kept, dropped = [], []
    for distribution in staged_distributions(staging):
        if distribution.name in present:
            dropped.append(distribution)
            continue
        kept.append(distribution)
        for relative in distribution.files:
            files[relative] = staging / relative
    return files, kept, dropped


@dataclass(frozen=True)
class InstalledBefore:
    """What an earlier run installed into one package folder, every file still as it wrote it."""

    versions: Dict[str, str]  # normalized name -> version
    files: Tuple[Path, ...]  # absolute


def installed_before(folder: Path, previous: Optional[Manifest]) -> Optional[InstalledBefore]:
    """The packages comfyfarm installed into ``folder`` before, when all of them are still there as it wrote
    them; None when there are none, or one was removed or changed by hand, or a run stopped half-way through
    them (pip provides them afresh then)."""
    if previous is None:
        return None
    files = tuple(sorted(Path(key) for key in previous.files if Path(key).is_relative_to(folder)))
    if not files or any(Path(key).is_relative_to(folder) for key in previous.pending):
        return None
    if not all(path.is_file() and previous.is_ours(str(path), file_sha256(path)) for path in files):
        return None
    versions = {}
    for path in files:
        relative = path.relative_to(folder)
        if len(relative.parts) == 2 and relative.parts[0].endswith(".dist-info") and relative.name == "METADATA":
            name, _, version = relative.parts[0][: -len(".dist-info")].partition("-")
            versions[normalize(name)] = version
    return InstalledBefore(versions, files)
