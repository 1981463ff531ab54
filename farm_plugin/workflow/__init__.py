"""Workflow packages: ``workflow.json`` (ComfyUI API format) + ``workflow.yaml`` (the manifest)."""

from __future__ import annotations

from typing import Dict, Tuple

from farm_plugin.public import public_names

# What other packages may use, by the module it lives in; tests/test_public_api.py keeps it true. A name is
# imported on first use, so importing one module of this package does not import the others.
_PUBLIC: Dict[str, Tuple[str, ...]] = {
    "graph": ("Graph",),
    "object_info": ("NodeDefinitions", "ObjectInfoError", "definitions_from_answer", "load_definitions"),
    "package": (
        "DEFAULT_PASS", "Link", "OutputBinding", "Parameter", "SequenceSettings", "WorkflowPackage",
        "WorkflowPackageError", "bundled_workflows_dir", "find_package", "list_packages", "load_package",
        "window_handles",
    ),
    "params": ("apply_parameters", "parse_assignments", "resolve_parameters"),
    "requirements": (
        "MODEL_MISSING", "MODEL_NOT_LISTED", "MODEL_UNCHECKED", "MissingNode", "PackageCheck", "check_package",
        "model_location", "requirement_summary",
    ),
    "validate": ("Problem", "validate_package"),
}
__all__, __getattr__ = public_names(__name__, _PUBLIC)
