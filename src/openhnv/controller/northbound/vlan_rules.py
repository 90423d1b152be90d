"""Access-port VLANs stay apart from provider VLANs.

A NIC on a tagged logical subnet of a network without virtualization becomes an access
port: its host bridges the VM's frames, tagged with the subnet's ``vlanID``, onto the
uplink of its first PA. Were that VLAN also an HNV provider subnet's, the VM would sit
on the provider network itself, beside every host's PA and encapsulated tenant traffic.
Such a placement is refused (409) from whichever side arrives second: the NIC, or the
logical network that gives a subnet the other's VLAN.
"""

from __future__ import annotations

from openhnv.controller.errors import conflict
from openhnv.controller.northbound.admission import Admission, resolved
from openhnv.controller.northbound.paths import ResourcePath, parse_path
from openhnv.controller.northbound.references import LOGICAL_SUBNET
from openhnv.controller.northbound.state import State, children
from openhnv.controller.northbound.store import Document

REASON = "an access port on it would bridge VM frames into the HNV provider network"


def _vlan(subnet: Document) -> int:
    return int(subnet["properties"].get("vlanID", 0))


def _networks(adm: Admission) -> list[tuple[ResourcePath, Document]]:
    """Every logical network as it will be once ``adm`` (if it is one) is applied."""
    found = [
        (path, doc) for path, doc in adm.state.all("logicalNetworks") if path.key != adm.path.key
    ]
    if adm.path.kind == ("logicalNetworks",):
        found.append((adm.path, adm.new))
    return found


def _provider_vlans(networks: list[tuple[ResourcePath, Document]]) -> dict[int, ResourcePath]:
    """Tagged VLAN -> the HNV provider subnet carrying it."""
    vlans: dict[int, ResourcePath] = {}
    for path, network in networks:
        if not network["properties"].get("networkVirtualizationEnabled"):
            continue
        for subnet in children(network, "subnets"):
            if _vlan(subnet) > 0:
                vlans.setdefault(_vlan(subnet), path.child("subnets", str(subnet["resourceId"])))
    return vlans


def _access_subnet_users(state: State) -> dict[str, str]:
    """Logical subnet key -> a NIC placed on it."""
    users: dict[str, str] = {}
    for nic_path, nic in state.all("networkInterfaces"):
        for config in children(nic, "ipConfigurations"):
            ref = config["properties"].get("subnet", {}).get("resourceRef")
            if isinstance(ref, str):
                subnet = parse_path(ref)
                if subnet.kind == LOGICAL_SUBNET:
                    users.setdefault(subnet.key, nic_path.ref)
    return users


def check_nic_vlan(adm: Admission, subnet_ref: ResourcePath, where: str) -> None:
    """A NIC placed on a logical subnet whose VLAN is a provider subnet's (409)."""
    if subnet_ref.kind != LOGICAL_SUBNET:
        return
    network = resolved(adm.state, subnet_ref.top)
    if network["properties"].get("networkVirtualizationEnabled"):
        return
    vlan = _vlan(resolved(adm.state, subnet_ref))
    provider = _provider_vlans(_networks(adm)).get(vlan) if vlan > 0 else None
    if provider is not None:
        raise conflict(
            where,
            f"{subnet_ref.ref} has vlanID {vlan}, the VLAN of provider subnet {provider.ref}: "
            f"{REASON}",
        )


def check_network_vlans(adm: Admission) -> None:
    """A logical network change that gives an access port's subnet a provider VLAN (409).

    Only pairs the change takes part in are refused, so a conflict stored before this
    rule existed does not block unrelated changes."""
    networks = _networks(adm)
    providers = _provider_vlans(networks)
    users = _access_subnet_users(adm.state)
    for path, network in networks:
        if network["properties"].get("networkVirtualizationEnabled"):
            continue
        for subnet in children(network, "subnets"):
            subnet_path = path.child("subnets", str(subnet["resourceId"]))
            nic = users.get(subnet_path.key)
            provider = providers.get(_vlan(subnet))
            if nic is None or provider is None or _vlan(subnet) == 0:
                continue
            if adm.path.key not in (path.key, provider.top.key):
                continue
            if path.key == adm.path.key:
                index = children(adm.new, "subnets").index(subnet)
                where = f"properties.subnets[{index}].properties.vlanID"
            else:
                where = "properties.subnets"
            raise conflict(
                where,
                f"{subnet_path.ref} (vlanID {_vlan(subnet)}, used by {nic}) and provider "
                f"subnet {provider.ref} would share a VLAN: {REASON}",
            )
