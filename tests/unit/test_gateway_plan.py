"""A compartment's layout: one namespace, a NIC in the VNet, one leg per external network,
routes per connection type, and the digest that tells what changed."""

from __future__ import annotations

import dataclasses
import ipaddress

from openhnv.gateway.plan import layout, namespace_of
from openhnv.gateway.rows import CompartmentSpec, ConnectionSpec, Leg

SPACE = (ipaddress.IPv4Network("10.1.0.0/16"),)


def connection(kind: str, interface: str, vlan: int, address: str, **kw: object) -> ConnectionSpec:
    prefix = ipaddress.IPv4Interface(address).network
    return ConnectionSpec(
        name=f"vg/{kind.lower()}",
        kind=kind,
        routes=tuple(kw.get("routes", ())),  # type: ignore[arg-type]
        addresses=(ipaddress.IPv4Interface(address),),
        peers=tuple(kw.get("peers", ())),  # type: ignore[arg-type]
        leg=Leg(interface, vlan, prefix, kw.get("gateway")),  # type: ignore[arg-type]
        options=kw.get("options", {}),  # type: ignore[arg-type]
    )


def spec(*connections: ConnectionSpec) -> CompartmentSpec:
    return CompartmentSpec(
        name="Contoso-gw",
        instance_id="i",
        port="port-1",
        mac="00:1d:d8:07:00:02",
        address=ipaddress.IPv4Interface("10.1.254.2/24"),
        router=ipaddress.IPv4Address("10.1.254.1"),
        address_space=SPACE,
        connections=connections,
    )


NAT = connection("Nat", "pnic2", 0, "203.0.113.10/24", gateway=ipaddress.ip_address("203.0.113.1"))
L3 = connection(
    "L3",
    "pnic3",
    20,
    "172.16.20.2/24",
    routes=(ipaddress.ip_network("172.16.40.0/24"),),
    peers=(ipaddress.ip_address("172.16.20.1"),),
)
IPSEC = connection(
    "IPSec",
    "pnic2",
    0,
    "203.0.113.10/24",
    routes=(ipaddress.ip_network("192.168.100.0/24"),),
    peers=(ipaddress.ip_address("203.0.113.50"),),
    options={"authenticationMethod": "PSK", "sharedSecret": "k"},
)


def test_the_compartment_joins_the_vnet_through_its_port_and_its_router() -> None:
    lay = layout(spec(NAT), "hnv-l-cmp-gw1-")
    assert lay.namespace == "hnv-l-cmp-gw1-contoso-gw"
    assert len(lay.vnet_host_side) <= 15
    assert lay.port_alias == "openhnv-port port-1 00:1d:d8:07:00:02"
    assert ("10.1.0.0/16", "10.1.254.1", "eth0") in [
        (r.prefix, r.via, r.device) for r in lay.routes
    ]


def test_connections_on_one_network_share_a_leg_and_a_vlan_leg_is_relayed() -> None:
    lay = layout(spec(NAT, IPSEC, L3), "hnv-x-")
    assert [(leg.inside, leg.parent, leg.vlan, leg.relayed) for leg in lay.legs] == [
        ("ext0", "pnic2", 0, False),
        ("ext1", "pnic3", 20, True),
    ]
    assert all(len(leg.host_side) <= 15 for leg in lay.legs)
    routes = {(r.prefix, r.via, r.device) for r in lay.routes}
    assert ("default", "203.0.113.1", "ext0") in routes  # Nat: default route out
    assert ("172.16.40.0/24", "172.16.20.1", "ext1") in routes  # L3: through the peer
    assert not any(r.prefix == "192.168.100.0/24" for r in lay.routes)  # IPSec: charon's
    assert lay.ipsec is not None
    assert "remote_addrs = 203.0.113.50" in lay.ipsec.swanctl_conf


def test_the_digest_of_a_part_changes_only_with_that_part() -> None:
    before = layout(spec(NAT), "hnv-x-")
    after = layout(spec(NAT, L3), "hnv-x-")
    assert before.digest("base") == after.digest("base")
    assert before.digest("legs") != after.digest("legs")
    assert before.digest("nft") != after.digest("nft")
    assert before.digest("ipsec") == after.digest("ipsec")
    moved = layout(dataclasses.replace(spec(NAT), mac="00:1d:d8:07:00:09"), "hnv-x-")
    assert moved.digest("base") != before.digest("base")


def test_long_names_stay_bounded_and_distinct() -> None:
    a = namespace_of("hnv-lab-cmp-gw1-", "x" * 80 + "a")
    b = namespace_of("hnv-lab-cmp-gw1-", "x" * 80 + "b")
    assert len(a) <= 64
    assert len(b) <= 64
    assert a != b
    assert namespace_of("hnv-p-", "Weird/Name 1") == "hnv-p-weird-name-1"
