"""The gateway host's rows as compartment specs; bad rows are problems, never errors."""

from __future__ import annotations

import ipaddress
from typing import Any

from openhnv.gateway.rows import read_compartments


def rows(**connection: Any) -> dict[str, dict[str, dict[str, Any]]]:
    nat: dict[str, Any] = {
        "name": "vg/internet",
        "compartment": "vg",
        "connection_type": "Nat",
        "routes": frozenset(),
        "addresses": frozenset({"203.0.113.10/24"}),
        "peers": frozenset(),
        "network": {
            "interface": "pnic2",
            "vlan": "0",
            "prefix": "203.0.113.0/24",
            "gateway": "203.0.113.1",
        },
        "port_mappings": frozenset({"tcp:8080:10.1.1.11:80"}),
        "options": {},
    }
    nat.update(connection)
    return {
        "Gateway_Compartment": {
            "vg": {
                "name": "vg",
                "description": "id",
                "port": "port-id",
                "mac": "00:1D:D8:07:00:02",
                "address": "10.1.254.2/24",
                "router": "10.1.254.1",
                "address_space": frozenset({"10.1.0.0/16"}),
            }
        },
        "Gateway_Connection": {"vg/internet": nat},
    }


def test_a_compartment_with_its_connection() -> None:
    specs, problems = read_compartments(rows())
    assert problems == []
    spec = specs["vg"]
    assert spec.mac == "00:1d:d8:07:00:02"
    assert spec.router == ipaddress.ip_address("10.1.254.1")
    (nat,) = spec.connections
    assert nat.short_name == "internet"
    assert nat.leg.interface == "pnic2"
    assert nat.leg.vlan == 0
    assert nat.port_mappings[0].backend == ipaddress.ip_address("10.1.1.11")


def test_a_bad_connection_is_a_problem_and_the_compartment_stays() -> None:
    for bad, reason in (
        ({"connection_type": "GRE"}, "connection_type"),
        ({"addresses": frozenset()}, "addresses is empty"),
        ({"port_mappings": frozenset({"sctp:1:10.1.1.1:1"})}, "port_mappings"),
        ({"network": {"interface": "pnic2", "vlan": "5000", "prefix": "203.0.113.0/24"}}, "VLAN"),
    ):
        specs, problems = read_compartments(rows(**bad))
        assert specs["vg"].connections == ()
        assert len(problems) == 1
        assert reason in problems[0].reason


def test_a_connection_without_its_compartment_is_a_problem() -> None:
    snapshot = rows(compartment="other")
    specs, problems = read_compartments(snapshot)
    assert specs["vg"].connections == ()
    assert problems[0].reason == "compartment 'other' is missing"
