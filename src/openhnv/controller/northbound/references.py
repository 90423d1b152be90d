"""Which fields of a resource refer to other resources, and what kind each must be.

One table (``_REFERENCES``) drives three things: a PUT whose reference names a missing
resource gets 400, a change that would leave another resource's reference dangling gets
409, and GET shows read-only back-references (a subnet's ``ipConfigurations``, an ACL's
``subnets``, a server's ``virtualNetworkInterfaces``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from openhnv.controller.northbound.documents import children
from openhnv.controller.northbound.paths import ResourcePath
from openhnv.controller.northbound.store import Document

LOGICAL = ("logicalNetworks",)
LOGICAL_SUBNET = ("logicalNetworks", "subnets")
VIRTUAL_SUBNET = ("virtualNetworks", "subnets")
ACL = ("accessControlLists",)
CREDENTIAL = ("credentials",)
SERVER = ("servers",)
PUBLIC_IP = ("publicIPAddresses",)
POOL = ("gatewayPools",)
GATEWAY = ("gateways",)
SERVER_NIC = ("servers", "networkInterfaces")


@dataclass(frozen=True, slots=True)
class Reference:
    """``holder["resourceRef"]`` at ``field`` of the resource at ``owner``."""

    owner: ResourcePath
    field: str
    holder: dict[str, Any]
    expected: tuple[str, ...]

    @property
    def ref(self) -> object:
        return self.holder.get("resourceRef")


def _ref(value: object) -> dict[str, Any] | None:
    if isinstance(value, dict) and "resourceRef" in value:
        return value
    return None


def _held(
    owner: ResourcePath, field: str, value: object, expected: tuple[str, ...]
) -> Iterator[Reference]:
    """The reference at ``field``, if ``value`` holds one."""
    holder = _ref(value)
    if holder is not None:
        yield Reference(owner, field, holder, expected)


def _virtual_network(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    yield from _held(path, "properties.logicalNetwork", props.get("logicalNetwork"), LOGICAL)
    for i, subnet in enumerate(children(doc, "subnets")):
        owner = path.child("subnets", str(subnet["resourceId"]))
        field = f"properties.subnets[{i}].properties.accessControlList"
        yield from _held(owner, field, subnet["properties"].get("accessControlList"), ACL)


def _server(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    for i, connection in enumerate(props.get("connections", [])):
        field = f"properties.connections[{i}].credential"
        yield from _held(path, field, connection.get("credential"), CREDENTIAL)
    for i, nic in enumerate(children(doc, "networkInterfaces")):
        owner = path.child("networkInterfaces", str(nic["resourceId"]))
        for j, value in enumerate(nic["properties"].get("logicalSubnets", [])):
            field = f"properties.networkInterfaces[{i}].properties.logicalSubnets[{j}]"
            yield from _held(owner, field, value, LOGICAL_SUBNET)


def _subnet_kind(value: object) -> tuple[str, ...]:
    """A NIC's subnet is a virtual subnet, or a logical (VLAN) subnet of a traditional
    network (Microsoft's "ByLogicalNetwork" NICs: gateway external NICs, VLAN VMs)."""
    ref = _ref(value)
    text = str(ref.get("resourceRef", "")) if ref is not None else ""
    first = text.strip("/").split("/")[0].casefold()
    return LOGICAL_SUBNET if first == LOGICAL[0].casefold() else VIRTUAL_SUBNET


def _network_interface(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    yield from _held(path, "properties.server", props.get("server"), SERVER)
    for i, config in enumerate(children(doc, "ipConfigurations")):
        owner = path.child("ipConfigurations", str(config["resourceId"]))
        base = f"properties.ipConfigurations[{i}].properties"
        held = config["properties"]
        subnet = held.get("subnet")
        yield from _held(owner, f"{base}.subnet", subnet, _subnet_kind(subnet))
        yield from _held(owner, f"{base}.accessControlList", held.get("accessControlList"), ACL)
        yield from _held(owner, f"{base}.publicIPAddress", held.get("publicIPAddress"), PUBLIC_IP)


def _public_ip(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    yield from _held(path, "properties.logicalSubnet", props.get("logicalSubnet"), LOGICAL_SUBNET)


def _gateway_pool(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    config = doc.get("properties", {}).get("ipConfiguration") or {}
    for i, value in enumerate(config.get("publicIPAddresses", [])):
        field = f"properties.ipConfiguration.publicIPAddresses[{i}]"
        yield from _held(path, field, value, PUBLIC_IP)
    for i, value in enumerate(config.get("greVipSubnets", [])):
        field = f"properties.ipConfiguration.greVipSubnets[{i}]"
        yield from _held(path, field, value, LOGICAL_SUBNET)


def _gateway(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    yield from _held(path, "properties.pool", props.get("pool"), POOL)
    yield from _held(path, "properties.server", props.get("server"), SERVER)
    for i, value in enumerate(props.get("externalInterfaces", [])):
        yield from _held(path, f"properties.externalInterfaces[{i}]", value, SERVER_NIC)


def _virtual_gateway(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    yield from _held(path, "properties.gatewayPool", props.get("gatewayPool"), POOL)
    for i, value in enumerate(props.get("gatewayPools") or []):
        yield from _held(path, f"properties.gatewayPools[{i}]", value, POOL)
    for i, value in enumerate(props.get("gatewaySubnets", [])):
        yield from _held(path, f"properties.gatewaySubnets[{i}]", value, VIRTUAL_SUBNET)
    compartment = props.get("compartment") or {}
    yield from _held(path, "properties.compartment.gateway", compartment.get("gateway"), GATEWAY)
    for i, connection in enumerate(children(doc, "networkConnections")):
        yield from _connection(path, i, connection)


def _connection(path: ResourcePath, i: int, connection: Document) -> Iterator[Reference]:
    owner = path.child("networkConnections", str(connection["resourceId"]))
    base = f"properties.networkConnections[{i}].properties"
    held = connection["properties"]
    l3 = held.get("l3Configuration") or {}
    field = f"{base}.l3Configuration.vlanSubnet"
    yield from _held(owner, field, l3.get("vlanSubnet"), LOGICAL_SUBNET)
    yield from _held(owner, f"{base}.publicIPAddress", held.get("publicIPAddress"), PUBLIC_IP)
    ipsec = held.get("ipSecConfiguration") or {}
    for name in ("localCertificate", "peerCertificateAuthority"):
        yield from _held(owner, f"{base}.ipSecConfiguration.{name}", ipsec.get(name), CREDENTIAL)


_REFERENCES: dict[str, Callable[[ResourcePath, Document], Iterator[Reference]]] = {
    "virtualNetworks": _virtual_network,
    "servers": _server,
    "networkInterfaces": _network_interface,
    "publicIPAddresses": _public_ip,
    "gatewayPools": _gateway_pool,
    "gateways": _gateway,
    "virtualGateways": _virtual_gateway,
}
"""The collections whose resources refer to others, and where their references are."""
REFERRERS: tuple[str, ...] = tuple(_REFERENCES)


def references(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    """Every reference held by the top-level resource ``doc`` (children included)."""
    found = _REFERENCES.get(path.collections[0])
    if found is not None:
        yield from found(path, doc)
