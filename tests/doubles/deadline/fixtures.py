"""pytest fixtures for the Deadline Web Service double (loaded through tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

from typing import Callable, Iterator, List

import pytest

from .harness import FakeDeadline, start_fake_deadline


@pytest.fixture
def fake_deadline() -> Iterator[FakeDeadline]:
    """A started double without auth; pools none/gpu/cpu, groups none/gpu_24gb/gpu_48gb; closed afterwards."""
    fake = start_fake_deadline(pools=("none", "gpu", "cpu"), groups=("none", "gpu_24gb", "gpu_48gb"))
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def fake_deadline_factory() -> Iterator[Callable[..., FakeDeadline]]:
    """``factory(**kwargs)`` takes start_fake_deadline's keyword arguments (users, pools, groups, workers,
    port, repository_dir); every double it started is closed at teardown."""
    started: List[FakeDeadline] = []

    def factory(**kwargs) -> FakeDeadline:
        fake = start_fake_deadline(**kwargs)
        started.append(fake)
        return fake

    try:
        yield factory
    finally:
        for fake in started:
            fake.close()
