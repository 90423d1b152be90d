"""DHCPv4 answered by the host from the NIC's own data (RFC 2131), as ARP is (agent.arp).

A VM's DHCP client messages never leave the host: the engine punts them
(``Punt(reason="dhcp")``) and the agent answers here with what the Network Controller
already holds for the NIC: its address and its subnet's prefix, the distributed
router's address as gateway (and as the server's identifier and source), the NIC's
``dnsSettings.dnsServers`` and the overlay MTU (option 26), as OVN's native DHCP does.
A DISCOVER gets an OFFER; a REQUEST for the NIC's address gets an ACK, for any other an
NAK; a REQUEST naming another server, a RELEASE or a DECLINE gets silence; an INFORM an
ACK without a lease. Pure functions: the agent sends what ``answer`` returns.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from openhnv.packet.addresses import ip_to_bytes, mac_to_bytes
from openhnv.packet.dhcp import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT,
    DISCOVER,
    FLAG_BROADCAST,
    INFORM,
    NAK,
    OFFER,
    OPTION_DNS_SERVERS,
    OPTION_INTERFACE_MTU,
    OPTION_LEASE_TIME,
    OPTION_MESSAGE_TYPE,
    OPTION_REBINDING_TIME,
    OPTION_RENEWAL_TIME,
    OPTION_REQUESTED_ADDRESS,
    OPTION_ROUTER,
    OPTION_SERVER_ID,
    OPTION_SUBNET_MASK,
    REQUEST,
    Dhcp,
    Option,
    addresses_option,
    u16_option,
    u32_option,
)
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_IPV4, Ethernet
from openhnv.packet.frames import udp_frame
from openhnv.packet.ipv4 import PROTO_UDP, IPv4
from openhnv.packet.udp import Udp

LEASE_TIME = 86_400  # seconds: the NIC's address is fixed by the controller, renewals are cheap
RENEWAL_TIME = LEASE_TIME // 2  # T1, RFC 2131 §4.4.5
REBINDING_TIME = LEASE_TIME * 7 // 8  # T2
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
LIMITED_BROADCAST = "255.255.255.255"
_ZERO_IP = bytes(4)


@dataclass(frozen=True, slots=True)
class DhcpConfig:
    """What a port's DHCP answers hold (from its rows; the MTU comes with each answer)."""

    address: str  # the NIC's IPv4 customer address
    prefix_length: int
    server: str  # the distributed router's address in the subnet: identifier and source
    server_mac: str  # the distributed router's MAC: the answers' source MAC
    router: str | None  # option 3: the gateway, when the subnet is routed
    dns_servers: tuple[str, ...] = ()


def answer(config: DhcpConfig, client_mac: str, frame: bytes, mtu: int) -> bytes | None:
    """The Ethernet frame answering the DHCP client message ``frame`` sent by the port
    whose MAC is ``client_mac``, or None (never raises)."""
    try:
        message = _request(frame)
    except PacketError:
        return None
    if message is None or message.client_mac != mac_to_bytes(client_mac):
        return None
    kind = message.message_type
    own = ip_to_bytes(config.address)
    if kind == DISCOVER:
        return _reply(config, message, OFFER, own, mtu)
    if kind == INFORM:
        return _reply(config, message, ACK, _ZERO_IP, mtu)
    if kind != REQUEST:
        return None  # RELEASE, DECLINE, BOOTP: nothing to say
    server = message.option(OPTION_SERVER_ID)
    if server is not None and server != ip_to_bytes(config.server):
        return None  # the client chose another server's offer
    requested = message.option(OPTION_REQUESTED_ADDRESS) or message.ciaddr
    return _reply(config, message, ACK if requested == own else NAK, own, mtu)


def _request(frame: bytes) -> Dhcp | None:
    ethernet, at = Ethernet.parse(frame)
    if ethernet.ethertype != ETHERTYPE_IPV4:
        return None
    ip, at = IPv4.parse(frame, at)
    if ip.protocol != PROTO_UDP:
        return None
    udp_at = at
    udp, at = Udp.parse(frame, at, ip.src, ip.dst, ip.payload_length)
    if udp.dst_port != DHCP_SERVER_PORT:
        return None
    message, _ = Dhcp.parse(frame[: udp_at + udp.length], at)
    return message if message.op == BOOTREQUEST else None


def _reply(config: DhcpConfig, request: Dhcp, kind: int, yiaddr: bytes, mtu: int) -> bytes:
    options: list[Option] = [
        (OPTION_MESSAGE_TYPE, bytes((kind,))),
        (OPTION_SERVER_ID, ip_to_bytes(config.server)),
    ]
    if kind == NAK:
        yiaddr = _ZERO_IP
    else:
        options += _configuration(config, mtu)
        if request.message_type != INFORM:
            options += [
                u32_option(OPTION_LEASE_TIME, LEASE_TIME),
                u32_option(OPTION_RENEWAL_TIME, RENEWAL_TIME),
                u32_option(OPTION_REBINDING_TIME, REBINDING_TIME),
            ]
    reply = Dhcp(
        BOOTREPLY,
        request.xid,
        request.client_mac,
        tuple(options),
        flags=request.flags,
        ciaddr=request.ciaddr if kind != NAK else _ZERO_IP,
        yiaddr=yiaddr,
        giaddr=request.giaddr,
    )
    dst_mac, dst_ip = _destination(request, kind, yiaddr)
    return udp_frame(
        src_mac=config.server_mac,
        dst_mac=dst_mac,
        src_ip=config.server,
        dst_ip=dst_ip,
        src_port=DHCP_SERVER_PORT,
        dst_port=DHCP_CLIENT_PORT,
        payload=reply.pack(),
    )


def _configuration(config: DhcpConfig, mtu: int) -> list[Option]:
    mask = ipaddress.IPv4Network(f"0.0.0.0/{config.prefix_length}").netmask.packed
    options: list[Option] = [(OPTION_SUBNET_MASK, mask)]
    if config.router is not None:
        options.append(addresses_option(OPTION_ROUTER, [ip_to_bytes(config.router)]))
    if config.dns_servers:
        dns = [ip_to_bytes(a) for a in config.dns_servers]
        options.append(addresses_option(OPTION_DNS_SERVERS, dns))
    options.append(u16_option(OPTION_INTERFACE_MTU, mtu))
    return options


def _destination(request: Dhcp, kind: int, yiaddr: bytes) -> tuple[bytes | str, bytes | str]:
    """RFC 2131 §4.1: to ``ciaddr`` when the client has one, broadcast when it asks for it
    (and every NAK), else to its MAC and the offered address."""
    if kind != NAK and request.ciaddr != _ZERO_IP:
        return request.client_mac, request.ciaddr
    if kind == NAK or request.flags & FLAG_BROADCAST or yiaddr == _ZERO_IP:
        return BROADCAST_MAC, LIMITED_BROADCAST
    return request.client_mac, yiaddr
