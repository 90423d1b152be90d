"""Rules of ``publicIPAddresses``: an address on a public logical subnet, and its one user.

A public IP address lives in a subnet of a logical network marked ``isPublic``: given
(``Static``) it must fall in one, and not be its network, broadcast or default-gateway
address; left out (``Dynamic``) it comes from the ipPools of such a subnet (the one named
by the openhnv extension ``logicalSubnet``, else the first with room), is kept across
replaces, and is never handed out twice. A public IP serves one configuration at a time
(a NIC's ipConfiguration or a gateway connection), shown as ``ipConfiguration``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from openhnv.controller.errors import bad_request, conflict
from openhnv.controller.northbound import allocators
from openhnv.controller.northbound.admission import Admission
from openhnv.controller.northbound.paths import ResourcePath, parse_path
from openhnv.controller.northbound.references import LOGICAL_SUBNET, PUBLIC_IP, references
from openhnv.controller.northbound.state import State, children
from openhnv.controller.northbound.store import Document

USERS = (("networkInterfaces", "ipConfigurations"), ("virtualGateways", "networkConnections"))
"""The kinds that use a public IP address (what ``ipConfiguration`` names)."""


def pip_allocator(subnet: ResourcePath) -> str:
    return "/allocators/pip" + subnet.key


def users(state: State, pip: ResourcePath) -> Iterator[tuple[ResourcePath, str]]:
    """(user, field) of every configuration using the public IP ``pip``."""
    for collection in ("virtualGateways", "networkInterfaces"):
        for path, doc in state.all(collection):
            for reference in references(path, doc):
                if reference.expected != PUBLIC_IP or reference.owner.kind not in USERS:
                    continue
                try:
                    target = parse_path(str(reference.ref))
                except Exception:
                    continue
                if target.key == pip.key:
                    yield reference.owner, reference.field


def check_single_user(state: State, owner: ResourcePath, pip_ref: str, field: str) -> None:
    """409 when ``pip_ref`` already serves a configuration other than ``owner``'s resource."""
    pip = parse_path(pip_ref)
    for user, _ in users(state, pip):
        if user.top.key != owner.top.key:
            raise conflict(field, f"{pip.ref} is already used by {user.ref}", "ResourceInUse")


def public_subnets(state: State) -> Iterator[tuple[ResourcePath, Document]]:
    """Every subnet of a logical network, with ``isPublic`` set, by ref."""
    for network_path, network in state.all("logicalNetworks"):
        for subnet in children(network, "subnets"):
            if subnet["properties"].get("isPublic"):
                yield network_path.child("subnets", str(subnet["resourceId"])), subnet


def _reserved(subnet: Document) -> set[int]:
    net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
    gateways = subnet["properties"].get("defaultGateways", [])
    reserved = {int(net.network_address), int(net.broadcast_address)}
    return reserved | {int(ipaddress.ip_address(g)) for g in gateways}


def check_public_ip(adm: Admission) -> None:
    props = adm.new["properties"]
    if props.get("publicIPAddressVersion", "IPv4") != "IPv4":
        raise bad_request(
            "properties.publicIPAddressVersion", "only IPv4 public addresses are supported"
        )
    method = props.get("publicIPAllocationMethod") or (
        "Static" if "ipAddress" in props else "Dynamic"
    )
    props["publicIPAllocationMethod"] = method
    taken = {
        int(ipaddress.ip_address(doc["properties"]["ipAddress"]))
        for path, doc in adm.state.all("publicIPAddresses")
        if path.key != adm.path.key and doc["properties"].get("ipAddress")
    }
    wanted = props.get("logicalSubnet", {}).get("resourceRef")
    candidates = [
        (path, subnet)
        for path, subnet in public_subnets(adm.state)
        if wanted is None or path.key == parse_path(wanted).key
    ]
    if wanted is not None and not candidates:
        raise bad_request("properties.logicalSubnet", f"{wanted} is not a subnet with isPublic")
    if method == "Static":
        _static(adm, candidates, taken)
    else:
        _dynamic(adm, candidates, taken)


def _static(
    adm: Admission, candidates: list[tuple[ResourcePath, Document]], taken: set[int]
) -> None:
    props = adm.new["properties"]
    if "ipAddress" not in props:
        raise bad_request(
            "properties.ipAddress", "is required when publicIPAllocationMethod is Static"
        )
    address = ipaddress.ip_address(props["ipAddress"])
    for path, subnet in candidates:
        if address in ipaddress.ip_network(subnet["properties"]["addressPrefix"]):
            if int(address) in _reserved(subnet):
                raise bad_request(
                    "properties.ipAddress",
                    f"{address} is the network, broadcast or gateway address of {path.ref}",
                )
            break
    else:
        raise bad_request(
            "properties.ipAddress", f"{address} is in no logical subnet with isPublic"
        )
    if int(address) in taken:
        raise conflict(
            "properties.ipAddress",
            f"{address} is already a public IP address",
            "DuplicateIPAddress",
        )
    props["logicalSubnet"] = {"resourceRef": path.ref}


def _dynamic(
    adm: Admission, candidates: list[tuple[ResourcePath, Document]], taken: set[int]
) -> None:
    props = adm.new["properties"]
    old = adm.old["properties"].get("ipAddress") if adm.old is not None else None
    for path, subnet in candidates:
        ranges = sorted(
            (
                int(ipaddress.ip_address(pool["properties"]["startIpAddress"])),
                int(ipaddress.ip_address(pool["properties"]["endIpAddress"])),
            )
            for pool in children(subnet, "ipPools")
        )
        kept = int(ipaddress.ip_address(old)) if old is not None else None
        if kept is not None and kept not in taken and any(lo <= kept <= hi for lo, hi in ranges):
            props["ipAddress"], props["logicalSubnet"] = old, {"resourceRef": path.ref}
            return
        key = pip_allocator(path)
        value = allocators.allocate(ranges, taken | _reserved(subnet), adm.hint(key))
        if value is not None:
            adm.advance(key, value)
            props["ipAddress"] = str(ipaddress.ip_address(value))
            props["logicalSubnet"] = {"resourceRef": path.ref}
            return
    raise conflict(
        "properties.ipAddress",
        "no ipPool of a logical subnet with isPublic has a free address",
        "PoolExhausted",
    )


__all__ = ["LOGICAL_SUBNET", "check_public_ip", "check_single_user", "users"]
