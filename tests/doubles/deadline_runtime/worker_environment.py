"""The environment a Deadline 10 Worker hands to the processes its plugins start, as the double reads it.

* Deadline's own library folder leads ``LD_LIBRARY_PATH`` (the studio's folders follow). Thinkbox's Nuke.py
  removes every entry naming "Deadline" from it (and the ``DYLD_*`` paths) before it starts Nuke, because
  "the IlmImf library included with Deadline ... conflicts with the exrWriter" (applemin/Deadline_Development
  ``plugins/Nuke/Nuke.py``, ``scrubLibPaths``): a child that writes EXRs must not see it.
* A studio proxy: ``http_proxy``/``https_proxy`` (both spellings) point at a loopback port where nothing
  listens, and ``no_proxy`` names the studio's domain but not loopback. Python's urllib sends even
  ``http://127.0.0.1`` to ``http_proxy`` unless ``no_proxy`` names it, and websocket-client (1.9) does the
  same: behind this proxy such a call is refused, as it would time out or be refused on a studio's proxy.

    with ClosedPort() as proxy:
        env = worker_environment(os.environ, machine_root, proxy.port)   # what the Worker process runs with
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Dict, Mapping

DEADLINE_BIN = Path("opt") / "Thinkbox" / "Deadline10" / "bin"  # under the emulated machine's root
STUDIO_LIBRARY_FOLDER = "/opt/studio/lib"
STUDIO_NO_PROXY = ".studio.internal"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")


class ClosedPort:
    """A loopback port that is bound and never listened on: a connection to it is refused, and no other
    process can take it while this object is open."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> ClosedPort:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def deadline_library_folder(machine_root: Path) -> Path:
    return Path(machine_root) / DEADLINE_BIN


def worker_environment(base: Mapping[str, str], machine_root: Path, proxy_port: int) -> Dict[str, str]:
    """``base`` as a Worker on this machine hands it on: Deadline's library folder (created under
    ``machine_root``) first in ``LD_LIBRARY_PATH``, then the studio's folder and ``base``'s own entries; the
    studio proxy at ``proxy_port`` on loopback, with a ``no_proxy`` that does not name loopback."""
    folder = deadline_library_folder(machine_root)
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(base)
    entries = [str(folder), STUDIO_LIBRARY_FOLDER] + [e for e in base.get("LD_LIBRARY_PATH", "").split(os.pathsep) if e]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(entries)
    for name in PROXY_VARIABLES:
        env[name] = f"http://127.0.0.1:{proxy_port}"
    for name in NO_PROXY_VARIABLES:
        env[name] = STUDIO_NO_PROXY
    return env


__all__ = ["ClosedPort", "DEADLINE_BIN", "STUDIO_LIBRARY_FOLDER", "STUDIO_NO_PROXY", "deadline_library_folder",
           "worker_environment"]
