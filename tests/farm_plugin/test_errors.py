"""One exception root (farm_plugin/errors.py): every exception comfyfarm defines descends from ComfyfarmError, and
the command line's exit status follows the error's category, in one place."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple, Type

import pytest

from farm_plugin.comfyui.errors import ComfyUIAddressError, ComfyUIError, ComfyUIStartError, ComfyUIUnreachable
from farm_plugin.errors import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_COMFYUI_LOST,
    EXIT_FAILED,
    EXIT_NO_SERVICE,
    EXIT_OK,
    BadInput,
    Cancelled,
    ComfyfarmError,
    ServiceError,
    UsageError,
    exit_code,
)
from farm_plugin.frames.errors import MissingFramesError
from farm_plugin.paths import PathMappingError
from farm_plugin.runner import exits
from farm_plugin.runner.chunk import ChunkCancelled, ChunkError, ChunkFailed, ComfyUILost
from farm_plugin.workflow.params import ParameterError
from flame_submitter.cli import config as cli_config
from flame_submitter.cli.main import main
from flame_submitter.config import ConfigError
from flame_submitter.deadline.errors import DeadlineUnreachable
from flame_submitter.deadline_cloud.cli import DeadlineCloudError, DeadlineCloudMissing
from flame_submitter.deadline_cloud.submit import PartlySubmitted
from flame_submitter.jobs.builder import JobFolderError

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "install"
# The product's packages, as folders under the repository: farm_plugin and flame_submitter, and the installer's.
PACKAGES = {"farm_plugin": REPO / "farm_plugin", "flame_submitter": REPO / "flame_submitter",
            "comfyfarm_install": INSTALL / "comfyfarm_install"}
# Outside the tree on purpose (see farm_plugin/errors.py): they run in Deadline's own Python, in ComfyUI's (the
# custom-node pack, with torch), or when Flame starts, and import nothing of comfyfarm.
OUTSIDE = (REPO / "farm_plugin" / "ComfyUI", REPO / "farm_plugin" / "ComfyUINodes", REPO / "flame_submitter" / "hooks")
HAS_QT = any(importlib.util.find_spec(name) is not None for name in ("PySide6", "PySide2"))


def product_modules() -> Dict[str, Path]:
    """Every module of the product's packages (module name → file), but the files outside the tree."""
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if any(path.is_relative_to(outside) for outside in OUTSIDE):
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


@functools.cache
def defined_exceptions() -> Tuple[Type[BaseException], ...]:
    """Every exception class the product's modules define, found by importing each module."""
    if str(INSTALL) not in sys.path:
        sys.path.insert(0, str(INSTALL))
    found: List[Type[BaseException]] = []
    for name, path in product_modules().items():
        if name.endswith(".__main__"):  # an entry point runs when imported: it must define no class
            assert not [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)], name
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:
            if name.startswith("flame_submitter.dialog.") and not HAS_QT:
                continue  # a Qt dialog, where no Qt is installed
            raise
        found.extend(value for value in vars(module).values()
                     if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name)
    return tuple(found)


def test_every_exception_the_product_defines_descends_from_comfyfarm_error() -> None:
    exceptions = defined_exceptions()
    names = {f"{e.__module__}.{e.__qualname__}" for e in exceptions}
    assert len(exceptions) > 40  # the walk found them (farm_plugin, flame_submitter, comfyfarm_install)
    assert {"farm_plugin.comfyui.errors.PromptExecutionError", "flame_submitter.deadline.errors.DeadlineTimeout",
            "comfyfarm_install.common.InstallError", "farm_plugin.errors.UsageError"} <= names
    outside = sorted(f"{e.__module__}.{e.__qualname__}" for e in exceptions if not issubclass(e, ComfyfarmError))
    assert outside == []


def test_the_deadline_plugin_the_comfyui_nodes_and_the_hook_are_left_out_of_the_walk() -> None:
    modules = product_modules()
    assert "flame_submitter.hooks.comfyfarm_hooks" not in modules
    assert not [name for name in modules if name.startswith(("farm_plugin.ComfyUI.", "farm_plugin.ComfyUINodes."))]
    assert "flame_submitter.cli.run_local" in modules and "comfyfarm_install.cli" in modules


def test_every_comfyfarm_error_is_in_a_category() -> None:
    categories = (BadInput, ServiceError, Cancelled, ComfyUIError, ChunkError)
    uncategorised = [error for error in defined_exceptions()
                     if error is not ComfyfarmError and error not in categories and not issubclass(error, categories)]
    assert uncategorised == []


def test_the_tree_in_the_docstring_says_where_each_error_lives() -> None:
    import farm_plugin.errors

    tree = farm_plugin.errors.__doc__ or ""
    named = re.findall(r"([A-Z]\w+) +(?:… +)?((?:farm_plugin|flame_submitter)(?:\.\w+)+)", tree)
    assert len(named) > 15
    for name, module in named:
        assert getattr(importlib.import_module(module), name).__module__ == module, (name, module)


def test_one_usage_error() -> None:
    from flame_submitter.cli import doctor, run_local, validate, workflows

    assert run_local.UsageError is validate.UsageError is workflows.UsageError is doctor.UsageError is UsageError
    assert issubclass(UsageError, BadInput)


def test_errors_keep_the_standard_bases_callers_catch() -> None:
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterError, BadInput)
    assert issubclass(PathMappingError, ValueError) and issubclass(PathMappingError, BadInput)
    error = JobFolderError("cannot write the job folder /jobs/x (No space left on device): free some space")
    assert isinstance(error, OSError) and isinstance(error, ServiceError)
    assert str(error) == "cannot write the job folder /jobs/x (No space left on device): free some space"


@pytest.mark.parametrize(("error", "code"), [
    (UsageError("--gpus ',' names no GPU"), EXIT_BAD_INPUT),
    (ConfigError("deadline_url: not a web address"), EXIT_BAD_INPUT),
    (ParameterError("radius: 99 is above 31"), EXIT_BAD_INPUT),
    (MissingFramesError("frames 1002 are missing", frames=[1002]), EXIT_BAD_INPUT),
    (ComfyUIAddressError("ComfyUI address 'localhost:8188' is not a web address"), EXIT_BAD_INPUT),  # also ComfyUI
    (DeadlineCloudMissing("no Deadline Cloud CLI here"), EXIT_BAD_INPUT),  # also a Deadline Cloud error
    (DeadlineUnreachable("http://deadline:8081", "connection refused"), EXIT_FAILED),
    (DeadlineCloudError("the queue refused the bundle"), EXIT_FAILED),
    (PartlySubmitted("2 of 3 jobs were submitted"), EXIT_FAILED),
    (JobFolderError("cannot write the job folder"), EXIT_FAILED),
    (ComfyUIUnreachable("http://127.0.0.1:8188", "connection refused"), EXIT_FAILED),
    (ComfyUIStartError("ComfyUI did not answer"), EXIT_FAILED),
    (ChunkFailed("frames 1001-1004 failed"), EXIT_FAILED),
    (ComfyUILost("ComfyUI stopped"), EXIT_FAILED),  # 3 is the chunk runner's alone
    (ChunkCancelled("cancelled"), EXIT_CANCELLED),
    (KeyboardInterrupt(), EXIT_CANCELLED),
    (OSError(28, "No space left on device"), EXIT_FAILED),
    (RuntimeError("a bug"), EXIT_FAILED),
])
def test_exit_code_follows_the_category(error: BaseException, code: int) -> None:
    assert exit_code(error) == code


def test_the_exit_codes() -> None:
    assert (EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_COMFYUI_LOST, EXIT_CANCELLED) == (0, 1, 2, 3, 130)
    assert (exits.EXIT_OK, exits.EXIT_FAILED, exits.EXIT_BAD_INPUT, exits.EXIT_COMFYUI_LOST, exits.EXIT_CANCELLED) \
        == (EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_COMFYUI_LOST, EXIT_CANCELLED)


def test_the_deadline_plugin_reads_the_same_exit_codes() -> None:
    """ComfyUI.py runs in Deadline's Python and cannot import comfyfarm: its copy of the protocol must agree."""
    tree = ast.parse((REPO / "farm_plugin" / "ComfyUI" / "ComfyUI.py").read_text(encoding="utf-8"))
    copies = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name) and target.id.startswith("EXIT_")
              and isinstance(node.value, ast.Constant)}
    assert copies == {"EXIT_OK": EXIT_OK, "EXIT_COMFYUI_LOST": EXIT_COMFYUI_LOST, "EXIT_NO_SERVICE": EXIT_NO_SERVICE,
                      "EXIT_CANCELLED": EXIT_CANCELLED}


def test_a_command_that_lets_an_error_through_still_says_it_on_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    def fails(_args: object) -> int:
        raise DeadlineUnreachable("http://deadline:8081", "connection refused")

    monkeypatch.setattr(cli_config, "run_show", fails)
    assert main(["config", "show"]) == EXIT_FAILED
    error = DeadlineUnreachable("http://deadline:8081", "connection refused")
    assert capsys.readouterr().err.splitlines() == [f"comfyfarm config: {error}"]
