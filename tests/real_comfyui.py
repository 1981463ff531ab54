"""The real-ComfyUI test tier: a pytest plugin with fixtures for a real server, when one is configured.

- ``COMFYUI_URL``: attach to a running ComfyUI.
- ``COMFYUI_DIR`` (with ``COMFYUI_PYTHON``, default: its venv; ``COMFYUI_ARGS``, default ``--cpu``): start
  one for the test session with comfyfarm's own lifecycle code. The environment passes through, so a
  ``PYTHONPATH`` the real ComfyUI needs (e.g. a torchvision placeholder on a CPU machine) can be set.

Without either, tests that need a real ComfyUI are skipped with the reason.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

from farm_plugin.comfyui.server import ComfyUIServer, ExternalServer, ServerConfig

REAL_SKIP_REASON = "no real ComfyUI: set COMFYUI_URL, or COMFYUI_DIR (and COMFYUI_PYTHON) to run this tier"


@dataclass
class RealComfyUI:
    url: str
    server: ComfyUIServer | ExternalServer
    output_dir: Optional[Path]  # known when this session started it

    @property
    def managed(self) -> bool:
        return isinstance(self.server, ComfyUIServer)


def real_comfyui_config(scratch: Path, *, port: int = 18188) -> Optional[ServerConfig]:
    """A ServerConfig for COMFYUI_DIR, or None when it is not set."""
    comfyui_dir = os.environ.get("COMFYUI_DIR")
    if not comfyui_dir:
        return None
    return ServerConfig(
        comfyui_dir=Path(comfyui_dir),
        python=os.environ.get("COMFYUI_PYTHON") or None,
        port=port,
        extra_args=tuple(shlex.split(os.environ.get("COMFYUI_ARGS", "--cpu"))),
        scratch_dir=scratch,
        startup_timeout_s=120,
        port_in_use="next",
    )


@pytest.fixture(scope="session")
def real_comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealComfyUI]:
    url = os.environ.get("COMFYUI_URL")
    if url:
        server = ExternalServer(url.rstrip("/"), 30)
        server.start()
        yield RealComfyUI(server.url, server, None)
        return
    config = real_comfyui_config(tmp_path_factory.mktemp("real-comfyui"))
    if config is None:
        pytest.skip(REAL_SKIP_REASON)
    managed = ComfyUIServer(config)
    managed.start()
    try:
        yield RealComfyUI(managed.url, managed, managed.scratch_dir / "output")
    finally:
        managed.stop()
