"""The compiler's resolved values: hosts, their PAs, subnets, VNets, ACLs and placed NICs.

Frozen and slotted, built by ``index.Index`` (and ``gateways`` for a compartment's NIC)
from northbound documents, read by the row builders.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from openhnv.controller.compiler.firewall import AclRule

NO_HOST = ""  # the server_id of a NIC behind a hardware VTEP (openhnv's vtepAddress)
NO_VNET = ""  # the vnet_id of a logical (VLAN) subnet: it is in no virtual network
NO_VSID = 0  # the vsid of a logical subnet
IPV6 = 6


@dataclass(frozen=True, slots=True)
class ProviderAddress:
    """One PA of a host (one per team member)."""

    address: str
    prefix_length: int
    vlan: int
    default_gateway: str
    interface: str


@dataclass(frozen=True, slots=True)
class Host:
    """A server: the Hyper-V host a NIC's port lives on."""

    server_id: str
    instance_id: str
    management_ips: frozenset[str]
    provider_addresses: tuple[ProviderAddress, ...]  # sorted by address


@dataclass(frozen=True, slots=True)
class Subnet:
    """A virtual subnet: one VSID, one broadcast domain; or a logical subnet of a
    traditional VLAN network (``vnet_id`` ``NO_VNET``, ``vsid`` ``NO_VSID``, its ``vlan``),
    whose NICs are access ports on that VLAN."""

    ref: str
    vnet_id: str
    vsid: int
    prefix: str
    gateway_ip: str
    acl_ref: str | None
    vlan: int = 0
    # a dual-stack virtual subnet's IPv6 prefix (addressPrefixes) beside an IPv4
    # addressPrefix, and its distributed router address (the lowest usable); else ""
    ipv6_prefix: str = ""
    ipv6_gateway_ip: str = ""

    def prefix_for(self, address: str) -> str:
        """The subnet's prefix of ``address``'s IP family (the primary one if none)."""
        if self.ipv6_prefix and ipaddress.ip_address(address).version == IPV6:
            return self.ipv6_prefix
        return self.prefix

    @property
    def logical(self) -> bool:
        return self.vnet_id == NO_VNET


@dataclass(frozen=True, slots=True)
class VirtualNetwork:
    """A virtual network: one routing domain (RDID) and its subnets."""

    vnet_id: str
    ref: str
    rdid: str
    address_space: tuple[str, ...]
    subnets: tuple[Subnet, ...]


@dataclass(frozen=True, slots=True)
class Acl:
    """An access control list with its rules parsed."""

    ref: str
    rules: tuple[AclRule, ...]


@dataclass(frozen=True, slots=True)
class Nic:
    """A VM NIC placed on a host, fully resolved."""

    ref: str
    nic_id: str
    instance_id: str
    server_id: str
    subnet: Subnet
    mac: str  # lower case with colons
    addresses: tuple[str, ...]  # customer addresses, by ipConfiguration resourceId
    acl_ref: str | None
    mac_spoofing: bool
    arp_guard: bool
    dhcp_guard: bool
    provider_address: str
    gateway: bool = False  # a gateway compartment's NIC (compiler.gateways)
    dns_servers: tuple[str, ...] = ()  # dnsSettings.dnsServers, for the host's DHCP
    qos_outbound_max_mbps: int = 0  # portSettings.qosSettings.outboundMaximumMbps (0: none)
    qos_inbound_max_mbps: int = 0  # portSettings.qosSettings.inboundMaximumMbps (0: none)
    qos_outbound_reserved_mbps: int = 0  # portSettings.qosSettings.outboundReservedValue

    @property
    def vnet_id(self) -> str:
        return self.subnet.vnet_id
