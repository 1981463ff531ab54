"""Fixtures shared by the workstation side's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_submitter.cli.demo_plate import write_demo_plate


@pytest.fixture
def studio(tmp_path: Path) -> Path:
    """Shared storage: plates, outputs and jobs under one root the farm reaches (a 24-frame plate)."""
    root = tmp_path / "projects"
    write_demo_plate(root / "sh010" / "plate", frame_count=24, width=16, height=16)
    (root / "comfyfarm" / "jobs").mkdir(parents=True)
    return root
