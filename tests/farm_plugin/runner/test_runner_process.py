"""``python -m farm_plugin.runner``: the chunk runner as the Deadline plugin runs it, a process per task."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import requests

from farm_plugin.runner.progress import parse_progress_line

from .conftest import FRAMES, make_record, write_plate

REPO = Path(__file__).resolve().parents[3]


def runner(record: Path, frames: str, url: str, scratch: Path, *extra: str) -> List[str]:
    return [sys.executable, "-m", "farm_plugin.runner", "--job", str(record), "--frames", frames,
            "--comfyui-url", url, "--scratch", str(scratch), *extra]


def run(*args, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(runner(*args), capture_output=True, text=True, timeout=timeout_s, cwd=REPO)


def messages(stdout: str) -> list:
    return [m for m in (parse_progress_line(line) for line in stdout.splitlines()) if m]


def test_a_chunk_prints_the_protocol_and_exits_0(fake_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr")).write(tmp_path / "job.json")
    result = run(record, "1001-1004", fake_comfyui.url, tmp_path / "s")
    assert result.returncode == 0, result.stderr
    found = messages(result.stdout)
    # each frame reported once, in the order its writer thread finished it
    assert sorted(m.frame for m in found if m.kind == "frame") == [1001, 1002, 1003, 1004]
    assert [m.percent for m in found if m.kind == "progress"][-1] == 100.0
    assert found[-1].text == "4 frame(s) written, 0 already there"
    again = run(record, "1001-1004", fake_comfyui.url, tmp_path / "s")
    assert [(m.frame, m.skipped) for m in messages(again.stdout) if m.kind == "frame"] == [
        (f, True) for f in (1001, 1002, 1003, 1004)]


def test_mapped_patterns_override_the_record(fake_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    record = make_record("/Volumes/projects/plate.####.exr", "/Volumes/projects/out/inv.####.exr").write(
        tmp_path / "job.json")
    result = run(record, "1001-1002", fake_comfyui.url, tmp_path / "s", "--source-pattern", plate,
                 "--output-pattern", str(tmp_path / "mapped" / "inv.####.exr"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "mapped").iterdir()) == ["inv.1001.exr", "inv.1002.exr"]


def test_a_node_error_exits_1_with_comfyuis_words(fake_comfyui, tmp_path: Path) -> None:
    fake_comfyui.set_faults(fail_node={"class_type": "ImageInvert", "exception_type": "RuntimeError",
                                       "message": "expected 4 channels, got 3"})
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr")).write(tmp_path / "job.json")
    result = run(record, "1001", fake_comfyui.url, tmp_path / "s")
    assert result.returncode == 1
    assert messages(result.stdout)[-1].text == ("ComfyUI node 2 (ImageInvert) failed: RuntimeError: expected 4 "
                                                "channels, got 3 (frames 1001)")


def test_a_lost_comfyui_exits_3(fake_comfyui, tmp_path: Path) -> None:
    fake_comfyui.set_faults(die_on_prompt=2)
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr")).write(tmp_path / "job.json")
    result = run(record, "1001-1004", fake_comfyui.url, tmp_path / "s")
    assert result.returncode == 3, result.stdout + result.stderr
    assert messages(result.stdout)[-1].text.startswith("ComfyUI stopped during frames")


def test_a_bad_record_exits_2(fake_comfyui, tmp_path: Path) -> None:
    result = run(tmp_path / "missing.json", "1001", fake_comfyui.url, tmp_path / "s")
    assert result.returncode == 2
    assert "no job record there: is the shared storage mounted on this machine?" in messages(result.stdout)[-1].text


def test_sigterm_withdraws_the_chunk_and_leaves_no_partial_file(fake_comfyui, tmp_path: Path) -> None:
    fake_comfyui.set_faults(node_delay_s=0.2)
    plate = write_plate(tmp_path / "plate")
    out = tmp_path / "out"
    record = make_record(plate, str(out / "inv.####.exr")).write(tmp_path / "job.json")
    stale = out / ".inv.1008.exr.deadbeef.tmp.exr"  # left by an earlier attempt that was killed mid-write
    out.mkdir()
    stale.write_bytes(b"half a frame")
    process = subprocess.Popen(runner(record, "1001-1008", fake_comfyui.url, tmp_path / "s"), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (out / "inv.1002.exr").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, _stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    names = sorted(p.name for p in out.iterdir())
    assert "inv.1001.exr" in names and len(names) < len(FRAMES)
    assert not any(name.startswith(".") for name in names)  # the stale temp file is gone too
    assert requests.get(f"{fake_comfyui.url}/queue", timeout=5).json()["queue_pending"] == []
