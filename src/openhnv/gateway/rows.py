"""Typed views of a gateway host's ``Gateway_Compartment`` and ``Gateway_Connection`` rows.

``read_compartments(snapshot)`` turns the two tables (docs/southbound.md, "Gateways")
into one ``CompartmentSpec`` per compartment with its connections. A malformed row, or
a connection whose compartment is missing, becomes a ``Problem`` and is left out; a
compartment with a bad connection is built without it. Pure, never raises.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMPARTMENTS, CONNECTIONS = "Gateway_Compartment", "Gateway_Connection"
TABLES = (COMPARTMENTS, CONNECTIONS)
KINDS = ("Nat", "L3", "IPSec")
PROTOCOLS = ("tcp", "udp")
VLAN_MAX = 4094
PORT_MAX = 65535


class RowError(ValueError):
    """What is wrong with one row."""


@dataclass(frozen=True, slots=True)
class Problem:
    table: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Leg:
    """An external network as the gateway host reaches it: interface and VLAN (0: none)."""

    interface: str
    vlan: int
    prefix: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None


@dataclass(frozen=True, slots=True)
class PortMapping:
    protocol: str  # tcp | udp
    frontend_port: int
    backend: ipaddress.IPv4Address
    backend_port: int


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    name: str  # "<compartment>/<connection>"
    kind: str  # Nat | L3 | IPSec
    routes: tuple[ipaddress.IPv4Network, ...]
    addresses: tuple[ipaddress.IPv4Interface, ...]
    peers: tuple[ipaddress.IPv4Address, ...]
    leg: Leg
    port_mappings: tuple[PortMapping, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class CompartmentSpec:
    name: str  # the virtual gateway's resourceId
    instance_id: str
    port: str  # the Physical_Port name of its NIC (the NIC's instanceId)
    mac: str
    address: ipaddress.IPv4Interface  # in the gateway subnet
    router: ipaddress.IPv4Address  # the distributed router there
    address_space: tuple[ipaddress.IPv4Network, ...]
    connections: tuple[ConnectionSpec, ...] = ()


def _text(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column, "")
    if not isinstance(value, str) or not value:
        raise RowError(f"{column}={value!r} is not a non-empty string")
    return value


def _strings(row: Mapping[str, Any], column: str) -> list[str]:
    value = row.get(column, frozenset())
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, frozenset | set | list | tuple):
        raise RowError(f"{column}={value!r} is not a set")
    return sorted(str(v) for v in value)


def _map(row: Mapping[str, Any], column: str) -> dict[str, str]:
    value = row.get(column, {})
    if isinstance(value, frozenset) and not value:
        return {}
    if not isinstance(value, Mapping):
        raise RowError(f"{column}={value!r} is not a map")
    return {str(k): str(v) for k, v in value.items()}


def _v4(kind: type[Any], text: str, column: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise RowError(f"{column} holds {text!r}, not an IPv4 value") from None
    return value


def compartment(row: Mapping[str, Any]) -> CompartmentSpec:
    address = _v4(ipaddress.IPv4Interface, _text(row, "address"), "address")
    if address.network.prefixlen == address.max_prefixlen:
        raise RowError(f"address {address} has no subnet")
    return CompartmentSpec(
        name=_text(row, "name"),
        instance_id=str(row.get("description", "")),
        port=_text(row, "port"),
        mac=_text(row, "mac").lower(),
        address=address,
        router=_v4(ipaddress.IPv4Address, _text(row, "router"), "router"),
        address_space=tuple(
            _v4(ipaddress.IPv4Network, p, "address_space") for p in _strings(row, "address_space")
        ),
    )


def connection(row: Mapping[str, Any]) -> ConnectionSpec:
    kind = _text(row, "connection_type")
    if kind not in KINDS:
        raise RowError(f"connection_type={kind!r} is not one of {', '.join(KINDS)}")
    network = _map(row, "network")
    vlan_text = network.get("vlan", "0")
    if not vlan_text.isdigit() or int(vlan_text) > VLAN_MAX:
        raise RowError(f"network:vlan={vlan_text!r} is not a VLAN ID 0..{VLAN_MAX}")
    interface = network.get("interface", "")
    if not interface:
        raise RowError("network:interface is empty")
    gateway = network.get("gateway", "")
    leg = Leg(
        interface=interface,
        vlan=int(vlan_text),
        prefix=_v4(ipaddress.IPv4Network, network.get("prefix", ""), "network:prefix"),
        gateway=_v4(ipaddress.IPv4Address, gateway, "network:gateway") if gateway else None,
    )
    addresses = tuple(
        _v4(ipaddress.IPv4Interface, a, "addresses") for a in _strings(row, "addresses")
    )
    if not addresses:
        raise RowError("addresses is empty: the compartment has no address on the leg")
    return ConnectionSpec(
        name=_text(row, "name"),
        kind=kind,
        routes=tuple(_v4(ipaddress.IPv4Network, p, "routes") for p in _strings(row, "routes")),
        addresses=addresses,
        peers=tuple(_v4(ipaddress.IPv4Address, p, "peers") for p in _strings(row, "peers")),
        leg=leg,
        port_mappings=tuple(_port_mapping(m) for m in _strings(row, "port_mappings")),
        options=_map(row, "options"),
    )


def _port_mapping(text: str) -> PortMapping:
    parts = text.split(":")
    if len(parts) != 4 or parts[0] not in PROTOCOLS:
        raise RowError(f"port_mappings holds {text!r}, not proto:port:address:port")
    protocol, front, backend, back = parts
    ports = [int(p) if p.isdigit() else 0 for p in (front, back)]
    if not all(1 <= p <= PORT_MAX for p in ports):
        raise RowError(f"port_mappings holds {text!r}: ports are 1..{PORT_MAX}")
    return PortMapping(
        protocol,
        ports[0],
        _v4(ipaddress.IPv4Address, backend, "port_mappings"),
        ports[1],
    )


def read_compartments(
    snapshot: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> tuple[dict[str, CompartmentSpec], list[Problem]]:
    """Every usable compartment with its usable connections; the rest as problems."""
    problems: list[Problem] = []
    found: dict[str, CompartmentSpec] = {}
    for key, row in sorted(snapshot.get(COMPARTMENTS, {}).items()):
        try:
            found[key] = compartment(row)
        except RowError as err:
            problems.append(Problem(COMPARTMENTS, key, str(err)))
    connections: dict[str, list[ConnectionSpec]] = {}
    for key, row in sorted(snapshot.get(CONNECTIONS, {}).items()):
        owner = str(row.get("compartment", ""))
        if owner not in found:
            problems.append(Problem(CONNECTIONS, key, f"compartment {owner!r} is missing"))
            continue
        try:
            connections.setdefault(owner, []).append(connection(row))
        except RowError as err:
            problems.append(Problem(CONNECTIONS, key, str(err)))
    out = {
        name: dataclasses.replace(spec, connections=tuple(connections.get(name, ())))
        for name, spec in found.items()
    }
    return out, problems
