"""``bash install/dev.sh demo`` with no ComfyUI configured: it sets one up (install/comfyui_setup.py) from a git
mirror, reuses it, says what to do when it cannot, prefers a configured ComfyUI, and runs the demo through it.

CI has no network and installs no torch: the mirror is a bare git repository made here from a stand-in ComfyUI
(the test double's folder, whose main.py notes the Python that started it and imports the stand-in's
requirements), pinned at a commit that is not its tip, with a requirements.txt of hand-made wheels installed
offline; ``COMFYFARM_TORCH_PIP`` installs a hand-made torch and torchvision the same way. The real tier
(``COMFYFARM_COMFYUI_MIRROR``: a clone or mirror of github.com/Comfy-Org/ComfyUI) sets up the real ComfyUI and
runs the demo on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

from tests.doubles.comfyui.harness import REPO_ROOT, free_port, make_fake_comfyui_dir

from .conftest import INSTALL, TEST_SITE_PACKAGES, make_wheel

PINNED_COMMIT = "a125cd84b054a57729b5eecab930ca9408719832"
FRAMES = [str(frame) for frame in range(1001, 1049)]
DEMO_WORKFLOWS = ("invert", "blur")
FAILED = "comfyfarm: setting up ComfyUI failed: "
OWN_COMFYUI = "or set COMFYUI_DIR to an existing ComfyUI"

_STANDIN_MAIN = '''"""A stand-in for ComfyUI's main.py: notes its Python, then runs comfyfarm's ComfyUI test double."""
import os
import site
import sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "started-by.txt"), "a") as note:
    note.write(sys.executable + "\\n")

import comfyui_standin_dep  # noqa: E402,F401  (from requirements.txt)
import requests  # noqa: E402,F401  (as ComfyUI imports it without listing it)
import torch  # noqa: E402,F401  (from the torch step)

site.addsitedir({packages!r})  # the double's own needs (numpy, OpenImageIO, aiohttp): this test run's packages
sys.path.insert(0, {repo_root!r})

from tests.doubles.comfyui.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(base_dir=here))
'''


FAKE_TORCH = '''"""A stand-in for torch: what comfyfarm asks of it (the devices it sees: none)."""
__version__ = "0.1.0"


class cuda:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0


class backends:
    mps = None
'''


@dataclass(frozen=True)
class StandIn:
    mirror: Path  # a bare repository, as git clone --mirror makes
    commit: str  # the pinned commit: not the mirror's tip
    torch_pip: str  # COMFYFARM_TORCH_PIP that installs the hand-made torch offline


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=str(cwd),
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> StandIn:
    root = tmp_path_factory.mktemp("standin")
    wheels = root / "wheels"
    make_wheel(wheels, "torch", "0.1.0", {"torch/__init__.py": FAKE_TORCH})
    make_wheel(wheels, "torch", "0.2.0", {"torch/__init__.py": "__version__ = '0.2.0'\n"})  # newer: never taken
    make_wheel(wheels, "torchvision", "0.0.1", {"torchvision/__init__.py": "__version__ = '0.0.1'\n"},
               requires=["torch==0.1.0"])
    make_wheel(wheels, "comfyui_standin_dep", "1.0", {"comfyui_standin_dep.py": ""}, requires=["torch>=0.1"])
    make_wheel(wheels, "requests", "0.0.1", {"requests/__init__.py": ""})  # ComfyUI imports it, unlisted
    source = make_fake_comfyui_dir(root / "source")
    (source / "main.py").write_text(_STANDIN_MAIN.format(packages=TEST_SITE_PACKAGES, repo_root=str(REPO_ROOT)))
    (source / "requirements.txt").write_text(
        f"--no-index\n--find-links {wheels}\ntorch>=0.1\ntorchvision\ntorchaudio  # not in the wheels: left out\n"
        "comfyui-standin-dep>=1.0\n")
    git("init", "-q", cwd=source)
    git("add", "main.py", "comfyui_version.py", "requirements.txt", cwd=source)
    git("commit", "-q", "-m", "stand-in ComfyUI", cwd=source)
    commit = git("rev-parse", "HEAD", cwd=source)
    (source / "main.py").write_text("raise SystemExit('not the pinned commit')\n")
    git("commit", "-q", "-am", "a later commit", cwd=source)
    git("clone", "-q", "--mirror", str(source), str(root / "mirror.git"), cwd=root)
    return StandIn(mirror=root / "mirror.git", commit=commit,
                   torch_pip=f"--no-index --find-links {wheels} torch==0.1.0 torchvision==0.0.1")


def config_text(tmp_path: Path) -> str:
    """Scratch in tmp_path, ports away from 8188 (other ComfyUIs on this machine, other test runs)."""
    return f"scratch_dir: {tmp_path / 'scratch'}\nbase_port: {free_port()}\n"


def environment(tmp_path: Path, standin: StandIn, **extra: str) -> Dict[str, str]:
    """Nothing configured: the user's and studio's config files are an empty one, no COMFYUI_* variables."""
    config = tmp_path / "config.yaml"
    if not config.exists():
        config.write_text(config_text(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "COMFYFARM_"))}
    env.update(COMFYFARM_CONFIG=str(config), COMFYFARM_STUDIO_CONFIG=str(config),
               COMFYFARM_COMFYUI_HOME=str(tmp_path / "home"), COMFYFARM_COMFYUI_SOURCE=str(standin.mirror),
               COMFYFARM_COMFYUI_REF=standin.commit, COMFYFARM_TORCH_PIP=standin.torch_pip)
    env.update(extra)
    return env


def dev_demo(tmp_path: Path, env: Dict[str, str], *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    """``bash install/dev.sh demo --dir <tmp>/demo --quiet ARGS``, as a person runs it."""
    return subprocess.run(["bash", str(INSTALL / "dev.sh"), "demo", "--dir", str(tmp_path / "demo"), "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout_s, env=env, cwd=str(tmp_path))


def setup_script(env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INSTALL / "comfyui_setup.py")], capture_output=True, text=True,
                          timeout=120, env=env)


def frame_names(folder: Path, workflow: str) -> List[str]:
    return sorted(p.name for p in folder.glob(f"{workflow}.*.exr"))


def venv_says(comfyui: Path, code: str) -> str:
    return subprocess.run([str(comfyui / "venv" / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_demo_sets_up_comfyui_from_a_mirror_runs_through_it_then_reuses_it(standin: StandIn, tmp_path: Path) -> None:
    env = environment(tmp_path, standin)
    result = dev_demo(tmp_path, env)
    assert result.returncode == 0, result.stderr
    comfyui = tmp_path / "home" / "ComfyUI"
    assert "comfyfarm: no ComfyUI is configured" in result.stderr
    assert f"comfyfarm: [1/4] fetching ComfyUI {standin.commit} from {standin.mirror} into {comfyui}" in result.stderr
    assert "comfyfarm: [3/4] installing torch (as COMFYFARM_TORCH_PIP says)" in result.stderr
    assert "comfyfarm: [4/4] installing ComfyUI's requirements (torch 0.1.0, torchvision 0.0.1 held)" in result.stderr
    assert f"comfyfarm: ComfyUI 0.3.64 is ready in {comfyui}" in result.stderr
    assert git("rev-parse", "HEAD", cwd=comfyui) == standin.commit
    # torch as the torch step put it (not the newer one requirements.txt would take), no torchaudio
    assert venv_says(comfyui, "import importlib.util as u, torch, comfyui_standin_dep; "
                              "print(torch.__version__, u.find_spec('torchaudio'))") == "0.1.0 None"
    for workflow in DEMO_WORKFLOWS:
        assert frame_names(tmp_path / "demo" / workflow, workflow) == [f"{workflow}.{f}.exr" for f in FRAMES]
    started_by = (comfyui / "started-by.txt").read_text().split()
    assert len(started_by) >= 2
    assert set(started_by) == {str(comfyui / "venv" / "bin" / "python")}

    # again, with the source gone: the setup is reused as it is (no clone, no pip), and the demo runs
    again = dev_demo(tmp_path, dict(env, COMFYFARM_COMFYUI_SOURCE=str(tmp_path / "gone")))
    assert again.returncode == 0, again.stderr
    assert (f"comfyfarm: ComfyUI 0.3.64 ({standin.commit[:8]}) is already set up in {comfyui}: reusing it (remove "
            f"{tmp_path / 'home'} to set it up afresh)") in again.stderr
    assert "[1/4]" not in again.stderr and "[3/4]" not in again.stderr


def test_a_source_that_is_not_there_says_what_to_do_and_the_demo_does_not_run(standin: StandIn,
                                                                                  tmp_path: Path) -> None:
    env = environment(tmp_path, standin, COMFYFARM_COMFYUI_SOURCE=str(tmp_path / "nowhere"))
    result = dev_demo(tmp_path, env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"{FAILED}reaching the ComfyUI source {tmp_path / 'nowhere'} failed (fatal: '{tmp_path / 'nowhere'}' does "
        "not appear to be a git repository): point COMFYFARM_COMFYUI_SOURCE at a reachable copy of "
        "https://github.com/Comfy-Org/ComfyUI (a git URL, or a local mirror made with git clone --mirror), "
        f"{OWN_COMFYUI}")
    assert not (tmp_path / "demo").exists()
    assert not (tmp_path / "home" / "ComfyUI").exists()
    assert not (tmp_path / "home" / "ComfyUI.partial").exists()


def test_a_setup_that_failed_halfway_is_finished_by_the_next_run(standin: StandIn, tmp_path: Path) -> None:
    env = environment(tmp_path, standin)
    for leftover in ("ComfyUI", "ComfyUI.partial"):  # as an interrupted clone leaves them: not to be trusted
        (tmp_path / "home" / leftover).mkdir(parents=True)
        (tmp_path / "home" / leftover / "half.txt").write_text("")
    broken = setup_script(dict(env, COMFYFARM_TORCH_PIP=standin.torch_pip.replace("torch==0.1.0", "torch==9.9")))
    assert broken.returncode == 1
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{FAILED}installing torch failed (exit status 1, see above): check the network, or set "
                           "COMFYFARM_TORCH_PIP to pip arguments that work here")
    assert broken.stdout == ""
    assert git("rev-parse", "HEAD", cwd=tmp_path / "home" / "ComfyUI") == standin.commit
    assert not list((tmp_path / "home").glob("*/half.txt"))
    # the venv is half made: the next run keeps the checkout, makes the venv afresh and finishes
    result = setup_script(env)
    assert result.returncode == 0, result.stderr
    comfyui = tmp_path / "home" / "ComfyUI"
    assert result.stdout == f"{comfyui}\n"
    assert (f"comfyfarm: [1/4] ComfyUI 0.3.64 ({standin.commit[:8]}) is already checked out in {comfyui}"
            in result.stderr)
    assert "comfyfarm: [2/4] creating ComfyUI's venv" in result.stderr
    assert venv_says(comfyui, "import torch, torchvision, comfyui_standin_dep; print(torch.__version__)") == "0.1.0"


def test_git_ignores_the_setup_folder() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".comfyui/ComfyUI/main.py"], cwd=str(REPO_ROOT),
                             timeout=60)
    assert ignored.returncode == 0


@pytest.mark.parametrize("configured", ["COMFYUI_DIR", "comfyui_dir in the config file", "--comfyui-dir"])
def test_a_configured_comfyui_is_always_preferred(configured: str, standin: StandIn, tmp_path: Path) -> None:
    mine = tmp_path / "my-comfyui"  # no main.py: the demo says so about it, which shows it is the one used
    mine.mkdir()
    env = environment(tmp_path, standin)
    args: List[str] = []
    if configured == "COMFYUI_DIR":
        env["COMFYUI_DIR"] = str(mine)
    elif configured == "--comfyui-dir":
        args = ["--comfyui-dir", str(mine)]
    else:
        (tmp_path / "config.yaml").write_text(config_text(tmp_path) + f"comfyui_dir: {mine}\n")
    result = dev_demo(tmp_path, env, *args)
    assert result.returncode == 2
    assert f"--comfyui-dir {mine} is not a ComfyUI folder (no main.py)" in result.stderr.strip().splitlines()[-1]
    assert "no ComfyUI is configured" not in result.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.timeout(5400)
def test_real_comfyui_is_set_up_from_a_mirror_and_runs_the_demo(tmp_path: Path) -> None:
    """Minutes: pip installs torch (several GB for a CUDA build) and ComfyUI's requirements. Passes through
    COMFYFARM_COMFYUI_HOME (to keep the setup between runs), COMFYFARM_COMFYUI_REF, COMFYFARM_COMFYUI_EXCLUDE,
    COMFYFARM_TORCH_PIP and COMFYUI_ARGS."""
    mirror = os.environ.get("COMFYFARM_COMFYUI_MIRROR")
    if not mirror:
        pytest.skip("no ComfyUI mirror: set COMFYFARM_COMFYUI_MIRROR to a clone or mirror of "
                    "https://github.com/Comfy-Org/ComfyUI to set up the real ComfyUI")
    config = tmp_path / "config.yaml"
    config.write_text(config_text(tmp_path))
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_DIR", "COMFYUI_URL", "COMFYUI_PYTHON")}
    env.update(COMFYFARM_CONFIG=str(config), COMFYFARM_STUDIO_CONFIG=str(config), COMFYFARM_COMFYUI_SOURCE=mirror)
    env.setdefault("COMFYFARM_COMFYUI_HOME", str(tmp_path / "home"))
    result = dev_demo(tmp_path, env, timeout_s=5000)
    assert result.returncode == 0, result.stderr[-8000:]
    comfyui = Path(env["COMFYFARM_COMFYUI_HOME"]) / "ComfyUI"
    assert git("rev-parse", "HEAD", cwd=comfyui) == env.get("COMFYFARM_COMFYUI_REF", PINNED_COMMIT)
    assert venv_says(comfyui, "import torch, torchvision; print('ok')") == "ok"
    for workflow in DEMO_WORKFLOWS:
        assert frame_names(tmp_path / "demo" / workflow, workflow) == [f"{workflow}.{f}.exr" for f in FRAMES]
