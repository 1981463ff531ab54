"""The Open Job Description steps of a Deadline Cloud job (or of ``openjd run``), one entry point::

    python -m farm_plugin.openjd env|task|finish ...

``env`` keeps a ComfyUI for the session, ``task`` runs a chunk through it, ``finish`` joins, checks and
writes the completion record. Other packages use only the names of the records ``finish`` writes.
"""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "finish": ("COMPLETION_SUFFIX", "JOB_FOLDER_COMPLETION"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
