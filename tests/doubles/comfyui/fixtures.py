"""pytest fixtures for the ComfyUI test double (loaded through tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

from .harness import FakeComfyUI, start_fake_comfyui


@pytest.fixture
def fake_comfyui(tmp_path: Path) -> Iterator[FakeComfyUI]:
    """A started ComfyUI double rooted in tmp_path/comfyui, stopped afterwards."""
    fake = start_fake_comfyui(tmp_path / "comfyui")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_comfyui_factory(tmp_path: Path) -> Iterator[Callable[..., FakeComfyUI]]:
    """``factory(root=None, *, port=None, faults=None, timeout_s=20.0)`` starts a double (root defaults to
    a fresh folder under tmp_path); every double it started is stopped at teardown."""
    started: List[FakeComfyUI] = []

    def factory(root: Optional[Path] = None, **kwargs) -> FakeComfyUI:
        if root is None:
            root = tmp_path / f"comfyui-{len(started)}"
        fake = start_fake_comfyui(root, **kwargs)
        started.append(fake)
        return fake

    try:
        yield factory
    finally:
        for fake in started:
            fake.stop()
