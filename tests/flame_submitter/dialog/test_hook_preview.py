"""Preview from the Flame double: Submit to Deadline…, the frame under the positioner rendered by the real
``comfyfarm preview`` (run with Flame's Python, as the hook runs it) on the ComfyUI double, shown beside its
source, stale once the workflow changes, then the same settings submitted to the Web Service double. A preview
that fails shows ComfyUI's error; Stop leaves no process behind.

COMFYFARM_SCREENSHOTS=DIR keeps screenshots of the dialog (docs/screenshots/submit_dialog_preview*.png come from
here)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
import yaml

from farm_plugin.frames.image_io import read_pixels
from farm_plugin.jobrecord import read_job_record
from flame_submitter.config import ENVIRONMENT
from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir
from tests.doubles.flame.harness import REAL_PYTHON
from tests.farm.conftest import make_studio
from tests.flame_submitter.dialog.conftest import click_and_wait_for_done

qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                         reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")
QtGui = qt.QtGui

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"
JPEG_TOLERANCE = 12 / 255  # a flat-ish plate through JPEG at quality 85, per channel


def preview_config(tmp_path: Path, monkeypatch: Any, flame_session: Any, deadline_url: str, **faults: Any) -> Path:
    """A workstation with a local ComfyUI (the double) and a farm (the Web Service double); returns the shared
    storage folder."""
    shared = tmp_path / "projects"
    (shared / "comfyfarm").mkdir(parents=True)
    config = tmp_path / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({
        "deadline_url": deadline_url, "deadline_user": "ann", "jobs_root": str(shared / "comfyfarm"),
        "shared_roots": [str(shared)],
        "comfyui_dir": str(make_fake_comfyui_dir(tmp_path / "ComfyUI")), "comfyui_python": REAL_PYTHON,
        "base_port": free_port(), "scratch_dir": str(tmp_path / "scratch"), "startup_timeout_s": 30,
        "comfyui_env": {"COMFYFARM_FAKE_FAULTS": json.dumps(faults)} if faults else {}}))
    use_config(config, tmp_path, monkeypatch, flame_session)
    return shared


def use_config(config: Path, tmp_path: Path, monkeypatch: Any, flame_session: Any) -> None:
    """Flame reads ``config`` and nothing else: not the ComfyUI or Deadline the tests' environment names (the real
    ComfyUI tier sets COMFYUI_DIR, which the configuration reads)."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMFYFARM_CONFIG", str(config))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COMFYFARM_AUTODESK_ROOT", str(flame_session.autodesk_root))  # where Flame's Python is


def wait_for_preview(dialog: Any, flame_session: Any, qapp: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while dialog.preview_panel.running and time.monotonic() < deadline:
        flame_session.pump_idle(seconds=0.05)
        qapp.processEvents()
        time.sleep(0.02)
    assert not dialog.preview_panel.running, "the preview did not end"


def processes_under(folder: Path) -> List[str]:
    """Running processes that name ``folder`` in their command line (comfyfarm preview) or run in it (ComfyUI
    runs in its folder): ``<working directory>: <command line>`` each."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (str(folder) in command or cwd.startswith(str(folder))) and state != "Z":
            found.append(f"{cwd}: {command}")
    return found


def shoot(dialog: Any, name: str) -> None:
    folder = os.environ.get("COMFYFARM_SCREENSHOTS")
    if folder:  # look at it: COMFYFARM_SCREENSHOTS=/tmp/shots pytest -k preview
        Path(folder).mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(Path(folder) / name))


def open_dialog(flame_session: Any, qapp: Any, shared: Path, *, positioner: int = 6) -> Any:
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1013), source_dir=shared / "plates",
                                  timecode="01:00:00:00")
    clip.current_time = positioner  # the positioner on the clip's 6th frame: 1006
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Submit to Deadline...", selection=(clip,))
    dialog._select_tree_item("invert")
    qapp.processEvents()
    return dialog


def test_a_preview_renders_the_positioners_frame_locally_goes_stale_and_the_same_settings_are_submitted(
        qapp, flame_session, fake_deadline, tmp_path: Path, monkeypatch) -> None:
    shared = preview_config(tmp_path, monkeypatch, flame_session, fake_deadline.url)
    dialog = open_dialog(flame_session, qapp, shared)
    panel = dialog.preview_panel
    assert panel.frame_spin.value() == 1006
    started = time.monotonic()
    panel.preview_button.click()
    assert time.monotonic() - started < 2 and panel.running  # rendered off Flame's main thread
    wait_for_preview(dialog, flame_session, qapp)
    result = panel.result
    assert result is not None, panel.status_label.text()
    assert (result.frame, result.frames) == (1006, (1006,))
    assert re.fullmatch(r"Frame 1006 rendered in \d+\.\d s by 1 ComfyUI on the default GPU \(ComfyUI started in "
                        r"\d+\.\d s first\)\.", panel.status_label.text()), panel.status_label.text()
    assert set(panel.images) == {"source", "result"}
    plate = read_pixels(str(shared / "plates" / "sh010_plate.1006.exr"))
    source, inverted = panel.images["source"], panel.images["result"]
    assert (source.width(), source.height()) == (inverted.width(), inverted.height()) == (plate.shape[1],
                                                                                          plate.shape[0])

    def rgb(image: Any) -> np.ndarray:
        converted = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
        data = np.frombuffer(bytes(converted.constBits()), dtype=np.uint8)
        return data.reshape(converted.height(), converted.bytesPerLine())[:, :converted.width() * 3].reshape(
            converted.height(), converted.width(), 3) / 255.0

    assert np.abs(rgb(inverted) - (1.0 - rgb(source))).mean() < JPEG_TOLERANCE  # invert, in the viewer's sRGB
    assert np.abs(rgb(source) - rgb(inverted)).max() > 0.2
    assert fake_deadline.render_submissions() == []  # a local preview sends nothing to the farm
    renders = [lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders"]
    assert not renders  # and imports nothing into Flame
    shoot(dialog, "submit_dialog_preview.png")

    dialog._select_tree_item("blur")
    qapp.processEvents()
    assert dialog.preview_stale and panel.stale
    shoot(dialog, "submit_dialog_preview_stale.png")
    dialog._select_tree_item("invert")
    qapp.processEvents()
    assert not dialog.preview_stale
    assert click_and_wait_for_done(dialog, flame_session, qapp) < 2
    (sent,) = fake_deadline.render_submissions()
    record = read_job_record(sent["PluginInfo"]["JobRecord"])
    assert record.workflow.name == "invert" and dialog.submitted_choice.parameters == \
        dialog.preview_shown.settings.parameters
    assert sent["JobInfo"]["Frames"] == "1001-1012"  # the clip's frames: the preview was one of them
    dialog.close()


def test_a_preview_that_fails_shows_comfyuis_error(qapp, flame_session, fake_deadline, tmp_path: Path,
                                                  monkeypatch) -> None:
    shared = preview_config(tmp_path, monkeypatch, flame_session, fake_deadline.url, fail_node={
        "class_type": "ImageInvert", "exception_type": "ValueError",
        "message": "the invert node cannot read this image"})
    dialog = open_dialog(flame_session, qapp, shared)
    panel = dialog.preview_panel
    panel.preview_button.click()
    wait_for_preview(dialog, flame_session, qapp)
    text = panel.status_label.text()
    assert panel.result is None and panel.status_label.objectName() == "ResultError"
    assert "ImageInvert" in text and "ValueError" in text and "the invert node cannot read this image" in text, text
    assert "Traceback" not in text and "\n" not in text
    assert panel.view.message == f"No preview: {text}"
    assert panel.preview_button.isEnabled()
    shoot(dialog, "submit_dialog_preview_error.png")
    dialog.close()


def test_stop_ends_the_preview_and_leaves_no_process_behind(qapp, flame_session, fake_deadline, tmp_path: Path,
                                                           monkeypatch) -> None:
    shared = preview_config(tmp_path, monkeypatch, flame_session, fake_deadline.url, node_delay_s=60)
    dialog = open_dialog(flame_session, qapp, shared)
    panel = dialog.preview_panel
    panel.preview_button.click()
    deadline = time.monotonic() + 60
    comfyui = str(tmp_path / "ComfyUI")
    while not any(comfyui in command for command in processes_under(tmp_path)) and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.1)
    time.sleep(2)  # the prompt is running in ComfyUI by now
    running = processes_under(tmp_path)
    assert any("preview" in command for command in running) and any(comfyui in command for command in running)
    panel.stop_button.click()
    wait_for_preview(dialog, flame_session, qapp, timeout_s=60)
    assert panel.status_label.text() == "Stopped: the preview was interrupted; nothing was kept"
    deadline = time.monotonic() + 15
    while processes_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_under(tmp_path) == []
    assert panel.preview_button.isEnabled()
    panel.preview_button.click()  # again, then the artist closes the dialog while it renders
    deadline = time.monotonic() + 60
    while not any(comfyui in command for command in processes_under(tmp_path)) and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.1)
    assert processes_under(tmp_path)
    dialog.close()
    deadline = time.monotonic() + 60
    while processes_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_under(tmp_path) == []


def test_without_a_local_comfyui_the_farm_renders_the_preview_as_one_task_and_flame_imports_nothing(
        qapp, flame_session, farm, tmp_path: Path, monkeypatch) -> None:
    studio = make_studio(farm, tmp_path, frame_count=12)  # the plate on shared storage; no ComfyUI on this machine
    inbox = studio.hand_back()
    use_config(studio.config, tmp_path, monkeypatch, flame_session)
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1013), source_dir=studio.root / "plates")
    clip.current_time = 4
    farm.start_workers(1)
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Submit to Deadline...", selection=(clip,))
    dialog._select_tree_item("invert")
    qapp.processEvents()
    panel = dialog.preview_panel
    assert dialog.preview_where == "as a one-task job on the farm"
    panel.preview_button.click()
    wait_for_preview(dialog, flame_session, qapp, timeout_s=180)
    result = panel.result
    assert result is not None, panel.status_label.text()
    assert result.frame == 1004 and set(panel.images) == {"source", "result"}
    (job,) = studio.submitted()  # the render job alone: no hand-back job
    assert re.fullmatch(rf"Frame 1004 rendered in \d+\.\d s by the farm \(Deadline job {job['job_id']}\)\.",
                        panel.status_label.text()), panel.status_label.text()
    source, inverted = panel.images["source"], panel.images["result"]
    centre = (source.width() // 2, source.height() // 2)
    assert QtGui.QColor(source.pixel(*centre)).name() != QtGui.QColor(inverted.pixel(*centre)).name()
    time.sleep(0.5)
    assert list(inbox.iterdir()) == []  # nothing hands the preview back to Flame
    assert not [lib for lib in flame_session.workspace.libraries if lib.name.get_value() == "ComfyUI Renders"]
    dialog.close()


def test_after_submit_the_dialog_shows_the_jobs_frames_and_latest_frame_from_the_farm(
        qapp, flame_session, farm, tmp_path: Path, monkeypatch) -> None:
    studio = make_studio(farm, tmp_path, frame_count=12)
    studio.hand_back()
    use_config(studio.config, tmp_path, monkeypatch, flame_session)
    monkeypatch.setattr("flame_submitter.preview.progress.POLL_SECONDS", 0.5)
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1013), source_dir=studio.root / "plates")
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Submit to Deadline...", selection=(clip,))
    dialog._select_tree_item("invert")
    qapp.processEvents()
    assert click_and_wait_for_done(dialog, flame_session, qapp) < 2
    job = str(studio.submitted()[0]["job_id"])  # the render job (its hand-back job follows it)
    farm.start_workers(1)
    view = dialog.farm_view
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (job in view.rows and "Completed" in view.rows[job].details.text()):
        qapp.processEvents()
        time.sleep(0.05)
    row = view.rows[job]
    assert view.isVisible()
    lines = row.details.text().splitlines()
    assert lines[0].startswith("Completed: ") and lines[1].startswith("result: 12/12 frames, latest 10"), lines
    assert row.shown_thumbnail is not None and Path(row.shown_thumbnail).name == "latest_result.jpg"
    assert not row.thumbnail.pixmap().isNull()
    dialog.close()
    assert dialog.farm_watcher is not None
    dialog.farm_watcher.thread.join(10)
    assert not dialog.farm_watcher.thread.is_alive()  # it stops asking once the jobs are done (or the dialog closed)


def test_run_locally_previews_too(qapp, flame_session, fake_deadline, tmp_path: Path, monkeypatch) -> None:
    shared = preview_config(tmp_path, monkeypatch, flame_session, fake_deadline.url)
    lib = flame_session.workspace.create_library("Plates")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1001, 1013), source_dir=shared / "plates")
    hooks = flame_session.load_hooks(HOOK)
    dialog = hooks.run_action("Run locally...", selection=(clip,))
    dialog._select_tree_item("blur")
    qapp.processEvents()
    panel = dialog.preview_panel
    assert panel.frame_spin.value() == 1001  # the positioner where Flame starts it: the first frame
    panel.preview_button.click()
    wait_for_preview(dialog, flame_session, qapp)
    assert panel.result is not None, panel.status_label.text()
    assert set(panel.images) == {"source", "result"}
    dialog.close()
