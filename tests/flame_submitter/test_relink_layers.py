"""A several-pass job that wrote its passes as the layers of one EXR per frame (``exr_layers``), in the Flame double:
the completion record lists every pass at the one pattern, and the render comes back ONCE, as one multi-channel
clip named like a one-pass job's (Flame 2022 and later import a multi-channel OpenEXR as one multi-channel clip:
Autodesk's "About Multi-channel Clips"), through the relink watcher and through "Import finished renders" from a
downloaded output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from farm_plugin.completion import write_completion
from farm_plugin.frames.image_io import probe
from farm_plugin.openjd.finish import finish
from farm_plugin.workflow.package import load_package
from flame_submitter.flame.bundle_import import import_folder
from flame_submitter.flame.relink import RelinkWatcher

from .conftest import clip_names, renders_folder
from .two_passes import FRAMES, finished_job, job_record, render_passes, two_pass_package

LAYERED = "one multi-channel clip, the passes inverted, original as its layers"





def test_a_layered_job_comes_back_once_as_one_clip_named_like_a_one_pass_job(flame_session, inbox: Path,
                                                                            tmp_path: Path) -> None:
    completion = finished_job(tmp_path, exr_layers=True)
    pattern = f"{tmp_path}/renders/job2/sh010_plate.####.exr"
    assert [(p.name, p.output_pattern, p.channels) for p in completion.passes] == [
        ("inverted", pattern, 3), ("original", pattern, 3)]
    assert probe(tmp_path / "renders" / "job2" / "sh010_plate.1001.exr").channel_names == (
        "R", "G", "B", "original.R", "original.G", "original.B")
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    (clip,) = renders_folder(flame_session).clips
    assert clip.name.get_value() == "sh010_plate_invert_v001"
    assert clip.start_frame == 1001 and clip.duration.frame == 24
    assert str(clip.start_time) == "01:00:00+00"
    assert [i.path for i in flame_session.imports] == [f"{tmp_path}/renders/job2/sh010_plate.[1001-1024].exr"]
    assert flame_session.console_messages[-1].message == (
        f"comfyfarm: imported sh010_plate_invert_v001 (1001-1024) into ComfyUI Renders: {LAYERED}")
    assert (inbox / "imported" / "job2.json").is_file()


def test_layered_and_separate_jobs_of_one_workflow_count_their_versions_on_together(flame_session, inbox: Path,
                                                                                    tmp_path: Path) -> None:
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.start()
    for job_id, layers in (("job1", False), ("job2", True), ("job3", False)):
        write_completion(finished_job(tmp_path, job_id=job_id, exr_layers=layers), inbox)
        flame_session.pump_idle(seconds=10)
    assert clip_names(flame_session) == [
        "sh010_plate_invert_inverted_v001", "sh010_plate_invert_original_v001",
        "sh010_plate_invert_v002",
        "sh010_plate_invert_inverted_v003", "sh010_plate_invert_original_v003"]


def test_a_layered_job_missing_frames_names_them_once(flame_session, inbox: Path, tmp_path: Path) -> None:
    completion = finished_job(tmp_path, job_id="holes", exr_layers=True, rendered={"all": FRAMES[:-2]})
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    assert flame_session.imports == []
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: sh010_plate · Invert came back incomplete (job holes): 2 frame(s) missing (1023-1024); nothing "
        "imported: requeue the failed tasks in Deadline Monitor")


def test_when_flame_cannot_import_the_layered_file_the_record_waits(flame_session, inbox: Path,
                                                                     tmp_path: Path) -> None:
    write_completion(finished_job(tmp_path, job_id="job1", exr_layers=True), inbox)
    frame = tmp_path / "renders" / "job1" / "sh010_plate.1012.exr"
    hidden = frame.rename(frame.with_suffix(".moved"))  # gone between the farm's check and the import
    watcher = RelinkWatcher(flame_session.flame, inbox, user="ann")
    watcher.start()
    flame_session.pump_idle(seconds=30)
    assert len(flame_session.imports) == 1 and clip_names(flame_session) == []
    (message,) = [m for m in flame_session.console_messages if m.type == "error"]
    assert message.message == (
        f"comfyfarm: sh010_plate · Invert (job job1): the render could not be imported (Flame imported nothing from "
        f"{tmp_path}/renders/job1/sh010_plate.####.exr); the record stays in the inbox: use Import finished renders "
        "to try again")
    hidden.rename(frame)
    (outcome,) = watcher.import_all()
    assert outcome.imported == ("sh010_plate_invert_v001",)


# -- Import finished renders: a layered job's output folder, downloaded ------------------------------------------


def finished_layered_bundle_job(tmp_path: Path) -> Path:
    """A two-pass job with exr_layers as its bundle's Finish step leaves it: the one sequence and the record."""
    package = load_package(two_pass_package(tmp_path / "invert"))
    out = tmp_path / "renders"
    record = job_record(package, str(out / "sh010_plate.####.exr"), exr_layers=True)
    job_folder = tmp_path / "jobs" / record.job_id
    record.write(job_folder / "job.json")
    render_passes(record)
    finish(record, job_folder / "job.json", frames=list(FRAMES), job_id="job-" + "c" * 32)
    return out


def test_a_downloaded_layered_job_imports_its_one_sequence_once(flame_session, tmp_path: Path) -> None:
    out = finished_layered_bundle_job(tmp_path)
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".json") == ["sh010_plate.comfyfarm.json"]
    assert len(list(out.glob("*.exr"))) == 24
    downloaded = tmp_path / "downloads" / "sh010"
    shutil.copytree(out, downloaded)
    shutil.rmtree(out)
    names = import_folder(flame_session.flame, downloaded, library="ComfyUI Renders")
    assert names == ["sh010_plate_invert_v001"]
    assert [i.path for i in flame_session.imports] == [f"{downloaded}/sh010_plate.[1001-1024].exr"]
    assert flame_session.console_messages[-1].message == (
        f"comfyfarm: imported sh010_plate_invert_v001 (1001-1024) into ComfyUI Renders: {LAYERED}")


def test_frames_left_out_of_a_layered_download_are_named_once(flame_session, tmp_path: Path) -> None:
    out = finished_layered_bundle_job(tmp_path)
    downloaded = tmp_path / "downloads" / "sh010"
    shutil.copytree(out, downloaded, ignore=shutil.ignore_patterns("sh010_plate.102*.exr"))
    shutil.rmtree(out)
    assert import_folder(flame_session.flame, downloaded, library="ComfyUI Renders") == []
    assert flame_session.imports == []
    assert flame_session.console_messages[-1].message == (
        f"comfyfarm: 5 frame(s) of sh010_plate · Invert are not in {downloaded} (1020-1024): download the job's "
        "output first (deadline job download-output); nothing imported")
