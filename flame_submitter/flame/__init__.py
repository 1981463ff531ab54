"""Everything that runs inside Flame: the app behind the hook's menu (``app``), the selection as farm
sources (``sources``, ``media``, ``segments``), Submit and Run locally (``submit``; ``launch`` starts the
comfyfarm command from Flame), the relink watcher (``relink``) and Import finished renders from a folder
(``bundle_import``).

The hook (``flame_submitter/hooks/comfyfarm_hooks.py``) reaches comfyfarm only through ``app``. Nothing here
imports ``flame``: it is handed the module, on Flame's main thread.
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "app": ("app_for", "open_settings", "running_app"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
