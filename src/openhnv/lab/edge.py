"""The datacenter's edge in a topology file: what lies outside the VNets, and the ways out.

Optional sections of the topology (docs/topology.md "Gateways and the world outside"):

- ``external_networks``: logical networks outside HNV (an "Internet", a physical VLAN
  network), each with subnets (``vlan``, ``gateway``, ``public`` with an ``ip_pool`` of
  public addresses);
- ``gateways``: gateway hosts (``hnv host --role gateway``) on a PA subnet, with a leg on
  each external network they name;
- ``sites``: remote sites on an external network, each a router running its own
  strongSwan with a private ``lan`` behind it (a server at its ``.10``);
- ``physical_servers``: plain hosts on a subnet of an external network (an access port
  of its VLAN), with static routes;
- ``tors``: top-of-rack switches with a VXLAN VTEP on a PA subnet, and ``bare_metal``
  servers behind them joining a virtual subnet;
- ``virtual_gateways``: each tenant's gateway and its connections (``Nat``, ``IPSec``,
  ``L3``).

``parse_edge(top, base)`` reads and checks these against the rest of the topology
(``base``: PA subnets, hosts, virtual networks, VMs); ``TopologyError`` names the key path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from openhnv.lab import fields
from openhnv.lab.errors import TopologyError

KEYS = (
    "external_networks",
    "gateways",
    "sites",
    "physical_servers",
    "tors",
    "bare_metal",
    "virtual_gateways",
)
CONNECTION_TYPES = ("Nat", "IPSec", "L3")
AUTHENTICATIONS = ("psk", "certificates")
PROTOCOLS = ("TCP", "UDP")
VLAN_MAX = 4094
PORT_MAX = 65535
MAX_UPLINKS = 8
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,11}")  # part of interface and namespace names
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
V4 = ipaddress.IPv4Address
Net = ipaddress.IPv4Network


@dataclass(frozen=True, slots=True)
class ExternalSubnet:
    name: str
    prefix: Net
    vlan: int
    gateway: V4 | None
    public: bool
    ip_pool: tuple[V4, V4] | None


@dataclass(frozen=True, slots=True)
class ExternalNetwork:
    name: str
    subnets: tuple[ExternalSubnet, ...]

    def subnet(self, name: str) -> ExternalSubnet:
        return fields.by_name(self.subnets, name)

    def subnet_of(self, address: V4) -> ExternalSubnet | None:
        return next((s for s in self.subnets if address in s.prefix), None)


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    pa_subnet: str
    uplinks: int
    networks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    network: str
    address: V4
    lan: Net

    @property
    def router(self) -> V4:
        return self.lan.network_address + 1

    @property
    def server(self) -> V4:
        return self.lan.network_address + 10


@dataclass(frozen=True, slots=True)
class PhysicalServer:
    name: str
    network: str
    subnet: str
    address: V4
    extra: tuple[V4, ...]
    routes: tuple[tuple[Net, V4], ...]


@dataclass(frozen=True, slots=True)
class Tor:
    name: str
    pa_subnet: str
    vtep: V4


@dataclass(frozen=True, slots=True)
class BareMetal:
    name: str
    tor: str
    virtual_network: str
    subnet: str
    ip: V4
    mac: str


@dataclass(frozen=True, slots=True)
class PortMapping:
    protocol: str
    port: int
    to: V4
    to_port: int


@dataclass(frozen=True, slots=True)
class Connection:
    name: str
    type: str
    network: str | None = None
    subnet: str | None = None
    address: V4 | None = None
    peer: V4 | None = None
    routes: tuple[Net, ...] = ()
    site: str | None = None
    authentication: str = "psk"
    port_mappings: tuple[PortMapping, ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualGateway:
    name: str
    virtual_network: str
    subnet: str
    connections: tuple[Connection, ...]


@dataclass(frozen=True, slots=True)
class Edge:
    """Everything of the topology outside the VNets; empty when the file names none."""

    external_networks: tuple[ExternalNetwork, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    sites: tuple[Site, ...] = ()
    physical_servers: tuple[PhysicalServer, ...] = ()
    tors: tuple[Tor, ...] = ()
    bare_metal: tuple[BareMetal, ...] = ()
    virtual_gateways: tuple[VirtualGateway, ...] = ()

    def external_network(self, name: str) -> ExternalNetwork:
        return fields.by_name(self.external_networks, name)

    def site(self, name: str) -> Site:
        return fields.by_name(self.sites, name)

    def tor(self, name: str) -> Tor:
        return fields.by_name(self.tors, name)

    def gateway(self, name: str) -> Gateway:
        return fields.by_name(self.gateways, name)

    def public_subnet(self) -> tuple[ExternalNetwork, ExternalSubnet] | None:
        """The first subnet with ``public`` (where Nat and IPSec get their address)."""
        for network in self.external_networks:
            for subnet in network.subnets:
                if subnet.public:
                    return network, subnet
        return None


class Base(Protocol):
    """What the edge is checked against (``topology.Topology`` is one)."""

    def pa_subnet_names(self) -> dict[str, tuple[Net, int, V4, tuple[V4, V4]]]: ...

    def host_names(self) -> set[str]: ...

    def vnet_subnets(self) -> dict[tuple[str, str], Net]: ...

    def vm_addresses(self) -> set[tuple[str, V4]]: ...


# ---------------------------------------------------------------- parsing


def parse_edge(top: Mapping[str, Any], base: Base) -> Edge:
    networks = fields.listed(top, "external_networks", "", _external_network, required=False)
    fields.unique(networks, "external_networks")
    edge = Edge(
        external_networks=networks,
        gateways=fields.listed(top, "gateways", "", _gateway, required=False),
        sites=fields.listed(top, "sites", "", _site, required=False),
        physical_servers=fields.listed(top, "physical_servers", "", _server, required=False),
        tors=fields.listed(top, "tors", "", _tor, required=False),
        bare_metal=fields.listed(top, "bare_metal", "", _bare_metal, required=False),
        virtual_gateways=fields.listed(
            top, "virtual_gateways", "", _virtual_gateway, required=False
        ),
    )
    for key in KEYS[1:]:
        fields.unique(getattr(edge, key), key)
    _check(edge, base)
    return edge


def _name(item: Mapping[str, Any], path: str) -> str:
    return fields.string(
        item, "name", path, pattern=_NAME, hint="1-12 of A-Za-z0-9, a letter first"
    )


def _pool(raw: object, where: str, prefix: Net) -> tuple[V4, V4] | None:
    if raw is None:
        return None
    start_text, _, end_text = str(raw).partition("-")
    try:
        start, end = V4(start_text.strip()), V4((end_text or start_text).strip())
    except ValueError:
        raise TopologyError(f"{where}: {raw!r} is not an address range") from None
    if start not in prefix or end not in prefix or start > end:
        raise TopologyError(f"{where}: {raw} is not a range of {prefix}")
    return start, end


def _external_subnet(raw: object, path: str) -> ExternalSubnet:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "prefix", "vlan", "gateway", "public", "ip_pool"))
    prefix = fields.network(item, "prefix", path)
    gateway = fields.address(item, "gateway", path) if item.get("gateway") else None
    if gateway is not None and gateway not in prefix:
        raise TopologyError(f"{path}.gateway: {gateway} is outside {prefix}")
    public = bool(item.get("public", False))
    pool = _pool(item.get("ip_pool"), f"{path}.ip_pool", prefix)
    if public and pool is None:
        raise TopologyError(f"{path}.ip_pool: a public subnet needs the pool of its addresses")
    return ExternalSubnet(
        name=_name(item, path),
        prefix=prefix,
        vlan=fields.integer(item, "vlan", path, 0, VLAN_MAX, default=0),
        gateway=gateway,
        public=public,
        ip_pool=pool,
    )


def _external_network(raw: object, path: str) -> ExternalNetwork:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "subnets"))
    subnets = fields.listed(item, "subnets", path, _external_subnet, required=True)
    fields.unique(subnets, f"{path}.subnets")
    fields.no_overlap([(s.name, s.prefix) for s in subnets], f"{path}.subnets")
    return ExternalNetwork(name=_name(item, path), subnets=subnets)


def _names(item: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    raw = item.get(key) or []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise TopologyError(f"{fields.key_path(path, key)}: expected a list of names")
    return tuple(raw)


def _gateway(raw: object, path: str) -> Gateway:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "pa_subnet", "uplinks", "external_networks"))
    return Gateway(
        name=_name(item, path),
        pa_subnet=fields.string(item, "pa_subnet", path),
        uplinks=fields.integer(item, "uplinks", path, 1, MAX_UPLINKS, default=1),
        networks=_names(item, "external_networks", path),
    )


def _site(raw: object, path: str) -> Site:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "network", "address", "lan"))
    return Site(
        name=_name(item, path),
        network=fields.string(item, "network", path),
        address=fields.address(item, "address", path),
        lan=fields.network(item, "lan", path),
    )


def _server(raw: object, path: str) -> PhysicalServer:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "network", "subnet", "address", "extra", "routes"))
    extra = tuple(V4(str(a)) for a in (item.get("extra") or []))
    routes: list[tuple[Net, V4]] = []
    for k, route in enumerate(item.get("routes") or []):
        where = f"{path}.routes[{k}]"
        entry = fields.mapping(route, where)
        fields.known(entry, where, ("prefix", "via"))
        routes.append((fields.network(entry, "prefix", where), fields.address(entry, "via", where)))
    return PhysicalServer(
        name=_name(item, path),
        network=fields.string(item, "network", path),
        subnet=fields.string(item, "subnet", path),
        address=fields.address(item, "address", path),
        extra=extra,
        routes=tuple(routes),
    )


def _tor(raw: object, path: str) -> Tor:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "pa_subnet", "vtep"))
    return Tor(
        name=_name(item, path),
        pa_subnet=fields.string(item, "pa_subnet", path),
        vtep=fields.address(item, "vtep", path),
    )


def _bare_metal(raw: object, path: str) -> BareMetal:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "tor", "virtual_network", "subnet", "ip", "mac"))
    mac = str(fields.required(item, "mac", path)).lower().replace("-", ":")
    if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
        raise TopologyError(f"{path}.mac: {item['mac']} is not a unicast MAC address")
    return BareMetal(
        name=_name(item, path),
        tor=fields.string(item, "tor", path),
        virtual_network=fields.string(item, "virtual_network", path),
        subnet=fields.string(item, "subnet", path),
        ip=fields.address(item, "ip", path),
        mac=mac,
    )


def _port_mapping(raw: object, path: str) -> PortMapping:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("protocol", "port", "to", "to_port"))
    port = fields.integer(item, "port", path, 1, PORT_MAX)
    return PortMapping(
        protocol=fields.choice(item, "protocol", path, PROTOCOLS, default="TCP"),
        port=port,
        to=fields.address(item, "to", path),
        to_port=fields.integer(item, "to_port", path, 1, PORT_MAX, default=port),
    )


def _connection(raw: object, path: str) -> Connection:
    item = fields.mapping(raw, path)
    keys = ("name", "type", "network", "subnet", "address", "peer", "routes", "site",
            "authentication", "port_mappings")  # fmt: skip
    fields.known(item, path, keys)
    routes = tuple(
        fields.parse_network(r, f"{path}.routes[{k}]")
        for k, r in enumerate(item.get("routes") or [])
    )
    return Connection(
        name=_name(item, path),
        type=fields.choice(item, "type", path, CONNECTION_TYPES),
        network=str(item["network"]) if item.get("network") else None,
        subnet=str(item["subnet"]) if item.get("subnet") else None,
        address=fields.address(item, "address", path) if item.get("address") else None,
        peer=fields.address(item, "peer", path) if item.get("peer") else None,
        routes=routes,
        site=str(item["site"]) if item.get("site") else None,
        authentication=fields.choice(item, "authentication", path, AUTHENTICATIONS, default="psk"),
        port_mappings=fields.listed(item, "port_mappings", path, _port_mapping, required=False),
    )


def _virtual_gateway(raw: object, path: str) -> VirtualGateway:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "virtual_network", "subnet", "connections"))
    connections = fields.listed(item, "connections", path, _connection, required=False)
    fields.unique(connections, f"{path}.connections")
    return VirtualGateway(
        name=fields.string(item, "name", path),
        virtual_network=fields.string(item, "virtual_network", path),
        subnet=fields.string(item, "subnet", path),
        connections=connections,
    )


# ---------------------------------------------------------------- cross checks


def _check(edge: Edge, base: Base) -> None:
    pa = base.pa_subnet_names()
    hosts = base.host_names()
    nets = {n.name: n for n in edge.external_networks}
    for i, gw in enumerate(edge.gateways):
        if gw.pa_subnet not in pa:
            raise TopologyError(f"gateways[{i}].pa_subnet: no PA subnet named {gw.pa_subnet!r}")
        if gw.name in hosts:
            raise TopologyError(f"gateways[{i}].name: {gw.name!r} is also a host")
        for name in gw.networks:
            if name not in nets:
                raise TopologyError(f"gateways[{i}].external_networks: no network {name!r}")
    for i, site in enumerate(edge.sites):
        network = nets.get(site.network)
        found = network.subnet_of(site.address) if network is not None else None
        if found is None or found.vlan:
            raise TopologyError(
                f"sites[{i}].address: {site.address} is in no untagged subnet of {site.network!r}"
            )
    for i, server in enumerate(edge.physical_servers):
        _check_server(i, server, nets)
    for i, tor in enumerate(edge.tors):
        _check_tor(i, tor, pa)
    _check_bare_metal(edge, base)
    _check_virtual_gateways(edge, base)


def _check_server(i: int, server: PhysicalServer, nets: Mapping[str, ExternalNetwork]) -> None:
    network = nets.get(server.network)
    if network is None:
        raise TopologyError(f"physical_servers[{i}].network: no network {server.network!r}")
    try:
        subnet = network.subnet(server.subnet)
    except KeyError:
        raise TopologyError(f"physical_servers[{i}].subnet: no subnet {server.subnet!r}") from None
    if server.address not in subnet.prefix:
        raise TopologyError(f"physical_servers[{i}].address: outside {subnet.prefix}")


def _check_tor(i: int, tor: Tor, pa: Mapping[str, tuple[Net, int, V4, tuple[V4, V4]]]) -> None:
    if tor.pa_subnet not in pa:
        raise TopologyError(f"tors[{i}].pa_subnet: no PA subnet named {tor.pa_subnet!r}")
    prefix, vlan, gateway, (start, end) = pa[tor.pa_subnet]
    if vlan:
        raise TopologyError(f"tors[{i}].pa_subnet: a TOR's PA subnet must be untagged")
    if tor.vtep not in prefix or tor.vtep == gateway or start <= tor.vtep <= end:
        raise TopologyError(
            f"tors[{i}].vtep: {tor.vtep} must be in {prefix}, not its gateway nor its ip_pool"
        )


def _check_bare_metal(edge: Edge, base: Base) -> None:
    subnets = base.vnet_subnets()
    taken = base.vm_addresses()
    tors = {t.name for t in edge.tors}
    for i, server in enumerate(edge.bare_metal):
        if server.tor not in tors:
            raise TopologyError(f"bare_metal[{i}].tor: no TOR named {server.tor!r}")
        prefix = subnets.get((server.virtual_network, server.subnet))
        if prefix is None or server.ip not in prefix:
            raise TopologyError(f"bare_metal[{i}].ip: {server.ip} is not in that virtual subnet")
        if (server.virtual_network, server.ip) in taken:
            raise TopologyError(f"bare_metal[{i}].ip: {server.ip} is a VM's")


def _check_virtual_gateways(edge: Edge, base: Base) -> None:
    subnets = base.vnet_subnets()
    served: set[str] = set()
    legs = {n for gw in edge.gateways for n in gw.networks}
    for i, vgw in enumerate(edge.virtual_gateways):
        path = f"virtual_gateways[{i}]"
        if (vgw.virtual_network, vgw.subnet) not in subnets:
            raise TopologyError(f"{path}.subnet: {vgw.virtual_network}/{vgw.subnet} does not exist")
        if vgw.virtual_network in served:
            raise TopologyError(f"{path}.virtual_network: it already has a virtual gateway")
        served.add(vgw.virtual_network)
        for j, conn in enumerate(vgw.connections):
            _check_connection(f"{path}.connections[{j}]", conn, edge, legs)


def _check_connection(path: str, conn: Connection, edge: Edge, legs: set[str]) -> None:
    if conn.type in ("Nat", "IPSec"):
        public = edge.public_subnet()
        if public is None or public[0].name not in legs:
            raise TopologyError(f"{path}.type: {conn.type} needs a public subnet a gateway joins")
    if conn.type == "IPSec" and (
        conn.site is None or conn.site not in {s.name for s in edge.sites}
    ):
        raise TopologyError(f"{path}.site: an IPSec connection names one of the sites")
    if conn.type != "L3":
        return
    if conn.network not in legs:
        raise TopologyError(f"{path}.network: {conn.network!r} is no gateway's external network")
    try:
        subnet = edge.external_network(str(conn.network)).subnet(str(conn.subnet))
    except KeyError:
        raise TopologyError(f"{path}.subnet: {conn.subnet!r} is no subnet of it") from None
    for key, value in (("address", conn.address), ("peer", conn.peer)):
        if value is None or value not in subnet.prefix:
            raise TopologyError(f"{path}.{key}: {value} is not an address of {subnet.prefix}")


__all__ = ["KEYS", "Edge", "parse_edge"]
