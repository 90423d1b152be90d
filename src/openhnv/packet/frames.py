"""Whole frames: builders for test and control traffic, and VXLAN/NVGRE tunnels.

Builders take addresses as text or bytes and choose IPv4 or IPv6 by the address
length. :func:`vxlan_encapsulate` and :func:`nvgre_encapsulate` put an inner Ethernet
frame (no FCS) in the provider-address (PA) packet of RFC 7348 or RFC 7637;
:func:`decapsulate` takes it out again and says which virtual subnet (VSID) it is for.
Tunnels run over IPv4 PAs (``vxlan_over_ipv4``, ``nvgre_over_ipv4``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openhnv.packet.addresses import IPV4_LEN, ip_to_bytes, ip_to_str, mac_to_bytes
from openhnv.packet.arp import Arp
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    Ethernet,
)
from openhnv.packet.gre import NVGRE_HEADER_LEN, NVGRE_PROTOCOL, Gre, nvgre_key, split_nvgre_key
from openhnv.packet.icmp import (
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_FRAGMENTATION_NEEDED,
    Icmp,
)
from openhnv.packet.icmpv6 import (
    ICMPV6_ECHO_REPLY,
    ICMPV6_ECHO_REQUEST,
    ICMPV6_HEADER_LEN,
    ICMPV6_PACKET_TOO_BIG,
    Icmpv6,
)
from openhnv.packet.ipv4 import (
    IPV4_DEFAULT_TTL,
    IPV4_FLAG_DF,
    IPV4_HEADER_LEN,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    IPv4,
)
from openhnv.packet.ipv6 import IPV6_HEADER_LEN, IPv6
from openhnv.packet.tcp import Tcp
from openhnv.packet.udp import UDP_HEADER_LEN, Udp
from openhnv.packet.vxlan import VXLAN_HEADER_LEN, VXLAN_PORT, Vxlan

VXLAN_OUTER_LEN = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_HEADER_LEN
NVGRE_OUTER_LEN = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + NVGRE_HEADER_LEN
"""What a tunnel puts in front of an inner frame: 50 bytes (VXLAN) or 42 (NVGRE) over
IPv4 without options, ``VLAN_TAG_LEN`` (4) more on a tagged PA subnet."""

_TUNNEL = "tunnel"


@dataclass(frozen=True, slots=True)
class Tunnel:
    """A decapsulated VXLAN or NVGRE packet.

    ``vsid`` is the VNI (VXLAN) or the key's VSID (NVGRE); ``flow_id`` is 0 for VXLAN;
    ``udp_src_port`` is 0 for NVGRE; ``inner`` is the inner Ethernet frame.
    """

    outer: Ethernet
    outer_ip: IPv4
    encapsulation: Literal["vxlan", "nvgre"]
    vsid: int
    flow_id: int
    udp_src_port: int
    inner: bytes


def _ip_pair(src_ip: str | bytes, dst_ip: str | bytes) -> tuple[bytes, bytes]:
    """Both addresses as bytes, of one family."""
    src, dst = ip_to_bytes(src_ip), ip_to_bytes(dst_ip)
    if len(src) != len(dst):
        raise PacketError(
            "address",
            0,
            f"source {ip_to_str(src)} and destination {ip_to_str(dst)} are of different families",
        )
    return src, dst


def _ip_frame(
    *,
    src_mac: str | bytes,
    dst_mac: str | bytes,
    src_ip: bytes,
    dst_ip: bytes,
    protocol: int,
    body: bytes,
    ttl: int,
    vlan_id: int | None,
) -> bytes:
    """Ethernet + IPv4 or IPv6 (by the address length) + ``body``."""
    ip: IPv4 | IPv6
    if len(src_ip) == IPV4_LEN:
        ethertype = ETHERTYPE_IPV4
        ip = IPv4(src_ip, dst_ip, protocol, ttl=ttl)
    else:
        ethertype = ETHERTYPE_IPV6
        ip = IPv6(src_ip, dst_ip, protocol, hop_limit=ttl)
    ethernet = Ethernet(mac_to_bytes(dst_mac), mac_to_bytes(src_mac), ethertype, vlan_id)
    return ethernet.pack() + ip.pack(len(body)) + body


def udp_frame(
    *,
    src_mac: str | bytes,
    dst_mac: str | bytes,
    src_ip: str | bytes,
    dst_ip: str | bytes,
    src_port: int,
    dst_port: int,
    payload: bytes = b"",
    ttl: int = IPV4_DEFAULT_TTL,
    vlan_id: int | None = None,
) -> bytes:
    """An Ethernet frame carrying a UDP datagram (checksum computed)."""
    src, dst = _ip_pair(src_ip, dst_ip)
    body = Udp(src_port, dst_port).pack(src, dst, payload)
    return _ip_frame(
        src_mac=src_mac,
        dst_mac=dst_mac,
        src_ip=src,
        dst_ip=dst,
        protocol=PROTO_UDP,
        body=body,
        ttl=ttl,
        vlan_id=vlan_id,
    )


def tcp_frame(
    *,
    src_mac: str | bytes,
    dst_mac: str | bytes,
    src_ip: str | bytes,
    dst_ip: str | bytes,
    src_port: int,
    dst_port: int,
    flags: int,
    seq: int = 0,
    ack: int = 0,
    payload: bytes = b"",
    ttl: int = IPV4_DEFAULT_TTL,
    vlan_id: int | None = None,
) -> bytes:
    """An Ethernet frame carrying a TCP segment (checksum computed)."""
    src, dst = _ip_pair(src_ip, dst_ip)
    body = Tcp(src_port, dst_port, seq=seq, ack=ack, flags=flags).pack(src, dst, payload)
    return _ip_frame(
        src_mac=src_mac,
        dst_mac=dst_mac,
        src_ip=src,
        dst_ip=dst,
        protocol=PROTO_TCP,
        body=body,
        ttl=ttl,
        vlan_id=vlan_id,
    )


def icmp_echo_frame(
    *,
    src_mac: str | bytes,
    dst_mac: str | bytes,
    src_ip: str | bytes,
    dst_ip: str | bytes,
    identifier: int = 1,
    sequence: int = 1,
    payload: bytes = b"",
    reply: bool = False,
    ttl: int = IPV4_DEFAULT_TTL,
) -> bytes:
    """An Ethernet frame carrying an echo request (or reply): ICMPv4, or ICMPv6 for IPv6."""
    src, dst = _ip_pair(src_ip, dst_ip)
    if len(src) != IPV4_LEN:
        kind = ICMPV6_ECHO_REPLY if reply else ICMPV6_ECHO_REQUEST
        body = Icmpv6(kind, 0, identifier, sequence, payload).pack(src, dst)
        protocol = PROTO_ICMPV6
    else:
        kind = ICMP_ECHO_REPLY if reply else ICMP_ECHO_REQUEST
        body = Icmp(kind, 0, identifier, sequence, payload).pack()
        protocol = PROTO_ICMP
    return _ip_frame(
        src_mac=src_mac,
        dst_mac=dst_mac,
        src_ip=src,
        dst_ip=dst,
        protocol=protocol,
        body=body,
        ttl=ttl,
        vlan_id=None,
    )


def arp_frame(
    *,
    op: int,
    src_mac: str | bytes,
    dst_mac: str | bytes,
    sender_mac: str | bytes,
    sender_ip: str | bytes,
    target_mac: str | bytes,
    target_ip: str | bytes,
) -> bytes:
    """An Ethernet frame carrying an ARP request or reply (no padding to 60 bytes)."""
    arp = Arp(
        op,
        mac_to_bytes(sender_mac),
        ip_to_bytes(sender_ip),
        mac_to_bytes(target_mac),
        ip_to_bytes(target_ip),
    )
    ethernet = Ethernet(mac_to_bytes(dst_mac), mac_to_bytes(src_mac), ETHERTYPE_ARP)
    return ethernet.pack() + arp.pack()


def _provider_address(text: str | bytes, name: str) -> bytes:
    address = ip_to_bytes(text)
    if len(address) != IPV4_LEN:
        raise PacketError(_TUNNEL, 0, f"{name} {text!r} is not an IPv4 provider address")
    return address


def vxlan_encapsulate(
    inner: bytes,
    *,
    outer_src_mac: str | bytes,
    outer_dst_mac: str | bytes,
    src_pa: str | bytes,
    dst_pa: str | bytes,
    vni: int,
    src_port: int,
    ttl: int = IPV4_DEFAULT_TTL,
    vlan_id: int | None = None,
) -> bytes:
    """``inner`` in VXLAN over UDP 4789 over IPv4 (UDP checksum zero, RFC 7348 §5)."""
    src, dst = _provider_address(src_pa, "src_pa"), _provider_address(dst_pa, "dst_pa")
    vxlan = Vxlan(vni).pack() + inner
    body = Udp(src_port, VXLAN_PORT).pack(src, dst, vxlan, checksum=False)
    return _ip_frame(
        src_mac=outer_src_mac,
        dst_mac=outer_dst_mac,
        src_ip=src,
        dst_ip=dst,
        protocol=PROTO_UDP,
        body=body,
        ttl=ttl,
        vlan_id=vlan_id,
    )


def nvgre_encapsulate(
    inner: bytes,
    *,
    outer_src_mac: str | bytes,
    outer_dst_mac: str | bytes,
    src_pa: str | bytes,
    dst_pa: str | bytes,
    vsid: int,
    flow_id: int,
    ttl: int = IPV4_DEFAULT_TTL,
    vlan_id: int | None = None,
) -> bytes:
    """``inner`` in NVGRE (GRE key = VSID << 8 | FlowID, protocol 0x6558) over IPv4."""
    src, dst = _provider_address(src_pa, "src_pa"), _provider_address(dst_pa, "dst_pa")
    body = Gre(NVGRE_PROTOCOL, nvgre_key(vsid, flow_id)).pack() + inner
    return _ip_frame(
        src_mac=outer_src_mac,
        dst_mac=outer_dst_mac,
        src_ip=src,
        dst_ip=dst,
        protocol=PROTO_GRE,
        body=body,
        ttl=ttl,
        vlan_id=vlan_id,
    )


def _not_nvgre(gre: Gre) -> str:
    """Why a GRE header is not NVGRE (RFC 7637 §3.2)."""
    if gre.protocol != NVGRE_PROTOCOL:
        return f"protocol {gre.protocol:#06x} is not {NVGRE_PROTOCOL:#06x}"
    if gre.key is None:
        return "no key (the VSID)"
    return "checksum or sequence number present"


def decapsulate(frame: bytes) -> Tunnel:
    """The tunnel headers and inner frame of a VXLAN or NVGRE packet.

    Checksums are verified (IPv4 header; UDP when nonzero; GRE when present). Anything
    else — another protocol, a fragment, plain GRE — raises PacketError.
    """
    outer, at = Ethernet.parse(frame)
    if outer.ethertype != ETHERTYPE_IPV4:
        raise PacketError(
            _TUNNEL, 0, f"ethertype {outer.ethertype:#06x} is not IPv4: not VXLAN or NVGRE"
        )
    ip_at = at
    ip, at = IPv4.parse(frame, at)
    end = at + ip.payload_length
    if ip.is_fragment:
        raise PacketError(_TUNNEL, ip_at, "IPv4 fragment: reassemble before decapsulating")
    carrier_at = at
    if ip.protocol == PROTO_UDP:
        udp, at = Udp.parse(frame, at, ip.src, ip.dst, end - at)
        if udp.dst_port != VXLAN_PORT:
            raise PacketError(
                _TUNNEL, carrier_at, f"UDP port {udp.dst_port} is not VXLAN ({VXLAN_PORT})"
            )
        udp_end = at - udp.header_length + udp.length
        vxlan, at = Vxlan.parse(frame[:udp_end], at)
        return Tunnel(outer, ip, "vxlan", vxlan.vni, 0, udp.src_port, bytes(frame[at:udp_end]))
    if ip.protocol == PROTO_GRE:
        gre, at = Gre.parse(frame, at, end - at)
        if not gre.is_nvgre or gre.key is None:
            raise PacketError(_TUNNEL, carrier_at, f"GRE is not NVGRE: {_not_nvgre(gre)}")
        vsid, flow_id = split_nvgre_key(gre.key)
        return Tunnel(outer, ip, "nvgre", vsid, flow_id, 0, bytes(frame[at:end]))
    raise PacketError(_TUNNEL, ip_at, f"IP protocol {ip.protocol} is not UDP or GRE")


FRAG_NEEDED_QUOTE = 548
"""How much of the original datagram a "fragmentation needed" quotes at most: its IP
header and the start of its payload, so that the whole message stays within 576 bytes
(RFC 1812 §4.3.2.3; RFC 792 asks for the header and 64 bits at least)."""


def frag_needed_frame(frame: bytes, mtu: int) -> bytes | None:
    """The ICMP "fragmentation needed and DF set" (type 3, code 4, RFC 1191 next-hop
    MTU ``mtu``) that answers the untagged IPv4 ``frame``, sent back to its source as if
    from its destination (MACs and addresses swapped), as a tunnel endpoint that cannot
    carry the frame answers (RFC 1191 §4); None when ``frame`` is not IPv4 with DF set
    (nothing to answer: a datagram without DF may be fragmented, an ICMP error is not
    answered with another, RFC 1122 §3.2.2)."""
    try:
        outer, at = Ethernet.parse(frame)
        if outer.ethertype != ETHERTYPE_IPV4 or outer.vlan_id is not None:
            return None
        ip, payload_at = IPv4.parse(frame, at, verify_checksum=False)
    except PacketError:
        return None
    if not ip.flags & IPV4_FLAG_DF or ip.is_fragment:
        return None
    if ip.protocol == PROTO_ICMP and frame[payload_at] not in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY):
        return None
    quote = bytes(frame[at : at + min(ip.total_length, FRAG_NEEDED_QUOTE)])
    body = Icmp.unreachable(ICMP_FRAGMENTATION_NEEDED, quote, mtu).pack()
    return _ip_frame(src_mac=outer.dst, dst_mac=outer.src, src_ip=ip.dst, dst_ip=ip.src,
                     protocol=PROTO_ICMP, body=body, ttl=IPV4_DEFAULT_TTL,
                     vlan_id=None)  # fmt: skip


IPV6_MIN_MTU = 1280
"""RFC 8200 §5: every IPv6 link carries 1280 bytes; an ICMPv6 error never exceeds it."""
PACKET_TOO_BIG_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN
ICMPV6_ERROR_MAX = 127  # types 0..127 are errors (RFC 4443 §2.1): never answered with one


def packet_too_big_frame(frame: bytes, mtu: int) -> bytes | None:
    """The ICMPv6 Packet Too Big (type 2, code 0, RFC 4443 §3.2, the MTU in the second
    word) that answers the untagged IPv6 ``frame``, sent back to its source as if from its
    destination, quoting as much of it as keeps the message within 1280 bytes; None when
    ``frame`` is not IPv6 or is itself an ICMPv6 error (RFC 4443 §2.4 (e)). Unlike IPv4
    there is no DF bit: IPv6 routers never fragment, so every packet is answered."""
    try:
        outer, at = Ethernet.parse(frame)
        if outer.ethertype != ETHERTYPE_IPV6 or outer.vlan_id is not None:
            return None
        ip, payload_at = IPv6.parse(frame, at)
    except PacketError:
        return None
    if ip.next_header == PROTO_ICMPV6 and frame[payload_at] <= ICMPV6_ERROR_MAX:
        return None
    end = payload_at + ip.payload_length
    quote = bytes(frame[at : min(end, at + PACKET_TOO_BIG_QUOTE)])
    high, low = mtu >> _U16_BITS, mtu & _U16_MASK
    body = Icmpv6(ICMPV6_PACKET_TOO_BIG, 0, high, low, quote).pack(ip.dst, ip.src)
    return _ip_frame(src_mac=outer.dst, dst_mac=outer.src, src_ip=ip.dst, dst_ip=ip.src,
                     protocol=PROTO_ICMPV6, body=body, ttl=IPV4_DEFAULT_TTL,
                     vlan_id=None)  # fmt: skip


_U16_BITS = 16
_U16_MASK = 0xFFFF
