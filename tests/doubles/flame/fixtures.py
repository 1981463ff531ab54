"""pytest fixtures for the Flame double (loaded through tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from .harness import FlameSession

# The Flame whose Python runs the tests: Flame 2023-2024 ship Python 3.9 (and PySide2), 2025 and later 3.11
# (and PySide6). So the Python 3.9 + PySide2 tier (install/py39_pyside2.sh) emulates a Flame 2024.2.
FIXTURE_VERSION = "2025.2" if sys.version_info >= (3, 11) else "2024.2"


@pytest.fixture
def flame_session(tmp_path: Path) -> Iterator[FlameSession]:
    """An emulated Flame 2025.2 (2024.2 under Python 3.9) with project show_2026 and user ann, rooted in
    tmp_path/flame_root; closed afterwards."""
    session = FlameSession(version=FIXTURE_VERSION, root=tmp_path / "flame_root")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def flame_session_factory(tmp_path: Path) -> Iterator[Callable[..., FlameSession]]:
    """``factory(version="2024.2", **kwargs)`` takes FlameSession's arguments (version: FIXTURE_VERSION); one
    session is open at a time
    (a new one closes the factory's previous one); all are closed at teardown."""
    started: List[FlameSession] = []

    def factory(version: str = FIXTURE_VERSION, **kwargs: Any) -> FlameSession:
        for session in started:
            session.close()
        kwargs.setdefault("root", tmp_path / f"flame_root_{len(started)}")
        session = FlameSession(version=version, **kwargs)
        started.append(session)
        return session

    try:
        yield factory
    finally:
        for session in started:
            session.close()
