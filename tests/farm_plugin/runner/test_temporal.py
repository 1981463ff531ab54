"""Sequence workflows across chunk edges, against the ComfyUI double's running-mean and RIFE nodes.

A chunked run is compared with an unchunked one (one window over the whole clip): away from the blend
zones they are identical; inside them each frame is exactly the documented cross-fade of the two
windows' results, so it stays within ``(1 - w) * |before - unchunked|`` (plus one 8-bit code) of the
unchunked frame.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from farm_plugin.comfyui.server import ExternalServer
from farm_plugin.frames.colour import ColourPolicy, from_working, to_working
from farm_plugin.frames.framelist import chunk_frames
from farm_plugin.frames.image_io import probe, read_pixels, write_frame
from farm_plugin.jobrecord import JobRecord
from farm_plugin.runner.chunk import ChunkRunner
from farm_plugin.runner.joins import fade_weight, finish_joins
from farm_plugin.runner.output import OutputWriter
from farm_plugin.runner.units import plan_units
from tests.doubles.comfyui.harness import comfyfarm_nodes_args

from .temporal import REPO, codes, make_mean_package, noise_plate, package_record, smooth_plate, write_png_plate

CLIP = list(range(1001, 1049))  # 48 frames


def run_chunks(record: JobRecord, url: str, chunks: List[List[int]], root: Path) -> Dict[int, object]:
    """Each chunk by its own runner (as on separate Workers), sharing the job's join folder."""
    reports = {}
    for index, chunk in enumerate(chunks):
        runner = ChunkRunner(record, ExternalServer(url), scratch_dir=root / f"worker-{index}",
                             join_dir=root / "job" / "joins")
        reports[chunk[0]] = runner.run(chunk)
    return reports


def unchunked(tmp_path: Path, url: str, plate: str, radius: int) -> Dict[int, np.ndarray]:
    package = make_mean_package(tmp_path / "whole-pkg", context=len(CLIP), overlap=0, radius=radius, blend="none")
    record = package_record(package, plate, str(tmp_path / "whole" / "m.####.png"), CLIP)
    assert len(plan_units(CLIP, "sequence", record.workflow.sequence, CLIP)) == 1  # one window, no edge
    run_chunks(record, url, [CLIP], tmp_path / "whole-run")
    return {f: codes(tmp_path / "whole" / f"m.{f}.png") for f in CLIP}


def window_mean(plate_codes: Dict[int, np.ndarray], window: List[int], frame: int, radius: int) -> np.ndarray:
    """What the double's running mean gives for ``frame`` inside ``window`` (8-bit, SaveImage truncates)."""
    i = window.index(frame)
    lo, hi = max(0, i - radius), min(len(window) - 1, i + radius)
    stack = np.stack([plate_codes[f] for f in window[lo:hi + 1]]).astype(np.float64) / 255.0
    return np.floor(255.0 * stack.mean(axis=0) + 1e-6)


@pytest.mark.parametrize(("chunk", "overlap", "context", "radius"), [
    (16, 4, 24, 4),
    (16, 4, 24, 2),
    (12, 3, 18, 3),
    (8, 2, 12, 2),
    (10, 4, 24, 4),  # windows of 16 frames inside chunks of 10 would not fit: 10 + 8 handles per chunk
])
def test_chunked_equals_unchunked_away_from_the_fades_and_is_the_stated_crossfade_inside(
        fake_comfyui, tmp_path: Path, chunk: int, overlap: int, context: int, radius: int) -> None:
    plate = noise_plate(tmp_path / "plate", CLIP)
    reference = unchunked(tmp_path, fake_comfyui.url, plate, radius)
    package = make_mean_package(tmp_path / "pkg", context=context, overlap=overlap, radius=radius)
    record = package_record(package, plate, str(tmp_path / "out" / "m.####.png"), CLIP)
    chunks = chunk_frames(CLIP, chunk)
    run_chunks(record, fake_comfyui.url, chunks[::-1], tmp_path / "run")  # the farm runs them in any order
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"m.{f}.png" for f in CLIP]
    assert not (tmp_path / "run" / "job" / "joins").exists() or not any((tmp_path / "run" / "job" / "joins").iterdir())

    plate_codes = {f: codes(plate.replace("####", str(f))) for f in CLIP}
    units = [u for c in chunks for u in plan_units(c, "sequence", record.workflow.sequence, CLIP)]
    fades = {}
    for before, after in zip(units, units[1:]):
        for offset, frame in enumerate(after.fade_in):
            fades[frame] = (list(before.window), fade_weight(offset, overlap))
    assert len(fades) == overlap * (len(units) - 1)
    for frame in CLIP:
        result = codes(tmp_path / "out" / f"m.{frame}.png")
        if frame not in fades:
            assert np.array_equal(result, reference[frame]), f"frame {frame} differs outside the fades"
            continue
        window, w = fades[frame]
        before = window_mean(plate_codes, window, frame, radius)  # the earlier window's own result
        expected = (1.0 - w) * before + w * reference[frame]  # the later window sees all it needs: = reference
        assert np.abs(result - expected).max() <= 1.5, frame
        # the stated tolerance against the unchunked run
        assert (np.abs(result - reference[frame]) <= (1.0 - w) * np.abs(before - reference[frame]) + 1.5).all()


def test_a_crossfaded_float_sequence_keeps_values_above_1_and_its_alpha(fake_comfyui_factory, tmp_path: Path
                                                                         ) -> None:
    """Full precision across windows (a double with comfyfarm's frame nodes): the parts at an edge are float
    frame files, the fade is computed in the working space, and what is written is that, nothing clipped,
    with the plate's alpha."""
    fake = fake_comfyui_factory(extra_args=comfyfarm_nodes_args(tmp_path / "extra_model_paths.yaml"))
    frames, overlap, radius = CLIP[:24], 2, 1
    folder = tmp_path / "plate"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for frame in frames:
        pixels = rng.uniform(-0.25, 4.0, size=(6, 8, 4)).astype(np.float32)
        pixels[..., 3] = rng.uniform(0.0, 1.0, size=(6, 8))
        write_frame(folder / f"plate.{frame}.exr", pixels)
    plate = str(folder / "plate.####.exr")
    package = make_mean_package(tmp_path / "pkg", context=12, overlap=overlap, radius=radius)
    record = package_record(package, plate, str(tmp_path / "out" / "m.####.exr"), frames)
    chunks = chunk_frames(frames, 8)
    run_chunks(record, fake.url, chunks, tmp_path / "run")

    policy = ColourPolicy.default_for(probe(plate.replace("####", str(frames[0]))))
    working = {f: to_working(read_pixels(plate.replace("####", str(f))), policy) for f in frames}
    units = [u for c in chunks for u in plan_units(c, "sequence", record.workflow.sequence, frames)]

    def mean_in(window: List[int], frame: int) -> np.ndarray:
        i = window.index(frame)
        lo, hi = max(0, i - radius), min(len(window) - 1, i + radius)
        return np.stack([working[f][..., :3] for f in window[lo:hi + 1]]).astype(np.float64).mean(axis=0)

    own = {f: u for u in units for f in u.outputs}
    fades = {f: (before, fade_weight(k, overlap)) for before, after in zip(units, units[1:])
             for k, f in enumerate(after.fade_in)}
    assert len(fades) == overlap * (len(units) - 1) > 0
    for frame in frames:
        written = read_pixels(tmp_path / "out" / f"m.{frame}.exr")
        assert written.shape[2] == 4, frame
        assert np.allclose(written[..., 3], working[frame][..., 3], atol=1e-3)  # the plate's alpha, carried
        result = mean_in(list(own[frame].window), frame)
        if frame in fades:
            before, w = fades[frame]
            result = (1 - w) * mean_in(list(before.window), frame) + w * result
        expected = from_working(np.concatenate([result.astype(np.float32), working[frame][..., 3:]], axis=2), policy)
        assert np.allclose(written[..., :3], expected[..., :3], rtol=2e-3, atol=2e-3), frame
    assert max(read_pixels(tmp_path / "out" / f"m.{f}.exr")[..., :3].max() for f in frames) > 1.5


def second_difference(frames: Dict[int, np.ndarray]) -> np.ndarray:
    """|x(f-1) - 2 x(f) + x(f+1)| per frame (max over pixels): a step between two windows stands out."""
    keys = sorted(frames)
    return np.array([np.abs(frames[a] - 2 * frames[b] + frames[c]).max()
                     for a, b, c in zip(keys, keys[1:], keys[2:])], dtype=np.float64)


def test_chunks_of_16_with_overlap_4_show_no_seam(fake_comfyui, tmp_path: Path) -> None:
    plate = smooth_plate(tmp_path / "plate", CLIP)
    reference = unchunked(tmp_path, fake_comfyui.url, plate, radius=4)
    results = {}
    for name, overlap, blend in (("faded", 4, "crossfade"), ("naive", 0, "none")):
        package = make_mean_package(tmp_path / f"pkg-{name}", context=16 + 2 * overlap, overlap=overlap, radius=4,
                                    blend=blend)
        record = package_record(package, plate, str(tmp_path / name / "m.####.png"), CLIP, job_id=name)
        run_chunks(record, fake_comfyui.url, chunk_frames(CLIP, 16), tmp_path / f"run-{name}")
        results[name] = {f: codes(tmp_path / name / f"m.{f}.png") for f in CLIP}
    smooth = second_difference(reference).max()
    faded, naive = second_difference(results["faded"]), second_difference(results["naive"])
    # Cut naively (no handles), the windows' ends average fewer frames: a visible step at 1017 and 1033.
    assert naive.max() > smooth + 6
    # With 4 handle frames and the cross-fade the sequence is as smooth as the unchunked one.
    assert faded.max() <= smooth + 2, (faded.max(), smooth)
    worst = {name: max(np.abs(frames[f] - reference[f]).max() for f in CLIP) for name, frames in results.items()}
    print(f"second difference: unchunked {smooth}, faded {faded.max()}, naive {naive.max()}; "
          f"largest difference from unchunked: {worst}")
    assert worst["faded"] < worst["naive"] / 2


def test_a_fade_waits_for_the_chunk_before_and_a_rerun_makes_a_lost_frame_again(fake_comfyui, tmp_path: Path) -> None:
    plate = noise_plate(tmp_path / "plate", CLIP[:32])
    package = make_mean_package(tmp_path / "pkg", context=24, overlap=4, radius=3)
    record = package_record(package, plate, str(tmp_path / "out" / "m.####.png"), CLIP[:32])
    joins = tmp_path / "job" / "joins"
    first, second = CLIP[:16], CLIP[16:32]

    def runner(name: str) -> ChunkRunner:
        return ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / name, join_dir=joins)

    report = runner("w2").run(second)  # the later chunk first: its first 4 frames wait
    assert report.pending == [1017, 1018, 1019, 1020]
    assert sorted(report.written) == list(range(1021, 1033))
    assert not (tmp_path / "out" / "m.1017.png").exists()
    assert sorted(p.name for p in (joins / "1017").iterdir()) == [f"{f}.after.png" for f in range(1017, 1021)]
    report = runner("w1").run(first)
    assert sorted(report.written) == list(range(1001, 1021))  # its own 16, and the 4 it could now fade in
    assert not joins.exists() or not any(joins.iterdir())
    kept = codes(tmp_path / "out" / "m.1018.png")

    # An artist deletes a faded frame; its chunk is requeued, then (once it waits) the chunk before.
    (tmp_path / "out" / "m.1018.png").unlink()
    prompts = fake_comfyui.stats()["prompts_executed"]
    report = runner("w3").run(second)
    assert report.pending == [1018] and report.written == [] and len(report.skipped) == 15
    report = runner("w4").run(first)
    assert report.written == [1018] and len(report.skipped) == 16
    assert fake_comfyui.stats()["prompts_executed"] == prompts + 2  # one window each, nothing else redone
    assert np.array_equal(codes(tmp_path / "out" / "m.1018.png"), kept)


def test_both_parts_left_by_chunks_that_finished_together_are_joined_at_the_end(fake_comfyui, tmp_path: Path) -> None:
    plate = noise_plate(tmp_path / "plate", CLIP[:32])
    package = make_mean_package(tmp_path / "pkg", context=24, overlap=4, radius=3)
    normal = package_record(package, plate, str(tmp_path / "normal" / "m.####.png"), CLIP[:32])
    run_chunks(normal, fake_comfyui.url, [CLIP[:16], CLIP[16:32]], tmp_path / "normal-run")
    record = package_record(package, plate, str(tmp_path / "out" / "m.####.png"), CLIP[:32])
    joins = tmp_path / "job" / "joins"
    # Replay a race: both Workers stored their part at the edge and each missed the other's.
    ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "w2", join_dir=joins).run(CLIP[16:32])
    elsewhere = tmp_path / "elsewhere"
    ChunkRunner(record, ExternalServer(fake_comfyui.url), scratch_dir=tmp_path / "w1",
                join_dir=elsewhere).run(CLIP[:16])
    for part in (elsewhere / "1017").iterdir():
        shutil.copy(part, joins / "1017" / part.name)
    assert not any((tmp_path / "out" / f"m.{f}.png").exists() for f in range(1017, 1021))

    assert finish_joins(OutputWriter(record), joins) == [1017, 1018, 1019, 1020]
    assert not joins.exists()  # every output is there: the join folder goes
    for frame in CLIP[:32]:
        assert np.array_equal(codes(tmp_path / "out" / f"m.{frame}.png"), codes(tmp_path / "normal" / f"m.{frame}.png"))


def interpolation_package(tmp_path: Path, multiplier: int, context: int) -> Path:
    """The shipped RIFE package, at another multiplier and context (ratio = multiplier)."""
    folder = tmp_path / f"rife{multiplier}x"
    shutil.copytree(REPO / "workflows" / "rife_frame_interpolation", folder)
    graph = (folder / "workflow.json").read_text().replace('"multiplier": 2', f'"multiplier": {multiplier}')
    (folder / "workflow.json").write_text(graph)
    manifest = (folder / "workflow.yaml").read_text()
    manifest = manifest.replace("context: 24", f"context: {context}").replace("ratio: 2 ", f"ratio: {multiplier} ")
    (folder / "workflow.yaml").write_text(manifest)
    return folder


@pytest.mark.parametrize(("multiplier", "chunk", "context"), [(2, 7, 24), (2, 5, 3), (4, 6, 4)])
def test_interpolation_numbers_every_in_between_once_across_chunks(fake_comfyui, tmp_path: Path, multiplier: int,
                                                                   chunk: int, context: int) -> None:
    frames = list(range(1001, 1021))
    plate = write_png_plate(tmp_path / "plate", frames, lambda f, g: (g + 0.05 * (f - 1000)) % 1.0)
    record = package_record(interpolation_package(tmp_path, multiplier, context), plate,
                            str(tmp_path / "out" / "i.####.png"), frames)
    reports = run_chunks(record, fake_comfyui.url, chunk_frames(frames, chunk), tmp_path / "run")
    last = 1001 + (len(frames) - 1) * multiplier
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"i.{f}.png" for f in range(1001, last + 1)]
    written = [f for report in reports.values() for f in report.written]
    assert sorted(written) == list(range(1001, last + 1))  # each once
    for index, source in enumerate(frames):
        out = 1001 + index * multiplier
        assert np.array_equal(codes(tmp_path / "out" / f"i.{out}.png"), codes(plate.replace("####", str(source))))
        if source == frames[-1]:
            break
        a = codes(plate.replace("####", str(source))).astype(np.float64)
        b = codes(plate.replace("####", str(source + 1))).astype(np.float64)
        for k in range(1, multiplier):
            mix = (1 - k / multiplier) * a + (k / multiplier) * b
            assert np.abs(codes(tmp_path / "out" / f"i.{out + k}.png") - mix).max() <= 1.0, (out + k)


def test_real_comfyui_windows_with_handles_and_crossfade_equal_per_frame(real_comfyui, tmp_path: Path) -> None:
    """Core ComfyUI has no temporal node, but an invert over windows with handles and cross-fades must
    give exactly the per-frame inverts: both windows agree on every faded frame."""
    frames = CLIP[:20]
    plate = noise_plate(tmp_path / "plate", frames)
    folder = tmp_path / "sequence_invert_faded"
    shutil.copytree(REPO / "workflows" / "sequence_invert", folder)
    manifest = (folder / "workflow.yaml").read_text()
    (folder / "workflow.yaml").write_text(manifest.replace("context: 24", "context: 8").replace(
        "overlap: 0", "overlap: 2").replace("blend: none", "blend: crossfade"))
    windows = package_record(folder, plate, str(tmp_path / "seq" / "i.####.png"), frames)
    single = package_record(REPO / "workflows" / "invert", plate, str(tmp_path / "one" / "i.####.png"), frames)
    run_chunks(windows, real_comfyui.url, chunk_frames(frames, 7)[::-1], tmp_path / "run")
    # the same path as the windows: the joins are what is compared
    ChunkRunner(single, real_comfyui.server, scratch_dir=tmp_path / "single").run(frames)
    for frame in frames:
        assert np.array_equal(codes(tmp_path / "seq" / f"i.{frame}.png"), codes(tmp_path / "one" / f"i.{frame}.png"))
