"""The Settings dialog's Test connection: does the Deadline Web Service answer, and take the login?

For a background thread (it waits on the network). The answer is a ``Check`` (``config.settings_checks``)
of level ``ok`` or ``error`` whose text says what is wrong and the fix, like the Settings dialog's other checks.
"""

from __future__ import annotations

from typing import Optional

from flame_submitter.config.settings_checks import Check, check_url
from flame_submitter.deadline.client import DeadlineClient
from flame_submitter.deadline.errors import DeadlineAuthError, DeadlineError, DeadlineTimeout, DeadlineUnreachable


def try_deadline_connection(url: str, user: Optional[str], password: Optional[str], *, timeout_s: float) -> Check:
    """Ask the Web Service at ``url`` whether it answers and takes the login (one try, ``timeout_s`` per call).
    For a background thread: it waits on the network. Returns a Check of level ``ok`` or ``error``."""
    found = check_url(url)
    if found is not None and found.level == "error":
        return found
    client = DeadlineClient(url, user=user or None, password=password or None, timeout_s=timeout_s, read_retries=0)
    who = f" as {user}" if user else ""
    try:
        client.ping()
        pools = client.pool_names()
    except DeadlineAuthError:
        return Check("error", f"Deadline answers at {url} but refuses the login{who}: check the user and the "
                              "password (Deadline Monitor > Tools > User Settings > Web Service password)")
    except DeadlineTimeout:
        return Check("error", f"Deadline did not answer within {timeout_s:g} s at {url}: it is busy or stuck; "
                              "try again")
    except DeadlineUnreachable as exc:
        text = str(exc)
        reason = text.split(f"{url} (", 1)[-1].split("):", 1)[0] if f"{url} (" in text else "no answer"
        return Check("error", f"Nothing answers at {url} ({reason}): check the address and that the Web Service "
                              "is running")
    except DeadlineError as exc:
        return Check("error", f"Deadline answered, but not as expected: {exc}")
    listed = ", ".join(pools[:6]) + (", …" if len(pools) > 6 else "")
    return Check("ok", f"Connected to Deadline at {url}{who}; pools: {listed or 'none'}")
