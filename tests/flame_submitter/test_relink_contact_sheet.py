"""A finished job's contact sheet in Flame: the relink names it in the import message and puts it into each
imported clip's comment (the comment of the clip's media segment: a PyClip has no comment of its own)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from farm_plugin.completion import add_contact_sheet, build_completion, write_completion
from farm_plugin.jobrecord import JobRecord
from farm_plugin.workflow.package import load_package
from flame_submitter.flame.relink import RelinkWatcher

from .conftest import renders_folder
from .two_passes import job_record, render_passes, two_pass_package


def finished(tmp_path: Path, *, exr_layers: bool = False) -> JobRecord:
    record = job_record(load_package(two_pass_package(tmp_path / "invert")),
                        str(tmp_path / "renders" / "job2" / "sh010_plate.####.exr"), exr_layers=exr_layers)
    render_passes(record)
    return record



def comment_of(clip: Any) -> str:
    return clip.versions[0].tracks[0].segments[0].comment.get_value()


@pytest.mark.parametrize("exr_layers", [False, True], ids=["sequences", "layers"])
def test_the_contact_sheet_is_named_in_the_message_and_each_clips_comment(flame_session, inbox: Path,
                                                                        tmp_path: Path, exr_layers: bool) -> None:
    record = finished(tmp_path, exr_layers=exr_layers)
    completion, line = add_contact_sheet(build_completion(record, deadline_job_id="job2", job_failed=False), record)
    sheet = tmp_path / "renders" / "job2" / "sh010_plate_contact.jpg"
    assert line == f"comfyfarm relink: contact sheet {sheet}" and sheet.is_file()
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    clips = renders_folder(flame_session).clips
    assert len(clips) == (1 if exr_layers else 2)
    assert [comment_of(clip) for clip in clips] == [f"comfyfarm contact sheet: {sheet}"] * len(clips)
    names = ", ".join(clip.name.get_value() for clip in clips)
    layers = ": one multi-channel clip, the passes inverted, original as its layers" if exr_layers else ""
    assert flame_session.console_messages[-1].message == (
        f"comfyfarm: imported {names} (1001-1024) into ComfyUI Renders{layers}; contact sheet {sheet}")


def test_a_record_without_a_sheet_leaves_the_comment_and_the_message_as_they_were(flame_session, inbox: Path,
                                                                                  tmp_path: Path) -> None:
    completion = build_completion(finished(tmp_path), deadline_job_id="job2", job_failed=False)
    write_completion(completion, inbox)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    assert [comment_of(clip) for clip in renders_folder(flame_session).clips] == ["", ""]
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: imported sh010_plate_invert_inverted_v001, sh010_plate_invert_original_v001 (1001-1024) into "
        "ComfyUI Renders")


def test_a_clip_whose_comment_cannot_be_set_is_imported_all_the_same(flame_session, inbox: Path,
                                                                     tmp_path: Path, monkeypatch) -> None:
    completion = dataclasses.replace(build_completion(finished(tmp_path), deadline_job_id="job2", job_failed=False),
                                     contact_sheet="/Volumes/projects/renders/job2/sh010_plate_contact.jpg")
    write_completion(completion, inbox)
    def refuse(self, name, value):  # as Flame may refuse a write to a locked clip's segment
        raise RuntimeError("the clip is locked")

    monkeypatch.setattr(flame_session.flame.PySegment, "_attr_set", refuse)
    RelinkWatcher(flame_session.flame, inbox, user="ann").start()
    flame_session.pump_idle(seconds=1)
    clips = renders_folder(flame_session).clips
    assert len(clips) == 2 and [comment_of(clip) for clip in clips] == ["", ""]  # refused, and imported
    assert flame_session.console_messages[-1].message.endswith(
        "into ComfyUI Renders; contact sheet /Volumes/projects/renders/job2/sh010_plate_contact.jpg")
    assert (inbox / "imported" / "job2.json").is_file()
