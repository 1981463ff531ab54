"""The ``comfyfarm`` command line: one module per command (``run_local``, ``farm``, ``demo``, …), ``main`` here.

``python -m flame_submitter.cli`` runs it as the installed ``comfyfarm`` does.
"""

from __future__ import annotations

from flame_submitter.cli.main import main

__all__ = ["main"]
