from __future__ import annotations

from pathlib import Path

import pytest

from flame_submitter.config import ConfigError, load_config


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("comfyui_dir: /opt/ComfyUI\ncomfyui_args: --cpu --lowvram\nbase_port: 9000\n"
                    "comfyui_env: {PYTHONPATH: /shims}\ninstances: 2\n")
    config = load_config(path, environ={"COMFYUI_PYTHON": "/venv/bin/python"})
    assert (config.comfyui_dir, config.comfyui_python, config.base_port, config.instances) == (
        "/opt/ComfyUI", "/venv/bin/python", 9000, 2)
    assert config.comfyui_args == ("--cpu", "--lowvram")
    assert config.comfyui_env == {"PYTHONPATH": "/shims"}
    env = load_config(path, environ={"COMFYUI_DIR": "/other", "COMFYUI_URL": "http://a:1,http://b:2"})
    assert env.comfyui_dir == "/other"
    assert env.comfyui_urls == ("http://a:1", "http://b:2")


def test_no_file_means_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COMFYFARM_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = load_config(environ={})
    assert (config.comfyui_dir, config.base_port, config.chunk_size, config.source) == (None, 8188, 10, "defaults")


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("comfyui_folder: /opt/ComfyUI\n")
    with pytest.raises(ConfigError, match=r"config.yaml: unknown key\(s\) comfyui_folder: the keys are base_port, "):
        load_config(path, environ={})


def test_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file: create it or unset COMFYFARM_CONFIG"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_studio_file_then_user_file_then_environment(tmp_path: Path) -> None:
    studio = tmp_path / "studio.yaml"
    studio.write_text("deadline_url: http://deadline:8081\njobs_root: /mnt/projects/comfyfarm/jobs\n"
                      "path_mappings:\n  - {linux: /mnt/projects, macos: /Volumes/projects}\nfarm_os: linux\n")
    user = tmp_path / "user.yaml"
    user.write_text("deadline_user: ann\njobs_root: /mnt/projects/ann/jobs\n")
    config = load_config(user, studio_path=studio, environ={"COMFYFARM_DEADLINE_PASSWORD": "hunter2",
                                                            "COMFYFARM_INBOX_ROOT": "/mnt/projects/inbox"})
    assert (config.deadline_url, config.deadline_user, config.jobs_root, config.inbox_root) == (
        "http://deadline:8081", "ann", "/mnt/projects/ann/jobs", "/mnt/projects/inbox")
    assert config.deadline_password == "hunter2"
    assert dict(config.path_mappings[0].prefixes) == {"linux": "/mnt/projects", "macos": "/Volumes/projects"}
    shown = config.describe()
    assert shown["deadline_password"] == {"value": "********", "from": "$COMFYFARM_DEADLINE_PASSWORD"}
    assert shown["jobs_root"]["from"] == str(user) and shown["deadline_url"]["from"] == str(studio)
    assert "hunter2" not in repr(config)


def test_config_show_masks_the_password(tmp_path: Path) -> None:
    import subprocess
    import sys

    user = tmp_path / "user.yaml"
    user.write_text("deadline_user: ann\ndeadline_password: hunter2\n")
    result = subprocess.run([sys.executable, "-m", "flame_submitter.cli", "config", "show"],
                            env={"COMFYFARM_CONFIG": str(user), "PATH": "/usr/bin:/bin",
                                 "COMFYFARM_STUDIO_CONFIG": str(user)},
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert f'deadline_password: "********"    # {user}' in result.stdout.splitlines()


def test_bad_values_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("farm_os: beos\n")
    with pytest.raises(ConfigError, match="farm_os: 'beos' is not an OS: use linux, macos or windows"):
        load_config(path, environ={})
    path.write_text("path_mappings:\n  - {linux: /mnt/p}\n")
    with pytest.raises(ConfigError, match=r"path_mappings\[0\]: name the same storage on at least two"):
        load_config(path, environ={})
