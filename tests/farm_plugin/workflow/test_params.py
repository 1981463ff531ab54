from __future__ import annotations

import pytest

from farm_plugin.workflow.package import load_package
from farm_plugin.workflow.params import ParameterError, apply_parameters, parse_assignments, resolve_parameters

from .conftest import WORKFLOWS


@pytest.fixture
def blur():
    return load_package(WORKFLOWS / "blur")


def test_set_values_are_typed_and_land_on_their_node_inputs(blur) -> None:
    values = resolve_parameters(blur, parse_assignments(["radius=4", "sigma=2.5"]))
    assert values == {"radius": 4, "sigma": 2.5}
    graph = apply_parameters(blur, values)
    assert graph["2"]["inputs"] == {"image": ["1", 0], "blur_radius": 4, "sigma": 2.5}
    assert blur.graph["2"]["inputs"]["blur_radius"] == 5  # the package itself is untouched


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["size=3"], "workflow 'blur' has no parameter 'size': its parameters are radius, sigma"),
        (["radius=40"], "parameter 'radius' of workflow 'blur': 40 is above the maximum 31 "
                        "(allowed: a whole number from 1 to 31)"),
        (["sigma=0"], "parameter 'sigma' of workflow 'blur': 0.0 is below the minimum 0.1 "
                      "(allowed: a number from 0.1 to 10)"),
        (["radius=big"], "parameter 'radius': 'big' is not a whole number from 1 to 31"),
        (["radius"], "--set 'radius': write KEY=VALUE, e.g. --set radius=4"),
    ],
)
def test_bad_values_name_the_parameter_and_what_is_allowed(blur, items, message) -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(blur, parse_assignments(items))
    assert str(caught.value) == message
