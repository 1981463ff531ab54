"""Submitting a job bundle to AWS Deadline Cloud with its own command line, ``deadline``.

comfyfarm does not talk to AWS itself: the Deadline Cloud CLI (``pip install deadline``; ``deadline`` on PATH,
or ``python -m deadline`` where this Python has the package) owns the credentials, the default farm and queue,
storage profiles and job attachments. What it is asked (aws-deadline/deadline-cloud
``cli/_groups/config_group.py``, ``bundle_group.py``):

- ``deadline config get defaults.farm_id`` / ``defaults.queue_id``: the farm and queue a submission goes to
  (``deadline config set defaults.farm_id farm-…`` sets them; empty when unset);
- ``deadline bundle submit --yes --name NAME --priority N [--max-retries-per-task N] BUNDLE_DIR``: it
  prints ``Submitted job bundle:``, the folder, the status and the job id (``job-`` + 32 hex digits).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from farm_plugin.errors import BadInput, ServiceError

logger = logging.getLogger(__name__)

CLI_NAME = "deadline"
CONFIG_TIMEOUT_SECONDS = 60.0
SUBMIT_TIMEOUT_SECONDS = 3600.0  # job attachments may upload gigabytes of plates first
JOB_ID = re.compile(r"\bjob-[0-9a-f]{32}\b")
OUTPUT_LINES_SHOWN = 8
HOW_TO_CONFIGURE = ("deadline config set defaults.farm_id farm-… and deadline config set defaults.queue_id queue-… "
                    "(or deadline config gui)")


class DeadlineCloudError(ServiceError):
    """The Deadline Cloud CLI is missing, not configured, or refused the bundle: the message says what to do."""


class DeadlineCloudMissing(DeadlineCloudError, BadInput):
    """No usable Deadline Cloud CLI here: nothing can be submitted (but a bundle can be written)."""


@dataclass(frozen=True)
class DeadlineCloudCLI:
    command: Tuple[str, ...]  # ("/usr/local/bin/deadline",) or (python, "-m", "deadline")
    farm_id: str
    queue_id: str


def cli_command() -> Optional[Tuple[str, ...]]:
    """``deadline`` on PATH, else ``python -m deadline`` when this Python has the ``deadline`` package."""
    found = shutil.which(CLI_NAME)
    if found is not None:
        return (found,)
    if importlib.util.find_spec("deadline") is not None and importlib.util.find_spec("deadline.client") is not None:
        return (sys.executable, "-m", "deadline")
    return None


def find_cli() -> DeadlineCloudCLI:
    """The configured Deadline Cloud CLI, or DeadlineCloudMissing saying how to install or configure it."""
    found = cli_command()
    if found is None:
        raise DeadlineCloudMissing(
            "the Deadline Cloud CLI ('deadline') is not installed here: pip install deadline, then "
            f"{HOW_TO_CONFIGURE}; or write the bundle with --bundle-dir DIR and submit it where the CLI is set up "
            "(deadline bundle submit DIR)")
    farm_id = _setting(found, "defaults.farm_id")
    queue_id = _setting(found, "defaults.queue_id")
    if not farm_id or not queue_id:
        missing = " and ".join(k for k, v in (("farm", farm_id), ("queue", queue_id)) if not v)
        raise DeadlineCloudMissing(
            f"the Deadline Cloud CLI ({' '.join(found)}) has no default {missing}: {HOW_TO_CONFIGURE}; or write the "
            "bundle with --bundle-dir DIR")
    return DeadlineCloudCLI(found, farm_id, queue_id)


def _setting(command: Tuple[str, ...], name: str) -> str:
    result = _run([*command, "config", "get", name], CONFIG_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise DeadlineCloudMissing(f"'{' '.join(command)} config get {name}' failed: {_tail(result)}")
    return result.stdout.strip()


def submit_bundle(cli: DeadlineCloudCLI, bundle_dir: Path, *, name: Optional[str] = None,
                  priority: Optional[int] = None, max_retries_per_task: Optional[int] = None,
                  timeout_s: float = SUBMIT_TIMEOUT_SECONDS) -> str:
    """``deadline bundle submit`` the bundle; returns the Deadline Cloud job id.

    The CLI's ``--priority`` defaults to 50 and overrides the bundle's ``deadline:priority``: it is always
    passed, with the bundle's value."""
    command = [*cli.command, "bundle", "submit", "--yes"]
    if name:
        command += ["--name", name]
    if priority is not None:
        command += ["--priority", str(priority)]
    if max_retries_per_task is not None:
        command += ["--max-retries-per-task", str(max_retries_per_task)]
    command.append(str(bundle_dir))
    logger.info("submitting %s to Deadline Cloud (farm %s, queue %s)", bundle_dir, cli.farm_id, cli.queue_id)
    result = _run(command, timeout_s)
    if result.returncode != 0:
        raise DeadlineCloudError(f"deadline bundle submit refused the bundle {bundle_dir}: {_tail(result)}")
    ids = JOB_ID.findall(result.stdout)
    if not ids:
        raise DeadlineCloudError(f"deadline bundle submit printed no job id for {bundle_dir}; it said: "
                                 f"{_tail(result)}: look for the job in Deadline Cloud Monitor before submitting again")
    return ids[-1]


def _run(command: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(command), capture_output=True, text=True, errors="replace", timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise DeadlineCloudError(f"'{' '.join(command)}' did not finish within {timeout_s:g} s") from exc
    except OSError as exc:
        raise DeadlineCloudMissing(f"cannot run {command[0]}: {exc}") from exc


def _tail(result: subprocess.CompletedProcess) -> str:
    lines: List[str] = [line for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    return " | ".join(lines[-OUTPUT_LINES_SHOWN:]) or f"exit code {result.returncode}"
