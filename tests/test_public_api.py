"""Every package says in its ``__init__.py`` what other packages may use (``__all__``), and the code keeps to it.

- Every name in a package's ``__all__`` exists: ``from package import name`` works (most packages load the
  name from its module on first use, so that importing a package does no work).
- A module imports from another package only the names that package lists in ``__all__`` (from the module
  that defines them, or from the package: both are fine), never a ``_private`` name or a ``_private`` module.
  A module at the root of ``farm_plugin`` (``paths``, ``errors``, …) is a package of its own: its public
  names, or its ``__all__`` where it has one.
- No module imports a ``_private`` name from another module, inside its package or not: a name two modules
  share is public in its home.

The importers checked are the product's: ``farm_plugin``, ``flame_submitter`` (with the Flame hook), and the
installer (``install/comfyfarm_install``), whose contract is ``farm_plugin.installation``. Left out: the
custom-node folder ``farm_plugin/ComfyUINodes``, whose pack is a package of ComfyUI's (loaded by ComfyUI, in
its Python, with torch), not of ``farm_plugin``; tests/test_boundaries.py checks what it imports.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("farm_plugin", "flame_submitter")
OTHER_HOSTS = (REPO / "farm_plugin" / "ComfyUINodes",)  # folders of packages that another program loads


def product_tree(pattern: str) -> List[Path]:
    """The files of ``ROOTS`` that match ``pattern``, at any depth, but those in ``OTHER_HOSTS``."""
    return [path for root in ROOTS for path in sorted((REPO / root).rglob(pattern))
            if not any(path.is_relative_to(folder) for folder in OTHER_HOSTS)]
QT = ("PySide6", "PySide2", "shiboken6", "shiboken2")


@dataclass(frozen=True)
class ImportedName:
    where: str  # path:line of the import statement
    importer: str  # the importing module
    module: str  # the module imported from (absolute)
    name: Optional[str]  # the name imported from it; None for ``import module``


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] == "install":  # install/comfyfarm_install/x.py is the comfyfarm_install package
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return (path / "__init__.py").is_file() or path.with_suffix(".py").is_file()


def is_package(dotted: str) -> bool:
    return (REPO.joinpath(*dotted.split(".")) / "__init__.py").is_file()


def unit(dotted: str) -> str:
    """The package a module belongs to for these rules: ``farm_plugin.frames`` for ``farm_plugin.frames.pattern``;
    a module at a root's top (``farm_plugin.paths``) is its own."""
    return ".".join(dotted.split(".")[:2])


def product_files() -> List[Path]:
    files = product_tree("*.py")
    return files + sorted((REPO / "install" / "comfyfarm_install").glob("*.py"))


def imported_names(path: Path) -> Iterator[ImportedName]:
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportedName(where, importer, alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if is_module(f"{source}.{alias.name}"):  # a module imported by name: ``from pkg import module``
                    yield ImportedName(where, importer, f"{source}.{alias.name}", None)
                else:
                    yield ImportedName(where, importer, source, alias.name)


def ours(dotted: str) -> bool:
    return dotted.split(".")[0] in ROOTS


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def public_names(unit_name: str) -> Set[str]:
    """What another package may import from ``unit_name``: ``__all__``, else (a root-level module without
    one) every public name."""
    module = importlib.import_module(unit_name)
    listed = getattr(module, "__all__", None)
    if listed is not None:
        return set(listed)
    return {name for name in vars(module) if not private(name)}


def test_every_package_lists_what_other_packages_may_use() -> None:
    missing = [module_name(path) for path in product_tree("__init__.py")
               if "__all__" not in path.read_text(encoding="utf-8")]
    assert missing == [], "say in __all__ what other packages may use (an empty list if nothing)"


def test_every_name_in_all_exists() -> None:
    """In a fresh Python, as another package would: ``getattr(package, name)`` for each name of ``__all__``."""
    packages = sorted(module_name(path) for path in product_tree("__init__.py"))
    code = (
        "import importlib, importlib.util, json, sys\n"
        "qt = any(importlib.util.find_spec(m) for m in ('PySide6', 'PySide2'))\n"
        "found = {}\n"
        "for package in sys.argv[1:]:\n"
        "    module = importlib.import_module(package)\n"
        "    names = list(getattr(module, '__all__', []))\n"
        "    problems = [f'{name} is listed twice' for name in sorted(set(names)) if names.count(name) > 1]\n"
        "    for name in names:\n"
        "        try:\n"
        "            getattr(module, name)\n"
        "        except ImportError as exc:\n"
        "            if qt or not str(exc.name or '').startswith(('PySide', 'shiboken')):\n"
        "                problems.append(f'{name}: {exc!r}')\n"
        "        except AttributeError as exc:\n"
        "            problems.append(f'{name}: {exc}')\n"
        "    if problems:\n"
        "        found[package] = problems\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *packages], capture_output=True, text=True, timeout=120,
                          cwd=str(REPO))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {}


def test_no_private_name_is_imported_from_another_module() -> None:
    wrong = [f"{item.where}: {item.name} from {item.module}" for path in product_files()
             for item in imported_names(path)
             if ours(item.module) and item.name is not None and private(item.name)]
    assert wrong == [], "a name that two modules share is public in its home: drop its underscore"


def test_other_packages_import_only_what_a_package_lists_in_all() -> None:
    publics: Dict[str, Set[str]] = {}
    wrong: List[str] = []
    for path in product_files():
        for item in imported_names(path):
            if not ours(item.module) or unit(item.module) == unit(item.importer):
                continue
            target = unit(item.module)
            inside = item.module.split(".")[2:]
            if any(private(part) for part in inside):
                wrong.append(f"{item.where}: imports the private module {item.module}")
                continue
            if item.name is None and len(inside) != 1:
                continue  # ``import farm_plugin.paths`` or a whole package: nothing private in it
            name = item.name if item.name is not None else inside[0]
            if target not in publics:
                publics[target] = public_names(target)
            if name not in publics[target]:
                home = target.replace(".", "/") + ("/__init__.py" if is_package(target) else ".py")
                wrong.append(f"{item.where}: imports {name} from {item.module}, which {home} does not list in "
                             "__all__")
    assert wrong == [], ("add each name to the __all__ (_PUBLIC) of its package if other packages may use it, "
                         "or keep the use inside the package")


def test_the_custom_node_folder_is_left_out_of_the_walk() -> None:
    files = product_tree("*.py")
    assert not [path for path in files if path.is_relative_to(REPO / "farm_plugin" / "ComfyUINodes")]
    assert REPO / "farm_plugin" / "comfyui" / "client.py" in files


def test_importing_a_package_does_no_work() -> None:
    """No package imports Qt until a name is used (Flame loads the hook, and the hook the packages, at start);
    a package whose ``__init__.py`` loads its names lazily (``_PUBLIC``) imports nothing but the standard
    library: none of its modules, nothing third-party."""
    packages = sorted(module_name(path) for path in product_tree("__init__.py"))
    lazy = [package for package in packages
            if "_PUBLIC" in (REPO.joinpath(*package.split(".")) / "__init__.py").read_text(encoding="utf-8")]
    code = (
        "import importlib, json, os, sys, sysconfig\n"
        "package = sys.argv[1]\n"
        "parents = {'.'.join(package.split('.')[:i]) for i in range(1, package.count('.') + 2)}\n"
        "parents |= {'farm_plugin', 'farm_plugin.public'}  # the shared lazy __getattr__, standard library only\n"
        "homes = [os.path.realpath(sysconfig.get_paths()[key]) for key in ('stdlib', 'platstdlib')]\n"
        "def outside(name):\n"
        "    path = getattr(sys.modules[name], '__file__', None)\n"
        "    path = os.path.realpath(path) if path else None\n"
        "    return bool(path) and ('site-packages' in path or not any(path.startswith(h + os.sep) for h in homes))\n"
        "before = set(sys.modules)\n"
        "importlib.import_module(package)\n"
        "loaded = sorted(set(sys.modules) - before)\n"
        f"wrong = [m for m in loaded if m.split('.')[0] in {QT!r}]\n"
        f"if package in {lazy!r}:\n"
        "    wrong += [m for m in loaded if m not in parents and outside(m)]\n"
        "print(json.dumps(wrong))\n"
    )
    # each in a fresh Python, all at once: what one import loads, not what the others left behind
    running = {package: subprocess.Popen([sys.executable, "-c", code, package], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, cwd=str(REPO)) for package in packages}
    problems = {}
    for package, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        wrong = json.loads(out.splitlines()[-1])
        if wrong:
            problems[package] = wrong
    assert lazy, "no package loads its names lazily: is _PUBLIC still how __init__.py lists them?"
    assert problems == {}
