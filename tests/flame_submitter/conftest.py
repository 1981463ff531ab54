"""Fixtures shared by the workstation side's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import pytest

from flame_submitter.cli.demo_plate import write_demo_plate


@pytest.fixture
def studio(tmp_path: Path) -> Path:
    """Shared storage: plates, outputs and jobs under one root the farm reaches (a 24-frame plate)."""
    root = tmp_path / "projects"
    write_demo_plate(root / "sh010" / "plate", frame_count=24, width=16, height=16)
    (root / "comfyfarm" / "jobs").mkdir(parents=True)
    return root


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """The completion records' inbox the relink watches."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def renders_folder(session: Any) -> Any:
    """The Flame double's "ComfyUI Renders" library folder of the invert workflow, where the relink imports."""
    library = next(lib for lib in session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    return next(f for f in library.folders if f.name.get_value() == "Invert")


def clip_names(session: Any) -> List[str]:
    return [c.name.get_value() for c in renders_folder(session).clips]
