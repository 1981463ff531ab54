"""``comfyfarm doctor``'s checks (the command line is ``cli/doctor.py``): one line per check, with the fix.

- :mod:`.workstation`: the hook where Flame finds it, importable by each Flame Python, Qt, the command;
- :mod:`.studio`: the configuration, the shared storage, the Deadline Web Service and its credentials;
- :mod:`.repository`: the ComfyUI plugin in the repository, at this version, and no older ComfyUIRelink event;
- :mod:`.worker`: the runtime in ComfyUI's Python, ComfyUI starting on each GPU;
- :mod:`.installed`: an installation's manifest (farm_plugin.installation) against this version;
- :mod:`.report`: the check lines and the exit status.

The workflows' requirements against one ComfyUI's node definitions are checked by ``workflow_checks`` in
``cli/workflows.py``, beside ``comfyfarm workflows``.
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "report": ("Check", "exit_status", "fail", "ok", "print_checks", "skip", "summary"),
    "repository": ("repository_checks",),
    "studio": ("studio_checks",),
    "worker": ("worker_checks", "worker_prefix"),
    "workstation": ("find_prefix", "workstation_checks"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
