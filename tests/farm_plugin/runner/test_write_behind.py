"""Writing behind (run-local): a chunk returns once ComfyUI has computed it, its last frames are written while
ComfyUI starts on the next chunk, and ``close()`` waits for them. Against the ComfyUI double with comfyfarm's
frame nodes, with writes made slow (or failing) where a test needs them to be."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest

from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.frames.errors import PlateError
from farm_plugin.frames.image_io import read_pixels
from farm_plugin.runner.chunk import ChunkRunner
from farm_plugin.runner.local import LocalRun
from farm_plugin.runner.output import OutputWriter
from farm_plugin.runner.progress import ProgressSink
from tests.doubles.comfyui.harness import comfyfarm_nodes_args

from .conftest import FRAMES, make_record, write_plate

FIRST, SECOND = FRAMES[:4], FRAMES[4:]


class Timeline(ProgressSink):
    """When each unit started in ComfyUI (its status line) and when each frame was counted."""

    def __init__(self) -> None:
        self.started: Dict[str, float] = {}
        self.done: List[int] = []

    def status(self, text: str) -> None:
        self.started.setdefault(text.split(" (")[0], time.monotonic())

    def frame_done(self, frame: int, *, skipped: bool = False) -> None:
        self.done.append(frame)


@pytest.fixture
def fake(fake_comfyui_factory, tmp_path: Path):
    return fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "nodes.yaml"))


def slow_writes(monkeypatch: pytest.MonkeyPatch, seconds: float,
                fail: Optional[int] = None) -> Dict[int, float]:
    """Every frame write takes ``seconds`` longer; the write of frame ``fail`` fails as a full disk would.
    Returns when each write finished, by output frame."""
    finished: Dict[int, float] = {}
    real = OutputWriter.write_pixels

    def write_pixels(self: OutputWriter, frame: int, *args, **kwargs):
        time.sleep(seconds)
        try:
            if frame == fail:
                raise PlateError(f"cannot write 'inv.{frame}.exr': No space left on device", path="inv.exr")
            return real(self, frame, *args, **kwargs)
        finally:
            finished[frame] = time.monotonic()

    monkeypatch.setattr(OutputWriter, "write_pixels", write_pixels)
    return finished


def frame_files(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_comfyui_starts_the_next_chunk_while_the_last_frames_are_written(fake, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_plate(tmp_path / "plate")
    out = tmp_path / "out"
    finished = slow_writes(monkeypatch, 0.4)
    timeline = Timeline()
    runner = ChunkRunner(make_record(plate, str(out / "inv.####.exr")), ExternalServer(fake.url),
                         scratch_dir=tmp_path / "scratch", progress=timeline, write_behind=True)
    first = runner.run(FIRST)
    assert len(first.written) < len(FIRST)  # returned with frames still being written
    runner.run(SECOND)
    runner.close()
    assert timeline.started[f"frame {SECOND[0]}"] < finished[FIRST[-1]]  # ComfyUI did not wait for the write
    assert frame_files(out) == [f"inv.{frame}.exr" for frame in FRAMES]
    assert sorted(timeline.done) == FRAMES and sorted(runner.totals.written) == FRAMES  # each frame once
    assert sorted(first.written) == FIRST  # counted in the report of the chunk it belongs to
    assert runner.late_failures == []
    for frame in FRAMES:  # the frames written behind are whole
        plate_pixels = read_pixels(plate.replace("####", str(frame)))
        assert read_pixels(out / f"inv.{frame}.exr").shape == plate_pixels.shape
    assert frame_files(tmp_path / "scratch") == []  # each chunk's scratch removed once its writes were done


def test_a_frame_whose_write_behind_fails_is_reported_and_the_next_chunk_is_not_touched(
        fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_plate(tmp_path / "plate")
    out = tmp_path / "out"
    slow_writes(monkeypatch, 0.3, fail=FIRST[-1])
    runner = ChunkRunner(make_record(plate, str(out / "inv.####.exr")), ExternalServer(fake.url),
                         scratch_dir=tmp_path / "scratch", write_behind=True)
    runner.run(FIRST)
    second = runner.run(SECOND)
    runner.close()
    assert second.written == SECOND
    assert runner.late_failures == [f"frame {FIRST[-1]}: cannot write the result: cannot write "
                                    f"'inv.{FIRST[-1]}.exr': No space left on device"]
    assert frame_files(out) == [f"inv.{frame}.exr" for frame in FRAMES if frame != FIRST[-1]]
    assert frame_files(tmp_path / "scratch") == []


def test_run_local_reports_a_failed_write_behind_and_a_rerun_writes_only_that_frame(
        fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    slow_writes(monkeypatch, 0.2, fail=FIRST[-1])

    def local_run() -> LocalRun:
        return LocalRun(record, [ExternalServer(fake.url)], scratch_dir=tmp_path / "scratch",
                        progress_for=lambda _index: ProgressSink(), restart_limit=0, idle_timeout_s=60)

    report = local_run().run([FIRST, SECOND])
    assert sorted(report.written) == [frame for frame in FRAMES if frame != FIRST[-1]]
    assert report.failures == [f"frame {FIRST[-1]}: cannot write the result: cannot write "
                               f"'inv.{FIRST[-1]}.exr': No space left on device"]
    monkeypatch.undo()
    again = local_run().run([FIRST, SECOND])
    assert (again.written, again.failures) == ([FIRST[-1]], [])
    assert sorted(again.skipped) == [frame for frame in FRAMES if frame != FIRST[-1]]


def test_a_sequence_workflow_waits_for_its_writes(fake, tmp_path: Path) -> None:
    """Its next windows ask which frames around them are written: no writing behind."""
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"), workflow="sequence_invert")
    runner = ChunkRunner(record, ExternalServer(fake.url), scratch_dir=tmp_path / "scratch", write_behind=True)
    assert not runner.write_behind
    report = runner.run(FIRST)
    assert report.written == FIRST and frame_files(tmp_path / "out") == [f"inv.{frame}.exr" for frame in FIRST]


def test_cancel_while_writing_behind_leaves_whole_frames_only(fake, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_plate(tmp_path / "plate")
    out = tmp_path / "out"
    slow_writes(monkeypatch, 0.3)
    cancel = threading.Event()
    runner = ChunkRunner(make_record(plate, str(out / "inv.####.exr")), ExternalServer(fake.url),
                         scratch_dir=tmp_path / "scratch", cancel=cancel, write_behind=True)
    runner.run(FIRST)
    cancel.set()
    runner.close()
    written = frame_files(out)
    assert not any(name.startswith(".") for name in written)  # no temporary file left
    assert written == [f"inv.{frame}.exr" for frame in sorted(runner.totals.written)]
    for name in written:
        assert np.isfinite(read_pixels(out / name)).all()
    assert frame_files(tmp_path / "scratch") == []


def record_staging(monkeypatch: pytest.MonkeyPatch) -> List[Tuple[str, float]]:
    """(unit label, time) for each unit the runner stages."""
    staged: List[Tuple[str, float]] = []
    real = ChunkRunner._prepare

    def prepare(self: ChunkRunner, client, unit, *args):
        staged.append((unit.label, time.monotonic()))
        return real(self, client, unit, *args)

    monkeypatch.setattr(ChunkRunner, "_prepare", prepare)
    return staged


def test_the_next_chunks_first_frame_is_staged_while_this_chunk_runs(fake, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_plate(tmp_path / "plate")
    out = tmp_path / "out"
    staged = record_staging(monkeypatch)
    runner = ChunkRunner(make_record(plate, str(out / "inv.####.exr")), ExternalServer(fake.url),
                         scratch_dir=tmp_path / "scratch", write_behind=True)
    claims: List[int] = []

    def claim_next():
        claims.append(len(staged))
        return SECOND

    runner.run(FIRST, claim_next=claim_next)
    returned = time.monotonic()
    assert claims == [len(FIRST)]  # asked once, when every unit of this chunk was staged
    assert [label for label, _ in staged] == [str(frame) for frame in FIRST] + [str(SECOND[0])]
    assert staged[-1][1] < returned
    runner.run(SECOND)
    runner.close()
    assert [label for label, _ in staged] == [str(frame) for frame in FRAMES]  # staged once each
    assert frame_files(out) == [f"inv.{frame}.exr" for frame in FRAMES]
    assert frame_files(tmp_path / "scratch") == []


@pytest.mark.parametrize("then", ["another chunk", "nothing"])
def test_a_unit_staged_ahead_for_a_chunk_not_run_next_is_removed(fake, tmp_path: Path, then: str) -> None:
    plate = write_plate(tmp_path / "plate")
    out = tmp_path / "out"
    runner = ChunkRunner(make_record(plate, str(out / "inv.####.exr")), ExternalServer(fake.url),
                         scratch_dir=tmp_path / "scratch", write_behind=True)
    runner.run(FIRST[:2], claim_next=lambda: SECOND)
    if then == "another chunk":
        runner.run(FIRST[2:])
    runner.close()
    written = FIRST if then == "another chunk" else FIRST[:2]
    assert frame_files(out) == [f"inv.{frame}.exr" for frame in written]
    assert frame_files(tmp_path / "scratch") == []


def test_run_local_runs_every_chunk_once_with_chunks_claimed_ahead(fake_comfyui_factory, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    plate = write_plate(tmp_path / "plate")
    staged = record_staging(monkeypatch)
    servers = [ExternalServer(fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / f"n{i}.yaml")).url)
               for i in range(2)]
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    run = LocalRun(record, servers, scratch_dir=tmp_path / "scratch", progress_for=lambda _index: ProgressSink(),
                   restart_limit=0, idle_timeout_s=60)
    report = run.run([FRAMES[i:i + 2] for i in range(0, len(FRAMES), 2)])
    assert sorted(report.written) == FRAMES and report.failures == []
    assert sorted(label for label, _ in staged) == sorted(str(frame) for frame in FRAMES)
    assert frame_files(tmp_path / "out") == [f"inv.{frame}.exr" for frame in FRAMES]
    assert [p for p in (tmp_path / "scratch").rglob("*") if not p.is_dir()] == []  # no frame file left
