"""What a submitting machine needs beyond its files: the configuration, the shared storage, the Web Service."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

from flame_submitter.config import STUDIO_CONFIG_PATH, Config, ConfigError, default_config_path, load_config
from flame_submitter.deadline.client import DeadlineClient
from flame_submitter.deadline.errors import DeadlineAuthError, DeadlineError
from flame_submitter.deadline.submit import SubmitError, check_shared
from flame_submitter.doctor.report import Check, fail, ok, warn

logger = logging.getLogger(__name__)

WEB_SERVICE_TIMEOUT_SECONDS = 10.0

CONFIG_FIX = ("create the studio file (/etc/comfyfarm/config.yaml, or $COMFYFARM_STUDIO_CONFIG) or your own "
              "(~/.config/comfyfarm/config.yaml) with deadline_url, jobs_root, inbox_root and shared_roots: see the "
              "README's Configuration")


def config_check() -> Tuple[Check, Optional[Config]]:
    try:
        config = load_config()
    except ConfigError as exc:
        return fail("config", "configuration", str(exc), "fix the file it names"), None
    if not config.origins:
        return fail("config", "configuration", f"no configuration file ({STUDIO_CONFIG_PATH} or "
                    f"{default_config_path()}) and no COMFYFARM_* variable", CONFIG_FIX), config
    return ok("config", "configuration", f"read from {config.source}"), config


def _writable(folder: Path) -> Optional[str]:
    """None when a file can be written and removed in ``folder``; else why not."""
    if not folder.is_dir():
        return f"{folder} does not exist or is not mounted here"
    try:
        handle, probe = tempfile.mkstemp(prefix=".comfyfarm-doctor-", dir=str(folder))
        os.close(handle)
        Path(probe).unlink()
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror or exc})"
    return None


def storage_checks(config: Config) -> List[Check]:
    checks = []
    for key, what, needed in (("jobs_root", "jobs folder", True), ("inbox_root", "inbox (finished renders)", False)):
        value = getattr(config, key)
        if not value:
            fix = f"set {key} (COMFYFARM_{key.upper()}) to a folder on shared storage the farm reaches"
            if needed:
                checks.append(fail("storage", what, f"{key} is not set", fix))
            else:
                checks.append(warn("storage", what, f"{key} is not set: finished renders will not come back to "
                                                    "Flame by themselves", fix))
            continue
        folder = Path(value).expanduser()
        problem = _writable(folder)
        if problem is None:
            try:
                check_shared(str(folder), key, config)
            except SubmitError as exc:
                problem = str(exc)
        if problem:
            checks.append(fail("storage", what, problem, f"mount the shared storage, or fix {key} in "
                                                         f"{config.origins.get(key, 'the configuration')}"))
        else:
            checks.append(ok("storage", what, f"{folder} is reachable and writable"))
    return checks


def deadline_checks(config: Config) -> List[Check]:
    if not config.deadline_url:
        return [fail("deadline", "Web Service", "deadline_url is not set",
                     "set deadline_url (COMFYFARM_DEADLINE_URL), e.g. http://deadline:8081")]
    # One try, no retries: the doctor says how things are now, quickly; the submission itself retries.
    client = DeadlineClient(config.deadline_url, user=config.deadline_user, password=config.deadline_password,
                            ca_file=config.deadline_ca_file, insecure=config.deadline_insecure,
                            timeout_s=min(config.deadline_timeout_s, WEB_SERVICE_TIMEOUT_SECONDS), read_retries=0)
    try:
        client.ping()
    except DeadlineAuthError:
        pass  # it answered, asking for a login: the next check says whether ours works
    except DeadlineError as exc:
        return [fail("deadline", "Web Service reachable", str(exc))]
    checks = [ok("deadline", "Web Service reachable", f"{config.deadline_url} answers")]
    who = f"'{config.deadline_user}'" if config.deadline_user else "no user (anonymous)"
    try:
        client.check_credentials()
    except DeadlineError as exc:
        checks.append(fail("deadline", "Web Service credentials", str(exc)))
    else:
        checks.append(ok("deadline", "Web Service credentials", f"{who} accepted"))
    return checks


def studio_checks() -> List[Check]:
    """Configuration, then (when it was read) shared storage and the Web Service."""
    check, config = config_check()
    if config is None:
        return [check]
    return [check, *storage_checks(config), *deadline_checks(config)]
