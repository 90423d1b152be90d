"""IPv6 Neighbor Discovery answered by the host, as ARP is (RFC 4861; docs/host.md).

A VM's Neighbor Discovery never leaves the host: the engine punts it
(``Punt(reason="nd")``) and the agent answers here from the mapping store.

- A Neighbor Solicitation for a customer address of the VM's virtual subnet gets a
  Neighbor Advertisement with the MAC the mapping store has for it; one for the
  distributed router's IPv6 address of the subnet (its lowest usable address) or for
  the router's link-local address (fe80::/64 from the router MAC, modified EUI-64) gets
  the router MAC with the Router flag. An unknown target, a solicitation for the VM's
  own address (duplicate address detection included) or a malformed message (hop limit
  other than 255, bad checksum, code other than 0) gets silence.
- A Router Solicitation gets a Router Advertisement from the router's link-local
  address; ``advertisement`` makes the unsolicited ones the agent sends periodically.
  The RA carries the router MAC, the overlay MTU and the subnet's prefix with the
  on-link flag and *without* the autonomous flag: the Network Controller assigns every
  customer address (``privateIPAddress``), and an address a VM made up by SLAAC would
  be in no mapping, so its traffic would be dropped as spoofed. To a port with an
  IPv6 address from the controller M and O are set: its DHCPv6 client asks for that
  address (agent.dhcp6 answers, with a /128; the on-link prefix gives its subnet) and
  for the DNS servers. The router lifetime makes the VM's default route point at the
  router's link-local address. When the NIC's ``dnsSettings.dnsServers`` hold IPv6
  addresses, the RA carries them in a Recursive DNS Server option (RFC 8106), so a VM
  that runs no DHCPv6 client (static address, RA for the rest) learns them too; IPv4
  servers cannot go there and are left out, and a NIC without IPv6 servers gets no
  option. No DNS Search List option: the NIC's ``dnsSettings`` hold no search domains.

Pure functions: frames in, frames out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from openhnv.agent.arp import ArpTable, Ipv6Router, Requester
from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_IPV6, Ethernet
from openhnv.packet.icmpv6 import Icmpv6
from openhnv.packet.ipv4 import PROTO_ICMPV6
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.ndp import (
    ALL_NODES,
    ICMPV6_NEIGHBOR_ADVERTISEMENT,
    ICMPV6_NEIGHBOR_SOLICITATION,
    ICMPV6_ROUTER_ADVERTISEMENT,
    ICMPV6_ROUTER_SOLICITATION,
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    ND_HOP_LIMIT,
    OPTION_SOURCE_LINK_LAYER,
    OPTION_TARGET_LINK_LAYER,
    RA_MANAGED,
    RA_OTHER,
    RDNSS_MAX_SERVERS,
    UNSPECIFIED,
    PrefixInformation,
    RecursiveDnsServers,
    link_layer_option,
    link_local_of,
    mtu_option,
    multicast_mac,
    ra_payload,
    target_and_options,
)

RA_HOP_LIMIT = 64  # the hop limit VMs use (Cur Hop Limit)
ROUTER_LIFETIME = 1800  # seconds (RFC 4861 §6.2.1: 3 x MaxRtrAdvInterval)
RA_INTERVAL = 200.0  # seconds between unsolicited RAs to a port (MinRtrAdvInterval)
# RFC 8106 §5.1: an RDNSS lifetime SHOULD be at least 3 x MaxRtrAdvInterval, so that two
# lost RAs do not expire the servers. The router lifetime is 3 x RFC 4861's default
# MaxRtrAdvInterval (600 s), 9 of our RA_INTERVALs; servers reached through the router
# need not outlive the default route to it, so they expire together.
DNS_LIFETIME = ROUTER_LIFETIME
_ND_CODE = 0
IPV6_VERSION = 6


def router_link_local(router_mac: str) -> str:
    """The distributed router's link-local address (fe80::/64, modified EUI-64)."""
    return str(ipaddress.IPv6Address(link_local_of(mac_to_bytes(router_mac))))


def managed(ip_addresses: Iterable[str]) -> bool:
    """Whether a port's RA sets M and O: it has an IPv6 address (from the controller)."""
    return any(ipaddress.ip_address(a).version == IPV6_VERSION for a in ip_addresses)


def resolve(table: ArpTable, vsid: int, target: str) -> tuple[str, bool] | None:
    """(the MAC that answers for IPv6 ``target`` in VSID ``vsid``, whether it is the
    router), or None."""
    router = table.ipv6_routers.get(vsid)
    mac = table.router_mac
    if (
        mac is not None
        and router is not None
        and target
        in (
            router.address,
            router_link_local(mac),
        )
    ):
        return mac, True
    mac = table.customer_macs.get((vsid, target))
    return (mac, False) if mac is not None else None


def answer(
    table: ArpTable,
    solicitor: Requester,
    frame: bytes,
    mtu: int,
    dns_servers: Sequence[str] = (),
) -> bytes | None:
    """The frame answering the ND message ``frame`` (an NS or an RS), or None (never
    raises). ``dns_servers``: the soliciting NIC's (``advertisement``)."""
    try:
        ethernet, offset = Ethernet.parse(frame)
        if ethernet.ethertype != ETHERTYPE_IPV6:
            return None
        ip, offset = IPv6.parse(frame, offset)
        if ip.next_header != PROTO_ICMPV6 or ip.hop_limit != ND_HOP_LIMIT:
            return None  # RFC 4861 §7.1.1: not from the link itself
        end = offset + ip.payload_length
        message, _ = Icmpv6.parse(frame[:end], offset, ip.src, ip.dst)
        if message.code != _ND_CODE:
            return None
        if message.type == ICMPV6_NEIGHBOR_SOLICITATION:
            return _advertise_neighbor(table, solicitor, ethernet, ip, message)
        if message.type == ICMPV6_ROUTER_SOLICITATION:
            return _solicited_advertisement(table, solicitor, ethernet, ip, mtu, dns_servers)
    except PacketError:
        return None
    return None


def _advertise_neighbor(
    table: ArpTable, solicitor: Requester, ethernet: Ethernet, ip: IPv6, ns: Icmpv6
) -> bytes | None:
    target_bytes, options = target_and_options(ns.payload)
    target_ip = ipaddress.IPv6Address(target_bytes)
    if target_ip.is_multicast:
        return None  # §7.1.1
    target = str(target_ip)
    if target in solicitor.ip_addresses:
        return None  # its own address (duplicate address detection): silence
    found = resolve(table, solicitor.vsid, target)
    if found is None:
        return None
    mac, router = found
    dad = ip.src == UNSPECIFIED
    if dad and options.source_mac is not None:
        return None  # §7.1.1: a DAD probe carries no source link-layer option
    flags = NA_OVERRIDE | (NA_ROUTER if router else 0) | (0 if dad else NA_SOLICITED)
    # §7.2.4: to the soliciting address; a DAD probe's answer goes to all nodes
    dst_ip = ALL_NODES if dad else ip.src
    dst_mac = multicast_mac(ALL_NODES) if dad else options.source_mac or ethernet.src
    mac_bytes = mac_to_bytes(mac)
    na = Icmpv6(
        ICMPV6_NEIGHBOR_ADVERTISEMENT,
        _ND_CODE,
        flags,
        0,
        target_bytes + link_layer_option(OPTION_TARGET_LINK_LAYER, mac_bytes),
    )
    return _frame(dst_mac, mac_bytes, ethernet.vlan_id, target_bytes, dst_ip, na)


def _solicited_advertisement(
    table: ArpTable,
    solicitor: Requester,
    ethernet: Ethernet,
    ip: IPv6,
    mtu: int,
    dns_servers: Sequence[str],
) -> bytes | None:
    dst_ip = ALL_NODES if ip.src == UNSPECIFIED else ip.src
    dst_mac = multicast_mac(ALL_NODES) if ip.src == UNSPECIFIED else ethernet.src
    return advertisement(
        table, solicitor.vsid, dst_mac, dst_ip, mtu, ethernet.vlan_id,
        managed=managed(solicitor.ip_addresses), dns_servers=dns_servers,
    )  # fmt: skip


def advertisement(
    table: ArpTable,
    vsid: int,
    dst_mac: bytes = multicast_mac(ALL_NODES),
    dst_ip: bytes = ALL_NODES,
    mtu: int = 0,
    vlan_id: int | None = None,
    *,
    managed: bool = False,
    dns_servers: Sequence[str] = (),
) -> bytes | None:
    """The distributed router's RA for virtual subnet ``vsid`` (unsolicited: to all
    nodes), or None when the subnet has no IPv6 router. ``mtu`` 0 leaves the MTU
    option out; ``managed`` sets M and O (DHCPv6 for the address and the rest);
    ``dns_servers`` (the NIC's ``dnsSettings.dnsServers``, IPv4 and IPv6): the IPv6
    ones go in an RDNSS option, in their order."""
    router = table.ipv6_routers.get(vsid)
    if table.router_mac is None or router is None:
        return None
    router_mac = mac_to_bytes(table.router_mac)
    options = link_layer_option(OPTION_SOURCE_LINK_LAYER, router_mac)
    if mtu:
        options += mtu_option(mtu)
    options += _prefix_option(router).pack()
    servers = ipv6_dns_servers(dns_servers)[:RDNSS_MAX_SERVERS]  # what a length byte holds
    if servers:
        packed = tuple(ipaddress.IPv6Address(a).packed for a in servers)
        options += RecursiveDnsServers(packed, DNS_LIFETIME).pack()
    ra = Icmpv6(
        ICMPV6_ROUTER_ADVERTISEMENT,
        _ND_CODE,
        RA_HOP_LIMIT << 8 | ((RA_MANAGED | RA_OTHER) if managed else 0),  # then M/O
        ROUTER_LIFETIME,
        ra_payload(options),
    )
    return _frame(dst_mac, router_mac, vlan_id, link_local_of(router_mac), dst_ip, ra)


def ipv6_dns_servers(dns_servers: Iterable[str]) -> tuple[str, ...]:
    """The IPv6 ones of a NIC's DNS servers, in their order (an RDNSS option holds
    IPv6 addresses only; the IPv4 ones reach the VM by DHCPv4)."""
    return tuple(a for a in dns_servers if ipaddress.ip_address(a).version == IPV6_VERSION)


def _prefix_option(router: Ipv6Router) -> PrefixInformation:
    network = ipaddress.IPv6Network(router.prefix)
    return PrefixInformation(
        network.network_address.packed, network.prefixlen, on_link=True, autonomous=False
    )


def _frame(
    dst_mac: bytes, src_mac: bytes, vlan_id: int | None, src: bytes, dst: bytes, m: Icmpv6
) -> bytes:
    body = m.pack(src, dst)
    header = IPv6(src, dst, PROTO_ICMPV6, ND_HOP_LIMIT).pack(len(body))
    return Ethernet(dst_mac, src_mac, ETHERTYPE_IPV6, vlan_id).pack() + header + body
