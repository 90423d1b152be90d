"""Customer routes: the distributed router sends off-VNet traffic to the tenant's gateway,
and a host accepts traffic from outside the VNet only from that gateway's PA."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from vfp_frames import (
    CONTOSO,
    FABRIKAM,
    MAC_A,
    MAC_B,
    PA_A,
    PA_B,
    ROUTER,
    VM1,
    VM2,
    eth,
    host,
    ipv4,
    udp,
    udp_frame,
)

from openhnv.packet.frames import decapsulate
from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.policy import IN, OUT, Allow, Rule, conditions
from openhnv.vfp.routes import CustomerRoute, RouteTable
from openhnv.vfp.spaces import Mapping

INTERNET = "203.0.113.80"
ONPREM = "192.168.100.10"
# Contoso's gateway compartment: a NIC in the gateway subnet 10.1.3.0/24 on host B.
GW = ("gw", "00:1d:d8:00:00:99", "10.1.3.4", 5003, CONTOSO, PA_B)
PA_C = "192.168.1.30"


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def contoso_routes(*routes: tuple[str, str]) -> c.SetRoutes:
    table = RouteTable(CONTOSO, ("10.1.0.0/16",), tuple(CustomerRoute(p, h) for p, h in routes))
    return c.SetRoutes(table)


def gateway_world(*routes: tuple[str, str]) -> tuple[VfpEngine, VfpEngine]:
    """Host A (VM1) and host B (VM2 and Contoso's gateway port), Contoso routed as given."""
    a, b = host(PA_A, MAC_A), host(PA_B, MAC_B)
    for sw in (a, b):
        sw.programming.apply(c.AddMapping(Mapping(CONTOSO, GW[2], GW[5], GW[1], GW[3])))
        sw.programming.apply(contoso_routes(*routes))
    port = c.AddPort(GW[0], GW[1], GW[3], CONTOSO, (GW[2],), gateway=True)
    allow = [
        (IN, Rule("gateway-in", 100, conditions(), Allow())),
        (OUT, Rule("gateway-out", 100, conditions(), Allow())),
    ]
    b.programming.apply_all(
        hnv_port_commands(
            port, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"], nic_acl=allow, subnet_acl=allow
        )
    )
    return a, b


def only(emits: Sequence[object]) -> object:
    assert len(emits) == 1, emits
    return emits[0]


def to_outside(dst: str = INTERNET, sport: int = 4000) -> bytes:
    return udp_frame(VM1[1], ROUTER, VM1[2], dst, sport=sport, dport=80)


def from_outside(src: str = INTERNET, dport: int = 4000) -> bytes:
    """The gateway's reply toward VM1, sent to the distributed router."""
    return eth(ROUTER, GW[1], 0x0800, ipv4(src, VM1[2], 17, udp(80, dport)))


# -- the table ---------------------------------------------------------------------------
def test_the_longest_prefix_wins_and_the_address_space_never_routes() -> None:
    table = RouteTable(
        CONTOSO,
        ("10.1.0.0/16",),
        (CustomerRoute("0.0.0.0/0", "10.1.3.4"), CustomerRoute("192.168.100.0/24", "10.1.3.5")),
    )
    assert table.next_hop(ip(ONPREM)) == ip("10.1.3.5")
    assert table.next_hop(ip(INTERNET)) == ip("10.1.3.4")
    assert table.next_hop(ip("10.1.1.99")) is None  # inside the VNet: mappings only
    assert table.next_hop(ip("2001:db8::1")) is None  # no IPv6 route


def test_a_table_refuses_bad_prefixes_and_two_next_hops_for_one_prefix() -> None:
    with pytest.raises(PolicyError, match="host bits"):
        RouteTable(CONTOSO, (), (CustomerRoute("10.9.0.1/16", "10.1.3.4"),))
    with pytest.raises(PolicyError, match="two next hops"):
        RouteTable(
            CONTOSO,
            (),
            (CustomerRoute("0.0.0.0/0", "10.1.3.4"), CustomerRoute("0.0.0.0/0", "10.1.3.5")),
        )
    with pytest.raises(PolicyError, match="family"):
        CustomerRoute("::/0", "10.1.3.4")


# -- the distributed router ----------------------------------------------------------------
def test_off_vnet_traffic_goes_encapsulated_to_the_gateway_port() -> None:
    a, b = gateway_world(("0.0.0.0/0", GW[2]))
    tx = only(a.process("vm1", to_outside(), 0.0))
    assert isinstance(tx, Transmit)
    assert tx.provider_address == PA_B
    inner = decapsulate(tx.frame).inner
    assert inner[0:6] == bytes.fromhex(GW[1].replace(":", ""))  # to the gateway's MAC
    assert inner[22] == 63  # routed: TTL decremented
    assert decapsulate(tx.frame).vsid == GW[3]  # in the gateway subnet's VSID
    delivered = only(b.process(UPLINK, tx.frame, 0.0))
    assert isinstance(delivered, Deliver)
    assert delivered.port == "gw"


def test_without_a_route_off_vnet_traffic_is_dropped_as_no_mapping() -> None:
    a, _ = gateway_world()
    assert only(a.process("vm1", to_outside(), 0.0)) == Drop("vm1", "no_mapping")
    a2, _ = gateway_world(("192.168.100.0/24", GW[2]))
    assert only(a2.process("vm1", to_outside(INTERNET), 0.0)) == Drop("vm1", "no_mapping")
    assert isinstance(only(a2.process("vm1", to_outside(ONPREM), 0.0)), Transmit)


def test_an_unmapped_address_inside_the_vnet_is_not_sent_to_the_gateway() -> None:
    a, _ = gateway_world(("0.0.0.0/0", GW[2]))
    assert only(a.process("vm1", to_outside("10.1.1.99"), 0.0)) == Drop("vm1", "no_mapping")


def test_another_tenant_has_no_route_through_contosos_gateway() -> None:
    _, b = gateway_world(("0.0.0.0/0", GW[2]))
    fab = c.AddPort("fab1", "00:1d:d8:00:01:01", 6001, FABRIKAM, ("10.1.1.11",))
    b.programming.apply_all(
        hnv_port_commands(fab, router_mac=ROUTER, vnet_prefixes=["10.1.0.0/16"])
    )
    frame = udp_frame("00:1d:d8:00:01:01", ROUTER, "10.1.1.11", INTERNET, dport=80)
    assert only(b.process("fab1", frame, 0.0)) == Drop("fab1", "no_mapping")


# -- return traffic ------------------------------------------------------------------------
def test_the_gateway_port_may_send_from_outside_addresses_routed_to_it() -> None:
    a, b = gateway_world(("0.0.0.0/0", GW[2]))
    only(a.process("vm1", to_outside(), 0.0))  # VM1's flow opens the connection on A
    tx = only(b.process("gw", from_outside(), 0.0))
    assert isinstance(tx, Transmit)
    assert tx.provider_address == PA_A
    delivered = only(a.process(UPLINK, tx.frame, 0.0))
    assert isinstance(delivered, Deliver)
    assert delivered.port == "vm1"


def test_the_gateway_port_may_not_send_from_a_vnet_address_nor_another_port_from_outside() -> None:
    _, b = gateway_world(("0.0.0.0/0", GW[2]))
    spoof_vnet = eth(ROUTER, GW[1], 0x0800, ipv4(VM2[2], VM1[2], 17, udp(80, 4000)))
    assert only(b.process("gw", spoof_vnet, 0.0)) == Drop("gw", "spoofed_source")
    from_vm2 = eth(ROUTER, VM2[1], 0x0800, ipv4(INTERNET, VM1[2], 17, udp(80, 4000)))
    assert only(b.process("vm2", from_vm2, 0.0)) == Drop("vm2", "spoofed_source")


def test_outside_sources_are_accepted_only_from_the_gateways_pa() -> None:
    a, b = gateway_world(("0.0.0.0/0", GW[2]))
    only(a.process("vm1", to_outside(), 0.0))
    tx = only(b.process("gw", from_outside(), 0.0))
    assert isinstance(tx, Transmit)
    forged = tx.frame[:26] + ipaddress.IPv4Address(PA_C).packed + tx.frame[30:]
    assert only(a.process(UPLINK, forged, 0.0)) == Drop(UPLINK, "spoofed_source")
    a.programming.apply(c.RemoveRoutes(CONTOSO))  # the gateway withdrawn
    assert only(a.process(UPLINK, tx.frame, 0.0)) == Drop(UPLINK, "spoofed_source")


def test_removing_the_routes_stops_new_and_cached_flows_to_the_gateway() -> None:
    a, _ = gateway_world(("0.0.0.0/0", GW[2]))
    assert isinstance(only(a.process("vm1", to_outside(), 0.0)), Transmit)
    a.programming.apply(contoso_routes())
    assert only(a.process("vm1", to_outside(), 0.0)) == Drop("vm1", "no_mapping")
