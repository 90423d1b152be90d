"""Segmenting a TCP GSO super-frame in software: what the NIC (or the kernel's GSO) does.

A sender with TSO on hands its device one frame of up to 64 KB whose TCP payload the
device cuts into segments of ``gso_size`` bytes (the connection's MSS; Linux
``skb_shinfo(skb)->gso_size``, reported to a packet socket in ``struct virtio_net_hdr``,
linux/virtio_net.h). ``segment(frame, gso_type, gso_size)`` does that cut for

- Ethernet, an optional 802.1Q tag, IPv4 (RFC 791) or IPv6 without extension headers
  (RFC 8200), TCP (RFC 9293): each segment gets the IPv4 total length, an
  identification one higher than the previous segment's and a new header checksum (or
  the IPv6 payload length), its sequence number, and a TCP checksum computed in full
  (the super-frame's is partial: ``packet.partial``); FIN and PSH stay on the last
  segment only, CWR on the first only (as Linux's ``tcp_gso_segment``);
- the same frame inside VXLAN (RFC 7348) or NVGRE (RFC 7637) over IPv4 (tunnel GSO, a
  peer's kernel encapsulating a GSO frame whole): every segment keeps the outer headers,
  with the outer IPv4 total length, identification (one higher per segment) and header
  checksum fixed, and the outer UDP length fixed with checksum 0, as VXLAN sends (NVGRE
  has neither length nor checksum).

Anything else (UDP GSO, a GSO type this module does not know, headers that do not
parse) raises ``PacketError``; the caller drops and counts the frame. Pure: no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum, ones_complement_sum, pseudo_header_sum
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet
from openhnv.packet.gre import Gre
from openhnv.packet.ipv4 import (
    IPV4,
    IPV4_CHECKSUM_AT,
    IPV4_TOTAL_LENGTH_AT,
    PROTO_GRE,
    PROTO_TCP,
    PROTO_UDP,
    IPv4,
)
from openhnv.packet.ipv6 import IPV6_HEADER_LEN, IPv6
from openhnv.packet.tcp import TCP, TCP_CHECKSUM_AT, TCP_CWR, TCP_FIN, TCP_FLAGS_AT, TCP_PSH, Tcp
from openhnv.packet.udp import UDP_CHECKSUM_AT, UDP_LENGTH_AT, UDP_NO_CHECKSUM, Udp
from openhnv.packet.vxlan import VXLAN_PORT, Vxlan

GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80
"""``gso_type`` of ``struct virtio_net_hdr`` (VIRTIO_NET_HDR_GSO_*); ECN is a flag bit:
the sender set CWR on the first segment."""
GSO_TCP_TYPES = frozenset({GSO_TCPV4, GSO_TCPV6})
GSO_NAMES = {GSO_NONE: "none", GSO_TCPV4: "tcpv4", GSO_UDP: "udp", GSO_TCPV6: "tcpv6",
             GSO_UDP_L4: "udp_l4"}  # fmt: skip
SEQUENCE_MODULUS = 1 << 32
IPV4_ID_MODULUS = 1 << 16
_IPV6_PAYLOAD_LENGTH_AT = 4
_IPV4_ID_AT = IPV4.offset("identification")
_TCP_SEQ_AT = TCP.offset("seq")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_LATER_SEGMENTS_CLEAR = TCP_FIN | TCP_PSH  # only the last segment keeps them
_HEADER = "gso"


@dataclass(frozen=True, slots=True)
class _IpAt:
    """An IP header found in the frame: where it starts, how long, and what it carries."""

    at: int
    header_len: int
    version4: bool
    protocol: int
    payload_end: int
    src: bytes
    dst: bytes
    identification: int


def _ip(frame: bytes, at: int, ethertype: int) -> _IpAt:
    if ethertype == ETHERTYPE_IPV4:
        ip4, l4 = IPv4.parse(frame, at, verify_checksum=False)
        if ip4.is_fragment:
            raise PacketError(_HEADER, at, "an IPv4 fragment cannot be a GSO frame")
        return _IpAt(at, l4 - at, True, ip4.protocol, at + ip4.total_length, ip4.src, ip4.dst,
                     ip4.identification)  # fmt: skip
    if ethertype == ETHERTYPE_IPV6:
        ip6, l4 = IPv6.parse(frame, at)
        return _IpAt(at, IPV6_HEADER_LEN, False, ip6.next_header, l4 + ip6.payload_length,
                     ip6.src, ip6.dst, 0)  # fmt: skip
    raise PacketError(_HEADER, at, f"ethertype {ethertype:#06x} is neither IPv4 nor IPv6")


def _ip_header(frame: bytes, ip: _IpAt, payload_len: int, index: int) -> bytes:
    """The header of ``ip`` for a packet of ``payload_len`` bytes of payload, the
    ``index``-th of the cut: lengths, IPv4 identification and checksum set."""
    header = bytearray(frame[ip.at : ip.at + ip.header_len])
    if not ip.version4:
        _U16.pack_into(header, _IPV6_PAYLOAD_LENGTH_AT, payload_len)
        return bytes(header)
    _U16.pack_into(header, IPV4_TOTAL_LENGTH_AT, ip.header_len + payload_len)
    _U16.pack_into(header, _IPV4_ID_AT, (ip.identification + index) % IPV4_ID_MODULUS)
    _U16.pack_into(header, IPV4_CHECKSUM_AT, 0)
    _U16.pack_into(header, IPV4_CHECKSUM_AT, internet_checksum(bytes(header)))
    return bytes(header)


@dataclass(frozen=True, slots=True)
class _Tunnel:
    """The outer headers of a tunnel frame: its IPv4 header, and the UDP header of VXLAN
    (None for NVGRE) with what follows it up to the inner frame (VXLAN or GRE, inner
    Ethernet)."""

    outer_l2: bytes
    ip: _IpAt
    udp_at: int | None
    inner_at: int


def _tunnel(frame: bytes, ip: _IpAt) -> _Tunnel:
    """The tunnel around the inner frame, for a frame whose IP payload is not TCP."""
    l4 = ip.at + ip.header_len
    if not ip.version4:
        raise PacketError(_HEADER, ip.at, "a tunnel frame over IPv6 is not segmented")
    if ip.protocol == PROTO_UDP:
        udp, vxlan_at = Udp.parse(frame, l4, length=ip.payload_end - l4)
        if udp.dst_port != VXLAN_PORT:
            raise PacketError(_HEADER, l4, f"UDP port {udp.dst_port} is not VXLAN")
        _, inner = Vxlan.parse(frame, vxlan_at)
        return _Tunnel(frame[: ip.at], ip, l4, inner)
    if ip.protocol == PROTO_GRE:
        gre, inner = Gre.parse(frame, l4, length=ip.payload_end - l4, verify_checksum=False)
        if not gre.is_nvgre:
            raise PacketError(_HEADER, l4, "GRE other than NVGRE is not segmented")
        return _Tunnel(frame[: ip.at], ip, None, inner)
    raise PacketError(_HEADER, l4, f"IP protocol {ip.protocol} is neither TCP nor a tunnel")


def _outer(frame: bytes, tunnel: _Tunnel, inner_len: int, index: int) -> bytes:
    """The outer headers of the ``index``-th segment, whose inner frame is ``inner_len``
    bytes long."""
    ip = tunnel.ip
    after_ip = ip.at + ip.header_len
    carried = tunnel.inner_at - after_ip + inner_len
    head = _ip_header(frame, ip, carried, index)
    rest = bytearray(frame[after_ip : tunnel.inner_at])
    if tunnel.udp_at is not None:
        _U16.pack_into(rest, UDP_LENGTH_AT, carried)
        _U16.pack_into(rest, UDP_CHECKSUM_AT, UDP_NO_CHECKSUM)
    return tunnel.outer_l2 + head + bytes(rest)


def segment(frame: bytes, gso_type: int, gso_size: int) -> list[bytes]:
    """The segments of TCP GSO ``frame`` (see the module docstring), in order.

    ``gso_type`` and ``gso_size`` are the sender's (``struct virtio_net_hdr``). A frame
    whose payload fits one segment comes back as one segment, its checksum finished.
    """
    kind = gso_type & ~GSO_ECN
    if kind not in GSO_TCP_TYPES:
        name = GSO_NAMES.get(kind, "unknown")
        raise PacketError(_HEADER, 0, f"gso_type {gso_type:#x} ({name}) is not TCP")
    if gso_size <= 0:
        raise PacketError(_HEADER, 0, f"gso_size {gso_size} is not positive")
    eth, l3 = Ethernet.parse(frame)
    ip = _ip(frame, l3, eth.ethertype)
    tunnel: _Tunnel | None = None
    if ip.protocol != PROTO_TCP:
        tunnel = _tunnel(frame, ip)
        inner_eth, inner_l3 = Ethernet.parse(frame, tunnel.inner_at)
        ip = _ip(frame, inner_l3, inner_eth.ethertype)
        if ip.protocol != PROTO_TCP:
            raise PacketError(_HEADER, inner_l3, f"inner IP protocol {ip.protocol} is not TCP")
    l4 = ip.at + ip.header_len
    tcp, payload_at = Tcp.parse(frame, l4, length=ip.payload_end - l4)
    payload = frame[payload_at : ip.payload_end]
    l2 = frame[tunnel.inner_at if tunnel is not None else 0 : ip.at]
    template = bytearray(frame[l4:payload_at])
    _U16.pack_into(template, TCP_CHECKSUM_AT, 0)
    flags = template[TCP_FLAGS_AT]
    # the pseudo-header without its length: the same for every segment (the length is
    # added per segment; a sum is a sum of words, the order does not matter)
    pseudo = pseudo_header_sum(ip.src, ip.dst, PROTO_TCP, 0, _HEADER)
    count = max(1, -(-len(payload) // gso_size))
    segments: list[bytes] = []
    for index in range(count):
        chunk = payload[index * gso_size : (index + 1) * gso_size]
        header = bytearray(template)
        _U32.pack_into(header, _TCP_SEQ_AT, (tcp.seq + index * gso_size) % SEQUENCE_MODULUS)
        segment_flags = flags
        if index < count - 1:
            segment_flags &= ~_LATER_SEGMENTS_CLEAR
        if index > 0:
            segment_flags &= ~TCP_CWR
        header[TCP_FLAGS_AT] = segment_flags
        tcp_len = len(header) + len(chunk)
        # the header is a whole number of words: its sum and the payload's add up
        initial = pseudo + tcp_len + ones_complement_sum(bytes(header))
        _U16.pack_into(header, TCP_CHECKSUM_AT, internet_checksum(chunk, initial))
        parts = [l2, _ip_header(frame, ip, tcp_len, index), bytes(header), chunk]
        if tunnel is not None:
            parts.insert(0, _outer(frame, tunnel, sum(map(len, parts)), index))
        segments.append(b"".join(parts))
    return segments
