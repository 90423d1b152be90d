"""What the virtual gateways hold that NICs must not take: their compartments' addresses.

A virtualGateway's compartment joins its VNet through a NIC of the controller's own: a
customer address in the gateway subnet and a MAC, allocated when the virtualGateway is
PUT and stored (read-only) in its ``properties.compartment``. Customer addresses and MACs
are unique per VNet and per datacenter, so NIC admission asks here as well as the state's
NIC indexes. Pure readers of the state.
"""

from __future__ import annotations

from typing import Any

from openhnv.controller.northbound.paths import parse_path
from openhnv.controller.northbound.state import State
from openhnv.controller.northbound.store import Document

COMPARTMENT = "compartment"


def compartment_of(doc: Document | None) -> dict[str, Any] | None:
    """The stored compartment of a virtualGateway document, if it has one."""
    if doc is None:
        return None
    found = doc.get("properties", {}).get(COMPARTMENT)
    return found if isinstance(found, dict) else None


def vnet_key_of(doc: Document) -> str | None:
    """The key of the VNet a virtualGateway serves (its first gateway subnet's VNet)."""
    for ref in doc.get("properties", {}).get("gatewaySubnets", []):
        target = ref.get("resourceRef") if isinstance(ref, dict) else None
        if isinstance(target, str):
            return parse_path(target).top.key
    return None


def compartment_addresses(state: State, vnet_key: str) -> dict[str, str]:
    """Customer address -> virtualGateway ref, for compartments in the VNet ``vnet_key``."""
    found: dict[str, str] = {}
    for path, doc in state.all("virtualGateways"):
        compartment = compartment_of(doc)
        if compartment is not None and vnet_key_of(doc) == vnet_key:
            found[str(compartment.get("ipAddress"))] = path.ref
    return found


def compartment_macs(state: State) -> dict[str, str]:
    """MAC (12 hex digits) -> virtualGateway ref, for every compartment."""
    found: dict[str, str] = {}
    for path, doc in state.all("virtualGateways"):
        compartment = compartment_of(doc)
        if compartment is not None and compartment.get("macAddress"):
            found[str(compartment["macAddress"])] = path.ref
    return found


def gateway_of_vnet(state: State, vnet_key: str) -> str | None:
    """The ref of the virtualGateway serving the VNet ``vnet_key``, if any."""
    for path, doc in state.all("virtualGateways"):
        if vnet_key_of(doc) == vnet_key:
            return path.ref
    return None
