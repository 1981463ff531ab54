"""pytest fixtures for the farm emulator (loaded through tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from .farm import Farm, start_farm


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    """An emulated farm rooted in tmp_path (no Workers yet: ``farm.start_workers(n)``); closed at teardown,
    which stops every Worker and leaves no process behind (a leftover fails the teardown)."""
    emulated = start_farm(tmp_path)
    try:
        yield emulated
    finally:
        emulated.close()
        leftovers = emulated.leftover_processes()
        assert not leftovers, f"the farm left processes behind: {leftovers}"
