"""Set up a ComfyUI of its own for ``bash install/dev.sh demo`` when none is configured. Standard library only.

    python install/comfyui_setup.py [--home DIR] [--source URL|PATH] [--ref COMMIT]

Prints the ComfyUI folder on stdout, and everything else (progress, git's and pip's output) on stderr. Steps:

1. ComfyUI at the pinned commit, fetched from its public repository (or a mirror) into ``<home>/ComfyUI``;
2. its venv, ``<home>/ComfyUI/venv`` (where comfyfarm looks for ComfyUI's Python);
3. torch and torchvision (core ComfyUI imports both): the CPU build from PyTorch's CPU index where no NVIDIA GPU
   answers ``nvidia-smi``, PyPI's default (CUDA) build where one does;
4. ComfyUI's ``requirements.txt``, less torch, torchvision and torchaudio (step 3's business; torchaudio only
   serves the audio nodes, which ComfyUI skips without it), plus ``requests`` (ComfyUI imports it at start but
   does not list it: it used to come with transformers), with torch held at what step 3 installed, so that pip
   never swaps the CPU build for the CUDA stack.

``<home>/setup.json`` records each step once it has finished, so that an interrupted clone or pip is redone, not
trusted; a second run finds every step done and only says so (it needs no network).

Environment (each also an option):

- ``COMFYFARM_COMFYUI_HOME``: where (default: ``.comfyui`` in this checkout, which git ignores).
- ``COMFYFARM_COMFYUI_SOURCE``: a git URL, or the path of a local clone or mirror (``git clone --mirror``), for a
  site that cannot reach GitHub (default: https://github.com/Comfy-Org/ComfyUI).
- ``COMFYFARM_COMFYUI_REF``: a commit, tag or branch of that source (default: the pinned commit, ComfyUI 0.3.64).
- ``COMFYFARM_COMFYUI_EXCLUDE``: paths of ComfyUI's tree left out of the checkout, for a mirror that lacks some
  large files (e.g. ``comfy/text_encoders/llama_tokenizer/tokenizer.json``, used by Llama-tokenizer models only).
- ``COMFYFARM_TORCH_PIP``: the ``pip install`` arguments of step 3, e.g. ``--no-index --find-links /wheels torch
  torchvision`` offline. Setting it to other arguments than the last setup's installs the venv afresh.
  pip's own settings (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, pip.conf) apply to steps 3 and 4 as usual.

Exit status: 0 when the ComfyUI is ready; 1 with one last line on stderr that says what failed and what to do;
130 when interrupted (run it again to finish).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: no lock against a second setup running at the same time
    fcntl = None  # type: ignore[assignment]

PINNED_COMMIT = "a125cd84b054a57729b5eecab930ca9408719832"
PINNED_VERSION = "0.3.64"
DEFAULT_SOURCE = "https://github.com/Comfy-Org/ComfyUI"
CPU_TORCH_PIP = ("torch", "torchvision", "--index-url", "https://download.pytorch.org/whl/cpu")
GPU_TORCH_PIP = ("torch", "torchvision", "torchaudio")
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
UNLISTED_REQUIREMENTS = ("requests",)  # imported by ComfyUI 0.3.64 (app/frontend_management.py), not listed
STATE_SCHEMA = 1

HOME_ENV = "COMFYFARM_COMFYUI_HOME"
SOURCE_ENV = "COMFYFARM_COMFYUI_SOURCE"
REF_ENV = "COMFYFARM_COMFYUI_REF"
EXCLUDE_ENV = "COMFYFARM_COMFYUI_EXCLUDE"
TORCH_PIP_ENV = "COMFYFARM_TORCH_PIP"

_GIT_QUERY_TIMEOUT_SECONDS = 120
_GIT_FETCH_TIMEOUT_SECONDS = 1800
_GIT_CHECKOUT_TIMEOUT_SECONDS = 600
_VENV_TIMEOUT_SECONDS = 600
_PIP_TIMEOUT_SECONDS = 3600  # a CUDA torch is several GB
_PROBE_TIMEOUT_SECONDS = 30  # nvidia-smi, a Python that answers
_IMPORT_TIMEOUT_SECONDS = 300  # the first import of torch reads a few hundred MB
_STOP_GRACE_SECONDS = 5
_STDERR_FD = 2

OWN_COMFYUI = "or set COMFYUI_DIR to an existing ComfyUI"
PREFIX = "comfyfarm:"


class SetupError(Exception):
    """A step failed: the message says which, and what to do (one line)."""


def say(text: str) -> None:
    print(f"{PREFIX} {text}", file=sys.stderr, flush=True)


def _stop_group(process: subprocess.Popen) -> None:
    """End the child and whatever it started (it runs in a session of its own)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except OSError:
            return
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def run(command: Sequence[str], *, what: str, fix: str, timeout_s: float, capture: bool = False,
        cwd: Optional[Path] = None, stdin_text: Optional[str] = None) -> str:
    """Run ``command`` and return what it printed (``capture``), else let it print on our stderr.

    SetupError("<what> failed (...): <fix>") when it cannot start, fails or outlives ``timeout_s``."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", PIP_NO_INPUT="1", PYTHONUNBUFFERED="1")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    try:
        process = subprocess.Popen(
            list(command), cwd=str(cwd) if cwd else None, env=env, text=True, start_new_session=True,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else _STDERR_FD, stderr=subprocess.PIPE if capture else None,
        )
    except OSError as exc:
        raise SetupError(f"{what} failed (cannot run {command[0]}: {exc.strerror or exc}): {fix}") from None
    try:
        out, err = process.communicate(stdin_text, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        raise SetupError(f"{what} failed (no result after {timeout_s:.0f} s): {fix}") from None
    except BaseException:  # Ctrl-C: take the child (pip, git, and what they started) down too
        _stop_group(process)
        raise
    if process.returncode != 0:
        lines = [line.strip() for line in (err or "").splitlines() if line.strip()]
        reasons = [line for line in lines if line.lower().startswith(("fatal:", "error:"))] or lines[-1:]
        detail = reasons[0] if reasons else f"exit status {process.returncode}" + ("" if capture else ", see above")
        raise SetupError(f"{what} failed ({detail}): {fix}")
    return out or ""


class Setup:
    """One ComfyUI, set up in ``home`` step by step; ``ensure()`` does what is missing and returns its folder."""

    def __init__(self, *, home: Path, source: str, ref: str, exclude: Tuple[str, ...],
                 torch_pip: Optional[Tuple[str, ...]], explicit: Sequence[str] = (),
                 python: str = sys.executable) -> None:
        self.home = home
        self.source = source
        self.ref = ref
        self.exclude = exclude
        self.torch_pip = torch_pip  # None: the default for this machine
        self.explicit = set(explicit)  # the settings the user gave (options or environment), not defaults
        self.python = python
        self.comfyui = home / "ComfyUI"
        self.venv = self.comfyui / "venv"
        self.venv_python = self.venv / "bin" / "python"
        self.state_path = home / "setup.json"

    # the record of finished steps ---------------------------------------------------------------------------

    def read_state(self) -> Dict[str, dict]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) and state.get("schema") == STATE_SCHEMA else {}

    def write_state(self, state: Dict[str, dict]) -> None:
        partial = self.state_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(dict(state, schema=STATE_SCHEMA), indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.state_path)

    def checkout_is_done(self, state: Dict[str, dict]) -> bool:
        done = state.get("checkout") or {}
        if done.get("ref") != self.ref or not done.get("commit"):
            return False
        if "exclude" in self.explicit and tuple(done.get("exclude", ())) != self.exclude:
            return False
        try:
            head = run(["git", "-C", str(self.comfyui), "rev-parse", "HEAD"], what="git rev-parse", fix="",
                       timeout_s=_GIT_QUERY_TIMEOUT_SECONDS, capture=True).strip()
        except SetupError:
            return False
        return head == done["commit"]

    def venv_is_done(self, state: Dict[str, dict]) -> bool:
        done = state.get("venv") or {}
        if not done or ("torch_pip" in self.explicit and tuple(done.get("torch_pip", ())) != self.torch_pip):
            return False
        try:
            run([str(self.venv_python), "-c", ""], what="the venv's Python", fix="",
                timeout_s=_PROBE_TIMEOUT_SECONDS, capture=True)
        except SetupError:
            return False
        return True

    # the steps ------------------------------------------------------------------------------------------------

    def ensure(self) -> Path:
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        state = self.read_state()
        checkout_done = self.checkout_is_done(state)
        if checkout_done and self.venv_is_done(state):
            say(f"ComfyUI {self.version()} ({state['checkout']['commit'][:8]}) is already set up in {self.comfyui}: "
                f"reusing it (remove {self.home} to set it up afresh)")
            return self.comfyui
        if checkout_done:
            say(f"[1/4] ComfyUI {self.version()} ({state['checkout']['commit'][:8]}) is already checked out in "
                f"{self.comfyui}")
        else:
            state = {"checkout": self.fetch()}
            self.write_state(state)
        self.make_venv()
        versions = self.install_torch()
        self.install_requirements(versions)
        state["venv"] = {"python": self.python, "torch_pip": list(self.torch_args()), "torch": versions}
        self.write_state(state)
        minutes, seconds = divmod(int(time.monotonic() - started), 60)
        say(f"ComfyUI {self.version()} is ready in {self.comfyui} (set up in {minutes} min {seconds} s)")
        return self.comfyui

    def version(self) -> str:
        try:
            text = (self.comfyui / "comfyui_version.py").read_text(encoding="utf-8")
        except OSError:
            return "(version unknown)"
        found = re.search(r"""__version__\s*=\s*["']([^"']+)""", text)
        return found.group(1) if found else "(version unknown)"

    def fetch(self) -> dict:
        """Step 1: the source's ``ref`` checked out in ``<home>/ComfyUI`` (a fresh one: any old one goes)."""
        where = f"ComfyUI {self.ref[:8] if self.ref == PINNED_COMMIT else self.ref}"
        pin = f" ({PINNED_VERSION})" if self.ref == PINNED_COMMIT else ""
        say(f"[1/4] fetching {where}{pin} from {self.source} into {self.comfyui}")
        partial = self.home / "ComfyUI.partial"
        for folder in (partial, self.comfyui):
            shutil.rmtree(folder, ignore_errors=True)
        unreachable = (f"point {SOURCE_ENV} at a reachable copy of {DEFAULT_SOURCE} (a git URL, or a local mirror "
                       f"made with git clone --mirror), {OWN_COMFYUI}")
        try:
            commit = self._check_out(partial, where, unreachable)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        os.replace(partial, self.comfyui)
        return {"source": self.source, "ref": self.ref, "commit": commit, "exclude": list(self.exclude)}

    def _check_out(self, partial: Path, where: str, unreachable: str) -> str:
        run(["git", "ls-remote", "--quiet", self.source, "HEAD"], what=f"reaching the ComfyUI source {self.source}",
            fix=unreachable, timeout_s=_GIT_QUERY_TIMEOUT_SECONDS, capture=True)
        commit = self._fetch_into(partial, unreachable)
        self._check_complete(partial, commit)
        if self.exclude:
            run(["git", "-C", str(partial), "config", "core.sparseCheckout", "true"], what="git config",
                fix=OWN_COMFYUI, timeout_s=_GIT_QUERY_TIMEOUT_SECONDS)
            patterns = ["/*"] + [f"!/{path.strip('/')}" for path in self.exclude]
            sparse = partial / ".git" / "info" / "sparse-checkout"
            sparse.parent.mkdir(parents=True, exist_ok=True)
            sparse.write_text("\n".join(patterns) + "\n", encoding="utf-8")
        run(["git", "-C", str(partial), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit],
            what=f"checking out {where}", fix=f"check the disk space and permissions of {self.home}, {OWN_COMFYUI}",
            timeout_s=_GIT_CHECKOUT_TIMEOUT_SECONDS, capture=True)  # quiet: git complains of excluded files
        changed = run(["git", "-C", str(partial), "status", "--porcelain", "--untracked-files=no"],
                      what="git status", fix=OWN_COMFYUI, timeout_s=_GIT_CHECKOUT_TIMEOUT_SECONDS, capture=True)
        if changed.strip():
            raise SetupError(f"the checkout of {where} is incomplete ({changed.splitlines()[0].strip()}): check the "
                             f"disk space of {self.home} and run again, {OWN_COMFYUI}")
        return commit

    def _fetch_into(self, partial: Path, unreachable: str) -> str:
        """The objects of ``ref`` in the new repository ``partial``; returns its commit."""
        what = f"fetching ComfyUI from {self.source}"
        resolve: List[str] = [f"{self.ref}^{{commit}}", f"origin/{self.ref}^{{commit}}"]
        if Path(self.source).expanduser().is_dir():  # a local clone or mirror: git copies its objects as they are
            run(["git", "clone", "--no-checkout", "--progress", str(Path(self.source).expanduser()), str(partial)],
                what=what, fix=f"check {self.source} and the disk space of {self.home}, {OWN_COMFYUI}",
                timeout_s=_GIT_FETCH_TIMEOUT_SECONDS)
        else:
            run(["git", "init", "--quiet", str(partial)], what="git init", fix=OWN_COMFYUI,
                timeout_s=_GIT_QUERY_TIMEOUT_SECONDS)
            run(["git", "-C", str(partial), "remote", "add", "origin", self.source], what="git remote add",
                fix=OWN_COMFYUI, timeout_s=_GIT_QUERY_TIMEOUT_SECONDS)
            try:  # that one commit only: GitHub serves it, and it is a few MB instead of the whole history
                run(["git", "-C", str(partial), "fetch", "--depth", "1", "--progress", "origin", self.ref],
                    what=what, fix=unreachable, timeout_s=_GIT_FETCH_TIMEOUT_SECONDS)
                resolve.insert(0, "FETCH_HEAD^{commit}")
            except SetupError:  # a server that serves no single commit: the whole history, then find it there
                say("fetching that commit alone did not work: fetching the whole history instead")
                run(["git", "-C", str(partial), "fetch", "--progress", "--tags", "origin",
                     "+refs/heads/*:refs/remotes/origin/*"], what=what, fix=unreachable,
                    timeout_s=_GIT_FETCH_TIMEOUT_SECONDS)
        for candidate in resolve:
            try:
                return run(["git", "-C", str(partial), "rev-parse", "--verify", "--quiet", candidate],
                           what="git rev-parse", fix="", timeout_s=_GIT_QUERY_TIMEOUT_SECONDS, capture=True).strip()
            except SetupError:
                continue
        raise SetupError(f"the ComfyUI source {self.source} has no commit, tag or branch {self.ref}: check {REF_ENV} "
                         f"(unset, it means ComfyUI {PINNED_VERSION}), or point {SOURCE_ENV} at a copy that has it, "
                         f"{OWN_COMFYUI}")

    def _check_complete(self, partial: Path, commit: str) -> None:
        """Every file of ``commit`` (but the excluded ones) is there: a mirror may lack large files, and git then
        checks out the rest without failing."""
        listing = run(["git", "-C", str(partial), "ls-tree", "-r", "-z", "--full-tree", commit], what="git ls-tree",
                      fix=OWN_COMFYUI, timeout_s=_GIT_QUERY_TIMEOUT_SECONDS, capture=True)
        blobs: Dict[str, str] = {}
        for entry in listing.split("\0"):
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob" and not self._excluded(path):
                blobs.setdefault(parts[2], path)
        if not blobs:
            return
        answer = run(["git", "-C", str(partial), "cat-file", "--batch-check"], what="git cat-file", fix=OWN_COMFYUI,
                     timeout_s=_GIT_QUERY_TIMEOUT_SECONDS, capture=True, stdin_text="\n".join(blobs) + "\n")
        missing = sorted(blobs[line.split()[0]] for line in answer.splitlines() if line.endswith(" missing"))
        if missing:
            shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
            raise SetupError(f"the ComfyUI source {self.source} lacks {len(missing)} file(s) of commit {commit[:8]} "
                             f"({shown}): use a complete copy of {DEFAULT_SOURCE}, or leave them out with "
                             f"{EXCLUDE_ENV}='{' '.join(missing)}' if you do not need them, {OWN_COMFYUI}")

    def _excluded(self, path: str) -> bool:
        return any(path == e.strip("/") or path.startswith(e.strip("/") + "/") for e in self.exclude)

    def make_venv(self) -> None:
        """Step 2: a fresh venv (an old or half-made one goes: its packages are not to be trusted)."""
        version = run([self.python, "-c", "import platform; print(platform.python_version())"],
                      what=f"running {self.python}", fix=OWN_COMFYUI, timeout_s=_PROBE_TIMEOUT_SECONDS,
                      capture=True).strip()
        say(f"[2/4] creating ComfyUI's venv {self.venv} (Python {version})")
        shutil.rmtree(self.venv, ignore_errors=True)
        run([self.python, "-m", "venv", str(self.venv)], what="creating the venv",
            fix="install Python's venv module (Debian and Ubuntu: apt install python3-venv), " + OWN_COMFYUI,
            timeout_s=_VENV_TIMEOUT_SECONDS)

    def torch_args(self) -> Tuple[str, ...]:
        if self.torch_pip is not None:
            return self.torch_pip
        return GPU_TORCH_PIP if has_nvidia_gpu() else CPU_TORCH_PIP

    def install_torch(self) -> Dict[str, str]:
        """Step 3: torch and torchvision, and that they import together; returns the versions installed."""
        args = self.torch_args()
        if self.torch_pip is not None:
            why = f"as {TORCH_PIP_ENV} says"
        elif args == GPU_TORCH_PIP:
            why = "an NVIDIA GPU answers: PyPI's CUDA build"
        else:
            why = "no NVIDIA GPU: the CPU build"
        say(f"[3/4] installing torch ({why}): pip install {shlex.join(args)}")
        offline = f"{TORCH_PIP_ENV}='--no-index --find-links DIR torch torchvision'"
        run([str(self.venv_python), "-m", "pip", "install", "--disable-pip-version-check", *args],
            what="installing torch", timeout_s=_PIP_TIMEOUT_SECONDS,
            fix=f"check the network, or set {TORCH_PIP_ENV} to pip arguments that work here (offline: {offline}), "
                + OWN_COMFYUI)
        found = run([str(self.venv_python), "-c", "import torch, torchvision; print(torch.__version__, "
                     "torchvision.__version__, 'CUDA' if torch.cuda.is_available() else 'CPU')"],
                    what="importing torch and torchvision", timeout_s=_IMPORT_TIMEOUT_SECONDS, capture=True,
                    fix=f"they must be a matching pair of one build: set {TORCH_PIP_ENV} to pip arguments that "
                        f"install one (offline: {offline}, both wheels from {CPU_TORCH_PIP[-1]}), "
                        f"{OWN_COMFYUI}").split()
        say(f"      torch {found[0]} and torchvision {found[1]} import ({found[2]})" if len(found) == 3 else
            "      torch and torchvision import")
        listing = run([str(self.venv_python), "-c", "import importlib.metadata as m, json, sys; print(json.dumps("
                       "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                      what="listing the venv's packages", fix=OWN_COMFYUI, timeout_s=_PROBE_TIMEOUT_SECONDS,
                      capture=True)
        installed = json.loads(listing)
        return {name: installed[name] for name in TORCH_PACKAGES if name in installed}

    def install_requirements(self, torch_versions: Dict[str, str]) -> None:
        """Step 4: ComfyUI's requirements.txt without the torch packages, torch held where step 3 put it."""
        requirements = self.comfyui / "requirements.txt"
        if not requirements.is_file():
            say(f"[4/4] {requirements} does not exist: no more packages to install")
            return
        kept = [line for line in requirements.read_text(encoding="utf-8").splitlines()
                if requirement_name(line) not in TORCH_PACKAGES]
        filtered = self.home / "requirements.txt"
        filtered.write_text(f"# {requirements} less {', '.join(TORCH_PACKAGES)}, plus what ComfyUI imports "
                            "unlisted\n" + "\n".join(kept + list(UNLISTED_REQUIREMENTS)) + "\n", encoding="utf-8")
        constraints = self.home / "constraints.txt"
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in torch_versions.items()),
                               encoding="utf-8")
        held = ", ".join(f"{name} {version}" for name, version in torch_versions.items()) or "nothing"
        say(f"[4/4] installing ComfyUI's requirements ({held} held)")
        run([str(self.venv_python), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(constraints),
             "-r", str(filtered)], what="installing ComfyUI's requirements", cwd=self.comfyui,
            timeout_s=_PIP_TIMEOUT_SECONDS,
            fix="check the network or the package index (pip's PIP_INDEX_URL or PIP_FIND_LINKS on an offline "
                f"site), {OWN_COMFYUI}")


def requirement_name(line: str) -> Optional[str]:
    """The normalised project name a requirements.txt line asks for (None for options, comments, blanks)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else None


def has_nvidia_gpu() -> bool:
    """Whether ``nvidia-smi`` answers with at least one GPU."""
    if not shutil.which("nvidia-smi"):
        return False
    try:
        listing = run(["nvidia-smi", "-L"], what="nvidia-smi", fix="", timeout_s=_PROBE_TIMEOUT_SECONDS, capture=True)
    except SetupError:
        return False
    return any(line.startswith("GPU ") for line in listing.splitlines())


def parse_arguments(argv: Optional[Sequence[str]]) -> Tuple[argparse.Namespace, List[str]]:
    parser = argparse.ArgumentParser(prog="comfyui_setup.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ
    checkout = Path(__file__).resolve().parent.parent
    parser.add_argument("--home", default=env.get(HOME_ENV) or str(checkout / ".comfyui"),
                        help=f"where ComfyUI and its venv go (${HOME_ENV}; default: .comfyui in this checkout)")
    parser.add_argument("--source", default=env.get(SOURCE_ENV) or DEFAULT_SOURCE,
                        help=f"a git URL, or a local clone or mirror (${SOURCE_ENV}; default: {DEFAULT_SOURCE})")
    parser.add_argument("--ref", default=env.get(REF_ENV) or PINNED_COMMIT,
                        help=f"the commit, tag or branch (${REF_ENV}; default: {PINNED_COMMIT}, {PINNED_VERSION})")
    parser.add_argument("--exclude", default=env.get(EXCLUDE_ENV),
                        help=f"paths left out of the checkout, space-separated (${EXCLUDE_ENV})")
    parser.add_argument("--torch-pip", default=env.get(TORCH_PIP_ENV),
                        help=f"pip install arguments for torch and torchvision (${TORCH_PIP_ENV})")
    args = parser.parse_args(argv)
    explicit = [name for name, value in (("exclude", args.exclude), ("torch_pip", args.torch_pip)) if value]
    return args, explicit


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, explicit = parse_arguments(argv)
    home = Path(args.home).expanduser().resolve()
    torch_pip = tuple(shlex.split(args.torch_pip)) if args.torch_pip else None
    setup = Setup(home=home, source=args.source, ref=args.ref, exclude=tuple(shlex.split(args.exclude or "")),
                  torch_pip=torch_pip, explicit=explicit)
    try:
        home.mkdir(parents=True, exist_ok=True)
        with open(home / ".lock", "w") as lock:
            if fcntl is not None:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise SetupError(f"another ComfyUI setup is running in {home}: wait for it to finish, then run "
                                     "again") from None
            folder = setup.ensure()
    except SetupError as exc:
        say(f"setting up ComfyUI failed: {exc}")
        return 1
    except OSError as exc:
        say(f"setting up ComfyUI failed: {exc.strerror or exc} ({exc.filename or home}): check the disk space and "
            f"permissions of {home}, {OWN_COMFYUI}")
        return 1
    except KeyboardInterrupt:
        say(f"setting up ComfyUI was interrupted: run the same command again to finish it ({home} keeps what is done)")
        return 130
    print(folder, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
