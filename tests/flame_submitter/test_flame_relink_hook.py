"""The real hook file in the Flame double: the relink watcher starts with Flame, and the farm menu works.
The last test is the whole round trip: comfyfarm submit → emulated farm → hand-back job → Flame library."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from farm_plugin.completion import write_completion
from tests.farm.conftest import make_studio
from tests.flame_submitter.test_relink import record as completion_record

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_user": "ann", "inbox_root": str(inbox)}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    return inbox


def folder_clips(session, workflow_title: str = "Invert") -> list:
    library = next(lib for lib in session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    folder = next(f for f in library.folders if f.name.get_value() == workflow_title)
    return [c.name.get_value() for c in folder.clips]


def test_the_hook_loads_without_touching_flame_and_starts_the_watcher(flame_session, configured: Path,
                                                                      tmp_path: Path) -> None:
    hooks = flame_session.load_hooks(HOOK)
    assert not hooks.touched_flame_at_import
    write_completion(completion_record(tmp_path, "j1"), configured)
    hooks.app_initialized("show_2026")
    flame_session.pump_idle(seconds=1)
    assert folder_clips(flame_session) == ["sh010_plate_invert_v001"]


def test_import_finished_renders_on_demand(flame_session, configured: Path, tmp_path: Path) -> None:
    hooks = flame_session.load_hooks(HOOK)
    write_completion(completion_record(tmp_path, "j2"), configured)
    write_completion(completion_record(tmp_path, "j3"), configured)
    hooks.run_action("Import finished renders", menu="media_panel", selection=())
    assert folder_clips(flame_session) == ["sh010_plate_invert_v001", "sh010_plate_invert_v002"]


def test_show_farm_jobs_lists_this_users_jobs_without_blocking(flame_session, fake_deadline, tmp_path: Path,
                                                               monkeypatch) -> None:
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_user": "ann", "deadline_url": fake_deadline.url}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    from flame_submitter.deadline.client import DeadlineClient, JobSubmission

    DeadlineClient(fake_deadline.url).submit_job(JobSubmission(
        {"Plugin": "ComfyUI", "Name": "sh010_plate - Invert", "Frames": "1-10", "ChunkSize": "5", "UserName": "ann"},
        {"JobRecord": "/mnt/jobs/x/job.json"}))
    hooks = flame_session.load_hooks(HOOK)
    flame_session.answer_dialogs("OK")
    hooks.run_action("Show farm jobs", menu="media_panel", selection=())
    assert flame_session.dialogs == []  # the action returned at once; the answer comes on an idle tick
    for _ in range(100):  # the farm answers in real time; Flame idles meanwhile
        flame_session.pump_idle(seconds=1)
        if flame_session.dialogs:
            break
        time.sleep(0.05)
    (dialog,) = flame_session.dialogs
    assert dialog.title == "ComfyUI Farm: your jobs"
    assert dialog.message == "sh010_plate - Invert: Active, 0/2 tasks"


def test_a_farm_job_comes_back_into_the_library_by_itself(farm, flame_session_factory, tmp_path: Path,
                                                          monkeypatch) -> None:
    studio = make_studio(farm, tmp_path, frame_count=24)
    inbox = studio.hand_back()
    monkeypatch.setenv("COMFYFARM_CONFIG", str(studio.config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(studio.config))
    job_id = studio.submit("--chunk-size", "8", "--project", "show_2026", frames="1001-1024")
    farm.start_workers(2)
    assert farm.wait_for_job(job_id, timeout_s=180) == "Completed"
    flame_session = flame_session_factory()  # Flame opens after the farm's work (inside it sys.executable is Flame)
    hooks = flame_session.load_hooks(HOOK)
    hooks.app_initialized("show_2026")
    deadline_seconds = 0
    while not (inbox / "imported" / f"{job_id}.json").exists() and deadline_seconds < 60:
        flame_session.pump_idle(seconds=1)
        deadline_seconds += 1
        time.sleep(0.5)
    (clip_name,) = folder_clips(flame_session)
    assert clip_name == "plate_invert_v001"
    library = next(lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders")
    clip = next(f for f in library.folders if f.name.get_value() == "Invert").clips[0]
    assert clip.start_frame == 1001 and clip.duration.frame == 24
    assert str(clip.start_time) == "01:00:00+00"
