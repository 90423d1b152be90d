"""Rules of a VM network interface: customer addresses, MAC addresses and their allocation.

A NIC's ipConfigurations all sit in one virtual subnet; each address is a usable host of
it other than the distributed router's (the lowest usable address) and is unique in the
virtual network. A NIC on a logical (VLAN) subnet of a traditional network instead has
addresses that are usable hosts of it other than its default gateways and the servers'
provider addresses, unique in the logical network. A MAC is unicast, not
the distributed router's and unique; ``Dynamic`` MACs come from the macPools and stay
with the NIC across replaces.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Iterator
from typing import Any

from openhnv.controller.errors import ApiError, bad_request, conflict
from openhnv.controller.northbound import allocators
from openhnv.controller.northbound.admission import Admission, resolved
from openhnv.controller.northbound.compartments import compartment_addresses, compartment_macs
from openhnv.controller.northbound.models import mac_digits
from openhnv.controller.northbound.paths import ResourcePath, parse_path
from openhnv.controller.northbound.public_ips import check_single_user
from openhnv.controller.northbound.references import LOGICAL_SUBNET
from openhnv.controller.northbound.render import DISTRIBUTED_ROUTER_MAC
from openhnv.controller.northbound.state import children, find_child
from openhnv.controller.northbound.store import Document
from openhnv.controller.northbound.vlan_rules import check_nic_vlan

IP_VERSIONS = {"IPv4": 4, "IPv6": 6}  # privateIPAddressVersion


def subnet_prefixes(props: dict[str, Any]) -> list[str]:
    """A virtual subnet's prefixes: ``addressPrefixes`` when given (dual stack, one per
    IP family, ``addressPrefix`` among them), else ``addressPrefix`` alone."""
    given = props.get("addressPrefixes")
    return list(given) if given else [props["addressPrefix"]]


def prefix_of_version(props: dict[str, Any], version: int) -> str | None:
    """The subnet's prefix of IP ``version`` (4 or 6), or None."""
    for prefix in subnet_prefixes(props):
        if ipaddress.ip_network(prefix).version == version:
            return prefix
    return None


NOT_SUPPORTED = "NotSupported"  # a valid NC setting this implementation refuses


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _usable_host(address: str, prefix: str, field: str) -> tuple[IpAddress, IpNetwork]:
    """``address`` and ``prefix`` parsed, once ``address`` is a usable host of the subnet:
    inside it, not its network address and (IPv4, wider than /32) not its broadcast."""
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(prefix)
    if ip.version != network.version or ip not in network:
        raise bad_request(field, f"{address} is outside subnet {prefix}")
    if ip == network.network_address:
        raise bad_request(field, f"{address} is the network address of subnet {prefix}")
    if network.version == 4 and ip == network.broadcast_address and network.num_addresses > 1:
        raise bad_request(field, f"{address} is the broadcast address of subnet {prefix}")
    return ip, network


def check_customer_address(address: str, prefix: str, field: str) -> None:
    """A NIC's CA must be a usable host of its subnet other than the router's address."""
    ip, network = _usable_host(address, prefix, field)
    if int(ip) == int(network.network_address) + 1:
        raise bad_request(
            field, f"{address} is the distributed router (lowest usable) address of {prefix}"
        )


def check_network_interface(adm: Admission) -> None:
    props = adm.new["properties"]

    subnet_ref: ResourcePath | None = None
    configs = children(adm.new, "ipConfigurations")
    for i, config in enumerate(configs):
        path = parse_path(config["properties"]["subnet"]["resourceRef"])
        if subnet_ref is not None and path.key != subnet_ref.key:
            raise bad_request(
                f"properties.ipConfigurations[{i}].properties.subnet",
                f"{path.ref} differs from {subnet_ref.ref}: all ipConfigurations of a NIC "
                "share one subnet",
            )
        subnet_ref = path
    if subnet_ref is not None:
        _customer_addresses(adm, subnet_ref, configs)
        check_nic_vlan(adm, subnet_ref, "properties.ipConfigurations[0].properties.subnet")
    _mac_address(adm, props)
    if props.get("vtepAddress") is not None:
        _behind_vtep(adm, props)
    _qos_settings(props)


def _qos_settings(props: dict[str, Any]) -> None:
    """``portSettings.qosSettings``: caps are enforced by the host's QoS layer, a
    reservation (Mbit/s, Hyper-V's absolute mode) by its uplink scheduler and may not
    exceed the outbound cap; hardware limits are refused (400 ``NotSupported``), never
    accepted and ignored (docs/api.md, "QoS")."""
    qos = (props.get("portSettings") or {}).get("qosSettings") or {}
    where = "properties.portSettings.qosSettings"
    reserved = _mbps(qos.get("outboundReservedValue"))
    cap = _mbps(qos.get("outboundMaximumMbps"))
    if reserved and cap and reserved > cap:
        raise bad_request(
            f"{where}.outboundReservedValue",
            f"{reserved}: a reservation may not exceed outboundMaximumMbps ({cap})",
        )
    if qos.get("enableHardwareLimits"):
        raise bad_request(
            f"{where}.enableHardwareLimits",
            "true: openhnv hosts have no NIC to offload limits to (false only; the caps"
            " are enforced by the host's QoS layer)",
            NOT_SUPPORTED,
        )


def _mbps(value: object) -> int:
    """A validated ``Mbps`` property (an int or its decimal string; None: 0)."""
    return int(str(value)) if value is not None and str(value).isdigit() else 0


def _behind_vtep(adm: Admission, props: dict[str, Any]) -> None:
    """A NIC behind a hardware VTEP (openhnv's ``vtepAddress``): an IPv4 address of an HNV
    provider subnet that is no server's PA, a static MAC, and no ``server``."""
    where = "properties.vtepAddress"
    address = ipaddress.ip_address(props["vtepAddress"])
    if address.version != 4:
        raise bad_request(where, f"{address}: a VTEP address is IPv4")
    if props.get("server") is not None:
        raise bad_request("properties.server", "a NIC behind a hardware VTEP is on no server")
    if props.get("privateMacAllocationMethod") != "Static":
        raise bad_request(
            "properties.privateMacAddress", "a NIC behind a hardware VTEP has its own static MAC"
        )
    inside = False
    for _, network in adm.state.all("logicalNetworks"):
        if not network["properties"].get("networkVirtualizationEnabled"):
            continue
        for subnet in children(network, "subnets"):
            if address in ipaddress.ip_network(subnet["properties"]["addressPrefix"]):
                inside = True
    if not inside:
        raise bad_request(where, f"{address} is in no HNV provider subnet")
    for server_path, server in adm.state.all("servers"):
        if any(
            pa["address"] == str(address)
            for pa in server["properties"].get("providerAddresses", [])
        ):
            raise conflict(where, f"{address} is a provider address of {server_path.ref}")


def check_vlan_address(address: str, prefix: str, gateways: Collection[str], field: str) -> None:
    """A NIC's address on a logical (VLAN) subnet: a usable host of it, not a gateway."""
    _usable_host(address, prefix, field)
    if address in gateways:
        raise bad_request(field, f"{address} is a default gateway of subnet {prefix}")


def _address_rule(adm: Admission, subnet_ref: ResourcePath) -> Callable[[str, str], None]:
    """How a NIC address of ``subnet_ref`` is checked: a virtual subnet's rule, or a
    logical subnet's; on the HNV provider network (SDN Express puts a gateway's
    FrontEnd NIC there) it must also be no server's provider address."""
    subnet = resolved(adm.state, subnet_ref)
    prefix = subnet["properties"]["addressPrefix"]
    if subnet_ref.kind != LOGICAL_SUBNET:
        props = subnet["properties"]

        def check_ca(address: str, where: str) -> None:
            version = ipaddress.ip_address(address).version
            own = prefix_of_version(props, version) or prefix
            check_customer_address(address, own, where)

        return check_ca
    gateways = tuple(subnet["properties"].get("defaultGateways", []))
    providers = {
        pa["address"]: path.ref
        for path, server in adm.state.all("servers")
        for pa in server["properties"].get("providerAddresses", [])
    }

    def check(address: str, where: str) -> None:
        check_vlan_address(address, prefix, gateways, where)
        if address in providers:
            raise conflict(
                where,
                f"{address} is a provider address of {providers[address]}",
                "DuplicateIPAddress",
            )

    return check


def _customer_addresses(adm: Admission, subnet_ref: ResourcePath, configs: list[Document]) -> None:
    subnet = resolved(adm.state, subnet_ref)
    check = _address_rule(adm, subnet_ref)
    own = adm.path.key
    in_vnet = {
        **compartment_addresses(adm.state, subnet_ref.top.key),
        **adm.state.addresses.get(subnet_ref.top.key, {}),
    }
    mine: dict[str, int] = {}
    for i, config in enumerate(configs):
        cp = config["properties"]
        where = f"properties.ipConfigurations[{i}].properties.privateIPAddress"
        prefix = _config_prefix(subnet_ref, subnet["properties"], cp, where)
        if "privateIPAddress" not in cp:
            if cp.get("privateIPAllocationMethod") == "Static":
                raise bad_request(where, "is required when privateIPAllocationMethod is Static")
            used = {a for a, ref in in_vnet.items() if ref.casefold() != own} | set(mine)
            cp["privateIPAddress"] = _dynamic_address(adm, config, prefix, used, where, check)
            cp["privateIPAllocationMethod"] = "Dynamic"
        address = cp["privateIPAddress"]
        check(address, where)
        if address in mine:
            raise bad_request(where, f"{address} is also ipConfigurations[{mine[address]}]")
        owner = in_vnet.get(address)
        if owner is not None and owner.casefold() != own:
            raise conflict(
                where,
                f"{address} is already used by {owner} in {subnet_ref.top.ref}",
                "DuplicateIPAddress",
            )
        mine[address] = i
        pip = cp.get("publicIPAddress", {}).get("resourceRef")
        if isinstance(pip, str):
            owner_path = adm.path.child("ipConfigurations", str(config["resourceId"]))
            check_single_user(
                adm.state, owner_path, pip, f"{where[: -len('.privateIPAddress')]}.publicIPAddress"
            )


def _config_prefix(
    subnet_ref: ResourcePath, subnet: dict[str, Any], cp: dict[str, Any], where: str
) -> str:
    """The prefix an ipConfiguration draws from: its subnet's prefix of the family that
    ``privateIPAddressVersion`` names (IPv4 unless it or the address says IPv6)."""
    asked = cp.get("privateIPAddressVersion")
    address = cp.get("privateIPAddress")
    if subnet_ref.kind == LOGICAL_SUBNET:
        return str(subnet["addressPrefix"])
    actual = ipaddress.ip_address(address).version if address is not None else None
    version = IP_VERSIONS[asked] if asked is not None else actual or 4
    if actual is not None and actual != version:
        raise bad_request(
            where.replace("privateIPAddress", "privateIPAddressVersion"),
            f"is {asked}, but privateIPAddress {address} is IPv{actual}",
        )
    prefix = prefix_of_version(subnet, version)
    if prefix is None:
        raise bad_request(
            where if address is not None else where + "Version",
            f"subnet {subnet_ref.ref} has no IPv{version} prefix "
            f"(its prefixes: {', '.join(subnet_prefixes(subnet))})",
        )
    if asked is None and version == 6:
        cp["privateIPAddressVersion"] = "IPv6"
    return prefix


def _dynamic_address(
    adm: Admission,
    config: Document,
    prefix: str,
    used: set[str],
    where: str,
    check: Callable[[str, str], None],
) -> str:
    old = find_child(adm.old, "ipConfigurations", str(config["resourceId"])) if adm.old else None
    kept = old["properties"].get("privateIPAddress") if old is not None else None
    fits = kept is not None and ipaddress.ip_address(kept) in ipaddress.ip_network(prefix)
    if old is not None and fits and kept not in used:
        try:
            check(old["properties"]["privateIPAddress"], where)
            return str(old["properties"]["privateIPAddress"])
        except Exception:  # the old address no longer fits: take a new one
            pass
    low, high = allocators.usable_hosts(prefix)
    in_use = {int(ipaddress.ip_address(a)) for a in used if a}
    version = ipaddress.ip_network(prefix).version
    while (value := allocators.allocate([(low, high)], in_use, low)) is not None:
        text = allocators.address_text(value, version)
        try:
            check(text, where)
        except ApiError:  # a gateway of a logical subnet: not handed out
            in_use.add(value)
            continue
        return text
    raise conflict(where, f"subnet {prefix} has no free address", "PoolExhausted")


def _mac_address(adm: Admission, props: dict[str, Any]) -> None:
    method = props.get("privateMacAllocationMethod")
    if method is None:
        method = "Static" if "privateMacAddress" in props else "Dynamic"
        props["privateMacAllocationMethod"] = method
    macs = adm.state.macs
    gateways = compartment_macs(adm.state)

    def owner(mac: str | None) -> str | None:
        ref = (macs.get(mac) or gateways.get(mac)) if mac else None
        return ref if ref is not None and ref.casefold() != adm.path.key else None

    if method == "Static":
        if "privateMacAddress" not in props:
            raise bad_request(
                "properties.privateMacAddress",
                "is required when privateMacAllocationMethod is Static",
            )
    else:
        old = adm.old["properties"].get("privateMacAddress") if adm.old else None
        keep = old and owner(old) is None
        props["privateMacAddress"] = old if keep else allocate_mac(adm, MacSet(macs, gateways))
    mac = props["privateMacAddress"]
    if mac == DISTRIBUTED_ROUTER_MAC:
        raise bad_request("properties.privateMacAddress", f"{mac} is the distributed router's MAC")
    if owner(mac) is not None:
        raise conflict(
            "properties.privateMacAddress",
            f"{mac} is already used by {owner(mac)}",
            "DuplicateMacAddress",
        )


class MacSet(Collection[int]):
    """The MACs in use (12 hex digit keys) seen as integers, without copying them."""

    def __init__(self, macs: dict[str, str], more: dict[str, str] | None = None) -> None:
        self.macs = macs
        self.more = more or {}

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        text = f"{value:012X}"
        return text in self.macs or text in self.more

    def __len__(self) -> int:
        return len(self.macs) + len(self.more)

    def __iter__(self) -> Iterator[int]:
        yield from (int(mac, 16) for mac in self.macs)
        yield from (int(mac, 16) for mac in self.more)


def allocate_mac(adm: Admission, in_use: Collection[int]) -> str:
    """A MAC from the first macPool with room, not in ``in_use`` (integers)."""
    pools = list(adm.state.all("macPools"))
    for pool_path, pool in pools:
        low = int(mac_digits(pool["properties"]["startMacAddress"]), 16)
        high = int(mac_digits(pool["properties"]["endMacAddress"]), 16)
        key = allocators.mac_allocator(pool_path)
        value = allocators.allocate([(low, high)], in_use, adm.hint(key))
        if value is not None:
            adm.advance(key, value)
            return f"{value:012X}"
    reason = "every macPool is exhausted" if pools else "there is no macPool to draw from"
    raise conflict(
        "properties.privateMacAddress", f"Dynamic allocation failed: {reason}", "PoolExhausted"
    )
