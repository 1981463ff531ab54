"""One check's outcome, and how the doctor prints them: ``STATUS  where  what: detail -> fix``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence, TextIO

from farm_plugin.errors import EXIT_FAILED, EXIT_OK

logger = logging.getLogger(__name__)

OK = "OK"
WARN = "WARN"
FAIL = "FAIL"
SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    status: str
    where: str  # workstation, repository, worker, config, storage, deadline, workflows
    what: str
    detail: str = ""
    fix: Optional[str] = None

    def line(self) -> str:
        text = f"{self.status:<5} {self.where:<11} {self.what}"
        if self.detail:
            text += f": {self.detail}"
        if self.fix and self.status in (FAIL, WARN):
            text += f" -> {self.fix}"
        return text


def ok(where: str, what: str, detail: str = "") -> Check:
    return Check(OK, where, what, detail)


def warn(where: str, what: str, detail: str, fix: Optional[str] = None) -> Check:
    return Check(WARN, where, what, detail, fix)


def fail(where: str, what: str, detail: str, fix: Optional[str] = None) -> Check:
    return Check(FAIL, where, what, detail, fix)


def skip(where: str, what: str, detail: str) -> Check:
    return Check(SKIP, where, what, detail)


def print_checks(checks: Sequence[Check], out: TextIO) -> None:
    for check in checks:
        print(check.line(), file=out, flush=True)


def summary(checks: Sequence[Check]) -> str:
    counts: List[str] = []
    for status, word in ((OK, "OK"), (FAIL, "failed"), (WARN, "warning(s)"), (SKIP, "skipped")):
        number = sum(1 for c in checks if c.status == status)
        if number or status in (OK, FAIL):
            counts.append(f"{number} {word}")
    return f"{len(checks)} check(s): {', '.join(counts)}"


def exit_status(checks: Sequence[Check]) -> int:
    return EXIT_FAILED if any(c.status == FAIL for c in checks) else EXIT_OK
