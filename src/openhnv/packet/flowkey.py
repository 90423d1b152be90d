"""Flow-key extraction: the exact-match key of a frame for the unified flow table.

Two forms of one thing:

- ``flow_key(frame, offset=0) -> bytes`` is the fast form: a handful of slices of the
  frame concatenated, used as the dictionary key of the unified flow table. Frames of one
  flow give equal keys; frames of different flows give different keys.
- ``parse_flow_key(frame, offset=0) -> FlowKey`` is the readable form, for the slow path,
  trace and listings.

The fast key of an untagged IPv4 TCP/UDP frame without IP options is 31 bytes, taken
with one ``struct`` call (``FAST_KEY``; byte offsets into the frame)::

    0      6      12    14    15 .. 20    20     22   23    24 .. 26  26     30     34      38
    | dst  | src  | type| 0x45 |  skip  | flags/frag|ttl|proto| skip   | src IP| dst IP| ports |

No other key has 31 bytes, so the fast path can build it from any frame and probe the
table before it knows what the frame is. The other keys concatenate slices:

IPv4 (RFC 791) carries the version/IHL byte so that the L4 offset is fixed per key; ICMP
(RFC 792) keys on type, code and the echo identifier; IPv6 (RFC 8200) walks the usual
extension headers; other ethertypes key on the Ethernet header (and VLAN tag) alone.
Non-first IPv4 fragments have no L4 header and key without ports. Malformed or truncated
input raises ``PacketError``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from openhnv.packet.errors import PacketError

ETH_HEADER_LEN = 14
VLAN_TAG_LEN = 4
IPV4_MIN_HEADER_LEN = 20
IPV6_HEADER_LEN = 40
ETHERTYPE_IPV4_BYTES = b"\x08\x00"
ETHERTYPE_IPV6_BYTES = b"\x86\xdd"
ETHERTYPE_VLAN_BYTES = b"\x81\x00"
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
TCP_FLAGS_OFFSET = 13
IPV6_EXTENSION_HEADERS = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
IPV6_FRAGMENT_HEADER = 44
_PORTS_PROTOCOLS = (PROTO_TCP, PROTO_UDP)
_ICMP_PROTOCOLS = (PROTO_ICMP, PROTO_ICMPV6)
FAST_KEY = struct.Struct("!15s5x4s2x12s")
FAST_KEY_LEN = 31
_FAST_PREFIX = b"\x08\x00\x45"
_MIN_L4_LEN = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMP: 8, PROTO_ICMPV6: 8}


def flow_key(frame: bytes, offset: int = 0) -> bytes:
    """The exact-match key of the Ethernet frame that starts at ``offset`` of ``frame``."""
    o = offset
    if frame[o + 12 : o + 14] == ETHERTYPE_VLAN_BYTES:
        o += VLAN_TAG_LEN
    ethertype = frame[o + 12 : o + 14]
    if ethertype == ETHERTYPE_IPV4_BYTES:
        if len(frame) < o + 34:
            raise PacketError("ipv4", o + 14, "truncated header")
        vihl = frame[o + 14]
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < IPV4_MIN_HEADER_LEN:
            raise PacketError("ipv4", o + 14, f"bad version/IHL byte 0x{vihl:02x}")
        head = frame[offset : o + 15] + frame[o + 23 : o + 24] + frame[o + 26 : o + 34]
        if frame[o + 20] & 0x1F or frame[o + 21]:  # a non-first fragment: no L4 header
            return head
        proto = frame[o + 23]
        l4 = o + 14 + ihl
        if proto in _PORTS_PROTOCOLS:
            if len(frame) < l4 + _MIN_L4_LEN[proto]:
                raise PacketError("tcp" if proto == PROTO_TCP else "udp", l4, "truncated header")
            if ihl == IPV4_MIN_HEADER_LEN and o == offset:
                return b"".join(FAST_KEY.unpack_from(frame, offset))
            return head + frame[l4 : l4 + 4]
        if proto == PROTO_ICMP:
            if len(frame) < l4 + 8:
                raise PacketError("icmp", l4, "truncated header")
            return head + frame[l4 : l4 + 2] + frame[l4 + 4 : l4 + 6]
        return head
    if ethertype == ETHERTYPE_IPV6_BYTES:
        proto, l4 = _ipv6_l4(frame, o + ETH_HEADER_LEN)
        head = frame[offset : o + 14] + bytes((proto,)) + frame[o + 22 : o + 54]
        if proto in _PORTS_PROTOCOLS:
            if l4 < 0:
                return head
            if len(frame) < l4 + _MIN_L4_LEN[proto]:
                raise PacketError("tcp" if proto == PROTO_TCP else "udp", l4, "truncated header")
            return head + frame[l4 : l4 + 4]
        if proto == PROTO_ICMPV6 and l4 >= 0:
            if len(frame) < l4 + 8:
                raise PacketError("icmpv6", l4, "truncated header")
            return head + frame[l4 : l4 + 2] + frame[l4 + 4 : l4 + 6]
        return head
    if len(frame) < o + ETH_HEADER_LEN:
        raise PacketError("ethernet", offset, f"truncated frame of {len(frame) - offset} bytes")
    return frame[offset : o + 14]


def _ipv6_l4(frame: bytes, l3: int) -> tuple[int, int]:
    """(upper-layer protocol, its offset or -1 for a non-first fragment) of an IPv6 packet."""
    if len(frame) < l3 + IPV6_HEADER_LEN:
        raise PacketError("ipv6", l3, "truncated header")
    if frame[l3] >> 4 != 6:
        raise PacketError("ipv6", l3, f"bad version {frame[l3] >> 4}")
    proto = frame[l3 + 6]
    at = l3 + IPV6_HEADER_LEN
    while proto in IPV6_EXTENSION_HEADERS or proto == IPV6_FRAGMENT_HEADER:
        if len(frame) < at + 8:
            raise PacketError("ipv6", at, f"truncated extension header {proto}")
        if proto == IPV6_FRAGMENT_HEADER:
            fragment_offset = int.from_bytes(frame[at + 2 : at + 4], "big") >> 3
            proto = frame[at]
            if fragment_offset:
                return proto, -1
            at += 8
            continue
        proto, at = frame[at], at + (frame[at + 1] + 1) * 8
    return proto, at


@dataclass(frozen=True, slots=True)
class FlowKey:
    """The readable flow key of one frame; ``l3_offset``/``l4_offset`` are -1 when absent.

    ``src_port``/``dst_port`` are the TCP/UDP ports; for ICMP they are the echo
    identifier (both) and ``icmp_type``/``icmp_code`` are set.
    """

    src_mac: str
    dst_mac: str
    ethertype: int
    vlan_id: int | None
    src_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    dst_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    protocol: int | None = None
    src_port: int | None = None
    dst_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    tcp_flags: int | None = None
    ttl: int | None = None
    l3_offset: int = -1
    l4_offset: int = -1

    @property
    def family(self) -> int | None:
        """4 or 6 for IP frames, None otherwise."""
        return None if self.src_ip is None else self.src_ip.version

    def connection(self) -> bytes:
        """The L3/L4 identity of this packet's connection, as seen in its own direction."""
        return _connection(self.protocol, self.src_ip, self.dst_ip, *self._l4_pair(False))

    def reply_connection(self) -> bytes:
        """``connection()`` of the replies to this packet (addresses and ports swapped)."""
        return _connection(self.protocol, self.dst_ip, self.src_ip, *self._l4_pair(True))

    def _l4_pair(self, reply: bool) -> tuple[int, int]:
        if self.icmp_type is not None:  # echo request and reply pair up on the identifier
            kind = _ICMP_ECHO_KIND.get((self.protocol or 0, self.icmp_type), self.icmp_type)
            if reply:
                kind = kind ^ _ICMP_ECHO_REPLY_BIT if self.icmp_type in _ICMP_ECHO_TYPES else kind
            return kind, self.src_port or 0
        sport, dport = self.src_port or 0, self.dst_port or 0
        return (dport, sport) if reply else (sport, dport)

    def describe(self) -> str:
        """One line such as ``tcp 10.0.0.1:1234 -> 10.0.0.2:80``."""
        if self.src_ip is None:
            return f"ethertype 0x{self.ethertype:04x} {self.src_mac} -> {self.dst_mac}"
        name = _PROTOCOL_NAMES.get(self.protocol or 0, f"proto {self.protocol}")
        if self.icmp_type is not None:
            return f"{name} {self.src_ip} -> {self.dst_ip} type {self.icmp_type} id {self.src_port}"
        if self.src_port is not None:
            return f"{name} {self.src_ip}:{self.src_port} -> {self.dst_ip}:{self.dst_port}"
        return f"{name} {self.src_ip} -> {self.dst_ip}"


_PROTOCOL_NAMES = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMPV6: "icmpv6"}
_ICMP_ECHO_TYPES = frozenset({0, 8, 128, 129})
_ICMP_ECHO_REPLY_BIT = 1
# echo request/reply -> 0 (request) or 1 (reply), so a reply's kind is the request's ^ 1
_ICMP_ECHO_KIND = {(1, 8): 0, (1, 0): 1, (58, 128): 0, (58, 129): 1}


def _connection(
    protocol: int | None,
    src: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    a: int,
    b: int,
) -> bytes:
    if src is None or dst is None:
        return b""
    return (
        bytes((protocol or 0,))
        + src.packed
        + dst.packed
        + a.to_bytes(4, "big")
        + b.to_bytes(4, "big")
    )


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def parse_flow_key(frame: bytes, offset: int = 0) -> FlowKey:
    """The readable flow key of the Ethernet frame at ``offset`` (raises ``PacketError``)."""
    flow_key(frame, offset)  # the same validation as the fast path
    o = offset
    vlan_id: int | None = None
    if frame[o + 12 : o + 14] == ETHERTYPE_VLAN_BYTES:
        vlan_id = int.from_bytes(frame[o + 14 : o + 16], "big") & 0x0FFF
        o += VLAN_TAG_LEN
    dst_mac, src_mac = _mac(frame[offset : offset + 6]), _mac(frame[offset + 6 : offset + 12])
    ethertype = int.from_bytes(frame[o + 12 : o + 14], "big")
    l3 = o + ETH_HEADER_LEN
    base = FlowKey(src_mac, dst_mac, ethertype, vlan_id)
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    if ethertype == 0x0800:
        ihl = (frame[l3] & 0x0F) << 2
        src = ipaddress.IPv4Address(frame[l3 + 12 : l3 + 16])
        dst = ipaddress.IPv4Address(frame[l3 + 16 : l3 + 20])
        proto, ttl = frame[l3 + 9], frame[l3 + 8]
        fragment = bool(frame[l3 + 6] & 0x1F or frame[l3 + 7])
        l4 = -1 if fragment else l3 + ihl
    elif ethertype == 0x86DD:
        src = ipaddress.IPv6Address(frame[l3 + 8 : l3 + 24])
        dst = ipaddress.IPv6Address(frame[l3 + 24 : l3 + 40])
        proto, l4 = _ipv6_l4(frame, l3)
        ttl = frame[l3 + 7]
    else:
        return base
    sport = dport = itype = icode = flags = None
    if l4 >= 0 and proto in _PORTS_PROTOCOLS:
        sport = int.from_bytes(frame[l4 : l4 + 2], "big")
        dport = int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
        if proto == PROTO_TCP:
            flags = frame[l4 + TCP_FLAGS_OFFSET]
    elif l4 >= 0 and proto in _ICMP_PROTOCOLS:
        itype, icode = frame[l4], frame[l4 + 1]
        sport = dport = int.from_bytes(frame[l4 + 4 : l4 + 6], "big")
    return FlowKey(
        src_mac, dst_mac, ethertype, vlan_id, src, dst, proto, sport, dport, itype, icode,
        flags, ttl, l3, l4,
    )  # fmt: skip


def describe_key(key: bytes) -> str:
    """A readable line for a fast key made by ``flow_key`` (for flow listings)."""
    if len(key) == FAST_KEY_LEN:  # IPv4 TCP/UDP fast form: re-lay it as the general form
        key = key[:15] + key[18:19] + key[19:31]
    dst, src, rest = key[0:6].hex(":"), key[6:12].hex(":"), key[12:]
    if rest[:2] == ETHERTYPE_VLAN_BYTES and len(rest) >= 6:
        rest = rest[4:]
    ethertype, body = rest[:2], rest[2:]
    if ethertype == ETHERTYPE_IPV4_BYTES and len(body) >= 10:
        proto, s, d, l4 = body[1], body[2:6], body[6:10], body[10:]
        a, b = str(ipaddress.IPv4Address(s)), str(ipaddress.IPv4Address(d))
    elif ethertype == ETHERTYPE_IPV6_BYTES and len(body) >= 33:
        proto, s, d, l4 = body[0], body[1:17], body[17:33], body[33:]
        a, b = str(ipaddress.IPv6Address(s)), str(ipaddress.IPv6Address(d))
    else:
        return f"{src} -> {dst} ethertype 0x{ethertype.hex()}"
    name = _PROTOCOL_NAMES.get(proto, f"proto {proto}")
    if len(l4) == 4 and proto in _PORTS_PROTOCOLS:
        sport, dport = int.from_bytes(l4[:2], "big"), int.from_bytes(l4[2:], "big")
        return f"{name} {a}:{sport} -> {b}:{dport} ({src} -> {dst})"
    if len(l4) == 4 and proto in _ICMP_PROTOCOLS:
        return f"{name} {a} -> {b} type {l4[0]} id {int.from_bytes(l4[2:], 'big')} ({src} -> {dst})"
    return f"{name} {a} -> {b} ({src} -> {dst})"
