"""The edge sections of a topology: examples/gateways.yaml loads; a broken section is
one TopologyError naming its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from openhnv.lab.errors import TopologyError
from openhnv.lab.topology import from_document, load

GATEWAYS = Path(__file__).resolve().parents[2] / "examples" / "gateways.yaml"


def test_the_example_has_every_way_out() -> None:
    edge = load(GATEWAYS).edge
    kinds = {c.type for v in edge.virtual_gateways for c in v.connections}
    assert kinds == {"Nat", "IPSec", "L3"}
    assert edge.site("onprem").server.exploded == "192.168.100.10"
    assert [b.ip.exploded for b in edge.bare_metal] == ["10.1.1.50"]


def broken(change: str, value: object) -> str:
    document = yaml.safe_load(GATEWAYS.read_text())
    section, index, key = change.split(".")
    document[section][int(index)][key] = value
    with pytest.raises(TopologyError) as info:
        from_document(document)
    return str(info.value)


def test_a_gateway_on_an_unknown_pa_subnet() -> None:
    assert broken("gateways.0.pa_subnet", "rack9") == (
        "gateways[0].pa_subnet: no PA subnet named 'rack9'"
    )


def test_a_bare_metal_server_outside_its_subnet() -> None:
    assert "bare_metal[0].ip: 10.1.9.50" in broken("bare_metal.0.ip", "10.1.9.50")


def test_a_tor_vtep_in_the_pa_pool() -> None:
    assert broken("tors.0.vtep", "192.168.3.20").startswith("tors[0].vtep: 192.168.3.20")


def test_an_unknown_connection_type() -> None:
    document = yaml.safe_load(GATEWAYS.read_text())
    document["virtual_gateways"][0]["connections"][0]["type"] = "GRE"
    with pytest.raises(TopologyError, match=r"virtual_gateways\[0\].connections\[0\].type"):
        from_document(document)
