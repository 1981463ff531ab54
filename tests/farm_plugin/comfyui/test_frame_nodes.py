"""comfyfarm's frame nodes (farm_plugin/ComfyUINodes/comfyfarm_frames) called directly, without a ComfyUI server.

The nodes need torch, which is ComfyUI's and not installed in comfyfarm's test venv, so the cases
(``frame_nodes_cases.py``) run once in ComfyUI's Python and each is reported here as its own test. Real tier:
skipped without COMFYUI_DIR (COMFYUI_PYTHON, default: its venv, is the Python that runs them).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest

from farm_plugin.comfyui.server import default_python
from tests.real_comfyui import REAL_SKIP_REASON, real_comfyui_config

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "frame_nodes_cases.py"
PACK = HERE.parents[2] / "farm_plugin" / "ComfyUINodes" / "comfyfarm_frames"
CASES = [node.name for node in ast.parse(CASES_FILE.read_text(encoding="utf-8")).body
         if isinstance(node, ast.FunctionDef) and node.name.startswith("case_")]
RUN_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def case_results(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Optional[str]]:
    scratch = tmp_path_factory.mktemp("frame-nodes")
    config = real_comfyui_config(scratch)
    if config is None:
        pytest.skip(REAL_SKIP_REASON)
    python = config.python or default_python(config.comfyui_dir)
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")  # no __pycache__ in the source tree
    done = subprocess.run([python, str(CASES_FILE), str(PACK), str(scratch / "cases")], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_SECONDS, env=environment, cwd=str(scratch))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_case_ran(case_results: Dict[str, Optional[str]]) -> None:
    assert sorted(case_results) == sorted(CASES)
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda name: name[len("case_"):])
def test_frame_nodes(case: str, case_results: Dict[str, Optional[str]]) -> None:
    failure = case_results.get(case, "the case did not run")
    assert failure is None, failure
