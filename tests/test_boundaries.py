"""What the files outside the packages may import. import-linter (``[tool.importlinter]`` in pyproject.toml)
sees packages only; these files are loaded by other programs, each with its own Python:

- The Deadline plugin file (``farm_plugin/ComfyUI/ComfyUI.py``) runs in Deadline's own Python, where comfyfarm
  is not installed: it imports the standard library and Deadline's runtime (``Deadline``, ``FranticX``) and
  runs comfyfarm as a process (``python -m …``).
- The Flame hook (``flame_submitter/hooks/comfyfarm_hooks.py``) is imported by Flame when it starts: at module
  level it imports the standard library only; ``flame`` and comfyfarm (through ``flame_submitter.flame``) are
  imported inside the functions Flame calls.
- ``farm_plugin.installation``, and what it imports of ``farm_plugin``, import the standard library only: the
  installer runs it in Pythons where nothing else is installed yet.
- The ComfyUI custom-node folder (``farm_plugin/ComfyUINodes``) is loaded by ComfyUI, in ComfyUI's Python: its
  pack imports the standard library, NumPy and torch (which every ComfyUI has) and its own modules, never
  comfyfarm; and ComfyUI imports every ``.py`` file and folder in it, so it holds the pack and a README only.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_FILES = (REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.py",)
HOOK_FILE = REPO / "flame_submitter" / "hooks" / "comfyfarm_hooks.py"
COMFYUI_NODES = REPO / "farm_plugin" / "ComfyUINodes"
COMFYUI_PACK = COMFYUI_NODES / "comfyfarm_frames"
COMFYUI_RUNTIME = frozenset({"numpy", "torch"})  # what every ComfyUI's Python has besides the standard library
DEADLINE_RUNTIME = frozenset({"Deadline", "FranticX", "System", "clr"})  # Deadline's Python and its .NET bridge
OUR_PACKAGES = ("farm_plugin", "flame_submitter")

# The standard library's top-level modules these files may use. Explicit, because Python 3.9 (Flame 2023 and
# 2024) has no sys.stdlib_module_names; test_the_allow_list_is_the_standard_library checks it where it can.
STANDARD_LIBRARY = frozenset({
    "__future__", "abc", "argparse", "ast", "base64", "binascii", "bisect", "calendar", "codecs", "collections",
    "concurrent", "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "enum", "errno", "fnmatch", "fractions", "functools", "getpass", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html", "http", "importlib", "inspect", "io", "ipaddress", "itertools", "json", "locale", "logging", "math",
    "mimetypes", "numbers", "operator", "os", "pathlib", "platform", "pprint", "queue", "random", "re", "secrets",
    "select", "selectors", "shlex", "shutil", "signal", "site", "socket", "stat", "string", "struct", "subprocess",
    "sys", "sysconfig", "tarfile", "tempfile", "textwrap", "threading", "time", "traceback", "types", "typing",
    "unicodedata", "urllib", "uuid", "warnings", "weakref", "zipfile", "zlib",
})


def imports_of(tree: ast.AST, *, module_level_only: bool) -> Iterator[Tuple[int, str]]:
    """``(line, module)`` for every import; ``module_level_only``: only those that run when the file is
    imported (module body, and the if/try/with/class blocks in it, not function bodies)."""
    def visit(node: ast.AST) -> Iterator[Tuple[int, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                yield from ((child.lineno, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                yield child.lineno, "." * child.level + (child.module or "")
            elif module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            else:
                yield from visit(child)

    yield from visit(tree)


def top(module: str) -> str:
    return module.split(".")[0]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_allow_list_is_the_standard_library() -> None:
    names = getattr(sys, "stdlib_module_names", None)
    if names is None:
        pytest.skip("sys.stdlib_module_names arrived in Python 3.10")
    assert sorted(STANDARD_LIBRARY - set(names)) == []


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: p.name)
def test_the_deadline_plugins_import_only_the_standard_library_and_deadline(path: Path) -> None:
    wrong = [f"{path.name}:{line}: {module}" for line, module in imports_of(parse(path), module_level_only=False)
             if top(module) not in STANDARD_LIBRARY | DEADLINE_RUNTIME]
    assert wrong == [], "Deadline's Python has nothing else: run comfyfarm as a process (python -m …) instead"


def test_the_hook_imports_only_the_standard_library_when_flame_loads_it() -> None:
    wrong = [f"{HOOK_FILE.name}:{line}: {module}" for line, module in imports_of(parse(HOOK_FILE),
                                                                               module_level_only=True)
             if top(module) not in STANDARD_LIBRARY]
    assert wrong == [], "import flame and comfyfarm inside the functions Flame calls, never at import time"


def test_the_hook_reaches_comfyfarm_only_through_flame_submitter_flame() -> None:
    wrong = [f"{HOOK_FILE.name}:{line}: {module}" for line, module in imports_of(parse(HOOK_FILE),
                                                                               module_level_only=False)
             if top(module) not in STANDARD_LIBRARY | {"flame"}
             and not (module == "flame_submitter.flame" or module.startswith("flame_submitter.flame."))]
    assert wrong == []


def test_importing_the_hook_loads_nothing_but_the_standard_library() -> None:
    """As Flame does at start: the hook file on its own loads no module from outside the standard library
    (nothing of comfyfarm, Qt or a site-packages folder)."""
    code = (
        "import importlib.util, json, os, sys, sysconfig\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('comfyfarm_hooks', {str(HOOK_FILE)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "homes = [os.path.realpath(sysconfig.get_paths()[key]) for key in ('stdlib', 'platstdlib')]\n"
        "def outside(name):\n"
        "    path = getattr(sys.modules[name], '__file__', None)\n"
        "    if path is None:\n"
        "        return False  # built into Python\n"
        "    path = os.path.realpath(path)\n"
        "    return 'site-packages' in path or not any(path.startswith(home + os.sep) for home in homes)\n"
        "print(json.dumps(sorted(name for name in set(sys.modules) - before if outside(name))))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=str(HOOK_FILE.parent))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def module_file(module: str) -> Path:
    path = REPO.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_farm_plugin_installation_imports_only_the_standard_library() -> None:
    """Followed through every farm_plugin module it imports, at any depth."""
    seen: Set[str] = set()
    wrong: List[str] = []
    # importing any of its modules runs farm_plugin/__init__.py and the package's __init__.py first
    pending = ["farm_plugin", "farm_plugin.installation"] + [
        f"farm_plugin.installation.{path.stem}" for path in (REPO / "farm_plugin" / "installation").glob("*.py")
        if path.stem != "__init__"]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(module)
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Import):
                found = [(node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                found = [(node.lineno, source)] + [(node.lineno, f"{source}.{alias.name}") for alias in node.names
                                                   if module_file(f"{source}.{alias.name}").is_file()]
            else:
                continue
            for line, imported in found:
                parts = imported.split(".")
                if parts[0] == "farm_plugin":
                    pending.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                elif parts[0] not in STANDARD_LIBRARY:
                    wrong.append(f"{path.relative_to(REPO)}:{line}: {imported}")
    assert wrong == [], "the installer runs farm_plugin.installation before anything else is installed"
    assert {"farm_plugin", "farm_plugin.installation.manifest", "farm_plugin.installation.layout"} <= seen


def test_the_comfyui_node_pack_imports_only_the_standard_library_numpy_torch_and_itself() -> None:
    files = sorted(COMFYUI_PACK.rglob("*.py"))
    wrong = [f"{path.relative_to(REPO)}:{line}: {module}" for path in files
             for line, module in imports_of(parse(path), module_level_only=False)
             if not (module.startswith(".") and not module.startswith(".."))  # a module of the pack itself
             and top(module) not in STANDARD_LIBRARY | COMFYUI_RUNTIME]
    assert wrong == [], "the pack runs in ComfyUI's Python, where comfyfarm is not installed"
    assert {path.name for path in files} >= {"__init__.py", "nodes.py"}


def test_the_comfyui_nodes_folder_holds_the_pack_and_its_readme_only() -> None:
    """ComfyUI imports every .py file and every folder of a custom-nodes folder as a node pack."""
    entries = sorted(path.name for path in COMFYUI_NODES.iterdir() if path.name != "__pycache__")
    assert entries == ["README.md", "comfyfarm_frames"]
    assert (COMFYUI_PACK / "__init__.py").is_file()
