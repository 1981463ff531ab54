"""pytest fixtures for the Flame double (loaded through tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from .harness import FlameSession


@pytest.fixture
def flame_session(tmp_path: Path) -> Iterator[FlameSession]:
    """An emulated Flame 2025.2 (project show_2026, user ann), rooted in tmp_path/flame_root; closed afterwards."""
    session = FlameSession(version="2025.2", root=tmp_path / "flame_root")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def flame_session_factory(tmp_path: Path) -> Iterator[Callable[..., FlameSession]]:
    """``factory(version="2024.2", **kwargs)`` takes FlameSession's arguments; one session is open at a time
    (a new one closes the factory's previous one); all are closed at teardown."""
    started: List[FlameSession] = []

    def factory(version: str = "2025.2", **kwargs: Any) -> FlameSession:
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
