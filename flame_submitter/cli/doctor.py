"""``comfyfarm doctor``: checks this machine's comfyfarm installation end to end, one line per check.

    comfyfarm doctor [--role workstation|repository|worker] [options] [NAME|PATH ...]
    comfyfarm doctor (--comfyui-url URL | --object-info FILE|DIR...) [NAME|PATH ...]

Without ``--role`` it checks every role installed here (a manifest in the role's usual place, or the
options that name one). Each line is ``OK``, ``WARN``, ``FAIL`` or ``SKIP``, where, what, and for a failure
what to do (after ``->``). The workflows' requirements are one of the checks: against the ComfyUI the
worker check starts, or ``--comfyui-url`` / ``--object-info``, or the configuration's ``comfyui_url``.
Given only ``--comfyui-url`` or ``--object-info`` (no ``--role``), it checks the workflows alone
(cli_workflows.py). Exit status: 0 nothing failed, 1 a check failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, List, Optional

from farm_plugin.errors import EXIT_BAD_INPUT, BadInput, UsageError, exit_code
from farm_plugin.installation import layout
from flame_submitter.cli import workflows as cli_workflows
from flame_submitter.config import Config, ConfigError, load_config
from flame_submitter.doctor.report import Check, exit_status, fail, print_checks, skip, summary

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Check this machine's comfyfarm installation end to end: one line per check (OK, WARN, FAIL or SKIP), and
for a failure what to do, after "->".

Without --role, each role installed here is checked. The workflows' requirements are checked against the
ComfyUI the worker check starts, --comfyui-url / --object-info, or the configuration's comfyui_url. Given
only --comfyui-url or --object-info, the workflows alone are checked.

Exit status: 0 nothing failed, 1 a check failed, 2 a usage error."""


def add_parser(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor", help="check this machine's comfyfarm installation end to end (and the workflows' needs)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument("packages", nargs="*", metavar="NAME|PATH", help="workflow packages to check (default: all)")
    doctor.add_argument("--role", choices=layout.ROLES, help="check this role (default: each one installed here)")
    source = doctor.add_mutually_exclusive_group()
    source.add_argument("--comfyui-url", metavar="URL", help="check the workflows against this ComfyUI")
    source.add_argument("--object-info", action="append", metavar="FILE|DIR",
                        help="check the workflows against a saved /object_info answer (a folder: every .json in it)")
    cli_workflows.add_dir_option(doctor)
    doctor.add_argument("--prefix", metavar="DIR", help="where the role is installed (default: its usual place)")
    doctor.add_argument("--autodesk-root", metavar="DIR",
                        help=f"workstation: where Flame is installed (default {layout.DEFAULT_AUTODESK_ROOT})")
    doctor.add_argument("--repository", metavar="DIR", help="repository: the Deadline repository")
    doctor.add_argument("--python", metavar="PYTHON", help="worker: the Python that runs ComfyUI and comfyfarm")
    doctor.add_argument("--comfyui-dir", metavar="DIR", help="worker: the ComfyUI folder")
    gpus = doctor.add_mutually_exclusive_group()
    gpus.add_argument("--gpus", metavar="LIST", help="worker: start ComfyUI on these GPUs (default: nvidia-smi's)")
    gpus.add_argument("--cpu", action="store_true", help="worker: start ComfyUI on the CPU")
    doctor.add_argument("--startup-timeout-s", type=float, default=300.0, metavar="SECONDS",
                        help="worker: how long ComfyUI may take to start (default 300)")
    doctor.add_argument("--no-workflows", action="store_true", help="do not check the workflows' requirements")
    doctor.set_defaults(run=run_doctor)


def installed_roles(args: argparse.Namespace) -> List[str]:
    """The roles installed on this machine, or named by the options."""
    from flame_submitter.doctor.worker import worker_prefix
    from flame_submitter.doctor.workstation import find_prefix

    roles = []
    root = layout.autodesk_root(args.autodesk_root)
    if layout.manifest_path("workstation", find_prefix(args.prefix, root)).is_file() or layout.flame_pythons(root):
        roles.append("workstation")
    repository = layout.repository_root(args.repository)
    if args.repository or layout.manifest_path("repository", repository).is_file():
        roles.append("repository")
    if args.python or args.comfyui_dir or layout.manifest_path("worker", worker_prefix(args.prefix)).is_file():
        roles.append("worker")
    return roles


def _config() -> Optional[Config]:
    try:
        return load_config()
    except ConfigError:
        return None  # the studio checks say what is wrong with it


def run_doctor(args: argparse.Namespace) -> int:
    if args.role is None and (args.comfyui_url or args.object_info):
        return cli_workflows.run_doctor(args)  # the workflow check alone, as before installations were checked
    if args.role is None and args.packages:
        print("comfyfarm doctor: checking workflows needs a ComfyUI: pass --comfyui-url URL or --object-info "
              "FILE|DIR (or --role worker, which starts one)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # ComfyUI's start and stop, unless -v
        logging.getLogger("farm_plugin.comfyui").setLevel(logging.WARNING)
    roles = [args.role] if args.role else installed_roles(args)
    checks: List[Check] = []

    def report(new: List[Check]) -> None:
        print_checks(new, sys.stdout)
        checks.extend(new)

    if not roles:
        report([fail("comfyfarm", "installation", "no comfyfarm installation found on this machine",
                     "run install/install.sh workstation|repository|worker, or pass --role (and --prefix)")])
    object_info: List[Any] = []
    try:
        for role in roles:
            report(_role_checks(role, args, object_info))
        if "workstation" in roles or not roles:
            from flame_submitter.doctor.studio import studio_checks

            report(studio_checks())
    except BadInput as exc:  # a bad option value (--gpus)
        print(f"comfyfarm doctor: {exc}", file=sys.stderr)
        return exit_code(exc)
    if not args.no_workflows and ({"workstation", "worker"} & set(roles) or args.comfyui_url or args.object_info):
        report(_workflows(args, object_info))
    print(summary(checks), file=sys.stderr)
    return exit_status(checks)


def _role_checks(role: str, args: argparse.Namespace, object_info: List[Any]) -> List[Check]:
    if role == "workstation":
        from flame_submitter.doctor.workstation import workstation_checks

        return workstation_checks(args.prefix, args.autodesk_root)
    if role == "repository":
        from flame_submitter.doctor.repository import repository_checks

        return repository_checks(args.repository or (args.prefix if args.role == "repository" else None))
    from flame_submitter.doctor.worker import worker_checks

    wants_info = not args.no_workflows and not (args.comfyui_url or args.object_info)
    return worker_checks(args, _config(), object_info if wants_info else None)


def _workflows(args: argparse.Namespace, object_info: List[Any]) -> List[Check]:
    from farm_plugin.workflow.object_info import definitions_from_answer

    try:
        if args.comfyui_url or args.object_info:
            definitions = cli_workflows.read_definitions(args)
        elif object_info:
            definitions = definitions_from_answer(object_info[0], source="the ComfyUI started on this worker",
                                                  live=True)
        else:
            config = _config()
            if config is None or not config.comfyui_urls:
                return [skip("workflows", "workflows' requirements", "no ComfyUI to check them against: pass "
                             "--comfyui-url or --object-info, or set comfyui_url")]
            args.comfyui_url = config.comfyui_urls[0]
            definitions = cli_workflows.read_definitions(args)
    except UsageError as exc:
        return [fail("workflows", "workflows' requirements", str(exc), "start that ComfyUI, or pass another one")]
    return cli_workflows.workflow_checks(args, definitions)
