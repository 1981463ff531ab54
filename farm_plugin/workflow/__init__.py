"""Workflow packages: ``workflow.json`` (ComfyUI API format) + ``workflow.yaml`` (the manifest)."""
