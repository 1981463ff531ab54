"""Queue, validation, execution and caching of the ComfyUI test double.

This follows ComfyUI 0.3.64's execution.py / main.py prompt_worker / comfy_execution (graph, caching,
progress) behaviour, rewritten for a numpy-only double:

* one worker thread takes prompts from a heap ordered by `number` (``front`` prompts get a negative one);
* validation (`validate_prompt`) gives the same error types, messages, details and node_errors shapes;
* the classic cache: every node's output is keyed on its class, literal inputs, IS_CHANGED and its
  ancestors' keys (not on its id), and only the keys of the latest prompt are kept;
* the WebSocket messages, their order and their recipients are those of the real server;
* fault injection (COMFYFARM_FAKE_FAULTS / POST /__fake__/faults) hooks into node execution.
"""

from __future__ import annotations

import builtins
import copy
import heapq
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from .nodes import NODE_CLASS_MAPPINGS, Env

log = logging.getLogger("comfyui")

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
OOM_TIPS = ("This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you "
            "might have accidentally set the batch_size to a large number.")


class InterruptProcessingException(Exception):
    pass


InterruptProcessingException.__module__ = "comfy.model_management"


class _InterruptFlag:
    """comfy.model_management's interrupt_processing flag: set by POST /interrupt, cleared when a prompt
    starts and when it is thrown."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value = False

    def set(self, value: bool = True) -> None:
        with self._lock:
            self._value = value

    def is_set(self) -> bool:
        with self._lock:
            return self._value

    def throw_if_set(self) -> None:
        with self._lock:
            if self._value:
                self._value = False
                raise InterruptProcessingException()


INTERRUPT = _InterruptFlag()


# ---------------------------------------------------------------------------------------------------------
# fault injection

LEAKED: List[bytearray] = []  # leak_mb_per_prompt's memory, held for the life of the process
FAULT_KEYS = {"node_delay_s", "fail_node", "die_on_prompt", "kill_on_prompt", "startup_delay_s", "refuse_start",
              "no_gpu", "gpu_count", "leak_mb_per_prompt"}


def check_faults(faults: Any) -> Dict[str, Any]:
    """Validate a fault set; raises ValueError with a readable message."""
    if not isinstance(faults, dict):
        raise ValueError("faults must be a JSON object")
    unknown = set(faults) - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)} (known: {sorted(FAULT_KEYS)})")
    for key in ("node_delay_s", "startup_delay_s", "leak_mb_per_prompt"):
        if key in faults and (not isinstance(faults[key], (int, float)) or isinstance(faults[key], bool)
                              or faults[key] < 0):
            raise ValueError(f"{key} must be a number >= 0")
    for key in ("die_on_prompt", "kill_on_prompt"):
        if key in faults and (not isinstance(faults[key], int) or isinstance(faults[key], bool) or faults[key] < 1):
            raise ValueError(f"{key} must be an integer >= 1 (1-based count of executed prompts)")
    if "no_gpu" in faults and not isinstance(faults["no_gpu"], bool):
        raise ValueError("no_gpu must be true or false")
    if "gpu_count" in faults and (not isinstance(faults["gpu_count"], int) or isinstance(faults["gpu_count"], bool)
                                  or faults["gpu_count"] < 1):
        raise ValueError("gpu_count must be an integer >= 1")
    if "refuse_start" in faults and not isinstance(faults["refuse_start"], str):
        raise ValueError("refuse_start must be a string")
    if "fail_node" in faults:
        specs = faults["fail_node"]
        for spec in specs if isinstance(specs, list) else [specs]:
            if not isinstance(spec, dict) or not ({"class_type", "node_id"} & set(spec)):
                raise ValueError("fail_node must be an object (or a list of objects) with class_type and/or node_id")
            extra = set(spec) - {"class_type", "node_id", "exception_type", "message", "times"}
            if extra:
                raise ValueError(f"unknown fail_node keys: {sorted(extra)}")
    return dict(faults)


class Faults:
    """The current fault set, replaced as a whole; read by the worker thread."""

    def __init__(self, faults: Optional[Dict[str, Any]] = None):
        self._lock = threading.Lock()
        self._faults: Dict[str, Any] = {}
        self._fail_counts: Dict[int, int] = {}
        self.replace(faults or {})

    def replace(self, faults: Dict[str, Any]) -> None:
        faults = check_faults(faults)
        with self._lock:
            self._faults = faults
            self._fail_counts = {}

    def get(self) -> Dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._faults)

    def node_delay_s(self) -> float:
        with self._lock:
            return float(self._faults.get("node_delay_s", 0) or 0)

    def die_on_prompt(self) -> Optional[int]:
        with self._lock:
            return self._faults.get("die_on_prompt")

    def kill_on_prompt(self) -> Optional[int]:
        with self._lock:
            return self._faults.get("kill_on_prompt")

    def leak_mb_per_prompt(self) -> float:
        with self._lock:
            return float(self._faults.get("leak_mb_per_prompt", 0) or 0)

    def failure_for(self, node_id: str, class_type: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            specs = self._faults.get("fail_node")
            if specs is None:
                return None
            for index, spec in enumerate(specs if isinstance(specs, list) else [specs]):
                if "class_type" in spec and spec["class_type"] != class_type:
                    continue
                if "node_id" in spec and str(spec["node_id"]) != node_id:
                    continue
                times = spec.get("times")
                if times is not None:
                    if self._fail_counts.get(index, 0) >= times:
                        continue
                    self._fail_counts[index] = self._fail_counts.get(index, 0) + 1
                return spec
            return None


def make_exception(type_name: str, message: str) -> BaseException:
    """An exception whose full type name (module.qualname, builtins bare) is `type_name`."""
    if type_name == "torch.cuda.OutOfMemoryError":
        type_name = "torch.OutOfMemoryError"
    builtin = getattr(builtins, type_name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        return builtin(message)
    module, _, qualname = type_name.rpartition(".")
    cls = type(qualname, (Exception,), {})
    cls.__module__ = module or "builtins"
    cls.__qualname__ = qualname
    return cls(message)


def full_type_name(klass: type) -> str:
    module = klass.__module__
    if module == "builtins":
        return klass.__qualname__
    return module + "." + klass.__qualname__


# ---------------------------------------------------------------------------------------------------------
# helpers shared by validation and execution


def is_link(obj: Any) -> bool:
    return isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], (int, float))


def get_input_info(valid_inputs: dict, input_name: str):
    """(input_type, category, extra_info) of an input, or (None, None, None)."""
    for category in ("required", "optional", "hidden"):
        if category in valid_inputs and input_name in valid_inputs[category]:
            info = valid_inputs[category][input_name]
            extra = info[1] if len(info) > 1 else {}
            return info[0], category, extra
    return None, None, None


def get_input_data(env: Env, inputs: dict, class_def: type, unique_id: str, outputs: Optional[_Cache] = None,
                   prompt: Optional[dict] = None, extra_data: Optional[dict] = None):
    valid_inputs = class_def.INPUT_TYPES(env)
    extra_data = extra_data or {}
    input_data_all: Dict[str, Any] = {}
    missing_keys: Dict[str, bool] = {}
    for x in inputs:
        input_data = inputs[x]
        _, input_category, input_info = get_input_info(valid_inputs, x)
        raw_link = isinstance(input_info, dict) and input_info.get("rawLink", False)
        if is_link(input_data) and not raw_link:
            from_id, index = input_data[0], input_data[1]
            cached = outputs.get(from_id) if outputs is not None else None
            if cached is None or index >= len(cached):
                missing_keys[x] = True
                input_data_all[x] = (None,)
                continue
            input_data_all[x] = cached[index]
        elif input_category is not None:
            input_data_all[x] = [input_data]
    hidden = valid_inputs.get("hidden", {})
    for x, kind in hidden.items():
        if kind == "PROMPT":
            input_data_all[x] = [prompt if prompt is not None else {}]
        elif kind == "EXTRA_PNGINFO":
            input_data_all[x] = [extra_data.get("extra_pnginfo", None)]
        elif kind == "UNIQUE_ID":
            input_data_all[x] = [unique_id]
    return input_data_all, missing_keys


def map_node_over_list(func, input_data_all: dict, input_is_list: bool = False, before_each=None) -> list:
    """Call `func` once per element of the (list-valued) inputs, repeating the last element of shorter
    lists, as ComfyUI's _async_map_node_over_list does."""
    results = []
    if input_is_list:
        if before_each:
            before_each()
        return [func(**input_data_all)]
    max_len = max((len(v) for v in input_data_all.values()), default=0)
    if max_len == 0:
        if before_each:
            before_each()
        return [func()]
    for i in range(max_len):
        if before_each:
            before_each()
        results.append(func(**{k: v[i if len(v) > i else -1] for k, v in input_data_all.items()}))
    return results


def format_value(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (int, float, bool, str)):
        return x
    return str(x)


# ---------------------------------------------------------------------------------------------------------
# validation (execution.validate_inputs / validate_prompt)


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    if received_type == input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    return len(received & wanted) > 0


def _error(kind: str, message: str, details: str, extra_info: dict) -> dict:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def validate_inputs(env: Env, prompt: dict, unique_id: str, validated: dict):
    if unique_id in validated:
        return validated[unique_id]

    inputs = prompt[unique_id]["inputs"]
    class_type = prompt[unique_id]["class_type"]
    obj_class = NODE_CLASS_MAPPINGS[class_type]
    class_inputs = obj_class.INPUT_TYPES(env)
    valid_inputs = list(class_inputs.get("required", {})) + [
        x for x in class_inputs.get("optional", {}) if x not in class_inputs.get("required", {})]

    errors: List[dict] = []
    valid = True
    validate_args = list(obj_class.VALIDATE_ARGS) if obj_class.VALIDATE_INPUTS is not None else []
    received_types = {}

    for x in valid_inputs:
        input_type, input_category, extra_info = get_input_info(class_inputs, x)
        if x not in inputs:
            if input_category == "required":
                errors.append(_error("required_input_missing", "Required input is missing", f"{x}",
                                     {"input_name": x}))
            continue

        val = inputs[x]
        info = (input_type, extra_info)
        if isinstance(val, list):
            if len(val) != 2:
                errors.append(_error("bad_linked_input",
                                     "Bad linked input, must be a length-2 list of [node_id, slot_index]", f"{x}",
                                     {"input_name": x, "input_config": info, "received_value": val}))
                continue
            o_id = val[0]
            o_class_type = prompt[o_id]["class_type"]
            r = NODE_CLASS_MAPPINGS[o_class_type].return_types()
            received_type = r[val[1]]
            received_types[x] = received_type
            if not validate_node_input(received_type, input_type):
                errors.append(_error("return_type_mismatch", "Return type mismatch between linked nodes",
                                     f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                                     {"input_name": x, "input_config": info, "received_type": received_type,
                                      "linked_node": val}))
                continue
            try:
                r = validate_inputs(env, prompt, o_id, validated)
                if r[0] is False:
                    valid = False
                    continue
            except Exception as ex:
                _, _, tb = sys.exc_info()
                valid = False
                validated[o_id] = (False, [_error(
                    "exception_during_inner_validation", "Exception when validating inner node", str(ex),
                    {"input_name": x, "input_config": info, "exception_message": str(ex),
                     "exception_type": full_type_name(type(ex)), "traceback": traceback.format_tb(tb),
                     "linked_node": val})], o_id)
                continue
        else:
            try:
                if isinstance(val, dict) and "__value__" in val:
                    val = val["__value__"]
                    inputs[x] = val
                if input_type == "INT":
                    val = int(val)
                    inputs[x] = val
                if input_type == "FLOAT":
                    val = float(val)
                    inputs[x] = val
                if input_type == "STRING":
                    val = str(val)
                    inputs[x] = val
                if input_type == "BOOLEAN":
                    val = bool(val)
                    inputs[x] = val
            except Exception as ex:
                errors.append(_error("invalid_input_type", f"Failed to convert an input value to a {input_type} value",
                                     f"{x}, {val}, {ex}",
                                     {"input_name": x, "input_config": info, "received_value": val,
                                      "exception_message": str(ex)}))
                continue

            if x not in validate_args:
                if "min" in extra_info and val < extra_info["min"]:
                    errors.append(_error("value_smaller_than_min",
                                         "Value {} smaller than min of {}".format(val, extra_info["min"]), f"{x}",
                                         {"input_name": x, "input_config": info, "received_value": val}))
                    continue
                if "max" in extra_info and val > extra_info["max"]:
                    errors.append(_error("value_bigger_than_max",
                                         "Value {} bigger than max of {}".format(val, extra_info["max"]), f"{x}",
                                         {"input_name": x, "input_config": info, "received_value": val}))
                    continue
                if isinstance(input_type, list) and val not in input_type:
                    input_config: Any = info
                    if len(input_type) > 20:
                        list_info = f"(list of length {len(input_type)})"
                        input_config = None
                    else:
                        list_info = str(input_type)
                    errors.append(_error("value_not_in_list", "Value not in list", f"{x}: '{val}' not in {list_info}",
                                         {"input_name": x, "input_config": input_config, "received_value": val}))
                    continue

    if validate_args:
        input_data_all, _ = get_input_data(env, inputs, obj_class, unique_id)
        input_filtered = {x: v for x, v in input_data_all.items() if x in validate_args}
        ret = map_node_over_list(lambda **kw: obj_class.VALIDATE_INPUTS(env, **kw), input_filtered)
        for x in input_filtered:
            for r in ret:
                if r is not True:
                    details = f"{x}"
                    if r is not False:
                        details += f" - {r}"
                    errors.append(_error("custom_validation_failed", "Custom validation failed for node", details,
                                         {"input_name": x}))

    ret = (False, errors, unique_id) if errors or valid is not True else (True, [], unique_id)
    validated[unique_id] = ret
    return ret


def validate_prompt(env: Env, prompt: Any, partial_execution_list: Optional[list]):
    """(valid, error, outputs_to_execute, node_errors) exactly as execution.validate_prompt."""
    outputs = set()
    for x in prompt:
        if "class_type" not in prompt[x]:
            return (False, _error("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                                  f"Node ID '#{x}'", {}), [], {})
        class_type = prompt[x]["class_type"]
        class_ = NODE_CLASS_MAPPINGS.get(class_type, None)
        if class_ is None:
            return (False, _error("invalid_prompt", f"Cannot execute because node {class_type} does not exist.",
                                  f"Node ID '#{x}'", {}), [], {})
        if class_.is_output_node() and (partial_execution_list is None or x in partial_execution_list):
            outputs.add(x)

    if len(outputs) == 0:
        return (False, _error("prompt_no_outputs", "Prompt has no outputs", "", {}), [], {})

    good_outputs = set()
    errors = []
    node_errors: Dict[str, dict] = {}
    validated: Dict[str, tuple] = {}
    for o in outputs:
        try:
            m = validate_inputs(env, prompt, o, validated)
            valid, reasons = m[0], m[1]
        except Exception as ex:
            _, _, tb = sys.exc_info()
            valid = False
            reasons = [_error("exception_during_validation", "Exception when validating node", str(ex),
                              {"exception_type": full_type_name(type(ex)), "traceback": traceback.format_tb(tb)})]
            validated[o] = (False, reasons, o)

        if valid is True:
            good_outputs.add(o)
        else:
            log.error("Failed to validate prompt for output %s:", o)
            if reasons:
                log.error("* (prompt):")
                for reason in reasons:
                    log.error("  - %s: %s", reason['message'], reason['details'])
            errors.append((o, reasons))
            for node_id, result in validated.items():
                if result[0] is not True and len(result[1]) > 0:
                    if node_id not in node_errors:
                        class_type = prompt[node_id]["class_type"]
                        node_errors[node_id] = {"errors": result[1], "dependent_outputs": [], "class_type": class_type}
                        log.error("* %s %s:", class_type, node_id)
                        for reason in result[1]:
                            log.error("  - %s: %s", reason['message'], reason['details'])
                    node_errors[node_id]["dependent_outputs"].append(o)
            log.error("Output will be ignored")

    if len(good_outputs) == 0:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in errors for e in errs)
        return (False, _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details, {}),
                list(good_outputs), node_errors)
    return (True, None, list(good_outputs), node_errors)


# ---------------------------------------------------------------------------------------------------------
# caching (classic: keep only the keys of the current prompt)


class _Unhashable:
    """A key part that never equals another (ComfyUI uses NaN for these)."""

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)


def _freeze(obj: Any) -> Any:
    if isinstance(obj, (int, float, str, bool, type(None))):
        return obj
    if isinstance(obj, dict):
        return ("dict", frozenset((_freeze(k), _freeze(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return ("seq", tuple(_freeze(i) for i in obj))
    return _Unhashable()


class _Cache:
    """mode "classic" keeps only the current prompt's keys (ComfyUI's default), "none" keeps nothing from
    one prompt to the next (--cache-none), an integer N keeps up to N results, least recently used
    dropped first (--cache-lru N)."""

    def __init__(self, mode: Any = "classic"):
        self.mode = mode
        self.cache: Dict[Any, Any] = {}
        self.keys: Dict[str, Any] = {}
        self.generation = 0
        self.used: Dict[Any, int] = {}

    def set_prompt(self, keys: Dict[str, Any]) -> None:
        self.keys = keys
        used = set(keys.values())
        self.generation += 1
        for key in used:
            self.used[key] = self.generation
        if self.mode == "classic":
            drop = [k for k in self.cache if k not in used]
        elif self.mode == "none":
            drop = list(self.cache)
        else:
            by_age = sorted((k for k in self.cache if self.used.get(k, 0) < self.generation),
                            key=lambda k: self.used.get(k, 0))
            drop = by_age[:max(0, len(self.cache) - int(self.mode))]
        for key in drop:
            del self.cache[key]
            self.used.pop(key, None)

    def get(self, node_id: str) -> Any:
        key = self.keys.get(node_id)
        if key is None:
            return None
        return self.cache.get(key)

    def set(self, node_id: str, value: Any) -> None:
        self.cache[self.keys[node_id]] = value
        self.used[self.keys[node_id]] = self.generation

    def all_node_ids(self) -> set:
        return set(self.keys)

    def clear(self) -> None:
        self.cache.clear()


class CacheSet:
    def __init__(self, mode: Any = "classic"):
        self.outputs = _Cache(mode)
        self.ui = _Cache(mode)
        self.objects = _Cache()


def compute_signatures(env: Env, prompt: dict) -> Dict[str, Any]:
    """Input-signature cache keys of every node: class, IS_CHANGED, literal inputs and ancestors."""
    is_changed: Dict[str, Any] = {}

    def get_is_changed(node_id: str) -> Any:
        if node_id in is_changed:
            return is_changed[node_id]
        node = prompt[node_id]
        class_def = NODE_CLASS_MAPPINGS[node["class_type"]]
        if class_def.IS_CHANGED is None:
            is_changed[node_id] = False
            return False
        if "is_changed" in node:
            is_changed[node_id] = _freeze(node["is_changed"])
            return is_changed[node_id]
        input_data_all, _ = get_input_data(env, node["inputs"], class_def, node_id, None)
        try:
            value = map_node_over_list(lambda **kw: class_def.IS_CHANGED(env, **kw), input_data_all)
            node["is_changed"] = value
            is_changed[node_id] = _freeze(value)
        except Exception as e:
            log.warning("WARNING: %s", e)
            node["is_changed"] = float("NaN")
            is_changed[node_id] = _Unhashable()
        return is_changed[node_id]

    def ordered_ancestry(node_id: str):
        ancestors: List[str] = []
        order: Dict[str, int] = {}

        def walk(nid: str) -> None:
            if nid not in prompt:
                return
            inputs = prompt[nid]["inputs"]
            for key in sorted(inputs):
                if is_link(inputs[key]):
                    ancestor = inputs[key][0]
                    if ancestor not in order:
                        ancestors.append(ancestor)
                        order[ancestor] = len(ancestors) - 1
                        walk(ancestor)

        walk(node_id)
        return ancestors, order

    def immediate(node_id: str, order: Dict[str, int]) -> Any:
        if node_id not in prompt:
            return (_Unhashable(),)
        node = prompt[node_id]
        class_def = NODE_CLASS_MAPPINGS[node["class_type"]]
        signature: List[Any] = [node["class_type"], get_is_changed(node_id)]
        if "UNIQUE_ID" in class_def.INPUT_TYPES(env).get("hidden", {}).values():
            signature.append(node_id)
        inputs = node["inputs"]
        for key in sorted(inputs):
            if is_link(inputs[key]):
                ancestor_id, socket = inputs[key]
                signature.append((key, ("ANCESTOR", order[ancestor_id], socket)))
            else:
                signature.append((key, _freeze(inputs[key])))
        return tuple(signature)

    keys = {}
    for node_id in prompt:
        ancestors, order = ordered_ancestry(node_id)
        keys[node_id] = (immediate(node_id, order),) + tuple(immediate(a, order) for a in ancestors)
    return keys


# ---------------------------------------------------------------------------------------------------------
# execution order (comfy_execution.graph.ExecutionList)


class ExecutionList:
    def __init__(self, prompt: dict, is_cached):
        self.prompt = prompt
        self.is_cached = is_cached
        self.pending: Dict[str, bool] = {}
        self.block_count: Dict[str, int] = {}
        self.blocking: Dict[str, Dict[str, Dict[int, bool]]] = {}

    def _add_strong_link(self, from_id: str, socket: Any, to_id: str) -> None:
        if not self.is_cached(from_id):
            self.add_node(from_id)
            if to_id not in self.blocking[from_id]:
                self.blocking[from_id][to_id] = {}
                self.block_count[to_id] += 1
            self.blocking[from_id][to_id][socket] = True

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links = []
        while stack:
            unique_id = stack.pop()
            if unique_id in self.pending:
                continue
            self.pending[unique_id] = True
            self.block_count[unique_id] = 0
            self.blocking[unique_id] = {}
            inputs = self.prompt[unique_id]["inputs"]
            for name in inputs:
                value = inputs[name]
                if is_link(value) and not self.is_cached(value[0]):
                    stack.append(value[0])
                    links.append((value[0], value[1], unique_id))
        for link in links:
            self._add_strong_link(*link)

    def is_empty(self) -> bool:
        return len(self.pending) == 0

    def _is_output(self, node_id: str) -> bool:
        return NODE_CLASS_MAPPINGS[self.prompt[node_id]["class_type"]].is_output_node()

    def stage(self):
        available = [n for n in self.pending if self.block_count[n] == 0]
        if not available:
            blamed = next(iter(self.pending))
            return None, {"node_id": blamed, "exception_message": "Dependency cycle detected",
                          "exception_type": "graph.DependencyCycleError", "traceback": [], "current_inputs": []}
        for node_id in available:
            if self._is_output(node_id):
                return node_id, None
        for node_id in available:
            for blocked in self.blocking[node_id]:
                if self._is_output(blocked):
                    return node_id, None
        for node_id in available:
            for blocked in self.blocking[node_id]:
                for blocked1 in self.blocking[blocked]:
                    if self._is_output(blocked1):
                        return node_id, None
        return available[0], None

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking[node_id]:
            self.block_count[blocked] -= 1
        del self.blocking[node_id]


# ---------------------------------------------------------------------------------------------------------
# progress (comfy_execution.progress with the WebUI handler)


class ProgressRegistry:
    def __init__(self, server, prompt_id: str):
        self.server = server
        self.prompt_id = prompt_id
        self.nodes: Dict[str, dict] = {}

    def _send(self) -> None:
        active = {
            node_id: {"value": st["value"], "max": st["max"], "state": st["state"], "node_id": node_id,
                      "prompt_id": self.prompt_id, "display_node_id": node_id, "parent_node_id": None,
                      "real_node_id": node_id}
            for node_id, st in self.nodes.items() if st["state"] != "pending"
        }
        self.server.send_sync("progress_state", {"prompt_id": self.prompt_id, "nodes": active}, self.server.client_id)

    def _entry(self, node_id: str) -> dict:
        if node_id not in self.nodes:
            self.nodes[node_id] = {"state": "pending", "value": 0, "max": 1}
        return self.nodes[node_id]

    def start(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="running", value=0.0, max=1.0)
        self._send()

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry["state"] = "finished"
        entry["value"] = entry["max"]
        self._send()


# ---------------------------------------------------------------------------------------------------------
# the executor


SUCCESS, FAILURE = "success", "failure"


class PromptExecutor:
    def __init__(self, server, env: Env, faults: Faults, stats: Dict[str, int], cache_mode: Any = "classic"):
        self.server = server
        self.cache_mode = cache_mode
        self.env = env
        self.faults = faults
        self.stats = stats
        self.prompts_started = 0
        self.reset()

    def reset(self) -> None:
        self.caches = CacheSet(self.cache_mode)
        self.status_messages: List[Tuple[str, dict]] = []
        self.success = True
        self.history_result: Dict[str, Any] = {}

    def add_message(self, event: str, data: dict, broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.status_messages.append((event, data))
        if self.server.client_id is not None or broadcast:
            self.server.send_sync(event, data, self.server.client_id)

    def _die(self) -> None:
        self.server.flush_messages(timeout=1.0)
        if self.faults.kill_on_prompt() == self.prompts_started:
            # What the kernel's out-of-memory killer does: SIGKILL, no chance to say anything
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stderr.write(f"[ComfyUI test double] fault die_on_prompt={self.prompts_started}: exiting abruptly\n")
        sys.stderr.flush()
        os._exit(1)

    def _sleep_interruptibly(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            INTERRUPT.throw_if_set()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.01, left))

    def _handle_error(self, prompt_id: str, prompt: dict, current_outputs: set, executed: set, error: dict,
                      ex: BaseException) -> None:
        node_id = error["node_id"]
        class_type = prompt[node_id]["class_type"]
        if isinstance(ex, InterruptProcessingException):
            self.stats["prompts_interrupted"] += 1
            self.add_message("execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id,
                                                       "node_type": class_type, "executed": list(executed)},
                             broadcast=True)
        else:
            self.stats["prompts_failed"] += 1
            self.add_message("execution_error", {
                "prompt_id": prompt_id, "node_id": node_id, "node_type": class_type, "executed": list(executed),
                "exception_message": error["exception_message"], "exception_type": error["exception_type"],
                "traceback": error["traceback"], "current_inputs": error["current_inputs"],
                "current_outputs": list(current_outputs)}, broadcast=False)

    def execute(self, prompt: dict, prompt_id: str, extra_data: dict, execute_outputs: list) -> None:
        INTERRUPT.set(False)
        self.server.client_id = extra_data.get("client_id") if "client_id" in extra_data else None
        self.status_messages = []
        self.prompts_started += 1
        self.stats["prompts_executed"] += 1
        leak = int(self.faults.leak_mb_per_prompt() * 1024 * 1024)
        if leak:  # memory that is never given back, touched so that it is resident
            LEAKED.append(bytearray(b"\x01") * leak)
        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)

        progress = ProgressRegistry(self.server, prompt_id)
        keys = compute_signatures(self.env, prompt)
        self.caches.outputs.set_prompt(keys)
        self.caches.ui.set_prompt(keys)
        self.caches.objects.set_prompt({nid: (nid, prompt[nid]["class_type"]) for nid in prompt})

        cached_nodes = [nid for nid in prompt if self.caches.outputs.get(nid) is not None]
        self.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, broadcast=False)

        executed: set = set()
        execution_list = ExecutionList(prompt, lambda nid: self.caches.outputs.get(nid) is not None)
        current_outputs = self.caches.outputs.all_node_ids()
        for node_id in list(execute_outputs):
            execution_list.add_node(node_id)

        die = self.prompts_started in (self.faults.die_on_prompt(), self.faults.kill_on_prompt())
        failed = False
        while not execution_list.is_empty():
            node_id, error = execution_list.stage()
            if error is not None:
                self._handle_error(prompt_id, prompt, current_outputs, executed, error,
                                   Exception(error["exception_message"]))
                failed = True
                break
            result, error, ex = self._execute_node(prompt, prompt_id, node_id, extra_data, executed, progress, die)
            self.success = result != FAILURE
            if result == FAILURE:
                self._handle_error(prompt_id, prompt, current_outputs, executed, error, ex)
                failed = True
                break
            execution_list.complete(node_id)
        if not failed:
            self.stats["prompts_succeeded"] += 1
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)

        ui_outputs, meta_outputs = {}, {}
        for node_id in self.caches.ui.all_node_ids():
            ui_info = self.caches.ui.get(node_id)
            if ui_info is not None:
                ui_outputs[node_id] = ui_info["output"]
                meta_outputs[node_id] = ui_info["meta"]
        self.history_result = {"outputs": ui_outputs, "meta": meta_outputs}
        self.server.last_node_id = None

    def _execute_node(self, prompt: dict, prompt_id: str, unique_id: str, extra_data: dict, executed: set,
                      progress: ProgressRegistry, die: bool):
        server = self.server
        node = prompt[unique_id]
        inputs = node["inputs"]
        class_type = node["class_type"]
        class_def = NODE_CLASS_MAPPINGS[class_type]
        if self.caches.outputs.get(unique_id) is not None:
            if die:
                self._die()
            if server.client_id is not None:
                cached_ui = self.caches.ui.get(unique_id) or {}
                server.send_sync("executed", {"node": unique_id, "display_node": unique_id,
                                              "output": cached_ui.get("output", None), "prompt_id": prompt_id},
                                 server.client_id)
            progress.finish(unique_id)
            return SUCCESS, None, None

        input_data_all = None
        try:
            progress.start(unique_id)
            input_data_all, _ = get_input_data(self.env, inputs, class_def, unique_id, self.caches.outputs, prompt,
                                               extra_data)
            if server.client_id is not None:
                server.last_node_id = unique_id
                server.send_sync("executing", {"node": unique_id, "display_node": unique_id, "prompt_id": prompt_id},
                                 server.client_id)
            if die:
                self._die()
            obj = self.caches.objects.get(unique_id)
            if obj is None:
                obj = class_def(self.env)
                self.caches.objects.set(unique_id, obj)

            def before_each() -> None:
                INTERRUPT.throw_if_set()
                delay = self.faults.node_delay_s()
                if delay > 0:
                    self._sleep_interruptibly(delay)
                failure = self.faults.failure_for(unique_id, class_type)
                if failure is not None:
                    raise make_exception(failure.get("exception_type", "RuntimeError"),
                                         failure.get("message", "fault injected by the ComfyUI test double"))

            results = map_node_over_list(getattr(obj, class_def.FUNCTION), input_data_all,
                                         class_def.INPUT_IS_LIST, before_each)
            output_data, output_ui = self._merge(results, class_def)
            if output_ui:
                self.caches.ui.set(unique_id, {"meta": {"node_id": unique_id, "display_node": unique_id,
                                                        "parent_node": None, "real_node_id": unique_id},
                                               "output": output_ui})
                if server.client_id is not None:
                    server.send_sync("executed", {"node": unique_id, "display_node": unique_id, "output": output_ui,
                                                  "prompt_id": prompt_id}, server.client_id)
            self.caches.outputs.set(unique_id, output_data)
        except InterruptProcessingException as iex:
            log.info("Processing interrupted")
            return FAILURE, {"node_id": unique_id}, iex
        except Exception as ex:
            _, _, tb = sys.exc_info()
            formatted = {}
            if input_data_all is not None:
                formatted = {name: [format_value(x) for x in values] for name, values in input_data_all.items()}
            exception_type = full_type_name(type(ex))
            tips = ""
            if exception_type == "torch.OutOfMemoryError":
                tips = OOM_TIPS
                log.error("Got an OOM, unloading all loaded models.")
            log.error("!!! Exception during processing !!! %s", ex)
            log.error(traceback.format_exc())
            return FAILURE, {"node_id": unique_id, "exception_message": f"{ex}\n{tips}",
                             "exception_type": exception_type, "traceback": traceback.format_tb(tb),
                             "current_inputs": formatted}, ex

        self.stats["nodes_executed"] += 1
        progress.finish(unique_id)
        executed.add(unique_id)
        return SUCCESS, None, None

    @staticmethod
    def _merge(results: list, class_def: type):
        outs, uis = [], []
        for r in results:
            if isinstance(r, dict):
                if "ui" in r:
                    uis.append(r["ui"])
                if "result" in r:
                    outs.append(r["result"])
            else:
                outs.append(r)
        output: list = []
        if outs:
            is_list = class_def.OUTPUT_IS_LIST or (False,) * len(outs[0])
            for i, as_list in zip(range(len(outs[0])), is_list):
                if as_list:
                    output.append([y for o in outs for y in o[i]])
                else:
                    output.append([o[i] for o in outs])
        ui = {}
        if uis:
            ui = {k: [y for x in uis for y in x[k]] for k in uis[0]}
        return output, ui


# ---------------------------------------------------------------------------------------------------------
# the queue (execution.PromptQueue)


class PromptQueue:
    def __init__(self, server):
        self.server = server
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.task_counter = 0
        self.queue: list = []
        self.currently_running: Dict[int, tuple] = {}
        self.history: Dict[str, dict] = {}
        self.flags: Dict[str, Any] = {}

    def put(self, item: tuple) -> None:
        with self.mutex:
            heapq.heappush(self.queue, item)
            self.server.queue_updated()
            self.not_empty.notify()

    def get(self, timeout: Optional[float] = None):
        with self.not_empty:
            while len(self.queue) == 0:
                self.not_empty.wait(timeout=timeout)
                if timeout is not None and len(self.queue) == 0:
                    return None
            item = heapq.heappop(self.queue)
            i = self.task_counter
            self.currently_running[i] = copy.deepcopy(item)
            self.task_counter += 1
            self.server.queue_updated()
            return item, i

    def task_done(self, item_id: int, history_result: dict, status: Optional[dict]) -> None:
        with self.mutex:
            prompt = self.currently_running.pop(item_id)
            if len(self.history) > MAXIMUM_HISTORY_SIZE:
                self.history.pop(next(iter(self.history)))
            for key in SENSITIVE_EXTRA_DATA_KEYS:
                if isinstance(prompt[3], dict) and key in prompt[3]:
                    prompt[3].pop(key)
            self.history[prompt[1]] = {"prompt": prompt, "outputs": {},
                                       "status": copy.deepcopy(status) if status is not None else None}
            self.history[prompt[1]].update(history_result)
            self.server.queue_updated()

    def get_current_queue(self):
        with self.mutex:
            return list(self.currently_running.values()), copy.deepcopy(self.queue)

    def get_current_queue_volatile(self):
        with self.mutex:
            return list(self.currently_running.values()), copy.copy(self.queue)

    def get_tasks_remaining(self) -> int:
        with self.mutex:
            return len(self.queue) + len(self.currently_running)

    def wipe_queue(self) -> None:
        with self.mutex:
            self.queue = []
            self.server.queue_updated()

    def delete_queue_item(self, function) -> bool:
        with self.mutex:
            for x in range(len(self.queue)):
                if function(self.queue[x]):
                    if len(self.queue) == 1:
                        self.wipe_queue()
                    else:
                        self.queue.pop(x)
                        heapq.heapify(self.queue)
                    self.server.queue_updated()
                    return True
        return False

    def get_history(self, prompt_id: Optional[str] = None, max_items: Optional[int] = None, offset: int = -1):
        with self.mutex:
            if prompt_id is None:
                out = {}
                if offset < 0 and max_items is not None:
                    offset = len(self.history) - max_items
                for i, k in enumerate(self.history):
                    if i >= offset:
                        out[k] = self.history[k]
                        if max_items is not None and len(out) >= max_items:
                            break
                return out
            if prompt_id in self.history:
                return {prompt_id: copy.deepcopy(self.history[prompt_id])}
            return {}

    def wipe_history(self) -> None:
        with self.mutex:
            self.history = {}

    def delete_history_item(self, id_to_delete: Any) -> None:
        with self.mutex:
            self.history.pop(id_to_delete, None)

    def set_flag(self, name: str, data: Any) -> None:
        with self.mutex:
            self.flags[name] = data
            self.not_empty.notify()

    def get_flags(self, reset: bool = True) -> dict:
        with self.mutex:
            if reset:
                ret = self.flags
                self.flags = {}
                return ret
            return self.flags.copy()


def prompt_worker(server, executor: PromptExecutor) -> None:
    q: PromptQueue = server.prompt_queue
    while True:
        queue_item = q.get(timeout=1000.0)
        if queue_item is not None:
            item, item_id = queue_item
            start = time.perf_counter()
            prompt_id = item[1]
            server.last_prompt_id = prompt_id
            try:
                executor.execute(item[2], prompt_id, item[3], item[4])
            except Exception:  # a bug in the double: say so loudly, keep serving
                log.error("[ComfyUI test double] internal error while executing a prompt:\n%s", traceback.format_exc())
                executor.success = False
                executor.history_result = {"outputs": {}, "meta": {}}
            q.task_done(item_id, executor.history_result,
                        status={"status_str": "success" if executor.success else "error",
                                "completed": executor.success,
                                "messages": executor.status_messages})
            if server.client_id is not None:
                server.send_sync("executing", {"node": None, "prompt_id": prompt_id}, server.client_id)
            log.info("Prompt executed in %.2f seconds", time.perf_counter() - start)

        flags = q.get_flags()
        if flags.get("free_memory", False):
            executor.reset()
