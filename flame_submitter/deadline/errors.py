"""Typed errors of the Deadline Web Service client: a :class:`farm_plugin.errors.ServiceError` (exit 1).

::

    DeadlineError
    ├── DeadlineUnreachable    nothing answers at the URL (down, wrong host or port, TLS failure)
    ├── DeadlineTimeout        the Web Service did not answer in time
    ├── DeadlineAuthError      401: credentials missing or wrong
    ├── DeadlineRejected       4xx/5xx with the Web Service's own text
    └── DeadlineUnexpected     an answer that is not what the Web Service documents
"""

from __future__ import annotations

from typing import Optional

from farm_plugin.errors import ServiceError


class DeadlineError(ServiceError):
    """Base of every Deadline Web Service error."""


class DeadlineUnreachable(DeadlineError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(
            f"the Deadline Web Service is not reachable at {url} ({reason}): check deadline_url "
            "(COMFYFARM_DEADLINE_URL) and that the Web Service is running"
        )


class DeadlineTimeout(DeadlineError):
    def __init__(self, url: str, what: str, timeout_s: float) -> None:
        self.url = url
        super().__init__(
            f"the Deadline Web Service at {url} did not answer {what} within {timeout_s:g} s: it is overloaded "
            "or stuck; try again, or raise deadline_timeout_s"
        )


class DeadlineAuthError(DeadlineError):
    def __init__(self, url: str, user: Optional[str]) -> None:
        self.url = url
        who = f"as '{user}'" if user else "without credentials"
        super().__init__(
            f"the Deadline Web Service at {url} refused the login {who} (HTTP 401): set deadline_user and "
            "deadline_password (COMFYFARM_DEADLINE_USER / COMFYFARM_DEADLINE_PASSWORD) to your Web Service "
            "credentials (Deadline Monitor > Tools > User Settings)"
        )


class DeadlineRejected(DeadlineError):
    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(f"the Deadline Web Service refused {method} {path} (HTTP {status}): "
                         f"{text.strip()[:500] or '(no text)'}")


class DeadlineUnexpected(DeadlineError):
    def __init__(self, method: str, path: str, detail: str) -> None:
        super().__init__(f"the Deadline Web Service answered {method} {path} unexpectedly: {detail}")
