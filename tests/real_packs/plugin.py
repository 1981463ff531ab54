"""The real-pack tier: a pytest plugin that runs workflow packages through their real custom-node packs.

- ``COMFYFARM_PACKS_COMFYUI_DIR``: a ComfyUI whose ``custom_nodes`` hold the packs the packages name (the
  folder of each is the repository's name, e.g. ``custom_nodes/comfyui-propost`` for
  digitaljohn/comfyui-propost). ``COMFYFARM_PACKS_COMFYUI_PYTHON``: its Python (default: its venv);
  ``COMFYFARM_PACKS_COMFYUI_ARGS``: its arguments (default ``--cpu``). docs/real_packs.md says how to build
  one.

One ComfyUI is started for the session, with comfyfarm's frame nodes (comfyfarm's own lifecycle code), and
each test runs ``comfyfarm run-local --comfyui-url`` against it, the way a user attaches run-local to a
running ComfyUI on the same machine: the full-precision path. Without the variable every test of the tier
is skipped with the reason; without a pack that a package needs, its test is skipped naming the pack.

Model weights: where a pack's model file is missing, the tier makes a stand-in of the right architecture and
shapes (``standin_weights.py``, run in the packs' Python: the pack's own model class, random weights) where
the pack looks for it, with a ``.comfyfarm-standin`` note beside it; a file that is there is never
replaced, so real weights are used where they are installed. Files a pack looks for in the user's home
(rembg's ``~/.u2net``, transparent-background's ``~/.transparent-background``) are looked for in
``<ComfyUI>/comfyfarm-standins/`` instead (``U2NET_HOME``, ``TRANSPARENT_BACKGROUND_FILE_PATH``), so that a
stand-in never lands in a real cache.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
import yaml

from farm_plugin.comfyui.server import ComfyUIServer, ServerConfig, default_python
from farm_plugin.workflow.package import load_package

REPO = Path(__file__).resolve().parents[2]
DIR_ENV = "COMFYFARM_PACKS_COMFYUI_DIR"
PYTHON_ENV = "COMFYFARM_PACKS_COMFYUI_PYTHON"
ARGS_ENV = "COMFYFARM_PACKS_COMFYUI_ARGS"
SKIP_REASON = (f"no ComfyUI with the packs: set {DIR_ENV} (and {PYTHON_ENV}) to run the real-pack tier "
               "(docs/real_packs.md)")
STANDIN_SCRIPT = Path(__file__).resolve().parent / "standin_weights.py"
STANDIN_NOTE = ".comfyfarm-standin"
HOMES = "comfyfarm-standins"  # inside the packs' ComfyUI: the homes of the packs that look in ~


@dataclass(frozen=True)
class Standin:
    """A model file the tier can make: its kind in standin_weights.py and where the pack looks for it."""

    kind: str
    path: str  # relative to the packs' ComfyUI folder


STANDINS: Dict[str, Standin] = {
    "rife49.pth": Standin("rife", "custom_nodes/ComfyUI-Frame-Interpolation/ckpts/rife/rife49.pth"),
    "dsine.pt": Standin("dsine", "custom_nodes/comfyui_controlnet_aux/ckpts/hr16/Diffusion-Edge/dsine.pt"),
    "depth_anything_v2_vitl.pth": Standin(
        "aux_depth_anything_vitl",
        "custom_nodes/comfyui_controlnet_aux/ckpts/depth-anything/Depth-Anything-V2-Large/depth_anything_v2_vitl.pth"),
    "depth_anything_v2_vitl_fp32.safetensors": Standin(
        "kijai_depth_anything_vitl", "models/depthanything/depth_anything_v2_vitl_fp32.safetensors"),
    "ckpt_base.pth": Standin("inspyrenet_base",
                             f"{HOMES}/transparent-background/.transparent-background/ckpt_base.pth"),
    "isnet-general-use.onnx": Standin("rembg_isnet", f"{HOMES}/u2net/isnet-general-use.onnx"),
    "4x-ClearRealityV1.pth": Standin("span_4x", "models/upscale_models/4x-ClearRealityV1.pth"),
}


@dataclass(frozen=True)
class PacksSetup:
    comfyui_dir: Path
    python: str
    args: Tuple[str, ...]

    @property
    def environment(self) -> Dict[str, str]:
        """What the packs' ComfyUI runs with: the homes of the packs that look in the user's home."""
        return {"U2NET_HOME": str(self.comfyui_dir / HOMES / "u2net"),
                "TRANSPARENT_BACKGROUND_FILE_PATH": str(self.comfyui_dir / HOMES / "transparent-background")}

    def missing_packs(self, packs: Sequence[str]) -> List[str]:
        """The packs (owner/name) whose folder is not in custom_nodes."""
        return [pack for pack in packs if not (self.comfyui_dir / "custom_nodes" / pack.split("/")[-1]).is_dir()]

    def weights(self, name: str) -> str:
        """Make the stand-in for the model file ``name`` where the pack looks, unless a file is there; say
        which: ``"stand-in"`` or ``"installed"``."""
        standin = STANDINS[name]
        path = self.comfyui_dir / standin.path
        note = path.with_name(path.name + STANDIN_NOTE)
        if path.is_file():
            return "stand-in" if note.is_file() else "installed"
        result = subprocess.run([self.python, str(STANDIN_SCRIPT), standin.kind, str(path), str(self.comfyui_dir)],
                                capture_output=True, text=True, timeout=900, env={**os.environ, **self.environment})
        if result.returncode != 0:
            raise RuntimeError(f"stand-in {standin.kind} for {name} failed:\n{result.stderr[-4000:]}")
        note.write_text(f"random weights of the right architecture, made by {STANDIN_SCRIPT.name} {standin.kind}; "
                        "delete this file and its model to make it again\n")
        return "stand-in"


def packs_setup() -> Optional[PacksSetup]:
    folder = os.environ.get(DIR_ENV)
    if not folder:
        return None
    comfyui_dir = Path(folder).expanduser().resolve()
    return PacksSetup(comfyui_dir, os.environ.get(PYTHON_ENV) or default_python(comfyui_dir),
                      tuple(shlex.split(os.environ.get(ARGS_ENV, "--cpu"))))


@dataclass
class PacksComfyUI:
    """The session's ComfyUI with the packs and comfyfarm's frame nodes."""

    setup: PacksSetup
    server: ComfyUIServer
    weights_used: Dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def require(self, package: str, *, models: Sequence[str] = ()) -> None:
        """Skip unless the package's packs are installed; make the stand-ins of ``models`` where missing."""
        packs = load_package(REPO / "workflows" / package).requirements.packs
        missing = self.setup.missing_packs(packs)
        if missing:
            pytest.skip(f"{package}: pack(s) not in {self.setup.comfyui_dir / 'custom_nodes'}: {', '.join(missing)} "
                        "(docs/real_packs.md)")
        for name in models:
            self.weights_used[name] = self.setup.weights(name)


@pytest.fixture(scope="session")
def packs_comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacksComfyUI]:
    setup = packs_setup()
    if setup is None:
        pytest.skip(SKIP_REASON)
    server = ComfyUIServer(ServerConfig(
        comfyui_dir=setup.comfyui_dir, python=setup.python, port=18288, extra_args=setup.args,
        extra_env=setup.environment, scratch_dir=tmp_path_factory.mktemp("packs-comfyui"),
        startup_timeout_s=900, port_in_use="next"))
    server.start()
    try:
        yield PacksComfyUI(setup, server)
    finally:
        server.stop()


def run_local_config(folder: Path) -> Path:
    """run-local's configuration for the tier: a scratch folder of the test's own (the ComfyUI is attached)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"scratch_dir": str(folder / "scratch")}))
    return path
