"""Atomic writes: the target changes only when the whole new content is there; a failure leaves the old
file and no temporary file; the temporary name is hidden and matches no frame pattern."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from farm_plugin.atomic import atomic_path, temporary_beside, write_bytes_atomic, write_text_atomic
from farm_plugin.frames.pattern import FramePattern

REPO = Path(__file__).resolve().parents[2]


def names(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_text_replaces_the_target_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    target.write_text("old\n", encoding="utf-8")
    assert write_text_atomic(target, "new ✓\n") is True
    assert target.read_text(encoding="utf-8") == "new ✓\n"
    assert names(tmp_path) == ["job.json"]


def test_the_target_changes_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "frame.1001.png"
    target.write_bytes(b"old")
    with atomic_path(target) as temp:
        temp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # a reader still sees the old file while the new one is written
        assert temp.parent == tmp_path
    assert target.read_bytes() == b"new"
    assert names(tmp_path) == ["frame.1001.png"]


def test_a_failing_block_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "frame.1001.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="the writer failed"), atomic_path(target) as temp:
        temp.write_bytes(b"half a fr")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == ["frame.1001.png"]


def test_a_failing_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        write_text_atomic(target, "{}")
    assert names(tmp_path) == ["state.json"] and target.is_dir()


def test_a_full_disk_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    """A real short write: the file size limit (as a full disk or a quota) stops the write half-way."""
    target = tmp_path / "manifest.json"
    target.write_text("old", encoding="utf-8")
    script = (
        "import resource, signal, sys\n"
        "from farm_plugin.atomic import write_bytes_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    write_bytes_atomic({str(target)!r}, b'x' * 65536)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert target.read_text(encoding="utf-8") == "old"
    assert names(tmp_path) == ["manifest.json"]


def test_the_temporary_name_is_hidden_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sh010.1004.exr"
    temp = temporary_beside(target)
    assert temp.parent == tmp_path
    assert temp.name.startswith(".sh010.1004.exr.") and temp.name.endswith(".tmp")
    assert temporary_beside(target) != temp  # each writer its own


def test_a_temporary_frame_matches_no_frame_pattern(tmp_path: Path) -> None:
    """OpenImageIO picks the format by the extension, so the temporary frame keeps it at the very end."""
    target = tmp_path / "sh010.1004.exr"
    with atomic_path(target, suffix=".exr") as temp:
        temp.write_bytes(b"exr")
        assert temp.name.startswith(".sh010.1004.exr.") and temp.name.endswith(".tmp.exr")
        assert FramePattern.parse(str(tmp_path / "sh010.####.exr")).existing_frames() == []
        assert FramePattern.parse(str(tmp_path / "####.exr")).existing_frames() == []
    assert FramePattern.parse(str(tmp_path / "sh010.####.exr")).existing_frames() == [1004]


def test_the_mode_is_owner_only_unless_asked(tmp_path: Path) -> None:
    private, shared, script = tmp_path / "job.json", tmp_path / "manifest.json", tmp_path / "hook.py"
    write_text_atomic(private, "{}")
    write_text_atomic(shared, "{}", mode=0o644)
    write_bytes_atomic(script, b"print()\n", mode=0o755)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (private, shared, script)] == [0o600, 0o644, 0o755]


def test_fsync_flushes_the_file_before_it_takes_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "config.yaml"
    synced: List[bool] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(not target.exists())  # flushed while the target is not yet there
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    write_text_atomic(target, "a: 1\n", fsync=True)
    assert synced == [True] and target.read_text(encoding="utf-8") == "a: 1\n"


def test_overwrite_false_keeps_the_first_writers_file(tmp_path: Path) -> None:
    target = tmp_path / "job-1.json"
    assert write_text_atomic(target, "first", overwrite=False) is True
    assert write_text_atomic(target, "second", overwrite=False) is False
    assert target.read_text(encoding="utf-8") == "first"
    assert names(tmp_path) == ["job-1.json"]


def test_overwrite_false_on_a_share_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(_source: object, _target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "job-1.json"
    assert write_text_atomic(target, "first", overwrite=False) is True
    assert write_text_atomic(target, "second", overwrite=False) is False
    assert target.read_text(encoding="utf-8") == "first"
    assert names(tmp_path) == ["job-1.json"]
