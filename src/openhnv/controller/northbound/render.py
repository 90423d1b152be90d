"""Stored documents as GET returns them: envelope, child etags and read-only values.

Adds ``resourceRef``, gives every child its parent's ``etag`` and ``provisioningState``,
fills the read-only back-references (subnet and ACL ``ipConfigurations``, ACL
``subnets``, server ``virtualNetworkInterfaces``), pool ``usage``, a server's
``providerAddresses`` with the VLAN, prefix length and gateway of their logical subnet
as it is now, and ``configurationState``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from openhnv.controller.errors import not_found
from openhnv.controller.northbound.documents import ENVELOPE_OBJECTS
from openhnv.controller.northbound.gateway_render import gateway_read_only
from openhnv.controller.northbound.models import mac_digits
from openhnv.controller.northbound.paths import ResourcePath, child_collections, parse_path
from openhnv.controller.northbound.state import State, children, copy_document, find_child
from openhnv.controller.northbound.store import Document

# credential types whose value names a certificate (a thumbprint, a subject) and is no secret
PUBLIC_CREDENTIALS = frozenset({"X509Certificate", "X509CertificateSubjectName"})

DISTRIBUTED_ROUTER_MAC = "401DD8B71C06"
HOST_NOT_CONNECTED = {
    "status": "Warning",
    "detailedInfo": [
        {
            "source": "SoftwareDefinedNetworking",
            "code": "HostNotConnected",
            "message": "The host has not connected to the Network Controller yet.",
        }
    ],
}
BACK_REFERENCES: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {
    # target kind -> {property shown on the target: referrer kind}
    ("virtualNetworks", "subnets"): {"ipConfigurations": ("networkInterfaces", "ipConfigurations")},
    ("logicalNetworks", "subnets"): {"ipConfigurations": ("networkInterfaces", "ipConfigurations")},
    ("accessControlLists",): {
        "ipConfigurations": ("networkInterfaces", "ipConfigurations"),
        "subnets": ("virtualNetworks", "subnets"),
    },
    ("servers",): {"virtualNetworkInterfaces": ("networkInterfaces",)},
    ("gatewayPools",): {"gateways": ("gateways",), "virtualGateways": ("virtualGateways",)},
    ("gateways",): {"virtualGateways": ("virtualGateways",)},
}


class BackReferences:
    """Who refers to each resource, from the state's index of references."""

    def __init__(self, state: State) -> None:
        self.state = state

    @classmethod
    def build(cls, state: State) -> BackReferences:
        return cls(state)

    def of(self, target: ResourcePath, kind: tuple[str, ...]) -> list[str]:
        return sorted(self.state.referrers.get(target.key, {}).get(kind, {}), key=str.casefold)


def _ip_count(start: str, end: str) -> int:
    return int(ipaddress.ip_address(end)) - int(ipaddress.ip_address(start)) + 1


class Renderer:
    """Renders documents from one state; back-references are computed once, lazily."""

    def __init__(self, state: State, *, secrets: bool = False) -> None:
        self.state = state
        self.secrets = secrets  # keep write-only secrets hosts need (the compiler's input)
        self._back: BackReferences | None = None
        self._pa_addresses: set[int] | None = None
        self._nic_macs: list[int] | None = None

    @property
    def back(self) -> BackReferences:
        if self._back is None:
            self._back = BackReferences.build(self.state)
        return self._back

    def _pas(self) -> set[int]:
        if self._pa_addresses is None:
            self._pa_addresses = {
                int(ipaddress.ip_address(pa["address"]))
                for _, doc in self.state.all("servers")
                for pa in doc["properties"].get("providerAddresses", [])
            }
        return self._pa_addresses

    def _macs(self) -> list[int]:
        if self._nic_macs is None:
            self._nic_macs = [
                int(doc["properties"]["privateMacAddress"], 16)
                for _, doc in self.state.all("networkInterfaces")
                if doc["properties"].get("privateMacAddress")
            ]
        return self._nic_macs

    def resource(self, path: ResourcePath, *, copy: bool = True) -> Document:
        """The GET document of the resource at ``path``; 404 when absent.

        ``copy=False`` shares the stored values: only for readers that never change them.
        """
        top = self.state.top(path)
        doc = self.state.resolve(path)
        if top is None or doc is None:
            raise not_found(path.ref)
        rendered = self._render(self.state.canonical(path), doc, top)
        return copy_document(rendered) if copy else rendered

    def collection(self, path: ResourcePath) -> Document:
        """``{"value": [...], "nextLink": ""}`` for a (child) collection."""
        if len(path.collections) == 1:
            value = [self._render(p, d, d) for p, d in self.state.all(path.collections[0])]
        else:
            parent_path = ResourcePath(path.collections[:-1], path.ids)
            top = self.state.top(parent_path)
            parent = self.state.resolve(parent_path)
            if top is None or parent is None:
                raise not_found(parent_path.ref)
            parent_path = self.state.canonical(parent_path)
            name = path.collections[-1]
            value = [
                self._render(parent_path.child(name, str(c["resourceId"])), c, top)
                for c in children(parent, name)
            ]
        return copy_document({"value": value, "nextLink": ""})

    def _render(self, path: ResourcePath, doc: Document, top: Document) -> Document:
        props: dict[str, Any] = {"provisioningState": top["properties"]["provisioningState"]}
        for name, value in doc["properties"].items():
            if name in child_collections(path.kind):
                props[name] = [
                    self._render(path.child(name, str(c["resourceId"])), c, top) for c in value
                ]
            elif name != "provisioningState":
                props[name] = value
        for name, kind in BACK_REFERENCES.get(path.kind, {}).items():
            props[name] = [{"resourceRef": ref} for ref in self.back.of(path, kind)]
        self._read_only(path, props)
        out: Document = {
            "resourceRef": path.ref,
            "resourceId": doc["resourceId"],
            "etag": top["etag"],
            "instanceId": doc["instanceId"],
        }
        for name in ENVELOPE_OBJECTS:
            if doc.get(name) is not None:
                out[name] = doc[name]
        out["properties"] = props
        return out

    def _read_only(self, path: ResourcePath, props: dict[str, Any]) -> None:
        kind = path.kind
        if kind == ("servers",):
            props["providerAddresses"] = [
                self._provider_address(pa) for pa in props.get("providerAddresses", [])
            ]
            props["configurationState"] = self.state.configuration.get(path.key, HOST_NOT_CONNECTED)
        elif kind == ("networkInterfaces",) and path.key in self.state.configuration:
            props["configurationState"] = self.state.configuration[path.key]
        elif kind == ("logicalNetworks", "subnets", "ipPools"):
            start, end = props["startIpAddress"], props["endIpAddress"]
            low, high = int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))
            props["usage"] = {
                "numberOfIPAddresses": _ip_count(start, end),
                "numberofIPAddressesAllocated": sum(low <= a <= high for a in self._pas()),
            }
        elif kind == ("macPools",):
            low = int(mac_digits(props["startMacAddress"]), 16)
            high = int(mac_digits(props["endMacAddress"]), 16)
            props["usage"] = {
                "numberOfMacAddresses": high - low + 1,
                "numberofMacAddressesAllocated": sum(low <= m <= high for m in self._macs()),
            }
        elif kind == ("credentials",) and props.get("type") not in PUBLIC_CREDENTIALS:
            props.pop("value", None)  # secrets are write-only
        elif kind == ("virtualNetworkManager",):
            props["distributedRouterMacAddress"] = DISTRIBUTED_ROUTER_MAC
        else:
            gateway_read_only(self.state, path, props, secrets=self.secrets)

    def _provider_address(self, pa: dict[str, Any]) -> dict[str, Any]:
        subnet_path = parse_path(pa["logicalSubnet"]["resourceRef"])
        subnet = self.state.resolve(subnet_path)
        props = subnet["properties"] if subnet is not None else {}
        prefix = props.get("addressPrefix", "0.0.0.0/0")
        gateways = props.get("defaultGateways", [])
        return {
            "address": pa["address"],
            "prefixLength": ipaddress.ip_network(prefix).prefixlen,
            "vlanID": props.get("vlanID", 0),
            "defaultGateway": gateways[0] if gateways else "",
            "networkInterface": pa["networkInterface"],
            "logicalSubnet": pa["logicalSubnet"],
        }


__all__ = ["DISTRIBUTED_ROUTER_MAC", "BackReferences", "Renderer", "find_child"]
