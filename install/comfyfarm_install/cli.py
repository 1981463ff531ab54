"""``install.sh ROLE`` and ``uninstall.sh ROLE``: put comfyfarm on a machine, upgrade it, take it away.

    install.sh  workstation|repository|worker [--prefix DIR] [--dry-run] [options]
    uninstall.sh workstation|repository|worker [--prefix DIR] [--dry-run]

Exit status: 0 done (or nothing to do), 1 the installation could not be done (nothing was changed) or the
check after it failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from farm_plugin.errors import ComfyfarmError
from farm_plugin.installation import layout
from farm_plugin.installation.manifest import Manifest, read_manifest

from .common import Options, RolePlan
from .files import KEEP_MODIFIED, REMOVE, apply_install, apply_uninstall, plan_install, plan_uninstall
from .product import product_version
from .report import install_summary, step_lines
from .repository import plan_repository, repository_prefix
from .runtime import check_runtime
from .worker import plan_worker, worker_prefix
from .workstation import plan_workstation, workstation_prefix

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="install.sh", description="Install, upgrade or uninstall comfyfarm.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="install|uninstall")
    install = commands.add_parser(
        "install", prog="install.sh", help="install or upgrade one role",
        description="Install or upgrade comfyfarm for one role, saying what it does file by file. Files that were "
                    "not comfyfarm's, or were changed by hand, are backed up first; a second run changes nothing. "
                    "Exit status: 0 done, 1 not done (or the check after it failed), 2 a usage error.")
    uninstall = commands.add_parser(
        "uninstall", prog="uninstall.sh", help="remove one role's installation",
        description="Remove what install.sh installed for one role and put back what it replaced. Files changed "
                    "by hand since are kept, and named.")
    for sub in (install, uninstall):
        sub.add_argument("role", choices=layout.ROLES)
        sub.add_argument("--prefix", metavar="DIR", help="where to install (default: the role's usual place)")
        sub.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
        sub.add_argument("--autodesk-root", metavar="DIR",
                         help=f"workstation: where Flame is installed (default {layout.DEFAULT_AUTODESK_ROOT}, "
                              f"or ${layout.AUTODESK_ROOT_ENV})")
        sub.add_argument("--repository", metavar="DIR",
                         help=f"repository: the Deadline repository (default ${layout.REPOSITORY_ENV}, else "
                              f"{layout.DEFAULT_REPOSITORY})")
        sub.add_argument("-v", "--verbose", action="store_true")
    packages = install.add_mutually_exclusive_group()
    packages.add_argument("--wheels", metavar="DIR", help="take third-party packages from this folder of wheels "
                                                          "only (offline)")
    packages.add_argument("--no-deps", action="store_true", help="install no third-party package (provide them "
                                                                 "yourself)")
    install.add_argument("--requirements", metavar="FILE",
                         help="the third-party packages, one per line: name, name>=version or name==version "
                              "(default: pyproject.toml's dependencies)")
    install.add_argument("--bin-dir", metavar="DIR",
                         help=f"workstation: where the comfyfarm command goes (default {layout.DEFAULT_BIN_DIR})")
    install.add_argument("--python", metavar="PYTHON",
                         help="worker: the Python that runs ComfyUI (default: ComfyUI's venv)")
    install.add_argument("--venv", metavar="DIR", help="worker: a venv of comfyfarm's own, on top of ComfyUI's Python")
    install.add_argument("--comfyui-dir", metavar="DIR",
                         help=f"worker: the ComfyUI folder (default {layout.DEFAULT_COMFYUI_DIR})")
    gpus = install.add_mutually_exclusive_group()
    gpus.add_argument("--gpus", metavar="LIST", help="worker: the GPUs to check ComfyUI on (default: nvidia-smi's)")
    gpus.add_argument("--cpu", action="store_true", help="worker: check ComfyUI on the CPU (no GPU on this node)")
    install.add_argument("--skip-check", action="store_true", help="worker: do not check that ComfyUI starts")
    install.add_argument("--service", action="store_true",
                         help="worker: also install comfyfarm's ComfyUI service (one warm ComfyUI per GPU, kept "
                              "across jobs): its launcher and a systemd unit")
    return parser


def role_prefix(role: str, options: Options) -> Path:
    if role == "workstation":
        return workstation_prefix(options)
    if role == "repository":
        return repository_prefix(options)
    return worker_prefix(options)


def build_plan(role: str, options: Options, version: str, staging: Path, previous: Optional[Manifest]) -> RolePlan:
    if role == "workstation":
        return plan_workstation(options, version, staging, previous)
    if role == "repository":
        return plan_repository(options, version, previous)
    return plan_worker(options, version, staging, previous)


def install(role: str, options: Options) -> int:
    version = product_version()
    prefix = role_prefix(role, options)
    manifest_file = layout.manifest_path(role, prefix)
    previous = read_manifest(manifest_file)
    over = f" over comfyfarm {previous.version}" if previous is not None else ""
    with tempfile.TemporaryDirectory(prefix="comfyfarm-install-") as staging:
        plan = build_plan(role, options, version, Path(staging), previous)
        print(f"comfyfarm {version}: {'dry run, nothing is changed: ' if options.dry_run else ''}"
              f"the {role} role in {prefix}{over}")
        for note in plan.notes:
            print(f"  {note}")
        if plan.prepare is not None and not options.dry_run:
            for line in plan.prepare():
                print(line)
        wanted = Manifest(role=role, version=version, details=plan.details)
        file_plan = plan_install(plan.bundle, previous, wanted, layout.state_dir(role, prefix), prefix)
        for line in step_lines(file_plan.steps, plan.bundle.groups, dry_run=options.dry_run, manifest=previous):
            print(line)
        changed = previous is None or bool(file_plan.changes) or previous.to_dict() != file_plan.manifest.to_dict()
        if not changed:
            print(f"nothing to do: comfyfarm {version} is installed as it should be "
                  f"({len(file_plan.steps)} files checked, {manifest_file})")
        elif options.dry_run:
            print(f"{install_summary(file_plan, dry_run=True)}; nothing was changed")
        else:
            apply_install(file_plan, previous, manifest_file)
            print(f"{install_summary(file_plan, dry_run=False)}; manifest {manifest_file}")
    if not options.dry_run:  # changed or not: what was there may have stopped working since
        for line in check_runtime(plan.runtime, role=role, prefix=prefix, version=version, no_deps=options.no_deps):
            print(line, flush=True)
    for step in plan.next_steps:
        print(f"next: {step}")
    if plan.check is not None and not options.dry_run:
        return plan.check()
    return 0


def uninstall(role: str, options: Options) -> int:
    prefix = role_prefix(role, options)
    manifest_file = layout.manifest_path(role, prefix)
    manifest = read_manifest(manifest_file)
    if manifest is None:
        print(f"no comfyfarm {role} installation in {prefix} (no {manifest_file}): nothing to do")
        return 0
    print(f"comfyfarm {manifest.version}: {'dry run, nothing is changed: ' if options.dry_run else ''}"
          f"removing the {role} role from {prefix}")
    steps = plan_uninstall(manifest)
    groups = _report_groups(manifest)
    for line in step_lines(steps, groups, dry_run=options.dry_run, manifest=manifest, uninstall=True):
        print(line)
    venv = manifest.details.get("venv_created")
    removed = sum(1 for s in steps if s.action == REMOVE)
    if options.dry_run:
        if venv:
            print(f"would remove the venv {venv} (comfyfarm created it)")
        print(f"would remove {removed} file(s); nothing was changed")
        return 0
    left = apply_uninstall(manifest, steps, manifest_file)
    if venv and Path(venv).is_dir():
        shutil.rmtree(venv)
        print(f"removed       {venv}/ (the venv comfyfarm created)")
    for backup in left:
        print(f"kept          {backup} (your copy of a file changed by hand; comfyfarm never deletes those)")
    kept = sum(1 for s in steps if s.action == KEEP_MODIFIED)
    print(f"removed {removed} file(s), kept {kept} changed by hand; comfyfarm {manifest.version} is no longer "
          f"installed in {prefix}")
    return 0


def _report_groups(manifest: Manifest) -> List[Path]:
    """The folders whose children are reported one line each: comfyfarm's lib and its package folders."""
    if not manifest.details.get("prefix"):
        return []
    lib = layout.lib_dir(manifest.role, Path(str(manifest.details["prefix"])))
    return [lib] + sorted(lib.glob("python*"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    options = Options(**{key: value for key, value in vars(args).items()
                         if key in Options.__dataclass_fields__})
    script = f"{args.command}.sh {args.role}"
    try:
        if args.command == "install":
            return install(args.role, options)
        return uninstall(args.role, options)
    except ComfyfarmError as exc:  # bad input too: install.sh's contract is 1 for any installation that cannot be done
        print(f"{script}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{script}: {exc.filename or ''}: {exc.strerror or exc}: run it as a user who may write there "
              "(often root), or choose another --prefix; then run it again: it carries on where it stopped",
              file=sys.stderr)
        return 1
