"""Helpers for ComfyUI API-format graphs: ``{node_id: {"class_type": str, "inputs": {...}}}``."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

Graph = Dict[str, Dict[str, Any]]


def is_link(value: Any) -> bool:
    """A link is ``[node_id, output_index]``: a 2-item list whose first item is a string."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def iter_links(graph: Graph) -> Iterator[Tuple[str, str, str, int]]:
    """Yield ``(node_id, input_name, source_node_id, output_index)`` for every link in the graph."""
    for node_id, node in graph.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if is_link(value):
                yield node_id, name, value[0], value[1]


def find_cycle(graph: Graph) -> Optional[List[str]]:
    """Return the node ids of one cycle (first id repeated at the end), or None if the graph is acyclic."""
    upstream: Dict[str, List[str]] = {node_id: [] for node_id in graph}
    for node_id, _name, source, _index in iter_links(graph):
        if source in graph:
            upstream[node_id].append(source)
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if state.get(start):
            continue
        path: List[str] = []
        stack: List[Tuple[str, Iterator[str]]] = [(start, iter(upstream[start]))]
        state[start] = 1
        path.append(start)
        while stack:
            node_id, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node_id] = 2
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(upstream[child])))
    return None
