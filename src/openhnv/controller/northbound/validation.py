"""Cross-field and cross-resource rules, applied to a resource before it is stored.

``admit`` takes the current state and a candidate top-level document (properties
already parsed by ``openhnv.controller.northbound.models``), checks it against the rest of the
datacenter, fills in the values the controller allocates (RDID, VSIDs, MACs, provider
addresses, dynamic customer addresses) and returns the allocator records to store in
the same transaction. Everything raises ``ApiError`` naming the field; nothing is
changed on error because the caller stores only after ``admit`` returns.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from openhnv.controller.errors import bad_request, conflict
from openhnv.controller.northbound import allocators
from openhnv.controller.northbound.admission import Admission, IpNetwork, overlapping, resolved
from openhnv.controller.northbound.gateway_rules import (
    check_gateway,
    check_gateway_pool,
    check_virtual_gateway,
)
from openhnv.controller.northbound.models import mac_digits
from openhnv.controller.northbound.nic_rules import (
    check_customer_address,
    check_network_interface,
    prefix_of_version,
    subnet_prefixes,
)
from openhnv.controller.northbound.paths import (
    ResourcePath,
    check_resource_id,
    child_collections,
    parse_path,
    parse_ref,
)
from openhnv.controller.northbound.public_ips import check_public_ip
from openhnv.controller.northbound.references import REFERRERS, references
from openhnv.controller.northbound.state import State, children, find_child, walk
from openhnv.controller.northbound.store import Document
from openhnv.controller.northbound.vlan_rules import check_network_vlans

__all__ = ["Admission", "admit", "check_customer_address", "check_dangling", "overlapping"]


def check_references(admission: Admission) -> None:
    """Every reference names an existing resource of the right kind (400); canonical refs."""
    state = admission.state
    for reference in references(admission.path, admission.new):
        target = parse_ref(reference.ref, reference.field, reference.expected)
        if state.resolve(target) is None:
            raise bad_request(
                reference.field,
                f"refers to {reference.ref}, which does not exist",
                "InvalidReference",
            )
        reference.holder["resourceRef"] = state.canonical(target).ref


def check_dangling(state: State, path: ResourcePath, old: Document, new: Document | None) -> None:
    """A change must not remove anything another resource still refers to (409)."""
    removed = {p.key: p for p, _ in walk(path, old)}
    if new is not None:
        for kept, _ in walk(path, new):
            removed.pop(kept.key, None)
    order = {kind: i for i, kind in enumerate(REFERRERS)}
    for key, target in removed.items():
        found = state.referrers.get(key, {})
        for kind in sorted(found, key=lambda k: (order.get(k[0], len(order)), k)):
            for owner, field in sorted(found[kind].items(), key=lambda o: o[0].casefold()):
                if parse_path(owner).top.key == path.key:
                    continue
                raise conflict(
                    "",
                    f"{target.ref} is still referenced by {owner} ({field})",
                    "ResourceInUse",
                )


def admit(admission: Admission) -> None:
    """Check ``admission.new`` and fill in allocated values; ApiError when refused."""
    _check_children(admission.path, admission.new)
    check_references(admission)
    check = _CHECKS.get(admission.path.collections[0])
    if check is not None:
        check(admission)


def _check_children(path: ResourcePath, doc: Document, where: str = "properties") -> None:
    """Every child's resourceId is a name (no '/', no control character) that appears
    once among its siblings, whatever the case; checked before anything is stored."""
    for collection in child_collections(path.kind):
        seen: dict[str, int] = {}
        for i, child in enumerate(children(doc, collection)):
            resource_id = str(child["resourceId"])
            field_name = f"{where}.{collection}[{i}].resourceId"
            check_resource_id(resource_id, field_name)
            folded = resource_id.casefold()
            if folded in seen:
                raise bad_request(field_name, f"{resource_id!r} appears twice")
            seen[folded] = i
            child_path = path.child(collection, resource_id)
            _check_children(child_path, child, f"{where}.{collection}[{i}].properties")


def _logical_network(adm: Admission) -> None:
    props = adm.new["properties"]
    seen: list[tuple[str, IpNetwork]] = []
    for i, subnet in enumerate(children(adm.new, "subnets")):
        base = f"properties.subnets[{i}].properties"
        net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        other = overlapping(seen, net)
        if other is not None:
            raise bad_request(f"{base}.addressPrefix", f"{net} overlaps subnet {other}")
        seen.append((str(subnet["resourceId"]), net))
        _logical_subnet(subnet, base, net)
    virtualization = bool(props.get("networkVirtualizationEnabled"))
    _provider_addresses_still_valid(adm, virtualization)
    if not virtualization:
        _no_virtual_network_on(adm)
    check_network_vlans(adm)


def _logical_subnet(subnet: Document, base: str, net: IpNetwork) -> None:
    """Gateways inside the subnet; pools of usable addresses, apart and without them."""
    gateways = subnet["properties"].get("defaultGateways", [])
    for j, gateway in enumerate(gateways):
        if ipaddress.ip_address(gateway) not in net:
            raise bad_request(f"{base}.defaultGateways[{j}]", f"{gateway} is outside {net}")
    pools: list[tuple[str, int, int]] = []
    for k, pool in enumerate(children(subnet, "ipPools")):
        where = f"{base}.ipPools[{k}].properties"
        start = ipaddress.ip_address(pool["properties"]["startIpAddress"])
        end = ipaddress.ip_address(pool["properties"]["endIpAddress"])
        for name, ip in (("startIpAddress", start), ("endIpAddress", end)):
            if ip not in net or ip in (net.network_address, net.broadcast_address):
                raise bad_request(f"{where}.{name}", f"{ip} is not a usable address of {net}")
        if int(start) > int(end):
            raise bad_request(f"{where}.endIpAddress", f"{end} is below startIpAddress {start}")
        for name, low, high in pools:
            if int(start) <= high and low <= int(end):
                raise bad_request(where, f"{start}-{end} overlaps ipPool {name}")
        pools.append((str(pool["resourceId"]), int(start), int(end)))
        for gateway in gateways:
            if int(start) <= int(ipaddress.ip_address(gateway)) <= int(end):
                raise bad_request(where, f"{start}-{end} contains the gateway {gateway}")


def _no_virtual_network_on(adm: Admission) -> None:
    """A network without virtualization carries no virtual network (409)."""
    for vnet_path, vnet in adm.state.all("virtualNetworks"):
        ref = vnet["properties"].get("logicalNetwork", {}).get("resourceRef")
        if ref is not None and parse_path(ref).key == adm.path.key:
            raise conflict(
                "properties.networkVirtualizationEnabled",
                f"virtual network {vnet_path.ref} runs on this network",
            )


def _provider_addresses_still_valid(adm: Admission, virtualization: bool) -> None:
    """A logical network change may not strand, or silently owe, a server's PAs (409)."""
    was_provider = adm.old is not None and adm.old["properties"].get("networkVirtualizationEnabled")
    for server_path, server in adm.state.all("servers"):
        pas = server["properties"].get("providerAddresses", [])
        uses = [
            ref
            for nic in children(server, "networkInterfaces")
            for ref in nic["properties"].get("logicalSubnets", [])
            if parse_path(ref["resourceRef"]).top.key == adm.path.key
        ]
        if uses and virtualization and not was_provider:
            raise conflict(
                "properties.networkVirtualizationEnabled",
                f"server {server_path.ref} already uses this network without provider "
                "addresses; remove its networkInterfaces first",
            )
        for pa in pas:
            subnet_path = parse_path(pa["logicalSubnet"]["resourceRef"])
            if subnet_path.top.key != adm.path.key:
                continue
            if not virtualization:
                raise conflict(
                    "properties.networkVirtualizationEnabled",
                    f"server {server_path.ref} holds provider address {pa['address']}",
                )
            subnet = find_child(adm.new, "subnets", subnet_path.ids[1])
            address = int(ipaddress.ip_address(pa["address"]))
            if subnet is not None and not _in_ranges(address, _pa_ranges(subnet)):
                raise conflict(
                    f"properties.subnets[{children(adm.new, 'subnets').index(subnet)}]",
                    f"the ipPools no longer contain provider address {pa['address']} "
                    f"of server {server_path.ref}",
                )


def _pa_ranges(subnet: Document) -> list[tuple[int, int]]:
    return sorted(
        (
            int(ipaddress.ip_address(pool["properties"]["startIpAddress"])),
            int(ipaddress.ip_address(pool["properties"]["endIpAddress"])),
        )
        for pool in children(subnet, "ipPools")
    )


def _in_ranges(value: int, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= value <= high for low, high in ranges)


def _mac_pool(adm: Admission) -> None:
    props = adm.new["properties"]
    low, high = (
        int(mac_digits(props["startMacAddress"]), 16),
        int(mac_digits(props["endMacAddress"]), 16),
    )
    if low > high:
        raise bad_request("properties.endMacAddress", "is below startMacAddress")
    for other_path, other in adm.state.all("macPools"):
        if other_path.key == adm.path.key:
            continue
        o_low = int(mac_digits(other["properties"]["startMacAddress"]), 16)
        o_high = int(mac_digits(other["properties"]["endMacAddress"]), 16)
        if low <= o_high and o_low <= high:
            raise conflict("properties.startMacAddress", f"the range overlaps {other_path.ref}")


def _credential(adm: Admission) -> None:
    props = adm.new["properties"]
    if "value" not in props and adm.old is not None and "value" in adm.old["properties"]:
        props["value"] = adm.old["properties"]["value"]  # a secret is write-only


def _server(adm: Admission) -> None:
    old_pas: dict[tuple[str, str], str] = {}
    if adm.old is not None:
        for pa in adm.old["properties"].get("providerAddresses", []):
            pnic = parse_path(pa["networkInterface"]["resourceRef"]).key
            old_pas[(pnic, parse_path(pa["logicalSubnet"]["resourceRef"]).key)] = pa["address"]
    taken = {
        int(ipaddress.ip_address(pa["address"]))
        for path, doc in adm.state.all("servers")
        if path.key != adm.path.key
        for pa in doc["properties"].get("providerAddresses", [])
    }
    pas: list[dict[str, Any]] = []
    for i, nic in enumerate(children(adm.new, "networkInterfaces")):
        where = f"properties.networkInterfaces[{i}].properties.logicalSubnets"
        nic_path = adm.path.child("networkInterfaces", str(nic["resourceId"]))
        provider: list[ResourcePath] = []
        for ref in nic["properties"].get("logicalSubnets", []):
            subnet_path = parse_path(ref["resourceRef"])
            network = adm.state.top(subnet_path)
            if (
                network is not None
                and network["properties"].get("networkVirtualizationEnabled")
                and subnet_path not in provider
            ):
                provider.append(subnet_path)
        for subnet_path in provider:
            address = _provider_address(adm, nic_path, subnet_path, old_pas, taken, where)
            taken.add(int(ipaddress.ip_address(address)))
            pas.append(
                {
                    "address": address,
                    "networkInterface": {"resourceRef": nic_path.ref},
                    "logicalSubnet": {"resourceRef": subnet_path.ref},
                }
            )
    adm.new["properties"]["providerAddresses"] = pas


def _provider_address(
    adm: Admission,
    nic_path: ResourcePath,
    subnet_path: ResourcePath,
    old_pas: dict[tuple[str, str], str],
    taken: set[int],
    where: str,
) -> str:
    """The PA of one physical NIC in one HNV provider subnet: kept, else allocated."""
    subnet = resolved(adm.state, subnet_path)
    ranges = _pa_ranges(subnet)
    gateways = {
        int(ipaddress.ip_address(g)) for g in subnet["properties"].get("defaultGateways", [])
    }
    kept = old_pas.get((nic_path.key, subnet_path.key))
    if kept is not None and _in_ranges(int(ipaddress.ip_address(kept)), ranges):
        return kept
    nics = {  # NICs on the provider network (a gateway's FrontEnd) keep their addresses
        int(ipaddress.ip_address(a)) for a in adm.state.addresses.get(subnet_path.top.key, {})
    }
    key = allocators.pa_allocator(subnet_path)
    value = allocators.allocate(ranges, taken | gateways | nics, adm.hint(key))
    if value is None:
        raise conflict(
            where,
            f"the ipPools of {subnet_path.ref} have no free provider address",
            "PoolExhausted",
        )
    adm.advance(key, value)
    return str(ipaddress.ip_address(value))


def _access_control_list(adm: Admission) -> None:
    seen: dict[tuple[str, int], str] = {}
    for i, rule in enumerate(children(adm.new, "aclRules")):
        props = rule["properties"]
        slot = (props["type"], props["priority"])
        if slot in seen:
            raise bad_request(
                f"properties.aclRules[{i}].properties.priority",
                f"{props['type']} rule {seen[slot]} already has priority {props['priority']}",
            )
        seen[slot] = str(rule["resourceId"])


def _virtual_network(adm: Admission) -> None:
    props = adm.new["properties"]
    old_props = adm.old["properties"] if adm.old is not None else {}
    props["routingDomainId"] = (
        old_props.get("routingDomainId") or allocators.new_routing_domain_id()
    )
    _runs_on_a_provider_network(adm, props.get("logicalNetwork", {}).get("resourceRef"))
    space = _address_space(props["addressSpace"]["addressPrefixes"])
    vsid_owner = _vsids_of_other_networks(adm)
    seen: list[tuple[str, IpNetwork]] = []
    pending: list[Document] = []
    for i, subnet in enumerate(children(adm.new, "subnets")):
        base = f"properties.subnets[{i}].properties"
        for field, net in _dual_stack_prefixes(base, subnet["properties"]):
            _subnet_prefix_fits(field, net, space, seen)
            seen.append((str(subnet["resourceId"]), net))
        if not _keep_or_claim_vsid(adm, subnet, base, vsid_owner):
            pending.append(subnet)
    _allocate_vsids(adm, pending, vsid_owner)


def _runs_on_a_provider_network(adm: Admission, network_ref: str | None) -> None:
    if network_ref is None:
        return
    network = resolved(adm.state, parse_path(network_ref))
    if not network["properties"].get("networkVirtualizationEnabled"):
        raise bad_request(
            "properties.logicalNetwork",
            f"{network_ref} is not an HNV provider network "
            "(its networkVirtualizationEnabled is false)",
        )


def _address_space(prefixes: list[str]) -> list[tuple[str, IpNetwork]]:
    """The address space's prefixes, none overlapping another."""
    space: list[tuple[str, IpNetwork]] = []
    for i, prefix in enumerate(prefixes):
        net = ipaddress.ip_network(prefix)
        other = overlapping(space, net)
        if other is not None:
            raise bad_request(
                f"properties.addressSpace.addressPrefixes[{i}]", f"{net} overlaps {other}"
            )
        space.append((prefix, net))
    return space


def _vsids_of_other_networks(adm: Admission) -> dict[int, str]:
    """VSID -> the subnet of another virtual network that has it."""
    owners: dict[int, str] = {}
    for path, doc in adm.state.all("virtualNetworks"):
        if path.key != adm.path.key:
            for subnet in children(doc, "subnets"):
                owners[int(subnet["properties"]["virtualSubnetId"])] = path.child(
                    "subnets", str(subnet["resourceId"])
                ).ref
    return owners


def _dual_stack_prefixes(base: str, props: dict[str, Any]) -> list[tuple[str, IpNetwork]]:
    """The subnet's prefixes with the field each comes from: ``addressPrefix``, and the
    other ``addressPrefixes`` (at most one IPv4 and one IPv6, ``addressPrefix`` among
    them)."""
    primary = ipaddress.ip_network(props["addressPrefix"])
    found: list[tuple[str, IpNetwork]] = [(f"{base}.addressPrefix", primary)]
    given = props.get("addressPrefixes")
    if given is None:
        return found
    nets = [ipaddress.ip_network(p) for p in given]
    if primary not in nets:
        raise bad_request(
            f"{base}.addressPrefixes", f"does not hold addressPrefix {primary}: it lists them all"
        )
    versions: dict[int, IpNetwork] = {}
    for j, net in enumerate(nets):
        if net.version in versions and versions[net.version] != net:
            raise bad_request(
                f"{base}.addressPrefixes[{j}]",
                f"{net} is a second IPv{net.version} prefix (beside {versions[net.version]}): "
                "a dual-stack subnet has one IPv4 and one IPv6 prefix",
            )
        versions[net.version] = net
        if net != primary and (f"{base}.addressPrefixes[{j}]", net) not in found:
            found.append((f"{base}.addressPrefixes[{j}]", net))
    props["addressPrefixes"] = [str(n) for n in sorted(versions.values(), key=lambda n: n.version)]
    return found


def _subnet_prefix_fits(
    field: str,
    net: IpNetwork,
    space: list[tuple[str, IpNetwork]],
    seen: list[tuple[str, IpNetwork]],
) -> None:
    """Inside the address space, apart from the subnets before it."""
    if not any(n.version == net.version and net.subnet_of(n) for _, n in space):  # type: ignore[arg-type]
        spaces = ", ".join(p for p, _ in space)
        raise bad_request(field, f"{net} is outside the address space {spaces}")
    other = overlapping(seen, net)
    if other is not None:
        raise bad_request(field, f"{net} overlaps sibling subnet {other}")


def _keep_or_claim_vsid(
    adm: Admission, subnet: Document, base: str, vsid_owner: dict[int, str]
) -> bool:
    """An existing subnet keeps its VSID; a new one claims the VSID it asks for. False
    when a new subnet asks for none (it gets one allocated once all others are known)."""
    sp = subnet["properties"]
    subnet_path = adm.path.child("subnets", str(subnet["resourceId"]))
    old = find_child(adm.old, "subnets", str(subnet["resourceId"])) if adm.old else None
    asked = sp.get("virtualSubnetId")
    if old is not None:
        fixed = int(old["properties"]["virtualSubnetId"])
        if asked is not None and asked != fixed:
            raise conflict(f"{base}.virtualSubnetId", f"is {fixed} and cannot change to {asked}")
        sp["virtualSubnetId"] = fixed
        if subnet_prefixes(old["properties"]) != subnet_prefixes(sp):
            _customer_addresses_fit(adm.state, subnet_path, sp, base)
    elif asked is None:
        return False
    owner = vsid_owner.get(int(sp["virtualSubnetId"]))
    if owner is not None:
        raise conflict(
            f"{base}.virtualSubnetId",
            f"{sp['virtualSubnetId']} is already used by {owner}",
            "DuplicateVirtualSubnetId",
        )
    vsid_owner[int(sp["virtualSubnetId"])] = subnet_path.ref
    return True


def _allocate_vsids(adm: Admission, pending: list[Document], vsid_owner: dict[int, str]) -> None:
    for subnet in pending:
        hint = adm.hint(allocators.VSID_ALLOCATOR)
        vsid = allocators.allocate_vsid(set(vsid_owner), hint)
        if vsid is None:
            raise conflict("properties.subnets", "no free virtualSubnetId", "PoolExhausted")
        adm.advance(allocators.VSID_ALLOCATOR, vsid)
        subnet["properties"]["virtualSubnetId"] = vsid
        vsid_owner[vsid] = str(subnet["resourceId"])


def _customer_addresses_fit(
    state: State, subnet: ResourcePath, props: dict[str, Any], base: str
) -> None:
    for nic_path, nic in state.all("networkInterfaces"):
        for config in children(nic, "ipConfigurations"):
            cp = config["properties"]
            if parse_path(cp["subnet"]["resourceRef"]).key != subnet.key:
                continue
            version = ipaddress.ip_address(cp["privateIPAddress"]).version
            prefix = prefix_of_version(props, version)
            try:
                if prefix is None:
                    raise ValueError(version)
                check_customer_address(cp["privateIPAddress"], prefix, "")
            except Exception:
                raise conflict(
                    f"{base}.addressPrefix",
                    f"{', '.join(subnet_prefixes(props))} would not hold "
                    f"{cp['privateIPAddress']} of {nic_path.ref}",
                ) from None


_CHECKS = {
    "publicIPAddresses": check_public_ip,
    "gatewayPools": check_gateway_pool,
    "gateways": check_gateway,
    "virtualGateways": check_virtual_gateway,
    "logicalNetworks": _logical_network,
    "macPools": _mac_pool,
    "credentials": _credential,
    "servers": _server,
    "accessControlLists": _access_control_list,
    "virtualNetworks": _virtual_network,
    "networkInterfaces": check_network_interface,
}
