"""A dual-stack virtual network from the compiler's rows to the engine: the rows, the
agent's plan (IPv6 CA mappings, the router's IPv6 address) and where IPv6 frames go."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import Ether

from openhnv.agent.arp import Ipv6Router
from openhnv.agent.dhcp6 import Dhcp6Config
from openhnv.agent.planner import plan
from openhnv.agent.rows import read_catalog
from openhnv.controller.compiler.compile import compile_datacenter, compile_host
from openhnv.lab import documents as nb
from openhnv.ovsdb.rows import Atom, Ref, Row
from openhnv.testing.fuzz.world import EmulatedDatacenter
from openhnv.testing.snapshots import (
    HOST1_PA,
    HOST2_PA,
    configuration,
    instance_id,
    nic,
    server,
    snapshot,
    stored,
)

RDID = "2b0a7f14-5c1e-4d0e-9a11-c0c0c0c05001"
ROUTER_MAC = "40:1d:d8:b7:1c:06"
A_MAC, B_MAC, C_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12", "00:1d:d8:07:00:13"


def dual_stack() -> dict[str, list[Any]]:
    subnets = [
        nb.virtual_subnet("web", "10.7.0.0/24", vsid=5001, ipv6_prefix="fd00:7::/64"),
        nb.virtual_subnet("db", "10.7.1.0/24", vsid=5002, ipv6_prefix="fd00:7:0:1::/64"),
    ]
    vnet = stored(
        nb.virtual_network("Dual", ["10.7.0.0/16", "fd00:7::/48"], subnets), routingDomainId=RDID
    )
    return snapshot(
        servers=[
            server("host1", [HOST1_PA], ["10.0.0.11"]),
            server("host2", [HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[vnet],
        nics=[
            nic(
                "a",
                A_MAC.replace(":", ""),
                [("10.7.0.11", "Dual/web"), ("fd00:7::11", "Dual/web")],
                "host1",
            ),
            nic(
                "b",
                B_MAC.replace(":", ""),
                [("10.7.0.12", "Dual/web"), ("fd00:7::12", "Dual/web")],
                "host2",
            ),
            nic("c", C_MAC.replace(":", ""), [("fd00:7:0:1::13", "Dual/db")], "host2"),
        ],
        config=configuration(),
    )


def column(row: Row, name: str) -> Mapping[Atom, Atom]:
    value = row[name]
    assert isinstance(value, Mapping)
    return value


def test_the_logical_switch_carries_both_prefixes_and_router_addresses() -> None:
    state = compile_host(dual_stack(), "host1")
    other = column(state["Logical_Switch"]["5001"], "other_config")
    assert other["address_prefix"] == "10.7.0.0/24"
    assert other["gateway_ip"] == "10.7.0.1"
    assert other["address_prefix_v6"] == "fd00:7::/64"
    assert other["gateway_ip_v6"] == "fd00:7::1"
    binding = column(state["Logical_Router"]["Dual"], "switch_binding")
    assert binding["fd00:7::/64"] == Ref("Logical_Switch", "5001")
    assert binding["10.7.0.0/24"] == Ref("Logical_Switch", "5001")


def test_every_ipv6_ca_is_a_mapping_to_an_ipv4_pa() -> None:
    state = compile_host(dual_stack(), "host1")
    ucast = {row["ipaddr"]: row for row in state["Ucast_Macs_Remote"].values()}
    assert {"fd00:7::11", "fd00:7::12", "fd00:7:0:1::13", "10.7.0.11", "10.7.0.12"} <= set(ucast)
    locator = ucast["fd00:7::12"]["locator"]
    assert isinstance(locator, Ref)
    assert state["Physical_Locator"][locator.key]["dst_ip"] == HOST2_PA[0]
    port = state["Physical_Port"][instance_id("/networkInterfaces/a")]
    assert column(port, "other_config")["ip_addresses"] == "10.7.0.11,fd00:7::11"


def test_the_agent_plans_ipv6_mappings_and_the_router_on_each_subnet() -> None:
    rows = compile_datacenter(dual_stack()).hosts["host1"]
    p = plan(read_catalog(rows))
    assert not p.problems
    m = p.mappings[(RDID, "fd00:7::12")]
    assert (m.customer_mac, m.provider_address, m.vsid) == (B_MAC, HOST2_PA[0], 5001)
    assert p.arp.ipv6_routers == {
        5001: Ipv6Router("fd00:7::/64", "fd00:7::1"),
        5002: Ipv6Router("fd00:7:0:1::/64", "fd00:7:0:1::1"),
    }
    port = p.ports[instance_id("/networkInterfaces/a")].port
    assert set(port.ip_addresses) == {"10.7.0.11", "fd00:7::11"}


def test_the_agent_plans_dhcpv6_answers_for_a_port_with_an_ipv6_address() -> None:
    rows = compile_datacenter(dual_stack()).hosts["host1"]
    port_plan = plan(read_catalog(rows)).ports[instance_id("/networkInterfaces/a")]
    assert port_plan.dhcp6 == Dhcp6Config("fd00:7::11", "fd00:7::/64", ROUTER_MAC)


def test_an_ipv6_row_outside_the_switch_prefixes_is_a_problem() -> None:
    rows = compile_datacenter(dual_stack()).hosts["host1"]
    switch = rows["Logical_Switch"]["5001"]
    bad = {
        **switch,
        "other_config": {**column(switch, "other_config"), "gateway_ip_v6": "fd00:7::5"},
    }
    p = plan(read_catalog({**rows, "Logical_Switch": {**rows["Logical_Switch"], "5001": bad}}))
    assert any("gateway_ip_v6" in problem.reason for problem in p.problems)


@pytest.fixture
def dc() -> Iterator[EmulatedDatacenter]:
    world = EmulatedDatacenter(dual_stack())
    yield world
    world.close()


def test_ipv6_tcp_crosses_hosts_in_the_subnet(dc: EmulatedDatacenter) -> None:
    frame = bytes(
        Ether(src=A_MAC, dst=B_MAC)
        / IPv6(src="fd00:7::11", dst="fd00:7::12")
        / TCP(sport=40000, dport=5201, flags="S")
    )
    dc.send("a", frame)
    got = dc.received("b")
    assert got == [frame]


def test_ipv6_is_routed_to_another_subnet_with_the_hop_limit_decremented(
    dc: EmulatedDatacenter,
) -> None:
    frame = bytes(
        Ether(src=A_MAC, dst=ROUTER_MAC)
        / IPv6(src="fd00:7::11", dst="fd00:7:0:1::13", hlim=64)
        / ICMPv6EchoRequest(id=7, seq=1)
    )
    dc.send("a", frame)
    (got,) = dc.received("c")
    packet = Ether(got)
    assert (packet.src, packet.dst, packet[IPv6].hlim) == (ROUTER_MAC, C_MAC, 63)


def test_a_vms_neighbor_solicitation_is_punted_never_flooded(dc: EmulatedDatacenter) -> None:
    frame = bytes(
        Ether(src=A_MAC, dst="33:33:ff:00:00:12")
        / IPv6(src="fd00:7::11", dst="ff02::1:ff00:12", hlim=255)
        / ICMPv6ND_NS(tgt="fd00:7::12")
    )
    dc.send("a", frame)
    assert dc.received("b") == []
    host, port = dc.ports["a"]
    counters = dc.switches[host].inspect(lambda e: e.listing.counters(port))
    assert counters.get("punt:nd") == 1


def test_a_spoofed_ipv6_source_is_dropped(dc: EmulatedDatacenter) -> None:
    frame = bytes(
        Ether(src=A_MAC, dst=B_MAC)
        / IPv6(src="fd00:7::99", dst="fd00:7::12")
        / TCP(sport=40000, dport=5201, flags="S")
    )
    dc.send("a", frame)
    assert dc.received("b") == []
