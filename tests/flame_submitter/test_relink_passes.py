"""A several-pass job in the Flame double: each pass comes back as its own clip, named and versioned together,
through the relink watcher and through "Import finished renders" from a downloaded output folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from farm_plugin.completion import write_completion
from farm_plugin.openjd.finish import finish
from farm_plugin.workflow.package import load_package
from flame_submitter.flame.bundle_import import import_folder
from flame_submitter.flame.relink import RelinkWatcher

from .conftest import clip_names, renders_folder
from .two_passes import FRAMES, REPO, finished_job, job_record, render_passes, two_pass_package


def test_each_pass_comes_back_as_its_own_clip_with_one_version_and_the_source_start_frame(
        flame_session, inbox: Path, tmp_path: Path) -> None:
    completion = finished_job(tmp_path)
    assert [p.name for p in completion.passes] == ["inverted", "original"]
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    inverted, original = renders_folder(flame_session).clips
    assert inverted.name.get_value() == "sh010_plate_invert_inverted_v001"
    assert original.name.get_value() == "sh010_plate_invert_original_v001"
    for clip in (inverted, original):
        assert clip.start_frame == 1001 and clip.duration.frame == 24
        assert str(clip.start_time) == "01:00:00+00"
        assert tuple(clip.colour.get_value()) == pytest.approx((0.2, 0.45, 0.75))
    renders = tmp_path / "renders" / "job2"
    assert [i.path for i in flame_session.imports if i.error is None] == [
        f"{renders}/sh010_plate_inverted.[1001-1024].exr", f"{renders}/sh010_plate_original.[1001-1024].exr"]
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: imported sh010_plate_invert_inverted_v001, sh010_plate_invert_original_v001 (1001-1024) into "
        "ComfyUI Renders")
    assert (inbox / "imported" / "job2.json").is_file()


def test_the_next_job_of_the_workflow_takes_the_next_version_free_for_every_pass(flame_session, inbox: Path,
                                                                               tmp_path: Path) -> None:
    write_completion(finished_job(tmp_path, job_id="job1"), inbox)
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.start()
    flame_session.pump_idle(seconds=1)
    write_completion(finished_job(tmp_path, job_id="job2"), inbox)
    flame_session.pump_idle(seconds=10)
    assert clip_names(flame_session) == [
        "sh010_plate_invert_inverted_v001", "sh010_plate_invert_original_v001",
        "sh010_plate_invert_inverted_v002", "sh010_plate_invert_original_v002"]
    # an artist made an original v003 by hand: the next job's passes both skip to v004, never overwriting
    folder = renders_folder(flame_session)
    flame_session.flame.duplicate(folder.clips[3]).name = "sh010_plate_invert_original_v003"
    write_completion(finished_job(tmp_path, job_id="job3"), inbox)
    flame_session.pump_idle(seconds=10)
    assert clip_names(flame_session)[-2:] == ["sh010_plate_invert_inverted_v004", "sh010_plate_invert_original_v004"]


def test_a_pass_with_missing_frames_imports_nothing_and_says_which_pass_and_frames(flame_session, inbox: Path,
                                                                                  tmp_path: Path) -> None:
    completion = finished_job(tmp_path, job_id="holes", rendered={"original": FRAMES[:-2]})
    assert completion.missing_frames == (1023, 1024)
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    assert flame_session.imports == []
    message = flame_session.console_messages[-1]
    assert message.type == "warning"
    assert message.message == ("comfyfarm: sh010_plate · Invert came back incomplete (job holes): 2 frame(s) missing "
                               "(original: 1023-1024); nothing imported: requeue the failed tasks in Deadline Monitor")
    assert (inbox / "imported" / "holes.json").is_file()


def test_when_flame_cannot_import_a_pass_no_pass_stays_and_the_record_waits_for_the_artist(
        flame_session, inbox: Path, tmp_path: Path) -> None:
    write_completion(finished_job(tmp_path, job_id="job1"), inbox)
    original = tmp_path / "renders" / "job1" / "sh010_plate_original.1012.exr"
    hidden = original.rename(original.with_suffix(".moved"))  # gone between the farm's check and the import
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.start()
    flame_session.pump_idle(seconds=30)  # several idle ticks: one message, one try
    assert [i.path.rsplit("/", 1)[1] for i in flame_session.imports] == [
        "sh010_plate_inverted.[1001-1024].exr", "sh010_plate_original.[1001-1024].exr"]
    assert clip_names(flame_session) == []  # the inverted pass's clip was taken out again
    (message,) = [m for m in flame_session.console_messages if m.type == "error"]
    assert message.message == (
        f"comfyfarm: sh010_plate · Invert (job job1): the original pass could not be imported (Flame imported nothing "
        f"from {tmp_path}/renders/job1/sh010_plate_original.####.exr); none of its passes was imported; the record "
        "stays in the inbox: use Import finished renders to try again")
    assert (inbox / "job1.json").is_file()

    hidden.rename(original)  # the artist puts the frame back and asks again
    (outcome,) = watcher.import_all()
    assert outcome.imported == ("sh010_plate_invert_inverted_v001", "sh010_plate_invert_original_v001")
    assert clip_names(flame_session) == list(outcome.imported)
    assert (inbox / "imported" / "job1.json").is_file()


def test_a_one_pass_job_still_comes_back_as_one_clip_without_a_pass_name(flame_session, inbox: Path,
                                                                        tmp_path: Path) -> None:
    package = load_package(shutil.copytree(REPO / "workflows" / "invert", tmp_path / "invert"))
    completion = finished_job(tmp_path, job_id="one", package=package)
    assert [p.name for p in completion.passes] == ["result"]
    assert completion.output_pattern == f"{tmp_path}/renders/one/sh010_plate.####.exr"
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    assert clip_names(flame_session) == ["sh010_plate_invert_v001"]
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: imported sh010_plate_invert_v001 (1001-1024) into ComfyUI Renders")


# -- Import finished renders: a several-pass job's output folder, downloaded ------------------------------------


def finished_bundle_job(tmp_path: Path, **rendered: Any) -> Path:
    """A two-pass job as its bundle's Finish step leaves it: every pass and the record in the output folder."""
    package = load_package(two_pass_package(tmp_path / "invert"))
    out = tmp_path / "renders"
    record = job_record(package, str(out / "sh010_plate.####.exr"))
    job_folder = tmp_path / "jobs" / record.job_id
    record.write(job_folder / "job.json")
    render_passes(record, rendered or None)
    finish(record, job_folder / "job.json", frames=list(FRAMES), job_id="job-" + "c" * 32)
    return out


def test_a_downloaded_several_pass_job_imports_every_pass_from_the_download(flame_session, tmp_path: Path) -> None:
    out = finished_bundle_job(tmp_path)
    assert sorted(p.name for p in out.glob("*.json")) == ["sh010_plate.comfyfarm.json"]
    downloaded = tmp_path / "downloads" / "sh010"
    shutil.copytree(out, downloaded)
    shutil.rmtree(out)  # the farm's folder is not here: only the download is
    names = import_folder(flame_session.flame, downloaded, library="ComfyUI Renders")
    assert names == ["sh010_plate_invert_inverted_v001", "sh010_plate_invert_original_v001"]
    assert [i.path for i in flame_session.imports if i.error is None] == [
        f"{downloaded}/sh010_plate_inverted.[1001-1024].exr", f"{downloaded}/sh010_plate_original.[1001-1024].exr"]
    assert all(c.start_frame == 1001 and c.duration.frame == 24 for c in renders_folder(flame_session).clips)
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: imported sh010_plate_invert_inverted_v001, sh010_plate_invert_original_v001 (1001-1024) into "
        "ComfyUI Renders")


def test_a_pass_left_out_of_the_download_imports_nothing_and_says_which(flame_session, tmp_path: Path) -> None:
    out = finished_bundle_job(tmp_path)
    downloaded = tmp_path / "downloads" / "sh010"
    shutil.copytree(out, downloaded, ignore=shutil.ignore_patterns("sh010_plate_original.102*.exr"))
    shutil.rmtree(out)
    assert import_folder(flame_session.flame, downloaded, library="ComfyUI Renders") == []
    assert flame_session.imports == []
    assert flame_session.console_messages[-1].message == (
        f"comfyfarm: 5 frame(s) of the original pass of sh010_plate · Invert are not in {downloaded} (1020-1024): "
        "download the job's output first (deadline job download-output); nothing imported")


def test_a_bundle_job_with_a_pass_missing_on_the_farm_is_incomplete(flame_session, tmp_path: Path) -> None:
    out = finished_bundle_job(tmp_path, inverted=FRAMES[1:])
    assert import_folder(flame_session.flame, out, library="ComfyUI Renders") == []
    assert flame_session.console_messages[-1].message == (
        f"comfyfarm: sh010_plate · Invert is incomplete (job job-{'c' * 32}): 1 frame(s) missing (inverted: 1001); "
        "nothing imported: rerun the job's failed tasks")
