"""Render the submit and Settings dialogs offscreen, as an artist first sees them, for the docs.

    python -m tests.flame_submitter.dialog.screenshots [OUTPUT_DIR]   # default: docs/screenshots

Writes ``submit_dialog_invert.png`` (a workflow without settings) and ``submit_dialog_prompt.png``
(``toonyou_style``: prompts, numbers, a seed). Two clips, one with marks; the farm's pools and groups
come from a stand-in for the Web Service that answers at once; nothing is remembered between runs.

Writes ``submit_dialog_layers.png``: ``matte_depth_normal`` (three passes) with the output format OpenEXR and
"Passes as layers of one EXR" ticked.

Writes ``submit_dialog_preview.png`` (Gaussian blur, radius 8, previewed on frame 1024 of a 640x360 demo plate by the
real ``comfyfarm preview`` on the ComfyUI test double: the source left of the wipe, the result right), then
``submit_dialog_preview_stale.png`` (the radius changed since), and ``submit_dialog_farm_view.png`` (submitted: the
job's frames per pass as ``comfyfarm status`` reports them, the latest frame's thumbnail being the preview's).

Writes ``settings_dialog.png``: a studio file sets the farm and the shared storage, the artist's file
sets the user, the password and Run locally, the inbox comes from Flame's environment, and Test connection
has answered (a stand-in again). The files live in a scratch folder, shown under the paths a workstation
has (/etc/comfyfarm, /home/ann).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from farm_plugin.workflow.package import bundled_workflows_dir  # noqa: E402
from flame_submitter.dialog.model import (  # noqa: E402
    ChoicesStore,
    ClipSummary,
    SubmitResult,
    load_job_templates,
    load_workflow_packages,
)
from flame_submitter.jobs.templates import template_dirs  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[3]
DEFAULT_OUTPUT = REPOSITORY / "docs" / "screenshots"
SHOTS = (("invert", "submit_dialog_invert.png", "all"), ("toonyou_style", "submit_dialog_prompt.png", "marks"))
SAMPLE_CLIPS = (
    ClipSummary("sh010_plate_v003", 1001, 1148, has_marks=True, mark_in=1009, mark_out=1100, width=3840,
                height=2160, fps=23.976),
    ClipSummary("sh020_plate_v001", 1001, 1062, width=1920, height=1080, fps=24.0),
)


def _wait(app, condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def _save(app, dialog, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write ``dialog`` as it shows to ``path``, then close it; returns ``path``."""
    if not dialog.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")
    dialog.close()
    dialog.deleteLater()
    app.processEvents()
    return path


def render(output_dir: Path, *, clips: Sequence[ClipSummary] = SAMPLE_CLIPS,
           shots: Sequence[tuple] = SHOTS, store_dir: Optional[Path] = None) -> List[Path]:
    """Render each (workflow, file name, frame range mode) of ``shots`` into ``output_dir``; returns the files."""
    from flame_submitter.dialog.qt_compat import QtWidgets
    from flame_submitter.dialog.submit_dialog import SubmitDialog

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    packages, _ = load_workflow_packages([bundled_workflows_dir()])
    templates, _ = load_job_templates(template_dirs())
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        store = ChoicesStore(Path(store_dir or scratch) / "submit_dialog.json")
        for workflow, file_name, frame_mode in shots:
            dialog = SubmitDialog(clips, packages=packages, templates=templates, choices_store=store,
                                  farm_lists=lambda: (["none", "gpu", "cpu"], ["none", "gpu_24gb", "gpu_48gb"]))
            dialog.show()
            _wait(app, lambda d=dialog: "from Deadline" in d.farm_status.text())
            dialog._select_tree_item(workflow)
            dialog.frame_mode_buttons[frame_mode].click()
            _wait(app, lambda: False, 0.2)
            written.append(_save(app, dialog, output_dir / file_name))
    return written


def render_layers(output_dir: Path, file_name: str = "submit_dialog_layers.png", *,
                  clips: Sequence[ClipSummary] = SAMPLE_CLIPS) -> Path:
    """The dialog with a three-pass workflow, OpenEXR output and its passes as the layers of one EXR; returns
    the file."""
    from flame_submitter.dialog.qt_compat import QtWidgets
    from flame_submitter.dialog.submit_dialog import SubmitDialog

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    packages, _ = load_workflow_packages([bundled_workflows_dir()])
    templates, _ = load_job_templates(template_dirs())
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        dialog = SubmitDialog(clips, packages=packages, templates=templates,
                              choices_store=ChoicesStore(Path(scratch) / "submit_dialog.json"),
                              farm_lists=lambda: (["none", "gpu", "cpu"], ["none", "gpu_24gb", "gpu_48gb"]))
        dialog.show()
        _wait(app, lambda: "from Deadline" in dialog.farm_status.text())
        dialog._select_tree_item("matte_depth_normal")
        dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("exr"))
        dialog.layers_check.click()
        _wait(app, lambda: False, 0.2)
        if not dialog.layers_check.isChecked():
            raise RuntimeError("the layers checkbox did not tick: nothing to show")
        return _save(app, dialog, output_dir / file_name)


def preview_pictures(scratch: Path, *, radius: int, frame: int = 1024) -> Any:
    """A real ``comfyfarm preview`` of the blur on a demo plate, on the ComfyUI test double: its PreviewResult."""
    import subprocess

    import yaml

    from flame_submitter.cli.demo_plate import write_demo_plate
    from flame_submitter.preview.request import PreviewResult
    from tests.doubles.comfyui.harness import free_port, make_fake_comfyui_dir

    plate = write_demo_plate(scratch / "plate", width=640, height=360, name="sh010_plate")
    config = scratch / "comfyfarm.yaml"
    config.write_text(yaml.safe_dump({"comfyui_dir": str(make_fake_comfyui_dir(scratch / "ComfyUI")),
                                      "comfyui_python": sys.executable, "base_port": free_port(),
                                      "scratch_dir": str(scratch / "scratch")}))
    env = {**os.environ, "COMFYFARM_CONFIG": str(config), "COMFYFARM_STUDIO_CONFIG": str(config)}
    done = subprocess.run([sys.executable, "-m", "flame_submitter.cli", "preview", "--workflow", "blur", "--input",
                           plate, "--frame", str(frame), "--folder", str(scratch / "preview"), "--set",
                           f"radius={radius}", "--set", "sigma=4"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPOSITORY)
    result = PreviewResult.from_output(done.stdout)
    if result is None or not result.ok:
        raise RuntimeError(f"the preview failed: {result.error if result else done.stderr}")
    return result


def render_preview(output_dir: Path) -> List[Path]:
    """The dialog with a preview, the same once a setting changed, and its farm view after Submit."""
    from flame_submitter.dialog.qt_compat import QtWidgets
    from flame_submitter.dialog.submit_dialog import SubmitDialog
    from flame_submitter.preview.progress import JobProgress, PassFrames

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    packages, _ = load_workflow_packages([bundled_workflows_dir()])
    templates, _ = load_job_templates(template_dirs())
    output_dir.mkdir(parents=True, exist_ok=True)
    clips = (ClipSummary("sh010_plate", 1001, 1048, width=640, height=360, fps=24.0, positioner=1024),)
    with tempfile.TemporaryDirectory() as scratch:
        result = preview_pictures(Path(scratch), radius=8)
        dialog = SubmitDialog(clips, packages=packages, templates=templates,
                              choices_store=ChoicesStore(Path(scratch) / "submit_dialog.json"),
                              farm_lists=lambda: (["none", "gpu", "cpu"], ["none", "gpu_24gb", "gpu_48gb"]),
                              preview_where="on the local ComfyUI")
        dialog.show()
        _wait(app, lambda: "from Deadline" in dialog.farm_status.text())
        dialog._select_tree_item("blur")
        form = dialog.form
        assert form is not None
        form.fields["radius"].editor.setValue(8)  # type: ignore[attr-defined]
        form.fields["sigma"].editor.setValue(4.0)  # type: ignore[attr-defined]
        dialog.preview_panel.preview_button.click()
        dialog.show_preview_result(result)
        _wait(app, lambda: False, 0.2)
        if dialog.preview_stale or dialog.preview_panel.result is None:
            raise RuntimeError("the preview did not show")
        written = [Path(output_dir / "submit_dialog_preview.png")]
        dialog.grab().save(str(written[-1]))
        form.fields["radius"].editor.setValue(3)  # type: ignore[attr-defined]
        _wait(app, lambda: False, 0.2)
        written.append(Path(output_dir / "submit_dialog_preview_stale.png"))
        dialog.grab().save(str(written[-1]))
        form.fields["radius"].editor.setValue(8)  # type: ignore[attr-defined]
        dialog.show_result(SubmitResult(job_ids=("6750c1a2e4b0",), message="1 Deadline job(s) submitted for "
                                                                           "sh010_plate"))
        latest = result.passes[0].path
        dialog.show_farm_progress([JobProgress(
            job="6750c1a2e4b0", name="sh010_plate - Gaussian blur", state="Rendering", tasks_done=2, tasks=5,
            progress=46.0, passes=(PassFrames("blurred", 22, 48, 1022, latest),))])
        _wait(app, lambda: False, 0.2)
        written.append(_save(app, dialog, output_dir / "submit_dialog_farm_view.png"))
        return written


def settings_sources(scratch: Path) -> Any:
    """A studio file, the artist's file and Flame's environment, as on a workstation."""
    from flame_submitter.config.settings_model import SettingsSources

    return SettingsSources(
        studio_path=Path("/etc/comfyfarm/config.yaml"),
        user_path=Path("/home/ann/.config/comfyfarm/config.yaml"),
        studio={"deadline_url": "http://deadline:8081", "jobs_root": "/mnt/projects/comfyfarm/jobs",
                "shared_roots": ["/mnt/projects"], "comfyui_dir": "/opt/ComfyUI",
                "path_mappings": [{"linux": "/mnt/projects", "macos": "/Volumes/projects", "windows": "P:/"}]},
        user={"deadline_user": "ann", "deadline_password": "not-shown", "instances": 2},
        environment={"inbox_root": ("COMFYFARM_INBOX_ROOT", "/mnt/projects/comfyfarm/inbox")},
    )


def render_settings(output_dir: Path, file_name: str = "settings_dialog.png") -> Path:
    """The Settings dialog after a successful Test connection; returns the file."""
    from flame_submitter.config.settings_checks import Check
    from flame_submitter.config.settings_model import SettingsModel
    from flame_submitter.dialog.qt_compat import QtWidgets
    from flame_submitter.dialog.settings_dialog import SettingsDialog

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        model = SettingsModel(settings_sources(Path(scratch)), workstation_os="linux")  # checks nothing on disk
        answer = Check("ok", "Connected to Deadline at http://deadline:8081 as ann; pools: none, gpu, cpu")
        dialog = SettingsDialog(model, tester=lambda url, user, password: answer)
        dialog.show()
        dialog.editors["gpus"].setText("0,1")
        dialog.test_connection()
        _wait(app, lambda: dialog.test_button.isEnabled())
        _wait(app, lambda: False, 0.2)
        return _save(app, dialog, output_dir / file_name)


def main(argv: Sequence[str]) -> int:
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    for path in [*render(output), render_layers(output), *render_preview(output), render_settings(output)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
