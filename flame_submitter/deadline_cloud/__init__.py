"""The AWS Deadline Cloud backend: the planned jobs as Open Job Description job bundles (``bundle``),
written or submitted (``submit``) with Deadline Cloud's own command line (``cli``)."""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "bundle": ("BundleOptions", "build_bundles", "job_record_of"),
    "cli": ("find_cli",),
    "submit": ("PartlySubmitted", "submit_bundles", "write_bundles"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
