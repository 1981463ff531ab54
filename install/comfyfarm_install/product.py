"""What this checkout (or release folder) ships: comfyfarm's own files, its version, its requirements."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import List

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_FOLDERS = ("farm_plugin", "flame_submitter", "workflows", "job_templates")
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def product_version(root: Path = ROOT) -> str:
    """``__version__`` of farm_plugin: the one version of the whole product."""
    text = (root / "farm_plugin" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{root / 'farm_plugin' / '__init__.py'} has no __version__: a damaged checkout")
    return match.group(1)


def _shipped(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return (path.is_file() and path.suffix not in SKIPPED_SUFFIXES
            and not any(p == "__pycache__" or p.startswith(".") or p.endswith(".egg-info") for p in parts))


def product_files(root: Path = ROOT) -> List[Path]:
    """comfyfarm's own files, relative to ``root``: the packages, the workflows and the job templates."""
    found = []
    for folder in PRODUCT_FOLDERS:
        found.extend(p.relative_to(root) for p in (root / folder).rglob("*") if _shipped(p, root))
    return sorted(found)


def requirements(root: Path = ROOT) -> List[str]:
    """The third-party requirements from pyproject.toml's ``[project] dependencies`` (``name>=version``)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise RuntimeError(f"{root / 'pyproject.toml'} lists no dependencies: a damaged checkout")
    return re.findall(r'"([^"]+)"', match.group(1))
