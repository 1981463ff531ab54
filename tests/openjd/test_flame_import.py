"""“Import finished renders” in the Flame double takes a finished bundle's output folder: with nothing in the
inbox it offers to import one, the artist picks the folder in Qt's file dialog, and the verified frames come
in as the next version, with their start frame and timecode."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import yaml

from farm_plugin.jobrecord import JobRecord, OutputSpec, RelinkIdentity, SourceSpec, WorkflowSpec, read_job_record
from farm_plugin.openjd.finish import finish
from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import apply_parameters
from tests.flame_submitter.test_relink import render

from .conftest import BundleStudio, needs_openjd

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"
FRAMES = list(range(1001, 1025))
QUESTION = ("No inbox is configured (inbox_root), so finished farm renders do not come back by themselves.\n\n"
            "Import a finished job from its output folder (a Deadline Cloud job, or a job bundle run with openjd)?")


@pytest.fixture(scope="module")
def qapp() -> Iterator[Any]:
    qt = pytest.importorskip("flame_submitter.dialog.qt_compat", reason="needs PySide6 or PySide2 (the ui extra)")
    yield qt.QtWidgets.QApplication.instance() or qt.QtWidgets.QApplication(["comfyfarm-tests"])


def pick_folder_when_asked(folder: Path) -> None:
    """The artist, in the file dialog that opens next: goes to ``folder`` and presses Choose."""
    from flame_submitter.dialog.qt_compat import QtCore, QtWidgets

    def choose() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if dialog is None or dialog.objectName() != "comfyfarm_import_folder":
            QtCore.QTimer.singleShot(20, choose)
            return
        dialog.setDirectory(str(folder))
        dialog.accept()

    QtCore.QTimer.singleShot(0, choose)


def cancel_when_asked() -> None:
    from flame_submitter.dialog.qt_compat import QtCore, QtWidgets

    QtCore.QTimer.singleShot(0, lambda: QtWidgets.QApplication.activeModalWidget().reject())


def configure(tmp_path: Path, monkeypatch, **settings: Any) -> None:
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_user": "ann", **settings}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))


def library_clips(session) -> List[Any]:
    library = next(lib for lib in session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    folder = next(f for f in library.folders if f.name.get_value() == "Invert")
    return list(folder.clips)


def finished_job(tmp_path: Path, *, frames=FRAMES, rendered=FRAMES, job_id: str = "job-" + "c" * 32) -> Path:
    """A job as its bundle's Finish step leaves it: frames and completion record in the output folder, the
    record in the job folder. Returns the output folder."""
    out = tmp_path / "renders"
    pattern = render(out, rendered)
    package = load_package(REPO / "workflows" / "invert")
    record = JobRecord(job_id="20261124-120000_sh010_plate_invert_beef", name="sh010_plate - Invert",
                       workflow=WorkflowSpec.from_package(package, apply_parameters(package, {}), {}),
                       source=SourceSpec("/plates/sh010_plate.####.exr", tuple(frames), fps=24.0,
                                         timecode="01:00:00:00"),
                       output=OutputSpec(pattern), relink=RelinkIdentity(project="show_2026", clip_name="sh010_plate",
                                                                         user="ann"))
    job_folder = tmp_path / "jobs" / record.job_id
    record.write(job_folder / "job.json")
    finish(record, job_folder / "job.json", frames=frames, job_id=job_id)
    return out


def test_a_finished_bundles_output_folder_is_imported_when_the_artist_picks_it(
        flame_session, qapp, bundle_studio: BundleStudio, tmp_path: Path, monkeypatch) -> None:
    needs_openjd()
    bundle = bundle_studio.export(tmp_path / "bundle", "--chunk-size", "6", "--project", "show_2026",
                                  "--name", "sh010_plate")
    run = bundle_studio.openjd_run(bundle)
    assert run.returncode == 0, run.text()
    configure(tmp_path, monkeypatch)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...")
    pick_folder_when_asked(bundle_studio.root / "sh010" / "comfy")
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    (question,) = flame_session.dialogs
    assert question.message == QUESTION and question.answer == "Choose Folder..."
    (clip,) = library_clips(flame_session)
    assert clip.name.get_value() == "sh010_plate_invert_v001"
    assert clip.start_frame == 1001 and clip.duration.frame == 24
    assert str(clip.start_time) == "01:00:00+00"
    assert flame_session.console_messages[-1].message == (
        "comfyfarm: imported sh010_plate_invert_v001 (1001-1024) into ComfyUI Renders")


def test_frames_downloaded_to_another_folder_are_imported_from_there(flame_session, qapp, tmp_path: Path,
                                                                      monkeypatch) -> None:
    out = finished_job(tmp_path)
    downloaded = tmp_path / "downloads" / "sh010"
    shutil.copytree(out, downloaded)
    shutil.rmtree(out)  # the farm's folder is not here: only the download is
    configure(tmp_path, monkeypatch)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...")
    pick_folder_when_asked(downloaded)
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    (clip,) = library_clips(flame_session)
    assert clip.start_frame == 1001 and clip.duration.frame == 24
    (imported,) = [i for i in flame_session.imports if i.error is None]
    assert imported.path == f"{downloaded}/invert.[1001-1024].exr"


@pytest.mark.parametrize("pick", ["job folder", "bundle folder"])
def test_the_job_folder_or_the_bundle_folder_leads_to_the_same_frames(flame_session, qapp, tmp_path: Path,
                                                                      monkeypatch, pick: str) -> None:
    finished_job(tmp_path)
    (job_folder,) = (tmp_path / "jobs").iterdir()
    folder = job_folder
    if pick == "bundle folder":
        folder = tmp_path / "bundle"
        folder.mkdir()
        (folder / "template.yaml").write_text("specificationVersion: jobtemplate-2023-09\n")
        (folder / "parameter_values.yaml").write_text(yaml.safe_dump(
            {"parameterValues": [{"name": "JobRecord", "value": str(job_folder / "job.json")}]}))
    configure(tmp_path, monkeypatch)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...")
    pick_folder_when_asked(folder)
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    assert [c.name.get_value() for c in library_clips(flame_session)] == ["sh010_plate_invert_v001"]


def test_an_incomplete_job_imports_nothing_and_says_which_frames_are_missing(flame_session, qapp, tmp_path: Path,
                                                                            monkeypatch) -> None:
    out = finished_job(tmp_path, rendered=FRAMES[:20])
    configure(tmp_path, monkeypatch)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...")
    pick_folder_when_asked(out)
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    assert [i for i in flame_session.imports if i.error is None] == []
    message = flame_session.console_messages[-1]
    assert message.type == "warning"
    assert message.message == (f"comfyfarm: sh010_plate · Invert is incomplete (job job-{'c' * 32}): 4 frame(s) "
                               "missing (1021-1024); nothing imported: rerun the job's failed tasks")


def test_a_folder_with_no_finished_job_says_what_to_pick(flame_session, qapp, tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "somewhere"
    empty.mkdir()
    configure(tmp_path, monkeypatch)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...", "OK")
    pick_folder_when_asked(empty)
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    warning = flame_session.dialogs[-1]
    assert warning.type == "warning"
    assert warning.message == (f"{empty} holds no finished comfyfarm job: pick the job's output folder (where its "
                               "frames and <name>.comfyfarm.json are), its job folder or its bundle folder")


def test_cancel_imports_nothing(flame_session, qapp, tmp_path: Path, monkeypatch) -> None:
    finished_job(tmp_path)
    configure(tmp_path, monkeypatch)
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...")
    cancel_when_asked()
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    assert flame_session.imports == []


def test_with_an_empty_inbox_the_folder_is_offered_and_the_job_is_not_imported_twice(
        flame_session, qapp, tmp_path: Path, monkeypatch) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = finished_job(tmp_path)
    configure(tmp_path, monkeypatch, inbox_root=str(inbox))
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("Choose Folder...")
    pick_folder_when_asked(out)
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    (question,) = flame_session.dialogs
    assert question.message.startswith("No finished renders are waiting in the inbox.")
    assert [c.name.get_value() for c in library_clips(flame_session)] == ["sh010_plate_invert_v001"]

    (job_folder,) = (tmp_path / "jobs").iterdir()  # the job's inbox copy arrives late (a slow share): kept out
    finish(read_job_record(job_folder / "job.json"), job_folder / "job.json", frames=FRAMES, job_id="job-" + "c" * 32,
           inbox=str(inbox))
    assert not list(inbox.glob("*.json"))
    flame_session.answer_dialogs("Cancel")
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    assert len(library_clips(flame_session)) == 1


def test_finish_writes_the_record_beside_the_frames_in_the_job_folder_and_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    out = finished_job(tmp_path)
    (job_folder,) = (tmp_path / "jobs").iterdir()
    record = json.loads((out / "invert.comfyfarm.json").read_text())
    assert json.loads((job_folder / "completion.json").read_text()) == record
    assert record["frames"] == FRAMES and record["relink"]["clip_name"] == "sh010_plate"
    again = finish(read_job_record(job_folder / "job.json"), job_folder / "job.json", frames=FRAMES,
                   job_id="job-1", inbox=str(inbox))
    assert json.loads((inbox / "job-1.json").read_text())["frames"] == list(again.frames)
    assert dataclasses.asdict(again)["output_pattern"] == record["output_pattern"]
