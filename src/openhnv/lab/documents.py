"""Northbound documents: the one builder of the bodies a client PUTs to the controller.

One function per resource kind (and per child kind: PA subnets, IP pools, virtual
subnets, IP configurations, ACL rules), each returning exactly what Microsoft's
Network Controller REST API accepts (docs/architecture.md "Northbound values"):
``Resource(collection, resource_id, body)`` with ``body = {"resourceId", "properties"}``
for a top-level resource, a plain ``{"resourceId", "properties"}`` for a child. Pure:
no I/O, nothing allocated here (VSIDs, MACs and PAs come from the controller unless
asked for).

``hnv lab`` builds its datacenter with it (``lab.resources``: a topology to documents);
the tests and the benchmarks build theirs with it too, directly or as the snapshots a
GET would return (the test support package's ``snapshots``), so that there is one
spelling of each document to keep in step with the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]

PROVIDER_NETWORK = "HNVPA"
CONFIGURATION = ("virtualNetworkManager", "configuration")
IP_CONFIGURATION = "ipconfig1"
ANY = "*"  # any address prefix or port range
DISABLED = "Disabled"


@dataclass(frozen=True, slots=True)
class Resource:
    """One REST resource to ``PUT``: where, and the body."""

    collection: str
    resource_id: str
    body: Document

    @property
    def path(self) -> str:
        """``/servers/host1`` (relative to ``/networking/v1``)."""
        return f"/{self.collection}/{self.resource_id}"

    @property
    def properties(self) -> Document:
        properties: Document = self.body["properties"]
        return properties


def reference(*parts: str) -> dict[str, str]:
    """``{"resourceRef": "/a/b/..."}``."""
    return {"resourceRef": "/" + "/".join(parts)}


def child(resource_id: str, properties: Document) -> Document:
    """A child resource inline in its parent (a subnet, a rule, an IP configuration)."""
    return {"resourceId": resource_id, "properties": properties}


def _resource(collection: str, resource_id: str, properties: Document) -> Resource:
    return Resource(collection, resource_id, child(resource_id, properties))


def configuration(protocol: str = "Vxlan") -> Resource:
    """``virtualNetworkManager/configuration``: the encapsulation, ``Vxlan`` or ``Nvgre``."""
    return _resource(*CONFIGURATION, {"networkVirtualizationProtocol": protocol})


def ip_pool(name: str, start: str, end: str) -> Document:
    return child(name, {"startIpAddress": start, "endIpAddress": end})


def pa_subnet(
    name: str,
    prefix: str,
    *,
    vlan: int = 0,
    gateway: str | None = None,
    pools: Sequence[Document] = (),
) -> Document:
    """A subnet of the provider network: its VLAN, gateway and the pools PAs come from."""
    properties: Document = {"addressPrefix": prefix, "vlanID": vlan}
    if gateway is not None:
        properties["defaultGateways"] = [gateway]
    properties["ipPools"] = list(pools)
    return child(name, properties)


def provider_network(subnets: Sequence[Document], name: str = PROVIDER_NETWORK) -> Resource:
    """The logical network HNV runs over (``networkVirtualizationEnabled``)."""
    return _resource(
        "logicalNetworks",
        name,
        {"networkVirtualizationEnabled": True, "subnets": list(subnets)},
    )


def mac_pool(name: str, start: str, end: str) -> Resource:
    return _resource("macPools", name, {"startMacAddress": start, "endMacAddress": end})


def server(
    name: str,
    management: Sequence[str] = (),
    pa_nics: Sequence[tuple[str, str]] = (),
    network: str = PROVIDER_NETWORK,
) -> Resource:
    """A Hyper-V host: where the controller reaches its OVSDB, and its physical NICs as
    (NIC resourceId, PA subnet): one PA is allocated per NIC on a provider subnet."""
    nics = [
        child(nic, {"logicalSubnets": [reference("logicalNetworks", network, "subnets", subnet)]})
        for nic, subnet in pa_nics
    ]
    return _resource(
        "servers",
        name,
        {"connections": [{"managementAddresses": list(management)}], "networkInterfaces": nics},
    )


def acl_rule(
    name: str,
    direction: str,
    action: str,
    priority: int,
    *,
    protocol: str = "All",
    source: str = ANY,
    destination: str = ANY,
    source_ports: str = ANY,
    destination_ports: str = ANY,
    logging: str = DISABLED,
) -> Document:
    """An ``aclRules`` entry: ``direction`` Inbound/Outbound, ``action`` Allow/Deny."""
    return child(
        name,
        {
            "protocol": protocol,
            "sourcePortRange": source_ports,
            "destinationPortRange": destination_ports,
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": destination,
            "action": action,
            "priority": priority,
            "type": direction,
            "logging": logging,
        },
    )


def access_control_list(name: str, rules: Sequence[Document]) -> Resource:
    return _resource("accessControlLists", name, {"aclRules": list(rules)})


def virtual_subnet(
    name: str,
    prefix: str,
    *,
    vsid: int | None = None,
    acl: str | None = None,
    ipv6_prefix: str | None = None,
) -> Document:
    """A subnet of a virtual network; ``vsid`` asks for that VSID, else one is allocated;
    ``ipv6_prefix`` makes it dual stack (``addressPrefixes``: both prefixes)."""
    properties: Document = {"addressPrefix": prefix}
    if ipv6_prefix is not None:
        properties["addressPrefixes"] = [prefix, ipv6_prefix]
    if vsid is not None:
        properties["virtualSubnetId"] = vsid
    if acl is not None:
        properties["accessControlList"] = reference("accessControlLists", acl)
    return child(name, properties)


def virtual_network(
    name: str,
    address_space: Sequence[str],
    subnets: Sequence[Document],
    network: str = PROVIDER_NETWORK,
) -> Resource:
    return _resource(
        "virtualNetworks",
        name,
        {
            "addressSpace": {"addressPrefixes": list(address_space)},
            "logicalNetwork": reference("logicalNetworks", network),
            "subnets": list(subnets),
        },
    )


def ip_configuration(
    address: str | None,
    virtual_network_name: str,
    subnet: str,
    *,
    name: str = IP_CONFIGURATION,
    acl: str | None = None,
) -> Document:
    """A NIC's customer address in ``virtual_network_name/subnet``: ``address`` (Static),
    or, when None, one the controller allocates from the subnet (Dynamic)."""
    properties: Document = {}
    if address is not None:
        properties["privateIPAddress"] = address
        if ":" in address:
            properties["privateIPAddressVersion"] = "IPv6"
    properties["privateIPAllocationMethod"] = "Static" if address is not None else "Dynamic"
    properties["subnet"] = reference("virtualNetworks", virtual_network_name, "subnets", subnet)
    if acl is not None:
        properties["accessControlList"] = reference("accessControlLists", acl)
    return child(name, properties)


def network_interface(
    name: str,
    ip_configurations: Sequence[Document],
    *,
    server_name: str | None = None,
    mac: str | None = None,
    mac_spoofing: str = DISABLED,
    dns_servers: Sequence[str] = (),
    qos: Mapping[str, int] | None = None,
) -> Resource:
    """A VM NIC: a Static MAC when ``mac`` is given (as the API spells it, e.g.
    ``00-1D-D8-B7-1C-11`` or ``001DD8B71C11``), else one from a MAC pool; placed on
    ``server_name`` when given."""
    properties: Document = {}
    if server_name is not None:
        properties["server"] = reference("servers", server_name)
    properties["ipConfigurations"] = list(ip_configurations)
    properties["portSettings"] = {
        "macSpoofingEnabled": mac_spoofing,
        "arpGuardEnabled": DISABLED,
        "dhcpGuardEnabled": DISABLED,
    }
    if qos:
        properties["portSettings"]["qosSettings"] = dict(
            qos
        )  # NC's names, e.g. outboundMaximumMbps
    if dns_servers:
        properties["dnsSettings"] = {"dnsServers": list(dns_servers)}
    if mac is not None:
        properties["privateMacAddress"] = mac
        properties["privateMacAllocationMethod"] = "Static"
    else:
        properties["privateMacAllocationMethod"] = "Dynamic"
    return _resource("networkInterfaces", name, properties)
