"""Bad programming is refused with a PolicyError naming the field and the value."""

from __future__ import annotations

import pytest

from openhnv.vfp import commands as c
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import Allow, Route, Rule, conditions
from openhnv.vfp.spaces import Mapping, ProviderAddress


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: conditions(src_prefixes=["10.0.0.1/8"]), "src_prefixes"),
        (lambda: conditions(dst_macs=["zz:00:00:00:00:00"]), "dst_macs"),
        (lambda: conditions(dst_ports=[(90, 80)]), "dst_ports"),
        (lambda: conditions(protocols=[300]), "protocols"),
        (lambda: conditions(vsids=[12]), "vsids"),
        (lambda: Rule("", 1, conditions(), Allow()), "rule_id"),
        (lambda: Rule("r", -1, conditions(), Allow()), "priority"),
        (lambda: Rule("r", 1, conditions(), "allow"), "action"),  # type: ignore[arg-type]
        (lambda: Route("not-a-mac"), "router_mac"),
        (
            lambda: Mapping("rd", "10.0.0.1", "fd00::1", "00:00:00:00:00:01", 5001),
            "provider_address",
        ),
        (
            lambda: Mapping("rd", "10.0.0.1", "1.1.1.1", "00:00:00:00:00:01", 5001, "gre"),  # type: ignore[arg-type]
            "encapsulation",
        ),
        (lambda: ProviderAddress("1.1.1.1", "00:00:00:00:00:01", vlan_id=5000), "vlan_id"),
        (lambda: c.AddPort("p", "00:00:00:00:00:01", 1, "rd"), "vsid"),
        (lambda: c.AddGroup("p", "l", "g", "sideways"), "direction"),  # type: ignore[arg-type]
        (lambda: c.AddGroup("p", "l", "g", "in", family=5), "family"),
        (lambda: c.AddLayer("p", " l", 1), "name"),
    ],
)
def test_bad_values_name_their_field(build: object, field: str) -> None:
    with pytest.raises(PolicyError) as err:
        build()  # type: ignore[operator]
    assert err.value.field == field
    assert field in str(err.value)


def test_values_are_normalized_and_hashable() -> None:
    cond = conditions(src_macs=["00-1D-D8-00-00-01"], dst_ports=[80, (1024, 2048)])
    assert cond.src_macs == frozenset({"00:1d:d8:00:00:01"})
    assert cond.dst_ports == ((80, 80), (1024, 2048))
    assert hash(Rule("r", 1, cond, Allow())) == hash(Rule("r", 1, cond, Allow()))
