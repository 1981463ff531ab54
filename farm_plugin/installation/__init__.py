"""Where comfyfarm is installed on each kind of machine, and the manifest of what was installed.

The contract between the installers (``install/install.sh``, ``install/uninstall.sh``) and ``comfyfarm doctor``:

- :mod:`.layout`: the folders each role installs into (Flame workstation, Deadline repository, GPU worker);
- :mod:`.manifest`: the record of every installed file with its hash, and of what it replaced;
- :mod:`.pythons`: what a Python interpreter (Flame's, or ComfyUI's environment) is and holds.

Standard library only: the installer runs this on machines where nothing else is installed yet.
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "layout": ("layout", "PTH_FILE", "deps_dir"),
    "manifest": (
        "InstalledFile", "Manifest", "ManifestError", "bytes_sha256", "file_sha256", "read_manifest", "write_manifest",
    ),
    "pythons": ("PROBE_TIMEOUT_SECONDS", "PythonInfo", "PythonProbeError", "normalize", "probe"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
