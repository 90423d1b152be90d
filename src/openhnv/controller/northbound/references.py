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


def _network_interface(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    props = doc.get("properties", {})
    yield from _held(path, "properties.server", props.get("server"), SERVER)
    for i, config in enumerate(children(doc, "ipConfigurations")):
        owner = path.child("ipConfigurations", str(config["resourceId"]))
        base = f"properties.ipConfigurations[{i}].properties"
        held = config["properties"]
        yield from _held(owner, f"{base}.subnet", held.get("subnet"), VIRTUAL_SUBNET)
        yield from _held(owner, f"{base}.accessControlList", held.get("accessControlList"), ACL)


_REFERENCES: dict[str, Callable[[ResourcePath, Document], Iterator[Reference]]] = {
    "virtualNetworks": _virtual_network,
    "servers": _server,
    "networkInterfaces": _network_interface,
}
"""The collections whose resources refer to others, and where their references are."""


def references(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    """Every reference held by the top-level resource ``doc`` (children included)."""
    found = _REFERENCES.get(path.collections[0])
    if found is not None:
        yield from found(path, doc)
