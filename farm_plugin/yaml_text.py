"""YAML files that people edit by hand: a parse error as one line that says where and what."""

from __future__ import annotations

import yaml


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """``line 3, column 14: expected ',' or ']', but got '<stream end>'`` (PyYAML's own text spans lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"
