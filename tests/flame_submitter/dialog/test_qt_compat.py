"""Which Qt binding the dialogs get: the one asked for, else the one already loaded, else PySide6, then PySide2."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BINDINGS = ("PySide6", "PySide2")


def binding_in_a_fresh_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "COMFYFARM_QT_BINDING"}
    environ.update(env, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    probe = code + "\nimport flame_submitter.dialog.qt_compat as q; print(q.QT_BINDING)"
    return subprocess.run([sys.executable, "-c", probe],
                          env=environ, capture_output=True, text=True, timeout=60, cwd=REPO)


installed = [name for name in BINDINGS if importlib.util.find_spec(name) is not None]


@pytest.mark.skipif(not installed, reason="needs PySide6 or PySide2")
def test_the_binding_already_loaded_is_the_one_used() -> None:
    for name in installed:  # inside Flame, Flame's own binding is loaded before any hook runs
        result = binding_in_a_fresh_python(f"import {name}")
        assert result.stdout.strip() == name, result.stderr


@pytest.mark.skipif(len(installed) != 1, reason="needs exactly one of PySide6 and PySide2")
def test_a_binding_asked_for_is_never_swapped_for_the_other() -> None:
    missing = next(name for name in BINDINGS if name not in installed)
    result = binding_in_a_fresh_python("", COMFYFARM_QT_BINDING=missing)
    assert result.returncode != 0 and f"No module named '{missing}'" in result.stderr
    result = binding_in_a_fresh_python("", COMFYFARM_QT_BINDING="Qt4")
    assert "COMFYFARM_QT_BINDING='Qt4': use PySide6 or PySide2, or unset it" in result.stderr
