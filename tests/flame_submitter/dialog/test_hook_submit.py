"""Issue 7's Done-when: in the Flame double, two selected clips → Submit to Deadline… → two jobs, no blocking."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from farm_plugin.jobrecord import read_job_record
from tests.flame_submitter.dialog.conftest import click_and_wait_for_done

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


def studio_config(tmp_path: Path, url: str, monkeypatch) -> Path:
    """The configuration Flame reads: the Web Service at ``url``, shared storage under the returned folder."""
    shared = tmp_path / "projects"
    (shared / "comfyfarm").mkdir(parents=True)
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_url": url, "deadline_user": "ann",
                                      "jobs_root": str(shared / "comfyfarm"), "shared_roots": [str(shared)]}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return shared


def test_two_selected_clips_become_two_jobs_without_blocking(qapp, flame_session, fake_deadline, tmp_path: Path,
                                                             monkeypatch) -> None:
    shared = studio_config(tmp_path, fake_deadline.url, monkeypatch)
    lib = flame_session.workspace.create_library("Plates")
    a = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1013), source_dir=shared / "plates")
    b = flame_session.add_clip(lib, "sh020_plate", frames=range(1001, 1009), source_dir=shared / "plates")
    hooks = flame_session.load_hooks(HOOK)
    assert not hooks.touched_flame_at_import
    assert not hooks.action("Submit to Deadline...", selection=(lib,)).visible  # libraries are not frames
    dialog = hooks.run_action("Submit to Deadline...", selection=(a, b))
    assert dialog.windowTitle() == "ComfyUI Farm: Submit to Deadline"
    dialog._select_tree_item("blur")
    qapp.processEvents()
    assert dialog.submit_button.isEnabled(), dialog.problem_label.text()
    assert click_and_wait_for_done(dialog, flame_session, qapp) < 2  # the Web Service is called off Flame's main thread
    sent = fake_deadline.render_submissions()
    assert [s["JobInfo"]["Name"] for s in sent] == ["sh010_plate - Gaussian blur", "sh020_plate - Gaussian blur"]
    assert [s["JobInfo"]["Frames"] for s in sent] == ["1001-1012", "1001-1008"]
    record = read_job_record(sent[0]["PluginInfo"]["JobRecord"])
    assert record.workflow.name == "blur" and record.relink.project == "show_2026"
    dialog.close()


def test_timeline_segments_become_jobs_over_their_source_frames(qapp, flame_session, fake_deadline, tmp_path: Path,
                                                                monkeypatch) -> None:
    shared = studio_config(tmp_path, fake_deadline.url, monkeypatch)
    lib = flame_session.workspace.create_library("Edit")
    on_disk = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1049), source_dir=shared / "plates",
                                     timecode="01:00:00:00")
    in_flame = flame_session.add_clip(lib, "sh020_plate", frames=range(2001, 2025), timecode="02:00:00:00")
    cut = flame_session.add_sequence(lib, "cut_v1", [(on_disk, 10, 12), (in_flame, 4, 8)])
    flame_session.select_segments(*cut.versions[0].tracks[0].segments)
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Submit to Deadline...", menu="timeline")
    assert [dialog.clip_table.topLevelItem(i).text(0) for i in range(2)] == ["sh010_plate", "sh020_plate"]
    dialog._select_tree_item("blur")
    qapp.processEvents()
    assert dialog.submit_button.isEnabled(), dialog.problem_label.text()
    click_and_wait_for_done(dialog, flame_session, qapp)
    sent = fake_deadline.render_submissions()
    assert [s["JobInfo"]["Frames"] for s in sent] == ["1011-1022", "2005-2012"]  # the segments' source frames
    direct, exported = (read_job_record(s["PluginInfo"]["JobRecord"]) for s in sent)
    assert direct.source.pattern == str(shared / "plates" / "sh010_plate.####.exr")  # read where it lies
    assert exported.source.pattern.startswith(str(shared / "comfyfarm" / "input"))  # exported for the farm
    assert len(flame_session.exports) == 1 and flame_session.exports[0].foreground
    assert [c.name.get_value() for c in lib.clips] == ["sh010_plate", "sh020_plate"]  # no matched clip left
    assert (exported.relink.clip_name, exported.relink.project) == ("sh020_plate", "show_2026")
    assert (direct.source.timecode, exported.source.timecode) == ("01:00:00:10", "02:00:00:04")  # the sources'
    dialog.close()


def test_an_export_flame_refuses_shows_the_error_and_the_form_again(qapp, flame_session, fake_deadline,
                                                                    tmp_path: Path, monkeypatch) -> None:
    """``flame.duplicate`` raises RuntimeError for a clip in a locked shared library (its marks need a
    duplicate): the dialog says so and can be used again; it does not stay on Submitting…"""
    studio_config(tmp_path, fake_deadline.url, monkeypatch)
    locked = flame_session.project.create_shared_library("Shared Plates")
    locked.acquire_exclusive_access()
    clip = flame_session.add_clip(locked, "sh020_plate", frames=range(1001, 1013), timecode="01:00:10:00")
    locked.release_exclusive_access()
    clip.in_mark = 2
    clip.out_mark = 6
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Submit to Deadline...", selection=(clip,))
    dialog._select_tree_item("blur")
    dialog.frame_mode_buttons["marks"].click()
    qapp.processEvents()
    idle = dialog.submit_button.text()
    dialog.submit_button.click()
    flame_session.pump_idle(seconds=1)
    qapp.processEvents()
    assert not dialog.busy and dialog.submit_button.text() == idle and dialog.submit_button.isEnabled()
    assert dialog.workflow_tree.isEnabled() and dialog.cancel_button.text() == "Cancel"
    assert dialog.result_label.isVisible() and dialog.result_label.text().startswith(
        "Nothing was submitted: Flame could not export 'sh020_plate' for the farm (Shared library 'Shared Plates' "
        "is locked")
    assert fake_deadline.render_submissions() == [] and [c.name.get_value() for c in locked.clips] == ["sh020_plate"]
    shot = os.environ.get("COMFYFARM_SCREENSHOTS")
    if shot:  # look at it: COMFYFARM_SCREENSHOTS=/tmp/shots pytest -k refuses
        Path(shot).mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(Path(shot) / "submit_export_refused.png"))
    dialog.close()
