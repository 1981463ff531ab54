"""The workflows' requirements as doctor checks: one line per package, against one ComfyUI's node definitions."""

from __future__ import annotations

import argparse
import logging
from typing import List

from farm_plugin.workflow.object_info import NodeDefinitions
from farm_plugin.workflow.requirements import check_package
from flame_submitter.cli.workflows import UsageError, chosen_packages, format_check, load_all, search_dirs
from flame_submitter.doctor.report import Check, fail, ok

logger = logging.getLogger(__name__)


def workflow_checks(args: argparse.Namespace, definitions: NodeDefinitions) -> List[Check]:
    """``args.dir`` and ``args.packages`` choose the packages (default: every one found)."""
    try:
        paths = chosen_packages(args, search_dirs(args.dir))
    except UsageError as exc:
        return [fail("workflows", "workflow packages", str(exc), "pass --dir or a package name that exists")]
    packages, errors = load_all(paths)
    checks: List[Check] = []
    for package in packages:
        check = check_package(package, definitions)
        details = "; ".join(line.strip() for line in format_check(check)[1:])
        if check.ok:
            checks.append(ok("workflows", package.name, f"runs on {definitions.source}" + (f"; {details}" if details
                                                                                            else "")))
        else:
            checks.append(fail("workflows", package.name, f"cannot run on {definitions.source}: {details}"))
    checks.extend(fail("workflows", "workflow package", error, "fix or remove the package") for error in errors)
    return checks
