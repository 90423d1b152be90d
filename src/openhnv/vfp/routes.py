"""Customer routes: where the distributed router sends addresses outside a VNet.

A VNet's routing domain (RDID) holds its own address space (``connected``: reached only
through the mapping space) and static routes, prefix -> next hop, whose next hop is a
customer address of the VNet (the tenant's gateway compartment). A destination inside
the address space never takes a route: without a mapping it is dropped, as before.
Outside it, the longest prefix wins; without a route it is dropped too.

The same table answers the receiving side's question (``next_hop`` of an inner
*source*): a packet whose source lies outside the VNet is genuine only when it comes
from the PA of the gateway that the VNet routes that source to.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TypeAlias

from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import parse_address
from openhnv.vfp.spaces import Mapping, MappingSpace

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(value: str, field_name: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=True)
    except (ValueError, TypeError):
        raise PolicyError(field_name, value, "not a CIDR prefix without host bits") from None


@dataclass(frozen=True, slots=True)
class CustomerRoute:
    """``prefix`` is reached through the customer address ``next_hop``."""

    prefix: str
    next_hop: str

    def __post_init__(self) -> None:
        net = _network(self.prefix, "prefix")
        hop = parse_address(self.next_hop, "next_hop")
        if hop.version != net.version:
            raise PolicyError("next_hop", self.next_hop, f"not of the family of {self.prefix}")
        object.__setattr__(self, "prefix", str(net))
        object.__setattr__(self, "next_hop", str(hop))


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes of one routing domain: its address space and its static routes."""

    rdid: str
    connected: tuple[str, ...] = ()
    routes: tuple[CustomerRoute, ...] = ()
    _connected: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _by_length: tuple[tuple[IPNetwork, IPAddress], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.rdid, str) or not self.rdid:
            raise PolicyError("rdid", self.rdid, "a routing domain id is a non-empty string")
        connected = tuple(sorted({str(_network(p, "connected")) for p in self.connected}))
        object.__setattr__(self, "connected", connected)
        seen: dict[str, CustomerRoute] = {}
        for route in self.routes:
            if not isinstance(route, CustomerRoute):
                raise PolicyError("routes", route, "not a CustomerRoute")
            other = seen.get(route.prefix)
            if other is not None and other != route:
                raise PolicyError("routes", route.prefix, "has two next hops")
            seen[route.prefix] = route
        object.__setattr__(self, "routes", tuple(seen[p] for p in sorted(seen)))
        object.__setattr__(self, "_connected", tuple(ipaddress.ip_network(p) for p in connected))
        ordered = sorted(
            (
                (ipaddress.ip_network(r.prefix), ipaddress.ip_address(r.next_hop))
                for r in seen.values()
            ),
            key=lambda pair: -pair[0].prefixlen,
        )
        object.__setattr__(self, "_by_length", tuple(ordered))

    def is_connected(self, address: IPAddress) -> bool:
        """Whether ``address`` is inside the VNet's own address space."""
        return any(address.version == n.version and address in n for n in self._connected)

    def next_hop(self, address: IPAddress) -> IPAddress | None:
        """The next hop CA toward ``address`` (longest prefix), None when it has none or
        lies inside the address space."""
        if self.is_connected(address):
            return None
        for net, hop in self._by_length:
            if address.version == net.version and address in net:
                return hop
        return None


class RouteSpace:
    """Every routing domain's table (an absent RDID routes nothing)."""

    __slots__ = ("_tables",)

    def __init__(self) -> None:
        self._tables: dict[str, RouteTable] = {}

    def set(self, table: RouteTable) -> None:
        self._tables[table.rdid] = table

    def remove(self, rdid: str, *, missing_ok: bool = False) -> None:
        if self._tables.pop(rdid, None) is None and not missing_ok:
            raise PolicyError("rdid", rdid, "has no route table")

    def get(self, rdid: str) -> RouteTable | None:
        return self._tables.get(rdid)

    def next_hop(self, rdid: str, address: IPAddress) -> IPAddress | None:
        """The next hop CA toward ``address`` in routing domain ``rdid``."""
        table = self._tables.get(rdid)
        return None if table is None else table.next_hop(address)

    def all(self) -> list[RouteTable]:
        return [self._tables[rdid] for rdid in sorted(self._tables)]


def gateway_mapping(
    routes: RouteSpace, mappings: MappingSpace, rdid: str, address: IPAddress
) -> Mapping | None:
    """The mapping of the gateway that routing domain ``rdid`` sends ``address`` to: the
    CA of the route's next hop (None without a route, or when the next hop is unmapped)."""
    hop = routes.next_hop(rdid, address)
    return None if hop is None else mappings.by_ip(rdid, hop)


def routed_through(
    routes: RouteSpace,
    mappings: MappingSpace,
    rdid: str,
    address: IPAddress,
    via: frozenset[IPAddress],
) -> bool:
    """Whether ``address`` is an outside address that ``rdid`` routes to one of ``via``
    (what a gateway port may send from besides its own addresses)."""
    if mappings.by_ip(rdid, address) is not None:
        return False
    hop = routes.next_hop(rdid, address)
    return hop is not None and hop in via
