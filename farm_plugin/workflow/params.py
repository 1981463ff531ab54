"""Artist parameters: parse ``--set KEY=VALUE`` text, check bounds, and apply them to the graph."""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, Mapping

from farm_plugin.errors import BadInput
from farm_plugin.workflow.graph import Graph
from farm_plugin.workflow.package import Parameter, WorkflowPackage
from farm_plugin.workflow.validate import parameter_value_problem


class ParameterError(ValueError, BadInput):
    """A parameter value is unknown or out of bounds: the message names it and says what is allowed."""


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _describe(parameter: Parameter) -> str:
    if parameter.type == "choice":
        return "one of " + ", ".join(map(str, parameter.choices))
    if parameter.type in ("int", "float"):
        low = "" if parameter.min is None else f"{parameter.min:g}"
        high = "" if parameter.max is None else f"{parameter.max:g}"
        kind = "a whole number" if parameter.type == "int" else "a number"
        return f"{kind} from {low or '-inf'} to {high or 'inf'}" if (low or high) else kind
    return {"bool": "true or false", "string": "text"}[parameter.type]


def parse_value(parameter: Parameter, text: str) -> Any:
    """Turn command-line text into the parameter's type."""
    try:
        if parameter.type == "int":
            return int(text)
        if parameter.type == "float":
            return float(text)
    except ValueError:
        raise ParameterError(
            f"parameter '{parameter.key}': '{text}' is not {_describe(parameter)}"
        ) from None
    if parameter.type == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ParameterError(f"parameter '{parameter.key}': '{text}' is not true or false")
    if parameter.type == "choice":
        for choice in parameter.choices:
            if str(choice) == text:
                return choice
    return text


def parse_assignments(items: Iterable[str], *, option: str = "--set", example: str = "radius=4") -> Dict[str, str]:
    """``["radius=4", "sigma=2"]`` → ``{"radius": "4", "sigma": "2"}``; ``option`` and ``example`` name the
    command-line option in the error."""
    values: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"{option} '{item}': write KEY=VALUE, e.g. {option} {example}")
        values[key.strip()] = value
    return values


def resolve_parameters(package: WorkflowPackage, overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """The package's defaults with ``overrides`` applied (text is parsed), every value checked."""
    known = {p.key: p for p in package.parameters}
    values = {key: p.default for key, p in known.items()}
    for key, raw in overrides.items():
        parameter = known.get(key)
        if parameter is None:
            names = ", ".join(known) or "none"
            raise ParameterError(f"workflow '{package.name}' has no parameter '{key}': its parameters are {names}")
        value = parse_value(parameter, raw) if isinstance(raw, str) and parameter.type != "string" else raw
        problem = parameter_value_problem(parameter, value)
        if problem:
            raise ParameterError(f"parameter '{key}' of workflow '{package.name}': {problem} "
                                 f"(allowed: {_describe(parameter)})")
        values[key] = value
    return values


def apply_parameters(package: WorkflowPackage, values: Mapping[str, Any]) -> Graph:
    """A copy of the package's graph with each parameter value set on its node input."""
    graph = copy.deepcopy(package.graph)
    for parameter in package.parameters:
        if parameter.key in values:
            graph[parameter.node]["inputs"][parameter.input] = values[parameter.key]
    return graph
