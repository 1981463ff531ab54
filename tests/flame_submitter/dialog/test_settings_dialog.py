"""The Settings dialog with real widgets, offscreen: what the artist sees, types, saves and tests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import yaml

qt = pytest.importorskip("flame_submitter.dialog.qt_compat",
                         reason="needs PySide6 or PySide2 (pip install PySide6-Essentials)")

from flame_submitter.config.settings_checks import Check  # noqa: E402
from flame_submitter.config.settings_model import FIELDS, SettingsModel  # noqa: E402
from flame_submitter.dialog.settings_dialog import MappingsTable, SettingsDialog  # noqa: E402
from tests.flame_submitter.dialog.conftest import wait_until  # noqa: E402

QtCore, QtWidgets = qt.QtCore, qt.QtWidgets
QTest = pytest.importorskip(f"{qt.QT_BINDING}.QtTest").QTest




def type_into(line: Any, text: str) -> None:
    line.setFocus()
    line.selectAll()
    QTest.keyClick(line, QtCore.Qt.Key.Key_Delete)
    QTest.keyClicks(line, text)


@pytest.fixture
def layers(tmp_path: Path) -> Dict[str, str]:
    (tmp_path / "projects" / "jobs").mkdir(parents=True)
    studio = tmp_path / "studio.yaml"
    studio.write_text(yaml.safe_dump({"deadline_url": "http://deadline:8081", "jobs_root": str(tmp_path / "projects"
                                                                                                  / "jobs"),
                                      "shared_roots": [str(tmp_path / "projects")]}))
    user = tmp_path / "home" / "config.yaml"
    user.parent.mkdir()
    user.write_text("# mine\ndeadline_user: ann\nchunk_size: 5\n")
    return {"COMFYFARM_STUDIO_CONFIG": str(studio), "COMFYFARM_CONFIG": str(user)}


@pytest.fixture
def make_dialog(qapp: Any) -> Iterator[Callable[..., SettingsDialog]]:
    made: List[SettingsDialog] = []

    def make(environ: Dict[str, str], **kwargs: Any) -> SettingsDialog:
        dialog = SettingsDialog(SettingsModel.load(environ), **kwargs)
        dialog.show()
        qapp.processEvents()
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        dialog.close()


def test_what_the_artist_sees(make_dialog, layers: Dict[str, str], tmp_path: Path) -> None:
    dialog = make_dialog(dict(layers, COMFYFARM_INBOX_ROOT="/mnt/projects/inbox"))
    assert dialog.windowTitle() == "ComfyUI Farm: Settings"
    boxes = [b.title() for b in dialog.findChildren(QtWidgets.QGroupBox)]
    assert boxes == ["Deadline", "Shared storage", "Run locally"]
    assert set(dialog.editors) == {f.key for f in FIELDS}
    assert dialog.editors["deadline_user"].text() == "ann"
    assert dialog.editors["deadline_url"].text() == ""
    assert dialog.editors["deadline_url"].placeholderText() == "http://deadline:8081 (studio)"
    assert dialog.origin_labels["deadline_url"].text() == (f"Studio: http://deadline:8081 (set in "
                                                           f"{tmp_path}/studio.yaml)")
    assert dialog.origin_labels["inbox_root"].text() == ("Set by $COMFYFARM_INBOX_ROOT in Flame's environment: it "
                                                         "wins over what you save here")
    assert dialog.editors["deadline_password"].echoMode() == QtWidgets.QLineEdit.EchoMode.Password
    assert isinstance(dialog.editors["path_mappings"], MappingsTable)
    assert not dialog.save_button.isEnabled()  # nothing changed yet
    assert dialog.test_button.text() == "Test connection"


def test_a_wrong_value_is_explained_and_stops_save(make_dialog, layers: Dict[str, str], tmp_path: Path) -> None:
    dialog = make_dialog(layers)
    url = dialog.editors["deadline_url"]
    type_into(url, "deadline:8081")
    check = dialog.check_labels["deadline_url"]
    assert check.isVisible() and check.text() == ("Not a Web Service address: start with http:// or https:// and a "
                                                  "host name (e.g. http://deadline:8081)")
    assert url.property("invalid") is True
    assert not dialog.save_button.isEnabled()
    assert dialog.problem_label.text() == ("Web Service URL: Not a Web Service address: start with http:// or "
                                           "https:// and a host name (e.g. http://deadline:8081)")
    type_into(url, "http://farm:8081")
    assert not check.isVisible() and url.property("invalid") is False
    assert dialog.save_button.isEnabled() and not dialog.problem_label.isVisible()
    assert dialog.origin_labels["deadline_url"].text().startswith("Yours (not saved yet); the studio's is "
                                                                  "http://deadline:8081")
    type_into(dialog.editors["jobs_root"], str(tmp_path / "missing"))
    assert dialog.check_labels["jobs_root"].text() == (f"There is no folder {tmp_path / 'missing'} on this machine: "
                                                       "check the path (is the storage mounted?)")
    assert not dialog.save_button.isEnabled()
    (tmp_path / "elsewhere").mkdir()
    type_into(dialog.editors["jobs_root"], str(tmp_path / "elsewhere"))  # a warning does not stop Save
    assert dialog.check_labels["jobs_root"].objectName() == "CheckWarning"
    assert dialog.save_button.isEnabled()


def test_path_mappings_are_edited_in_a_table(make_dialog, layers: Dict[str, str], qapp: Any) -> None:
    dialog = make_dialog(layers)
    table: MappingsTable = dialog.editors["path_mappings"]
    table.add_button.click()
    table.table.item(0, 0).setText("/mnt/projects")
    qapp.processEvents()
    assert dialog.check_labels["path_mappings"].text() == ("Row 1: name the same storage on at least two of linux, "
                                                           "macos, windows")
    assert not dialog.save_button.isEnabled()
    table.table.item(0, 1).setText("/Volumes/projects")
    qapp.processEvents()
    assert not dialog.check_labels["path_mappings"].isVisible() and dialog.save_button.isEnabled()
    assert dialog.model.changes() == {"path_mappings": [{"linux": "/mnt/projects", "macos": "/Volumes/projects"}]}
    table.table.setCurrentCell(0, 0)
    table.remove_button.click()
    assert dialog.model.changes() == {} and not dialog.save_button.isEnabled()


def test_save_writes_the_users_file_and_keeps_the_rest(make_dialog, layers: Dict[str, str]) -> None:
    dialog = make_dialog(layers)
    saved: List[str] = []
    dialog.saved.connect(saved.append)
    type_into(dialog.editors["deadline_url"], "http://farm:8081")
    type_into(dialog.editors["deadline_password"], "hunter2")
    type_into(dialog.editors["deadline_user"], "")
    dialog.save_button.click()
    user = Path(layers["COMFYFARM_CONFIG"])
    assert saved == [str(user)] and not dialog.isVisible()
    text = user.read_text()
    assert text.startswith("# mine\nchunk_size: 5\n")
    assert yaml.safe_load(text) == {"chunk_size": 5, "deadline_url": "http://farm:8081",
                                    "deadline_password": "hunter2"}


def test_a_file_that_cannot_be_written_says_why(make_dialog, layers: Dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    target = tmp_path / "not-a-folder" / "config.yaml"
    dialog = make_dialog(dict(layers, COMFYFARM_CONFIG=str(target)))
    assert dialog.file_problems.text() == f"{target} (COMFYFARM_CONFIG) does not exist yet: Save creates it"
    type_into(dialog.editors["deadline_user"], "ann")
    dialog.save_button.click()
    assert dialog.isVisible()  # still open, with the reason
    assert dialog.problem_label.text() == f"{target}: cannot write it: {target.parent} is a file, not a folder"


# -- Test connection -------------------------------------------------------------------------------------


def test_connection_against_the_web_service(make_dialog, layers: Dict[str, str], fake_deadline_factory,
                                            qapp: Any) -> None:
    fake = fake_deadline_factory(users={"ann": "right"}, pools=("none", "gpu"))
    dialog = make_dialog(layers)
    type_into(dialog.editors["deadline_url"], fake.url)
    type_into(dialog.editors["deadline_password"], "wrong")
    started = time.monotonic()
    dialog.test_button.click()
    assert time.monotonic() - started < 1  # the Web Service is asked from a thread
    assert dialog.test_button.text() == "Testing…" and not dialog.test_button.isEnabled()
    wait_until(qapp, dialog.test_button.isEnabled)
    assert dialog.test_label.text() == (f"Deadline answers at {fake.url} but refuses the login as ann: check the "
                                        "user and the password (Deadline Monitor > Tools > User Settings > Web "
                                        "Service password)")
    assert dialog.test_label.objectName() == "TestError"
    type_into(dialog.editors["deadline_password"], "right")
    dialog.test_button.click()
    wait_until(qapp, dialog.test_button.isEnabled)
    assert dialog.test_label.text() == f"Connected to Deadline at {fake.url} as ann; pools: none, gpu"
    assert dialog.test_label.objectName() == "TestOk"
    fake.stop()
    dialog.test_button.click()
    wait_until(qapp, dialog.test_button.isEnabled)
    assert dialog.test_label.text() == (f"Nothing answers at {fake.url} (connection refused): check the address "
                                        "and that the Web Service is running")
    assert not Path(layers["COMFYFARM_CONFIG"]).read_text().count("right")  # testing saves nothing


def test_connection_uses_the_studio_address_when_the_field_is_empty(make_dialog, layers: Dict[str, str],
                                                                   qapp: Any) -> None:
    asked: List[tuple] = []

    def tester(url: str, user: Any, password: Any) -> Check:
        asked.append((url, user, password))
        return Check("ok", "fine")

    dialog = make_dialog(layers, tester=tester)
    dialog.test_button.click()
    wait_until(qapp, dialog.test_button.isEnabled)
    assert asked == [("http://deadline:8081", "ann", None)]


def test_a_web_service_that_never_answers_times_out(make_dialog, layers: Dict[str, str], qapp: Any) -> None:
    release = threading.Event()

    def stuck(url: str, user: Any, password: Any) -> Check:
        release.wait(10)
        return Check("ok", "too late")

    dialog = make_dialog(layers, tester=stuck, test_timeout_s=0.2)
    dialog.test_button.click()
    wait_until(qapp, dialog.test_button.isEnabled, timeout_s=5)
    assert dialog.test_label.text() == "Deadline did not answer within 0.2 s"
    release.set()
    time.sleep(0.1)
    qapp.processEvents()
    assert dialog.test_label.text() == "Deadline did not answer within 0.2 s"  # the late answer is dropped
