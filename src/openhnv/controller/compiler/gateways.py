"""The gateways of a snapshot resolved: each virtual gateway's compartment and connections.

A compartment lives on the server of the gateway the controller placed its virtual
gateway on; it joins its VNet through a NIC of its own (``Compartment.nic``: a ``Nic``
like a VM's, so its mapping reaches every host of the VNet and its port is programmed
on the gateway host) and joins each external network a connection names through one of
the gateway's external interfaces (a physical NIC of the server, named by its
resourceId on the host). Per VNet the compartment gives the distributed router its
routes: every connection's prefixes (and an L3 connection's own subnet, and 0.0.0.0/0
behind a Nat connection) go to the compartment's customer address. Pure; a document
that cannot be used is a ``CompileProblem`` and its virtual gateway is left out.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openhnv.controller.compiler.documents import (
    CompileProblem,
    Snapshot,
    children,
    documents,
    integer,
    items,
    mac_with_colons,
    properties,
    ref_key,
    ref_of,
    resource_id,
    text,
)
from openhnv.controller.compiler.values import Nic, Subnet
from openhnv.controller.errors import DocumentError

NAT, L3, IPSEC = "Nat", "L3", "IPSec"
CONNECTION_TYPES = (NAT, L3, IPSEC)
DEFAULT_ROUTE = "0.0.0.0/0"
CERTIFICATES = "Certificates"


@dataclass(frozen=True, slots=True)
class ExternalLeg:
    """Where a connection meets its external network on the gateway host."""

    interface: str  # the server's physical NIC resourceId = the host's interface name
    vlan: int
    prefix: str
    gateway: str  # the logical subnet's default gateway, "" when none


@dataclass(frozen=True, slots=True)
class Connection:
    name: str
    kind: str  # Nat | L3 | IPSec
    routes: tuple[str, ...]  # prefixes the compartment reaches through this connection
    addresses: tuple[str, ...]  # the compartment's addresses on the leg ("a.b.c.d/len")
    peers: tuple[str, ...]  # L3: next hops; IPSec: the remote endpoint
    leg: ExternalLeg
    port_mappings: tuple[str, ...] = ()  # "tcp:8080:10.1.1.11:80"
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def vnet_routes(self) -> tuple[str, ...]:
        """The prefixes the VNet sends to the compartment for this connection."""
        if self.kind == NAT:
            return (DEFAULT_ROUTE,)
        if self.kind == L3:
            connected = {str(ipaddress.ip_interface(a).network) for a in self.addresses}
            return tuple(sorted(set(self.routes) | connected))
        return self.routes


@dataclass(frozen=True, slots=True)
class CompartmentNic:
    """The compartment's NIC in the VNet (the index turns it into a ``Nic``)."""

    instance_id: str
    subnet_ref: str
    mac: str  # lower case with colons
    address: str


@dataclass(frozen=True, slots=True)
class Compartment:
    ref: str
    name: str  # the virtualGateway resourceId
    instance_id: str
    server_id: str
    vnet_id: str
    nic: CompartmentNic
    provider_address: str
    connections: tuple[Connection, ...]

    def routes(self) -> dict[str, str]:
        """prefix -> the compartment's CA, for the VNet's distributed router."""
        return {p: self.nic.address for c in self.connections for p in c.vnet_routes}

    def private_prefixes(self) -> frozenset[str]:
        """Prefixes of private sites (L3 and IPSec): to the ACL defaults, the VNet's own
        (as a VNet's address space includes its connected sites), never the Internet."""
        return frozenset(p for c in self.connections if c.kind != NAT for p in c.vnet_routes)


@dataclass(frozen=True, slots=True)
class GatewayIndex:
    compartments: Mapping[str, Compartment] = field(default_factory=dict)  # vgw key ->
    by_vnet: Mapping[str, Compartment] = field(default_factory=dict)  # vnet id ->

    def on_host(self, server_id: str) -> list[Compartment]:
        return [c for _, c in sorted(self.compartments.items()) if c.server_id == server_id]

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(c.server_id for c in self.compartments.values())


@dataclass(frozen=True, slots=True)
class Place:
    """What the gateway index needs from the rest of the snapshot's index."""

    host_by_ref: Mapping[str, str]  # server key -> server id
    provider_addresses: Mapping[str, Sequence[str]]  # server id -> its PAs
    subnet_vnets: Mapping[str, str]  # virtual subnet key -> vnet id
    subnet_prefixes: Mapping[str, str]  # virtual subnet key -> prefix


def build_gateways(
    snapshot: Snapshot, place: Place, problems: list[CompileProblem]
) -> GatewayIndex:
    """Every usable virtual gateway's compartment."""
    world = _World.read(snapshot, problems)
    compartments: dict[str, Compartment] = {}
    by_vnet: dict[str, Compartment] = {}
    for ref, doc in documents(snapshot, "virtualGateways", problems):
        try:
            compartment = _compartment(ref, doc, world, place)
        except DocumentError as err:
            problems.append(CompileProblem(ref, str(err)))
            continue
        if compartment is None:
            continue
        if compartment.vnet_id in by_vnet:
            other = by_vnet[compartment.vnet_id].ref
            problems.append(CompileProblem(ref, f"VNet {compartment.vnet_id} is {other}'s"))
            continue
        compartments[ref_key(ref)] = compartment
        by_vnet[compartment.vnet_id] = compartment
    return GatewayIndex(compartments, by_vnet)


@dataclass(frozen=True, slots=True)
class _World:
    """The documents gateways refer to, by casefolded ref."""

    gateways: Mapping[str, Mapping[str, Any]]
    servers: Mapping[str, Mapping[str, Any]]
    logical_subnets: Mapping[str, Mapping[str, Any]]
    public_ips: Mapping[str, Mapping[str, Any]]
    credentials: Mapping[str, Mapping[str, Any]]

    @classmethod
    def read(cls, snapshot: Snapshot, problems: list[CompileProblem]) -> _World:
        subnets: dict[str, Mapping[str, Any]] = {}
        for ref, doc in documents(snapshot, "logicalNetworks", problems):
            try:
                for subnet_ref, subnet in children(ref, properties(doc), "subnets"):
                    subnets[ref_key(subnet_ref)] = properties(subnet)
            except DocumentError as err:
                problems.append(CompileProblem(ref, str(err)))

        seen: list[CompileProblem] = []  # servers' problems are the index's to report

        def by_ref(collection: str, found: list[CompileProblem]) -> dict[str, Mapping[str, Any]]:
            return {ref_key(r): d for r, d in documents(snapshot, collection, found)}

        return cls(
            gateways=by_ref("gateways", problems),
            servers=by_ref("servers", seen),
            logical_subnets=subnets,
            public_ips=by_ref("publicIPAddresses", problems),
            credentials=by_ref("credentials", seen),
        )

    def legs(self, gateway: Mapping[str, Any]) -> dict[str, str]:
        """Logical subnet key -> interface name, for a gateway's external interfaces."""
        found: dict[str, str] = {}
        for value in items(properties(gateway).get("externalInterfaces"), "externalInterfaces"):
            pnic_ref = ref_of(value, "externalInterfaces[]")
            if pnic_ref is None:
                continue
            server = self.servers.get(ref_key(pnic_ref.rsplit("/networkInterfaces/", 1)[0]), {})
            for _, pnic in children(pnic_ref.rsplit("/networkInterfaces/", 1)[0],
                                    properties(server), "networkInterfaces"):  # fmt: skip
                if str(pnic.get("resourceId", "")).casefold() != resource_id(pnic_ref).casefold():
                    continue
                for subnet in items(properties(pnic).get("logicalSubnets"), "logicalSubnets"):
                    subnet_ref = ref_of(subnet, "logicalSubnets[]")
                    if subnet_ref is not None:
                        found[ref_key(subnet_ref)] = str(pnic["resourceId"])
        return found

    def leg(self, legs: Mapping[str, str], subnet_ref: str, what: str) -> ExternalLeg:
        interface = legs.get(ref_key(subnet_ref))
        subnet = self.logical_subnets.get(ref_key(subnet_ref))
        if interface is None or subnet is None:
            raise DocumentError(f"{what}: the gateway has no external interface on {subnet_ref}")
        gateways = items(subnet.get("defaultGateways"), "defaultGateways")
        return ExternalLeg(
            interface=interface,
            vlan=integer(subnet.get("vlanID", 0), f"{subnet_ref} vlanID"),
            prefix=str(ipaddress.ip_network(text(subnet, "addressPrefix", subnet_ref))),
            gateway=str(gateways[0]) if gateways else "",
        )


def _compartment(
    ref: str, doc: Mapping[str, Any], world: _World, place: Place
) -> Compartment | None:
    props = properties(doc)
    stored = props.get("compartment")
    if not isinstance(stored, Mapping):
        return None  # not placed (yet): nothing to compile
    gateway_ref = ref_of(stored.get("gateway"), "compartment.gateway")
    gateway = world.gateways.get(ref_key(gateway_ref or ""))
    if gateway_ref is None or gateway is None:
        raise DocumentError(f"compartment.gateway {gateway_ref} does not exist")
    server_ref = ref_of(properties(gateway).get("server"), f"{gateway_ref} server")
    server_id = place.host_by_ref.get(ref_key(server_ref or ""))
    if server_id is None:
        raise DocumentError(f"the server {server_ref} of {gateway_ref} does not exist")
    pas = place.provider_addresses.get(server_id, ())
    if not pas:
        raise DocumentError(f"gateway server {server_id} has no provider address yet")
    subnet_ref = ref_of(stored.get("subnet"), "compartment.subnet") or ""
    vnet_id = place.subnet_vnets.get(ref_key(subnet_ref))
    if vnet_id is None:
        raise DocumentError(f"compartment.subnet {subnet_ref} does not exist or was not compiled")
    instance_id = text(stored, "instanceId", "compartment")
    address = str(ipaddress.ip_address(text(stored, "ipAddress", "compartment")))
    nic = CompartmentNic(
        instance_id=instance_id,
        subnet_ref=subnet_ref,
        mac=mac_with_colons(stored.get("macAddress"), "compartment.macAddress"),
        address=address,
    )
    legs = world.legs(gateway)
    connections = tuple(
        _connection(connection_ref, connection, world, legs)
        for connection_ref, connection in children(ref, props, "networkConnections")
    )
    return Compartment(
        ref=ref,
        name=resource_id(ref),
        instance_id=text(doc, "instanceId", "document"),
        server_id=server_id,
        vnet_id=vnet_id,
        nic=nic,
        provider_address=sorted(pas)[zlib.crc32(instance_id.encode()) % len(pas)],
        connections=connections,
    )


def _connection(
    ref: str, doc: Mapping[str, Any], world: _World, legs: Mapping[str, str]
) -> Connection:
    props = properties(doc)
    what = f"networkConnection {resource_id(ref)}"
    kind = text(props, "connectionType", what)
    if kind not in CONNECTION_TYPES:
        raise DocumentError(f"{what}: connectionType {kind} is not built here")
    routes = tuple(
        sorted(
            str(ipaddress.ip_network(text(route, "destinationPrefix", what)))
            for route in items(props.get("routes"), f"{what} routes")
        )
    )
    options: dict[str, str] = {}
    port_mappings: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    if kind == L3:
        config = props.get("l3Configuration") or {}
        subnet_ref = ref_of(config.get("vlanSubnet"), f"{what} l3Configuration.vlanSubnet")
        leg = world.leg(legs, subnet_ref or "", what)
        addresses = tuple(
            f"{text(a, 'ipAddress', what)}/{integer(a.get('prefixLength'), what)}"
            for a in items(props.get("ipAddresses"), f"{what} ipAddresses")
        )
        peers = tuple(str(p) for p in items(props.get("peerIPAddresses"), what))
    else:
        pip_ref = ref_of(props.get("publicIPAddress"), f"{what} publicIPAddress") or ""
        pip = world.public_ips.get(ref_key(pip_ref))
        if pip is None:
            raise DocumentError(f"{what}: publicIPAddress {pip_ref} does not exist")
        pip_props = properties(pip)
        subnet_ref = ref_of(pip_props.get("logicalSubnet"), f"{pip_ref} logicalSubnet") or ""
        leg = world.leg(legs, subnet_ref, what)
        length = ipaddress.ip_network(leg.prefix).prefixlen
        addresses = (f"{text(pip_props, 'ipAddress', pip_ref)}/{length}",)
        if kind == NAT:
            rules = (props.get("natConfiguration") or {}).get("inboundNatRules")
            port_mappings = tuple(
                f"{text(r, 'protocol', what).lower()}:{integer(r.get('frontendPort'), what)}:"
                f"{text(r, 'backendIPAddress', what)}:{integer(r.get('backendPort'), what)}"
                for r in items(rules, f"{what} inboundNatRules")
            )
        else:
            peers = (text(props, "destinationIPAddress", what),)
            options = _ipsec_options(props.get("ipSecConfiguration") or {}, world, what)
    return Connection(
        name=resource_id(ref),
        kind=kind,
        routes=routes,
        addresses=addresses,
        peers=peers,
        leg=leg,
        port_mappings=port_mappings,
        options=options,
    )


def _ipsec_options(config: Mapping[str, Any], world: _World, what: str) -> dict[str, str]:
    """The southbound options of an IPSec connection (Microsoft's algorithm names)."""
    options: dict[str, str] = {}
    for mode in ("mainMode", "quickMode"):
        for name, value in (config.get(mode) or {}).items():
            options[f"{mode}.{name}"] = str(value)
    method = str(config.get("authenticationMethod", "PSK"))
    options["authenticationMethod"] = method
    if config.get("peerId"):
        options["peerId"] = str(config["peerId"])
    if method == CERTIFICATES:
        for name in ("localCertificate", "peerCertificateAuthority"):
            credential_ref = ref_of(config.get(name), f"{what} {name}") or ""
            credential = world.credentials.get(ref_key(credential_ref))
            if credential is None:
                raise DocumentError(f"{what}: {name} {credential_ref} does not exist")
            options[name] = text(properties(credential), "value", credential_ref)
    else:
        options["sharedSecret"] = text(config, "sharedSecret", f"{what} ipSecConfiguration")
    return options


def compartment_nics(gateways: GatewayIndex, subnets: Mapping[str, Subnet]) -> dict[str, Nic]:
    """The compartments' NICs, keyed like NICs (``<virtualGateway ref>/compartment``)."""
    nics: dict[str, Nic] = {}
    for compartment in gateways.compartments.values():
        subnet = subnets.get(ref_key(compartment.nic.subnet_ref))
        if subnet is None:
            continue
        ref = f"{compartment.ref}/compartment"
        nics[ref_key(ref)] = Nic(
            ref=ref,
            nic_id=compartment.name,
            instance_id=compartment.nic.instance_id,
            server_id=compartment.server_id,
            subnet=subnet,
            mac=compartment.nic.mac,
            addresses=(compartment.nic.address,),
            acl_ref=None,
            mac_spoofing=False,
            arp_guard=False,
            dhcp_guard=False,
            provider_address=compartment.provider_address,
            gateway=True,
        )
    return nics
