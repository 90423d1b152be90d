"""Rules of gateway pools, gateways and virtual gateways, and their compartments' values.

A gateway is a server (the host running ``hnv host --role gateway``) in a pool, with
legs on external networks: physical NICs of that server on logical subnets that are not
HNV provider subnets. A virtualGateway serves one VNet through its gateway subnet; the
controller places it on a gateway of its pool that has every leg its connections need
(the one with the fewest compartments) and gives its compartment a NIC of its own: a
customer address of the gateway subnet and a MAC from the macPools, kept across
replaces. Connections are checked in ``connection_rules``.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Collection, Iterator
from typing import Any

from openhnv.controller.errors import bad_request, conflict
from openhnv.controller.northbound import allocators
from openhnv.controller.northbound.admission import Admission, resolved
from openhnv.controller.northbound.compartments import (
    COMPARTMENT,
    compartment_addresses,
    compartment_macs,
    compartment_of,
    vnet_key_of,
)
from openhnv.controller.northbound.connection_rules import check_connections, legs_needed
from openhnv.controller.northbound.nic_rules import allocate_mac, check_customer_address
from openhnv.controller.northbound.paths import ResourcePath, parse_path
from openhnv.controller.northbound.state import State, children
from openhnv.controller.northbound.store import Document


def check_gateway_pool(adm: Admission) -> None:
    """A pool's type must still allow every connection of the virtual gateways in it."""
    allowed = ALLOWED_CONNECTIONS[adm.new["properties"].get("type", "All")]
    for path, doc in adm.state.all("virtualGateways"):
        if pool_of(doc) != adm.path.key:
            continue
        for connection in children(doc, "networkConnections"):
            kind = connection["properties"]["connectionType"]
            if kind not in allowed:
                raise conflict(
                    "properties.type",
                    f"{path.ref} has a {kind} connection, which a pool of type "
                    f"{adm.new['properties'].get('type')} does not carry",
                )


ALLOWED_CONNECTIONS: dict[str, frozenset[str]] = {
    "All": frozenset({"IPSec", "GRE", "L3", "Nat"}),
    "S2sIPsec": frozenset({"IPSec", "Nat"}),
    "S2sGre": frozenset({"GRE"}),
    "Forwarding": frozenset({"L3", "Nat"}),
}
"""Microsoft's pool types and the connections each carries (Nat is openhnv's)."""


def pool_of(doc: Document) -> str | None:
    """The key of a virtualGateway's pool (``gatewayPool``, or ``gatewayPools[0]``)."""
    props = doc.get("properties", {})
    ref = (props.get("gatewayPool") or {}).get("resourceRef")
    if ref is None and props.get("gatewayPools"):
        ref = props["gatewayPools"][0].get("resourceRef")
    return parse_path(ref).key if isinstance(ref, str) else None


def check_gateway(adm: Admission) -> None:
    props = adm.new["properties"]
    server = parse_path(props["server"]["resourceRef"])
    for path, doc in adm.state.all("gateways"):
        other = doc["properties"]["server"]["resourceRef"]
        if path.key != adm.path.key and parse_path(other).key == server.key:
            raise conflict("properties.server", f"{server.ref} is already gateway {path.ref}")
    for i, ref in enumerate(props.get("externalInterfaces", [])):
        where = f"properties.externalInterfaces[{i}]"
        pnic = parse_path(ref["resourceRef"])
        if pnic.top.key != server.key:
            raise bad_request(where, f"{pnic.ref} is not a network interface of {server.ref}")
        for subnet_ref in resolved(adm.state, pnic)["properties"].get("logicalSubnets", []):
            network = adm.state.top(parse_path(subnet_ref["resourceRef"]))
            if network is not None and network["properties"].get("networkVirtualizationEnabled"):
                raise bad_request(
                    where,
                    f"{pnic.ref} is on the HNV provider subnet {subnet_ref['resourceRef']}: "
                    "an external interface is on an external network",
                )
    if adm.old is not None:
        old_pool = parse_path(adm.old["properties"]["pool"]["resourceRef"]).key
        new_pool = parse_path(props["pool"]["resourceRef"]).key
        placed = [p.ref for p, d in adm.state.all("virtualGateways") if _placed_on(d, adm.path)]
        if old_pool != new_pool and placed:
            raise conflict("properties.pool", f"{placed[0]} is placed on this gateway")


def _placed_on(doc: Document, gateway: ResourcePath) -> bool:
    compartment = compartment_of(doc)
    ref = (compartment or {}).get("gateway", {}).get("resourceRef")
    return isinstance(ref, str) and parse_path(ref).key == gateway.key


def gateway_legs(state: State, gateway: Document) -> set[str]:
    """The keys of the logical subnets a gateway's external interfaces are on."""
    legs: set[str] = set()
    for ref in gateway["properties"].get("externalInterfaces", []):
        pnic = state.resolve(parse_path(ref["resourceRef"]))
        for subnet in (pnic or {}).get("properties", {}).get("logicalSubnets", []):
            legs.add(parse_path(subnet["resourceRef"]).key)
    return legs


def check_virtual_gateway(adm: Admission) -> None:
    props = adm.new["properties"]
    if props.get("bgpRouters"):
        raise bad_request(
            "properties.bgpRouters",
            "BGP is not supported by openhnv: give each networkConnection its routes",
        )
    pools = props.get("gatewayPools") or []
    if len(pools) > 1 or (pools and props.get("gatewayPool")):
        raise bad_request("properties.gatewayPools", "a virtual gateway is in one gateway pool")
    pool_key = pool_of(adm.new)
    if pool_key is None:
        raise bad_request("properties.gatewayPool", "is required")
    subnets = [parse_path(r["resourceRef"]) for r in props["gatewaySubnets"]]
    vnet = subnets[0].top
    for i, subnet in enumerate(subnets):
        if subnet.top.key != vnet.key:
            raise bad_request(
                f"properties.gatewaySubnets[{i}]",
                f"{subnet.ref} is not in {vnet.ref}: a virtual gateway serves one VNet",
            )
    for path, doc in adm.state.all("virtualGateways"):
        if path.key != adm.path.key and vnet_key_of(doc) == vnet.key:
            raise conflict("properties.gatewaySubnets", f"{vnet.ref} already has {path.ref}")
    pool = adm.state.docs[pool_key]
    check_connections(adm, vnet, ALLOWED_CONNECTIONS[pool["properties"].get("type", "All")])
    gateway = _place(adm, pool_key, legs_needed(adm))
    _compartment(adm, gateway, subnets[0], vnet)


def _place(adm: Admission, pool_key: str, legs: dict[str, str]) -> ResourcePath:
    """The gateway of the pool for this virtual gateway: its old one while it still fits,
    else the one with every leg ``legs`` needs and the fewest compartments."""
    load: dict[str, int] = {}
    for path, doc in adm.state.all("virtualGateways"):
        ref = (compartment_of(doc) or {}).get("gateway", {}).get("resourceRef")
        if path.key != adm.path.key and isinstance(ref, str):
            load[parse_path(ref).key] = load.get(parse_path(ref).key, 0) + 1
    fitting: list[tuple[int, str, ResourcePath]] = []
    lacking: list[str] = []
    for path, doc in adm.state.all("gateways"):
        if parse_path(doc["properties"]["pool"]["resourceRef"]).key != pool_key:
            continue
        missing = set(legs) - gateway_legs(adm.state, doc)
        if missing:
            lacking.append(f"{path.ref} has no leg on {legs[sorted(missing)[0]]}")
            continue
        fitting.append((load.get(path.key, 0), path.key, path))
    old = (compartment_of(adm.old) or {}).get("gateway", {}).get("resourceRef")
    if isinstance(old, str):
        for _, key, path in fitting:
            if key == parse_path(old).key:
                return path
    if not fitting:
        why = "; ".join(lacking) if lacking else "it has no gateway"
        raise conflict("properties.gatewayPool", f"no gateway of the pool fits: {why}")
    return min(fitting)[2]


def _compartment(
    adm: Admission, gateway: ResourcePath, subnet_path: ResourcePath, vnet: ResourcePath
) -> None:
    """The compartment's NIC: kept from the old document where still valid, else new."""
    old: dict[str, Any] = compartment_of(adm.old) or {}
    subnet = resolved(adm.state, subnet_path)
    prefix = subnet["properties"]["addressPrefix"]
    where = "properties.gatewaySubnets[0]"
    used = {a: r for a, r in adm.state.addresses.get(vnet.key, {}).items()}
    used |= {
        a: r for a, r in compartment_addresses(adm.state, vnet.key).items()
        if r.casefold() != adm.path.key
    }  # fmt: skip
    address = old.get("ipAddress")
    old_subnet = old.get("subnet", {}).get("resourceRef")
    same_subnet = isinstance(old_subnet, str) and parse_path(old_subnet).key == subnet_path.key
    if not (
        isinstance(address, str) and same_subnet and address not in used and _fits(address, prefix)
    ):
        low, high = allocators.usable_hosts(prefix)
        in_use = {int(ipaddress.ip_address(a)) for a in used}
        value = allocators.allocate([(low, high)], in_use, low)
        if value is None:
            raise conflict(where, f"subnet {prefix} has no free address", "PoolExhausted")
        address = allocators.address_text(value, ipaddress.ip_network(prefix).version)
    macs = {m: r for m, r in compartment_macs(adm.state).items() if r.casefold() != adm.path.key}
    mac = old.get("macAddress")
    if not isinstance(mac, str) or mac in macs or mac in adm.state.macs:
        mac = allocate_mac(adm, _Macs(adm.state.macs.keys(), macs.keys()))
    adm.new["properties"][COMPARTMENT] = {
        "gateway": {"resourceRef": gateway.ref},
        "subnet": {"resourceRef": subnet_path.ref},
        "ipAddress": address,
        "macAddress": mac,
        "instanceId": old.get("instanceId") or str(uuid.uuid4()),
    }


def _fits(address: str, prefix: str) -> bool:
    try:
        check_customer_address(address, prefix, "")
    except Exception:
        return False
    return True


class _Macs(Collection[int]):
    """MACs in use by NICs and by other compartments, as integers."""

    def __init__(self, *groups: Collection[str]) -> None:
        self.groups = groups

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and any(f"{value:012X}" in g for g in self.groups)

    def __len__(self) -> int:
        return sum(len(g) for g in self.groups)

    def __iter__(self) -> Iterator[int]:
        return (int(mac, 16) for g in self.groups for mac in g)
