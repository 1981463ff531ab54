"""Colour tables kept between processes (farm_plugin/frames/colour.py, curves.py): a farm task's process reads the
tables an earlier one built instead of building them again (about half a second of CPU each), and only after they
agree with OpenColorIO's conversion; a damaged file, or tables of another conversion under the name, are rebuilt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from farm_plugin.frames import colour, curves
from farm_plugin.frames.colour import CACHE_ENV, SCENE_LINEAR_REC709, SRGB_ENCODED_REC709, tables_folder

REPO = Path(__file__).resolve().parents[3]
FORWARD = (colour.DEFAULT_CONFIG, SCENE_LINEAR_REC709, SRGB_ENCODED_REC709)
BACKWARD = (colour.DEFAULT_CONFIG, SRGB_ENCODED_REC709, SCENE_LINEAR_REC709)


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder for kept tables, and no tables in this process's memory (as in a new process)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    saved = dict(colour._curves)
    colour._curves.clear()
    yield tmp_path / "cache" / "colour"
    colour._curves.clear()
    colour._curves.update(saved)


def frame() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.uniform(-0.5, 12.0, (8, 1024, 3)).astype(np.float32)


def test_the_folder_follows_the_environment(tmp_path: Path) -> None:
    assert tables_folder({CACHE_ENV: str(tmp_path)}) == tmp_path / "colour"
    assert tables_folder({CACHE_ENV: ""}) is None  # keep none
    assert tables_folder({"XDG_CACHE_HOME": "/var/cache/ann"}) == Path("/var/cache/ann/comfyfarm/colour")
    assert tables_folder({}) == Path("~/.cache/comfyfarm/colour").expanduser()


def test_tables_built_once_are_read_back_by_the_next_process_and_give_the_same_pixels(
        kept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = colour._curve(*FORWARD)
    assert built is not None
    (file,) = kept.iterdir()
    assert file.suffix == ".npz" and file.stat().st_size > 8_000_000
    colour._curves.clear()  # a new process: nothing in memory

    def no_build(_exact):  # type: ignore[no-untyped-def]
        raise AssertionError("the kept tables should have been used")

    monkeypatch.setattr(colour, "build_curve", no_build)
    read = colour._curve(*FORWARD)
    assert read is not None
    pixels = frame()
    np.testing.assert_array_equal(read.apply(pixels), built.apply(pixels))
    halves = pixels.astype(np.float16)
    np.testing.assert_array_equal(read.apply(halves), colour._convert_exact(halves.astype(np.float32), *FORWARD))


def test_each_conversion_has_its_own_file(kept: Path) -> None:
    colour._curve(*FORWARD)
    colour._curve(*BACKWARD)
    assert len(list(kept.iterdir())) == 2


def test_a_damaged_file_or_another_conversions_tables_are_rebuilt(kept: Path) -> None:
    colour._curve(*FORWARD)
    colour._curve(*BACKWARD)
    forward, backward = (colour._tables_path(kept, *key) for key in (FORWARD, BACKWARD))
    good = forward.read_bytes()
    forward.write_bytes(good[: len(good) // 2])  # a copy cut short
    colour._curves.clear()
    assert colour._curve(*FORWARD) is not None
    assert forward.read_bytes() == good  # rebuilt and kept again
    forward.write_bytes(backward.read_bytes())  # tables that are not this conversion's
    colour._curves.clear()
    wrong = curves.load_curve(forward, colour._curves.get(FORWARD) or _exact(FORWARD))
    assert wrong is None
    rebuilt = colour._curve(*FORWARD)
    assert rebuilt is not None
    pixels = frame()
    assert curves._relative_error(rebuilt.apply(pixels), _exact(FORWARD)(pixels)) <= curves.TOLERANCE


def _exact(key):  # type: ignore[no-untyped-def]
    config, source, target = key
    return lambda rgb: colour._convert_exact(np.ascontiguousarray(rgb, dtype=np.float32), config, source, target)


def test_no_folder_or_an_unwritable_one_still_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = dict(colour._curves)
    try:
        monkeypatch.setenv(CACHE_ENV, "")
        colour._curves.clear()
        assert colour._curve(*FORWARD) is not None
        blocked = tmp_path / "file"
        blocked.write_text("not a folder")
        monkeypatch.setenv(CACHE_ENV, str(blocked))
        colour._curves.clear()
        assert colour._curve(*FORWARD) is not None
    finally:
        colour._curves.clear()
        colour._curves.update(saved)


def test_a_second_process_reads_the_tables_the_first_one_kept(tmp_path: Path) -> None:
    """What a farm task's process does before its first table conversion: the first builds, the next reads."""
    code = ("import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(message)s'); "
            "from farm_plugin.frames import colour; "
            "colour._curve('ocio://default', 'Linear Rec.709 (sRGB)', 'sRGB Encoded Rec.709 (sRGB)')")
    env = {"PATH": "/usr/bin:/bin", CACHE_ENV: str(tmp_path / "cache"), "HOME": str(tmp_path)}

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=120, check=True)
        return next(line for line in done.stdout.splitlines() if line.startswith("colour "))

    line = "colour Linear Rec.709 (sRGB) -> sRGB Encoded Rec.709 (sRGB): "
    assert run() == line + "tabulated"
    assert run() == line + "tables kept from an earlier process"
