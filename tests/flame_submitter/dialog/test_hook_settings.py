"""Settings… from the Flame double: the dialog opens from either menu, even on a broken configuration, and
what it saves is used at once (the relink watcher follows a new inbox)."""

from __future__ import annotations

from pathlib import Path

import yaml

from flame_submitter.flame.app import running_app

REPO = Path(__file__).resolve().parents[3]
HOOK = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"


def test_settings_are_saved_and_used_at_once(qapp, flame_session, tmp_path: Path, monkeypatch) -> None:
    user = tmp_path / "home" / "config.yaml"
    user.parent.mkdir()
    user.write_text("# mine\ndeadline_user: ann\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("COMFYFARM_CONFIG", str(user))
    monkeypatch.delenv("COMFYFARM_STUDIO_CONFIG", raising=False)
    monkeypatch.delenv("COMFYFARM_INBOX_ROOT", raising=False)
    monkeypatch.delenv("COMFYFARM_DEADLINE_URL", raising=False)
    monkeypatch.setattr("flame_submitter.config.STUDIO_CONFIG_PATH", tmp_path / "no-studio.yaml")  # no studio file
    from flame_submitter.dialog.qt_compat import QtWidgets

    flame_window = QtWidgets.QMainWindow()
    flame_window.setObjectName("CF Main Window")  # Flame's main window, as the dialogs look for it
    flame_window.show()
    hooks = flame_session.load_hooks(HOOK)
    hooks.app_initialized()
    assert "no inbox_root configured" in flame_session.console_messages[-1].message
    dialog = hooks.run_action("Settings...")
    assert dialog.windowTitle() == "ComfyUI Farm: Settings"
    assert dialog.parentWidget() is flame_window  # above Flame's window, not behind it
    assert dialog.editors["deadline_user"].text() == "ann"
    dialog.editors["inbox_root"].setText(str(inbox))
    dialog.editors["deadline_url"].setText("http://deadline:8081")
    qapp.processEvents()
    assert dialog.save_button.isEnabled(), dialog.problem_label.text()
    dialog.save_button.click()
    assert not dialog.isVisible()
    assert yaml.safe_load(user.read_text()) == {"deadline_user": "ann", "inbox_root": str(inbox),
                                                "deadline_url": "http://deadline:8081"}
    assert flame_session.console_messages[-1].message == f"comfyfarm: settings saved in {user}"
    app = running_app(flame_session.flame)
    assert app is not None
    assert app.config.deadline_url == "http://deadline:8081"
    assert app.watcher is not None and app.watcher.inbox == inbox and app.watcher.running  # it follows the inbox
    flame_session.pump_idle(seconds=1)  # the watcher ticks on Flame's idle loop without complaint
    again = app.settings_dialog()
    assert again.editors["inbox_root"].text() == str(inbox) and again.origin_labels["inbox_root"].text() == "Yours"
    again.close()
    flame_window.close()


def test_settings_open_from_the_timeline_on_a_broken_configuration(qapp, flame_session, tmp_path: Path,
                                                                   monkeypatch) -> None:
    user = tmp_path / "config.yaml"
    user.write_text("deadline_user: ann\nfavourite_colour: teal\n")
    studio = tmp_path / "studio.yaml"
    studio.write_text("farm_os: linux\n")
    monkeypatch.setenv("COMFYFARM_CONFIG", str(user))
    monkeypatch.setenv("COMFYFARM_STUDIO_CONFIG", str(studio))
    hooks = flame_session.load_hooks(HOOK)
    lib = flame_session.workspace.create_library("Edit")
    clip = flame_session.add_clip(lib, "sh010_plate", frames=range(1, 5))
    sequence = flame_session.add_sequence(lib, "cut", [clip])
    flame_session.select_segments(sequence.versions[0].tracks[0].segments[0])
    dialog = hooks.run_action("Settings...", menu="timeline")
    assert "unknown key(s) favourite_colour" in flame_session.console_messages[-1].message  # from opening it
    assert dialog.file_problems.isVisible()
    assert "comfyfarm cannot use these settings" in dialog.file_problems.text()
    assert "unknown key(s) favourite_colour" in dialog.file_problems.text()
    dialog.close()
