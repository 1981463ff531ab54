"""The chunk runner on real files, against the ComfyUI double (and a real ComfyUI when configured)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.frames.image_io import probe, read_pixels
from farm_plugin.runner.chunk import ChunkCancelled, ChunkFailed, ChunkRunner
from farm_plugin.runner.progress import LineProgress, ProgressSink, parse_progress_line
from tests.doubles.comfyui.harness import comfyfarm_nodes_args

from .conftest import (
    FRAMES,
    expected_invert,
    expected_invert_float,
    make_record,
    plate_pixels,
    srgb_encode,
    write_plate,
)

HALF_TOLERANCE = 2e-3  # half-float storage and OCIO's sRGB curve against the exact formula


class Recorder(ProgressSink):
    def __init__(self) -> None:
        self.done: list = []
        self.skipped: list = []
        self.statuses: list = []

    def frame_done(self, frame: int, *, skipped: bool = False) -> None:
        (self.skipped if skipped else self.done).append(frame)

    def status(self, text: str) -> None:
        self.statuses.append(text)


def outputs(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


def test_invert_writes_every_frame_under_its_source_number(fake_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    stream = io.StringIO()
    runner = ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "scratch",
                         progress=LineProgress(stream))
    report = runner.run(FRAMES)
    assert report.written == FRAMES and report.skipped == []
    assert outputs(tmp_path / "out") == [f"inv.{f}.exr" for f in FRAMES]
    for index, frame in enumerate(FRAMES):
        path = tmp_path / "out" / f"inv.{frame}.exr"
        info = probe(path)
        assert (info.format, info.pixel_type, info.width, info.height) == ("openexr", "half", 24, 16)
        assert info.timecode == f"01:00:00:{index:02d}" and info.fps == 24.0
        expected = expected_invert(plate_pixels(plate, frame))
        assert np.abs(read_pixels(path)[..., :3] - expected).max() < HALF_TOLERANCE
    lines = [parse_progress_line(line) for line in stream.getvalue().splitlines()]
    # each frame reported once, as its writer finishes it (two writer threads: in either order)
    assert sorted(m.frame for m in lines if m and m.kind == "frame") == FRAMES
    assert [m.percent for m in lines if m and m.kind == "progress"][-1] == 100.0
    assert not list((tmp_path / "scratch").iterdir())  # staging and downloads cleaned up


def test_a_rerun_writes_nothing_and_a_broken_output_is_redone(fake_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run(FRAMES)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    broken = tmp_path / "out" / "inv.1004.exr"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated by a crash of some other tool
    recorder = Recorder()
    prompts_before = fake_comfyui.stats()["prompts_executed"]
    report = ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s",
                         progress=recorder).run(FRAMES)
    assert report.written == [1004]
    assert report.skipped == [f for f in FRAMES if f != 1004] == recorder.skipped
    assert fake_comfyui.stats()["prompts_executed"] == prompts_before + 1
    for path in (tmp_path / "out").iterdir():
        if path.name != "inv.1004.exr":
            assert path.stat().st_mtime_ns == mtimes[path.name]
    expected = expected_invert(plate_pixels(plate, 1004))
    assert np.abs(read_pixels(broken)[..., :3] - expected).max() < HALF_TOLERANCE


def test_blur_parameters_reach_comfyui(fake_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate", frames=[1001], size=(32, 32))
    soft = make_record(plate, str(tmp_path / "soft" / "b.####.exr"), "blur", [1001], radius="1", sigma="0.5")
    wide = make_record(plate, str(tmp_path / "wide" / "b.####.exr"), "blur", [1001], radius="8", sigma="4")
    for record in (soft, wide):
        ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run([1001])
    source = plate_pixels(plate, 1001)
    soft_px = read_pixels(tmp_path / "soft" / "b.1001.exr")
    wide_px = read_pixels(tmp_path / "wide" / "b.1001.exr")
    assert np.std(wide_px) < np.std(soft_px) < np.std(source)  # more blur, less detail


def test_a_failing_node_fails_the_chunk_with_comfyuis_words(fake_comfyui, tmp_path: Path) -> None:
    fake_comfyui.set_faults(fail_node={"class_type": "ImageInvert", "exception_type": "RuntimeError",
                                       "message": "expected 4 channels, got 3"})
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    with pytest.raises(ChunkFailed) as caught:
        ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run(FRAMES[:2])
    assert str(caught.value) == ("ComfyUI node 2 (ImageInvert) failed: RuntimeError: expected 4 channels, got 3 "
                                 "(frames 1001, 1002)")
    assert caught.value.frames == [1001, 1002]
    assert not (tmp_path / "out").exists() or outputs(tmp_path / "out") == []


def test_a_killed_comfyui_is_restarted_and_every_frame_written_once(managed_fake, tmp_path: Path) -> None:
    server = managed_fake(runtime_faults={"die_on_prompt": 3})
    first_pid = server.process.pid
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    recorder = Recorder()
    runner = ChunkRunner(record, server, scratch_dir=tmp_path / "s", progress=recorder, restart_limit=5)
    report = runner.run(FRAMES)
    assert sorted(recorder.done) == FRAMES and len(recorder.done) == len(set(recorder.done))
    assert sorted(report.written) == FRAMES
    assert report.restarts >= 1 and server.process.pid != first_pid
    assert any(s == "ComfyUI stopped: restarting it (1/5)" for s in recorder.statuses)
    assert outputs(tmp_path / "out") == [f"inv.{f}.exr" for f in FRAMES]


def test_when_restarts_run_out_the_chunk_fails_and_a_rerun_finishes_only_the_missing(
    managed_fake, tmp_path: Path
) -> None:
    server = managed_fake(runtime_faults={"die_on_prompt": 4, "node_delay_s": 0.2})
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    with pytest.raises(ChunkFailed) as caught:
        ChunkRunner(record, server, scratch_dir=tmp_path / "s", restart_limit=0).run(FRAMES)
    message = str(caught.value)
    assert message.startswith("ComfyUI stopped during frames 1004-1008 and was restarted 0 time(s), the limit: "
                              "see its log; rerun to finish the missing frames")
    assert outputs(tmp_path / "out") == [f"inv.{f}.exr" for f in FRAMES[:3]]
    healthy = managed_fake()
    report = ChunkRunner(record, healthy, scratch_dir=tmp_path / "s").run(FRAMES)
    assert report.skipped == FRAMES[:3] and report.written == FRAMES[3:]


def test_cancel_interrupts_comfyui_and_keeps_finished_frames(fake_comfyui, tmp_path: Path) -> None:
    fake_comfyui.set_faults(node_delay_s=0.3)
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    cancel = threading.Event()

    class CancelAfterTwo(ProgressSink):
        def frame_done(self, frame: int, *, skipped: bool = False) -> None:
            if frame == FRAMES[1]:
                cancel.set()

    runner = ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s",
                         progress=CancelAfterTwo(), cancel=cancel)
    with pytest.raises(ChunkCancelled):
        runner.run(FRAMES)
    names = outputs(tmp_path / "out")
    assert names[:2] == ["inv.1001.exr", "inv.1002.exr"] and len(names) < len(FRAMES)
    assert all(not n.startswith(".") for n in names)  # no temporary file left behind
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").iterdir())
    client = ExternalServer(fake_comfyui.url).client()
    assert client.queue()["queue_pending"] == []


def test_sequence_window_gives_the_same_frames_as_per_frame(fake_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    per_frame = make_record(plate, str(tmp_path / "a" / "x.####.exr"))
    window = make_record(plate, str(tmp_path / "b" / "x.####.exr"), "sequence_invert")
    ChunkRunner(per_frame, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run(FRAMES)
    prompts = fake_comfyui.stats()["prompts_executed"]
    report = ChunkRunner(window, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run(FRAMES)
    assert report.written == FRAMES
    assert fake_comfyui.stats()["prompts_executed"] == prompts + 1  # one prompt for the whole window
    for frame in FRAMES:
        a = read_pixels(tmp_path / "a" / f"x.{frame}.exr")
        b = read_pixels(tmp_path / "b" / f"x.{frame}.exr")
        assert np.array_equal(a, b), frame
        assert probe(tmp_path / "b" / f"x.{frame}.exr").timecode == probe(tmp_path / "a" / f"x.{frame}.exr").timecode


def test_real_comfyui_inverts_a_chunk(real_comfyui, tmp_path: Path) -> None:
    plate = write_plate(tmp_path / "plate")
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"))
    report = ChunkRunner(record, real_comfyui.server, scratch_dir=tmp_path / "s").run(FRAMES)
    assert report.written == FRAMES
    # full precision where comfyfarm started the ComfyUI (its frame nodes loaded), 8-bit on one attached by URL
    expect = expected_invert_float if real_comfyui.managed else expected_invert
    for frame in FRAMES:
        expected = expect(plate_pixels(plate, frame))
        assert np.abs(read_pixels(tmp_path / "out" / f"inv.{frame}.exr")[..., :3] - expected).max() < HALF_TOLERANCE
    window = make_record(plate, str(tmp_path / "seq" / "inv.####.exr"), "sequence_invert")
    assert ChunkRunner(window, real_comfyui.server, scratch_dir=tmp_path / "s").run(FRAMES).written == FRAMES
    for frame in FRAMES:  # a window takes the same path as single frames
        expected = expect(plate_pixels(plate, frame))
        assert np.abs(read_pixels(tmp_path / "seq" / f"inv.{frame}.exr")[..., :3] - expected).max() < HALF_TOLERANCE


def test_the_double_blurs_exactly_as_real_comfyui(real_comfyui, fake_comfyui_factory, tmp_path: Path) -> None:
    """Through the same path as the real one: 8-bit, where both are equal to the bit; full precision (the double's
    numpy blur is within 2e-6 of torch's conv2d), where the half-float outputs may differ by one step."""
    plate = write_plate(tmp_path / "plate", frames=[1001, 1002], size=(40, 24))
    args = comfyfarm_nodes_args(tmp_path / "paths.yaml") if real_comfyui.managed else []
    fake = fake_comfyui_factory(extra_args=args)
    for name, server in (("real", real_comfyui.server), ("double", ExternalServer(fake.url))):
        record = make_record(plate, str(tmp_path / name / "b.####.exr"), "blur", [1001, 1002], radius="4", sigma="2")
        ChunkRunner(record, server, scratch_dir=tmp_path / "s").run([1001, 1002])
    for frame in (1001, 1002):
        real = read_pixels(tmp_path / "real" / f"b.{frame}.exr")
        double = read_pixels(tmp_path / "double" / f"b.{frame}.exr")
        if real_comfyui.managed:
            assert np.allclose(real, double, rtol=2 ** -10, atol=2 ** -14), np.abs(real - double).max()
        else:
            assert np.array_equal(real, double), np.abs(real - double).max()


def test_a_do_nothing_workflow_returns_the_plate_within_8_bit_quantisation(fake_comfyui, tmp_path: Path) -> None:
    """LoadImage -> SaveImage: staging to 8-bit sRGB and back is the only loss, in the sRGB domain."""
    package = tmp_path / "passthrough"
    package.mkdir()
    (package / "workflow.json").write_text(
        '{"1": {"class_type": "LoadImage", "inputs": {"image": "f.png"}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "p"}}}')
    (package / "workflow.yaml").write_text(
        'title: Passthrough\ninput: {node: "1", input: image}\noutput: {node: "2", input: filename_prefix}\n')
    plate = write_plate(tmp_path / "plate", frames=[1001, 1002])
    record = make_record(plate, str(tmp_path / "out" / "p.####.exr"), str(package), [1001, 1002])
    ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s").run([1001, 1002])
    for frame in (1001, 1002):
        source = srgb_encode(plate_pixels(plate, frame))
        result = srgb_encode(read_pixels(tmp_path / "out" / f"p.{frame}.exr")[..., :3])
        assert np.abs(result - source).max() <= 0.5 / 255 + 2e-3  # + half-float storage of the result


def test_a_hung_comfyui_is_restarted_after_the_idle_timeout(managed_fake, tmp_path: Path) -> None:
    server = managed_fake(runtime_faults={"node_delay_s": 30})  # this process hangs; a restarted one does not
    plate = write_plate(tmp_path / "plate", frames=[1001, 1002])
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"), frames=[1001, 1002])
    recorder = Recorder()
    report = ChunkRunner(record, server, scratch_dir=tmp_path / "s", progress=recorder, idle_timeout_s=1,
                         restart_limit=1).run([1001, 1002])
    assert report.written == [1001, 1002] and report.restarts == 1
    assert "ComfyUI hung: restarting it (1/1)" in recorder.statuses


def test_a_hung_comfyui_past_the_restart_limit_fails_with_the_timeout(fake_comfyui, tmp_path: Path) -> None:
    fake_comfyui.set_faults(node_delay_s=30)
    plate = write_plate(tmp_path / "plate", frames=[1001])
    record = make_record(plate, str(tmp_path / "out" / "inv.####.exr"), frames=[1001])
    with pytest.raises(ChunkFailed) as caught:
        ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "s", idle_timeout_s=1,
                    restart_limit=0).run([1001])
    assert str(caught.value).startswith(
        "ComfyUI hung (timed out after 1 s waiting for 1 ComfyUI prompt(s): no message for 1 s (ComfyUI hung, or "
        "another connection took over this client id)) during frames 1001 and was restarted 0 time(s), the limit")
    client = ExternalServer(fake_comfyui.url).client()
    deadline = time.monotonic() + 5  # the interrupt lands at the running node's next check
    while client.queue()["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.queue() == {"queue_running": [], "queue_pending": []}
