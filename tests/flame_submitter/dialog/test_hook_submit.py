"""Issue 7's Done-when: in the Flame double, two selected clips → Submit to Deadline… → two jobs, no blocking."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from farm_plugin.jobrecord import read_job_record

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


def test_two_selected_clips_become_two_jobs_without_blocking(qapp, flame_session, fake_deadline, tmp_path: Path,
                                                             monkeypatch) -> None:
    shared = tmp_path / "projects"
    (shared / "comfyfarm").mkdir(parents=True)
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"deadline_url": fake_deadline.url, "deadline_user": "ann",
                                      "jobs_root": str(shared / "comfyfarm"), "shared_roots": [str(shared)]}))
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
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
    started = time.monotonic()
    dialog.submit_button.click()
    assert time.monotonic() - started < 2  # the Web Service is called off Flame's main thread
    deadline = time.monotonic() + 30
    while dialog.submit_button.text() != "Done" and time.monotonic() < deadline:
        flame_session.pump_idle(seconds=1)
        qapp.processEvents()
        time.sleep(0.05)
    assert dialog.submit_button.text() == "Done", dialog.problem_label.text()
    sent = fake_deadline.submissions()
    assert [s["JobInfo"]["Name"] for s in sent] == ["sh010_plate - Gaussian blur", "sh020_plate - Gaussian blur"]
    assert [s["JobInfo"]["Frames"] for s in sent] == ["1001-1012", "1001-1008"]
    record = read_job_record(sent[0]["PluginInfo"]["JobRecord"])
    assert record.workflow.name == "blur" and record.relink.project == "show_2026"
    dialog.close()
