"""The Settings dialog's rules without Qt: origins, checks as the artist types, Save, Test connection."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Dict

import pytest
import yaml

from flame_submitter.config import ConfigError, load_config
from flame_submitter.config.settings_checks import check_url
from flame_submitter.config.settings_model import SettingsModel
from flame_submitter.deadline.connection import try_deadline_connection

USER_FILE = """\
# Ann's comfyfarm settings
deadline_user: ann   # my Deadline login
chunk_size: 5
comfyui_env:
  PYTHONPATH: /shims

instances: 2
"""


@pytest.fixture
def layers(tmp_path: Path) -> Dict[str, str]:
    """A studio file (farm, jobs folder, shared root), the artist's file, and the environment to read them."""
    (tmp_path / "projects" / "comfyfarm" / "jobs").mkdir(parents=True)
    (tmp_path / "projects" / "comfyfarm" / "inbox").mkdir(parents=True)
    studio = tmp_path / "etc" / "studio.yaml"
    studio.parent.mkdir()
    studio.write_text(yaml.safe_dump({"deadline_url": "http://deadline:8081",
                                      "jobs_root": str(tmp_path / "projects" / "comfyfarm" / "jobs"),
                                      "shared_roots": [str(tmp_path / "projects")]}))
    user = tmp_path / "home" / "config.yaml"
    user.parent.mkdir()
    user.write_text(USER_FILE)
    return {"COMFYFARM_STUDIO_CONFIG": str(studio), "COMFYFARM_CONFIG": str(user)}


def test_each_value_says_where_it_comes_from(layers: Dict[str, str], tmp_path: Path) -> None:
    inbox = str(tmp_path / "projects" / "comfyfarm" / "inbox")
    model = SettingsModel.load(dict(layers, COMFYFARM_INBOX_ROOT=inbox, COMFYFARM_DEADLINE_PASSWORD="hunter2"))
    studio = layers["COMFYFARM_STUDIO_CONFIG"]
    assert model.shown["deadline_url"] == "" and model.shown["deadline_user"] == "ann"
    assert model.origin_text("deadline_url") == f"Studio: http://deadline:8081 (set in {studio})"
    assert model.placeholder("deadline_url") == "http://deadline:8081 (studio)"
    assert model.origin_text("deadline_user") == "Yours"
    assert model.origin_text("inbox_root") == ("Set by $COMFYFARM_INBOX_ROOT in Flame's environment: it wins over "
                                               "what you save here")
    assert model.placeholder("inbox_root") == f"{inbox} ($COMFYFARM_INBOX_ROOT)"
    assert model.origin_text("instances") == "Yours"
    assert model.placeholder("instances") == "1 (default)"
    assert model.origin_text("comfyui_python") == "Default: the Python in ComfyUI's venv, else this one"
    # the password is never shown, wherever it comes from
    assert "hunter2" not in " ".join(model.origin_text(k) + model.placeholder(k) for k in model.shown)
    model.set("deadline_url", "http://farm:8081")
    assert model.origin_text("deadline_url") == (
        f"Yours (not saved yet); the studio's is http://deadline:8081 (set in {studio})")
    model.set("deadline_url", "http://deadline:8081")
    assert model.origin_text("deadline_url") == "Yours (not saved yet); the same as the studio's"


@pytest.mark.parametrize(("text", "message"), [
    ("deadline:8081", "Not a Web Service address: start with http:// or https:// and a host name "
                      "(e.g. http://deadline:8081)"),
    ("http://", "Not a Web Service address: start with http:// or https:// and a host name (e.g. http://deadline:8081)"),
    ("http://dead line:8081", "An address has no spaces (e.g. http://deadline:8081)"),
    ("http://ann:pw@deadline:8081", "Put the user and the password in their own fields, not in the address"),
    ("http://deadline:80x1", "The port must be a number from 1 to 65535 (e.g. http://deadline:8081)"),
])
def test_a_wrong_address_says_what_an_address_looks_like(text: str, message: str) -> None:
    found = check_url(text)
    assert found is not None and (found.level, found.text) == ("error", message)


def test_addresses_that_work(layers: Dict[str, str]) -> None:
    assert check_url("http://deadline:8081") is None and check_url("https://deadline.studio.lan:4434/") is None
    assert check_url("http://deadline").level == "warning"  # allowed, but the Web Service listens on 8081


def test_checks_as_the_artist_types(layers: Dict[str, str], tmp_path: Path) -> None:
    model = SettingsModel.load(layers)
    assert model.checks() == {} and model.errors() == []
    model.set("jobs_root", str(tmp_path / "nowhere"))
    assert model.check("jobs_root").text == (f"There is no folder {tmp_path / 'nowhere'} on this machine: check the "
                                             "path (is the storage mounted?)")
    model.set("jobs_root", "projects/jobs")
    assert model.check("jobs_root").text == ("Give the full path of the folder (starting with /): 'projects/jobs' is "
                                             "relative")
    (tmp_path / "scratch").mkdir()
    model.set("jobs_root", str(tmp_path / "scratch"))  # exists, but the farm does not see it
    assert model.check("jobs_root").level == "warning"
    assert model.check("jobs_root").text.startswith("Not under the shared roots or path mappings")
    model.set("shared_roots", f"{tmp_path / 'projects'}, {tmp_path / 'scratch'}")
    assert model.check("jobs_root") is None
    model.set("comfyui_dir", str(tmp_path / "scratch"))
    assert model.check("comfyui_dir").text == (f"{tmp_path / 'scratch'} is not a ComfyUI folder (there is no main.py "
                                               "in it)")
    model.set("comfyui_python", str(tmp_path / "etc" / "studio.yaml"))
    assert model.check("comfyui_python").text.endswith("is not a program this user can run (not executable)")
    model.set("instances", "0")
    assert model.check("instances").text == "A whole number from 1 to 64"
    model.set("instances", "2")
    model.set("gpus", "0,x")
    assert model.check("gpus").text == "GPUs are numbers separated by commas, e.g. 0,1 (not 'x')"
    model.set("gpus", "0,1,0")
    assert model.check("gpus").text == "A GPU is listed twice: one ComfyUI per GPU"
    model.set("gpus", "0, 1")
    assert model.check("gpus") is None
    assert model.check("instances").text == ("GPUs are listed: Run locally starts one ComfyUI per GPU, not this "
                                             "number")
    model.set("path_mappings", [{"linux": "/mnt/projects", "macos": "", "windows": ""}])
    assert model.check("path_mappings").text == ("Row 1: name the same storage on at least two of linux, macos, "
                                                 "windows")
    assert model.errors() == [  # in the order of the form
        "Path mappings: Row 1: name the same storage on at least two of linux, macos, windows",
        f"ComfyUI folder: {tmp_path / 'scratch'} is not a ComfyUI folder (there is no main.py in it)",
        f"ComfyUI Python: {tmp_path / 'etc' / 'studio.yaml'} is not a program this user can run (not executable)",
    ]
    with pytest.raises(ConfigError, match="Path mappings: Row 1"):
        model.save()
    assert Path(layers["COMFYFARM_CONFIG"]).read_text() == USER_FILE  # nothing written


def test_save_changes_only_what_was_edited(layers: Dict[str, str], tmp_path: Path) -> None:
    user = Path(layers["COMFYFARM_CONFIG"])
    model = SettingsModel.load(layers)
    model.set("deadline_url", "http://farm:8081")
    model.set("deadline_password", "hunter2")
    model.set("instances", "")  # back to the studio's / the default
    model.set("gpus", "0,1")
    model.set("path_mappings", [{"linux": str(tmp_path / "projects"), "macos": "/Volumes/projects", "windows": ""}])
    assert set(model.changes()) == {"deadline_url", "deadline_password", "instances", "gpus", "path_mappings"}
    assert model.save() == user
    text = user.read_text()
    assert text.startswith("# Ann's comfyfarm settings\ndeadline_user: ann   # my Deadline login\nchunk_size: 5\n")
    assert "instances" not in text
    assert yaml.safe_load(text) == {
        "deadline_user": "ann", "chunk_size": 5, "comfyui_env": {"PYTHONPATH": "/shims"},
        "deadline_url": "http://farm:8081", "deadline_password": "hunter2", "gpus": [0, 1],
        "path_mappings": [{"linux": str(tmp_path / "projects"), "macos": "/Volumes/projects"}]}
    assert stat.S_IMODE(user.stat().st_mode) == 0o600  # it holds a password: the owner only
    assert [p.name for p in user.parent.iterdir()] == ["config.yaml"]  # no temporary file left behind
    config = load_config(environ=layers)
    assert (config.deadline_url, config.gpus, config.instances, config.chunk_size) == (
        "http://farm:8081", ("0", "1"), 1, 5)
    assert config.origins["deadline_url"] == str(user)
    assert model.changes() == {} and model.origin_text("deadline_url").startswith("Yours; the studio's is")


def test_save_creates_the_file_and_its_folder(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COMFYFARM_STUDIO_CONFIG": str(tmp_path / "none.yaml")}
    model = SettingsModel.load(env)
    assert model.sources.user_path == tmp_path / "xdg" / "comfyfarm" / "config.yaml"
    model.set("deadline_user", "ann")
    model.save()
    assert yaml.safe_load(model.sources.user_path.read_text()) == {"deadline_user": "ann"}


def test_a_file_that_is_not_yaml_is_never_overwritten(layers: Dict[str, str]) -> None:
    user = Path(layers["COMFYFARM_CONFIG"])
    user.write_text("deadline_user: [ann\n")
    model = SettingsModel.load(layers)
    assert model.sources.problems and "not valid YAML" in model.sources.problems[0]
    model.set("deadline_user", "bob")
    assert model.errors()[0].startswith(f"{user}: not valid YAML")
    with pytest.raises(ConfigError, match="fix it by hand, or move it away, before saving settings"):
        model.save()
    assert user.read_text() == "deadline_user: [ann\n"


def test_a_file_with_unknown_keys_opens_and_keeps_them(layers: Dict[str, str]) -> None:
    user = Path(layers["COMFYFARM_CONFIG"])
    user.write_text("deadline_user: ann\nfavourite_colour: teal\n")
    model = SettingsModel.load(layers)  # load_config refuses this file; the dialog still opens on it
    assert model.sources.problems == [f"comfyfarm cannot use these settings: {user}: unknown key(s) favourite_colour: "
                                      f"the keys are {model.sources.problems[0].split('the keys are ')[1]}"]
    model.set("deadline_user", "bob")
    model.save()
    assert yaml.safe_load(user.read_text()) == {"deadline_user": "bob", "favourite_colour": "teal"}


# -- Test connection, against the Web Service double ------------------------------------------------------


def test_connection_up(fake_deadline) -> None:
    found = try_deadline_connection(fake_deadline.url, "ann", None, timeout_s=5)
    assert (found.level, found.text) == ("ok", f"Connected to Deadline at {fake_deadline.url} as ann; pools: none, "
                                               "gpu, cpu")


def test_connection_refused_login(fake_deadline_factory) -> None:
    fake = fake_deadline_factory(users={"ann": "right"}, pools=("none", "gpu"))
    found = try_deadline_connection(fake.url, "ann", "wrong", timeout_s=5)
    assert (found.level, found.text) == ("error", f"Deadline answers at {fake.url} but refuses the login as ann: "
                                                  "check the user and the password (Deadline Monitor > Tools > User "
                                                  "Settings > Web Service password)")
    assert try_deadline_connection(fake.url, "ann", "right", timeout_s=5).level == "ok"


def test_connection_down(fake_deadline_factory) -> None:
    fake = fake_deadline_factory()
    url = fake.url
    fake.stop()
    found = try_deadline_connection(url, None, None, timeout_s=2)
    assert (found.level, found.text) == ("error", f"Nothing answers at {url} (connection refused): check the "
                                                  "address and that the Web Service is running")


def test_connection_slow(fake_deadline) -> None:
    fake_deadline.set_faults(delay_s=3)
    found = try_deadline_connection(fake_deadline.url, None, None, timeout_s=0.5)
    assert found.text == (f"Deadline did not answer within 0.5 s at {fake_deadline.url}: it is busy or stuck; try "
                          "again")


def test_the_password_file_mode_is_kept_for_files_without_secrets(layers: Dict[str, str]) -> None:
    user = Path(layers["COMFYFARM_CONFIG"])
    os.chmod(user, 0o644)
    model = SettingsModel.load(layers)
    model.set("deadline_user", "bob")
    model.save()
    assert stat.S_IMODE(user.stat().st_mode) == 0o644
