from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO / "workflows"


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """Copy a shipped package into tmp_path and let the test change its graph and manifest."""

    def make(source: str = "blur", *, graph_edit=None, manifest_edit=None, name: str = "") -> Path:
        folder = tmp_path / (name or source)
        shutil.copytree(WORKFLOWS / source, folder)
        if graph_edit:
            graph = json.loads((folder / "workflow.json").read_text())
            graph_edit(graph)
            (folder / "workflow.json").write_text(json.dumps(graph))
        if manifest_edit:
            manifest = yaml.safe_load((folder / "workflow.yaml").read_text())
            manifest_edit(manifest)
            (folder / "workflow.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return folder

    return make
