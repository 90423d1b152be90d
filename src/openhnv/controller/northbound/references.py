"""Which fields of a resource refer to other resources, and what kind each must be.

One table drives three things: a PUT whose reference names a missing resource gets 400,
a change that would leave another resource's reference dangling gets 409, and GET shows
read-only back-references (a subnet's ``ipConfigurations``, an ACL's ``subnets``, a
server's ``virtualNetworkInterfaces``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from openhnv.controller.northbound.paths import ResourcePath
from openhnv.controller.northbound.state import children
from openhnv.controller.northbound.store import Document

LOGICAL_SUBNET = ("logicalNetworks", "subnets")
VIRTUAL_SUBNET = ("virtualNetworks", "subnets")
ACL = ("accessControlLists",)


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


def references(path: ResourcePath, doc: Document) -> Iterator[Reference]:
    """Every reference held by the top-level resource ``doc`` (children included)."""
    props = doc.get("properties", {})
    collection = path.collections[0]
    if collection == "virtualNetworks":
        holder = _ref(props.get("logicalNetwork"))
        if holder is not None:
            yield Reference(path, "properties.logicalNetwork", holder, ("logicalNetworks",))
        for i, subnet in enumerate(children(doc, "subnets")):
            holder = _ref(subnet["properties"].get("accessControlList"))
            if holder is not None:
                owner = path.child("subnets", str(subnet["resourceId"]))
                field = f"properties.subnets[{i}].properties.accessControlList"
                yield Reference(owner, field, holder, ACL)
    elif collection == "servers":
        for i, connection in enumerate(props.get("connections", [])):
            holder = _ref(connection.get("credential"))
            if holder is not None:
                field = f"properties.connections[{i}].credential"
                yield Reference(path, field, holder, ("credentials",))
        for i, nic in enumerate(children(doc, "networkInterfaces")):
            owner = path.child("networkInterfaces", str(nic["resourceId"]))
            for j, value in enumerate(nic["properties"].get("logicalSubnets", [])):
                holder = _ref(value)
                if holder is not None:
                    field = f"properties.networkInterfaces[{i}].properties.logicalSubnets[{j}]"
                    yield Reference(owner, field, holder, LOGICAL_SUBNET)
    elif collection == "networkInterfaces":
        holder = _ref(props.get("server"))
        if holder is not None:
            yield Reference(path, "properties.server", holder, ("servers",))
        for i, config in enumerate(children(doc, "ipConfigurations")):
            owner = path.child("ipConfigurations", str(config["resourceId"]))
            base = f"properties.ipConfigurations[{i}].properties"
            holder = _ref(config["properties"].get("subnet"))
            if holder is not None:
                yield Reference(owner, f"{base}.subnet", holder, VIRTUAL_SUBNET)
            holder = _ref(config["properties"].get("accessControlList"))
            if holder is not None:
                yield Reference(owner, f"{base}.accessControlList", holder, ACL)
