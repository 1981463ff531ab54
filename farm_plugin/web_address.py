"""Web addresses that people type (``http://deadline:8081``, ``http://127.0.0.1:8188``): checked before use.

A malformed address would otherwise surface as an HTTP library error (``No connection adapters were found``)
on the first call, or as a server that never answers.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit


def http_address_problem(url: str, *, example: str) -> Optional[str]:
    """Why ``url`` is not an ``http://`` or ``https://`` address with a host and a valid port, with the fix;
    None when it is one. ``example`` is a good address for the message (``http://deadline:8081``)."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        fix = f"http://{text}" if text and "://" not in text else example
        return f"'{url}' is not a web address (it does not start with http:// or https://): write it like {fix}"
    if not parts.hostname:
        return f"'{url}' names no host: write it like {example}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"'{url}' has a port that is not a number from 1 to 65535: write it like {example}"
    return None
