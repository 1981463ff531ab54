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
