"""Flow-key extraction: the exact-match key of a frame for the unified flow table.

Two forms of one thing:

- ``flow_key(frame, offset=0) -> bytes`` is the fast form: a handful of slices of the
  frame concatenated, used as the dictionary key of the unified flow table. Frames of one
  flow give equal keys; frames of different flows give different keys.
- ``parse_flow_key(frame, offset=0, key=None) -> FlowKey`` is the readable form, for the
  slow path, trace and listings. It carries the fast form too (``FlowKey.key``): the
  parsed view of a frame, made once and passed along; a caller that made the key
  already hands it in and it is neither made nor checked again.

For a frame from the PA network, ``outer_key`` is the outer part of its key (IP protocol,
PAs, UDP ports and VXLAN header, or the GRE header with its key) and the offset of the
inner frame, whose ``flow_key`` completes it; ``parse_outer`` is the readable form
(``OuterKey``).

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

from openhnv.packet.addresses import MAC_LEN
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_IPV6,
    ETHERTYPE_IPV6_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_ID_MAX,
    VLAN_TAG_LEN,
    VLAN_TCI_AT,
)
from openhnv.packet.frames import NVGRE_OUTER_LEN, VXLAN_OUTER_LEN
from openhnv.packet.gre import (
    GRE_PROTOCOL_AT,
    NVGRE_BITS,
    NVGRE_HEADER_LEN,
    NVGRE_PROTOCOL,
    NVGRE_VSID_AT,
)
from openhnv.packet.icmp import (
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_HEADER_LEN,
    ICMP_IDENTIFIER_AT,
)
from openhnv.packet.icmpv6 import ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, ICMPV6_HEADER_LEN
from openhnv.packet.ipv4 import (
    IPV4_CHECKSUM_AT,
    IPV4_DST_AT,
    IPV4_FLAGS_AT,
    IPV4_FRAGMENT_OFFSET_MAX,
    IPV4_HEADER_LEN,
    IPV4_IHL_MASK,
    IPV4_IHL_UNIT,
    IPV4_NO_OPTIONS,
    IPV4_PROTOCOL_AT,
    IPV4_SRC_AT,
    IPV4_TTL_AT,
    IPV4_VERSION,
    IPV4_VERSION_SHIFT,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
)
from openhnv.packet.ipv6 import (
    IPV6_DST_AT,
    IPV6_EXTENSION_HEADERS,
    IPV6_EXTENSION_UNIT,
    IPV6_FRAGMENT_HEADER,
    IPV6_HEADER_LEN,
    IPV6_HOP_LIMIT_AT,
    IPV6_NEXT_HEADER_AT,
    IPV6_SRC_AT,
    IPV6_VERSION,
)
from openhnv.packet.tcp import TCP_FLAGS_AT, TCP_HEADER_LEN
from openhnv.packet.udp import UDP_DST_PORT_AT, UDP_HEADER_LEN, UDP_LENGTH_AT
from openhnv.packet.vxlan import (
    VXLAN_FLAG_I,
    VXLAN_FLAGS_AT,
    VXLAN_HEADER_LEN,
    VXLAN_PORT,
    VXLAN_VNI_AT,
)

# Offsets into an untagged frame (add VLAN_TAG_LEN after a tag).
_L3 = ETHERNET_HEADER_LEN
_V4_FLAGS = _L3 + IPV4_FLAGS_AT
_V4_PROTO = _L3 + IPV4_PROTOCOL_AT
_V4_SRC = _L3 + IPV4_SRC_AT
_V4_END = _L3 + IPV4_HEADER_LEN
_L3_TAG = _L3 + VLAN_TAG_LEN
_TCI_END = _L3_TAG - len(ETHERTYPE_VLAN_BYTES)
_PORTS_LEN = UDP_LENGTH_AT  # TCP and UDP headers both start with the two ports
_PORT_LEN = UDP_DST_PORT_AT
_IP_VERSION_SHIFT = IPV4_VERSION_SHIFT  # IPv4 and IPv6 both have it in the first nibble
_OFFSET_HIGH = IPV4_FRAGMENT_OFFSET_MAX >> 8  # the fragment offset's bits in the flags byte
_PORTS_PROTOCOLS = (PROTO_TCP, PROTO_UDP)
_ICMP_PROTOCOLS = (PROTO_ICMP, PROTO_ICMPV6)
_MIN_L4_LEN = {
    PROTO_TCP: TCP_HEADER_LEN,
    PROTO_UDP: UDP_HEADER_LEN,
    PROTO_ICMP: ICMP_HEADER_LEN,
    PROTO_ICMPV6: ICMPV6_HEADER_LEN,
}
_ICMP_TYPE_CODE = 2
_IPV6_FRAGMENT_OFFSET_SHIFT = 3

FAST_KEY = struct.Struct(
    f"!{_L3 + 1}s{IPV4_FLAGS_AT - 1}x{IPV4_CHECKSUM_AT - IPV4_FLAGS_AT}s"
    f"{IPV4_SRC_AT - IPV4_CHECKSUM_AT}x{IPV4_HEADER_LEN - IPV4_SRC_AT + _PORTS_LEN}s"
)
"""``!15s5x4s2x12s``: MACs, EtherType and version/IHL; flags/fragment, TTL, protocol;
addresses and ports (see the module docstring)."""
FAST_KEY_LEN = _L3 + 1 + (IPV4_CHECKSUM_AT - IPV4_FLAGS_AT) + (IPV4_HEADER_LEN - IPV4_SRC_AT)
FAST_KEY_LEN += _PORTS_LEN
_FAST_PROTO = _L3 + 1 + IPV4_PROTOCOL_AT - IPV4_FLAGS_AT  # the protocol in a fast key
FAST_KEY_FLAGS_AT = _L3 + 1
"""Where a fast key holds the IPv4 flags/fragment word (2 bytes)."""
FAST_KEY_TTL_AT = FAST_KEY_FLAGS_AT + IPV4_TTL_AT - IPV4_FLAGS_AT
"""Where a fast key holds the IPv4 TTL (a routed flow's next hop sees it one lower)."""
FAST_KEY_PROTOCOL_AT = _FAST_PROTO
FAST_KEY_ADDRESSES_AT = FAST_KEY_PROTOCOL_AT + 1
"""Where a fast key holds the IPv4 source and destination addresses, then the ports."""
IPV4_KEY_PROTOCOL_AT = _L3 + 1
"""Where any other IPv4 key (untagged, e.g. ICMP) holds the protocol; its addresses and
its ICMP type, code and echo identifier follow."""


def flow_key(frame: bytes, offset: int = 0) -> bytes:
    """The exact-match key of the Ethernet frame that starts at ``offset`` of ``frame``."""
    o = offset
    if frame[o + ETHERTYPE_AT : o + _L3] == ETHERTYPE_VLAN_BYTES:
        o += VLAN_TAG_LEN
    ethertype = frame[o + ETHERTYPE_AT : o + _L3]
    if ethertype == ETHERTYPE_IPV4_BYTES:
        if len(frame) < o + _V4_END:
            raise PacketError("ipv4", o + _L3, "truncated header")
        vihl = frame[o + _L3]
        ihl = (vihl & IPV4_IHL_MASK) * IPV4_IHL_UNIT
        if vihl >> IPV4_VERSION_SHIFT != IPV4_VERSION or ihl < IPV4_HEADER_LEN:
            raise PacketError("ipv4", o + _L3, f"bad version/IHL byte 0x{vihl:02x}")
        head = (
            frame[offset : o + _L3 + 1]
            + frame[o + _V4_PROTO : o + _V4_PROTO + 1]
            + frame[o + _V4_SRC : o + _V4_END]
        )
        if frame[o + _V4_FLAGS] & _OFFSET_HIGH or frame[o + _V4_FLAGS + 1]:
            return head  # a non-first fragment: no L4 header
        proto = frame[o + _V4_PROTO]
        l4 = o + _L3 + ihl
        if proto in _PORTS_PROTOCOLS:
            if len(frame) < l4 + _MIN_L4_LEN[proto]:
                raise PacketError("tcp" if proto == PROTO_TCP else "udp", l4, "truncated header")
            if ihl == IPV4_HEADER_LEN and o == offset:
                return b"".join(FAST_KEY.unpack_from(frame, offset))
            return head + frame[l4 : l4 + _PORTS_LEN]
        if proto == PROTO_ICMP:
            return head + _icmp_key(frame, l4, "icmp", ICMP_HEADER_LEN)
        return head
    if ethertype == ETHERTYPE_IPV6_BYTES:  # rarer than IPv4: its own function
        return _ipv6_key(frame, offset, o)
    if len(frame) < o + _L3:
        raise PacketError("ethernet", offset, f"truncated frame of {len(frame) - offset} bytes")
    return frame[offset : o + _L3]


def _ipv6_key(frame: bytes, offset: int, o: int) -> bytes:
    """``flow_key`` of an IPv6 frame (``o``: ``offset`` past a VLAN tag, if any)."""
    proto, l4 = _ipv6_l4(frame, o + _L3)
    head = frame[offset : o + _L3] + bytes((proto,)) + frame[o + _L3 + IPV6_SRC_AT : o + _L3
                                                             + IPV6_HEADER_LEN]  # fmt: skip
    if proto in _PORTS_PROTOCOLS:
        if l4 < 0:
            return head
        if len(frame) < l4 + _MIN_L4_LEN[proto]:
            raise PacketError("tcp" if proto == PROTO_TCP else "udp", l4, "truncated header")
        return head + frame[l4 : l4 + _PORTS_LEN]
    if proto == PROTO_ICMPV6 and l4 >= 0:
        return head + _icmp_key(frame, l4, "icmpv6", ICMPV6_HEADER_LEN)
    return head


def _icmp_key(frame: bytes, l4: int, header: str, header_len: int) -> bytes:
    """Type and code, and the echo identifier (the second word's first half)."""
    if len(frame) < l4 + header_len:
        raise PacketError(header, l4, "truncated header")
    at = l4 + ICMP_IDENTIFIER_AT
    return frame[l4 : l4 + _ICMP_TYPE_CODE] + frame[at : at + _ICMP_TYPE_CODE]


def _ipv6_l4(frame: bytes, l3: int) -> tuple[int, int]:
    """(upper-layer protocol, its offset or -1 for a non-first fragment) of an IPv6 packet."""
    if len(frame) < l3 + IPV6_HEADER_LEN:
        raise PacketError("ipv6", l3, "truncated header")
    if frame[l3] >> _IP_VERSION_SHIFT != IPV6_VERSION:
        raise PacketError("ipv6", l3, f"bad version {frame[l3] >> _IP_VERSION_SHIFT}")
    proto = frame[l3 + IPV6_NEXT_HEADER_AT]
    at = l3 + IPV6_HEADER_LEN
    while proto in IPV6_EXTENSION_HEADERS or proto == IPV6_FRAGMENT_HEADER:
        if len(frame) < at + IPV6_EXTENSION_UNIT:
            raise PacketError("ipv6", at, f"truncated extension header {proto}")
        if proto == IPV6_FRAGMENT_HEADER:
            offset_bits = int.from_bytes(frame[at + 2 : at + 4], "big")
            proto = frame[at]
            if offset_bits >> _IPV6_FRAGMENT_OFFSET_SHIFT:
                return proto, -1
            at += IPV6_EXTENSION_UNIT
            continue
        proto, at = frame[at], at + (frame[at + 1] + 1) * IPV6_EXTENSION_UNIT
    return proto, at


@dataclass(frozen=True, slots=True)
class FlowKey:
    """The readable flow key of one frame; ``l3_offset``/``l4_offset`` (from the frame's
    start) are -1 when absent. It carries the exact-match key too: the parsed view of a
    frame that the engine passes along instead of parsing the frame again.

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
    key: bytes = b""
    """The exact-match key of the same frame (``flow_key``)."""

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
_ICMP_ECHO_TYPES = frozenset(
    {ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY}
)
_ICMP_ECHO_REPLY_BIT = 1
# echo request/reply -> 0 (request) or 1 (reply), so a reply's kind is the request's ^ 1
_ICMP_ECHO_KIND = {
    (PROTO_ICMP, ICMP_ECHO_REQUEST): 0,
    (PROTO_ICMP, ICMP_ECHO_REPLY): 1,
    (PROTO_ICMPV6, ICMPV6_ECHO_REQUEST): 0,
    (PROTO_ICMPV6, ICMPV6_ECHO_REPLY): 1,
}
_CONNECTION_PORT_LEN = 4


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
        + a.to_bytes(_CONNECTION_PORT_LEN, "big")
        + b.to_bytes(_CONNECTION_PORT_LEN, "big")
    )


def _mac(raw: bytes) -> str:
    return raw.hex(":")


def parse_flow_key(frame: bytes, offset: int = 0, key: bytes | None = None) -> FlowKey:
    """The readable flow key of the Ethernet frame at ``offset`` (raises ``PacketError``).

    ``key``: ``flow_key(frame, offset)`` when the caller made it already (it checked the
    frame, so it is neither checked nor made again).
    """
    if key is None:
        key = flow_key(frame, offset)  # the same validation as the fast path
    o = offset
    vlan_id: int | None = None
    if frame[o + ETHERTYPE_AT : o + _L3] == ETHERTYPE_VLAN_BYTES:
        vlan_id = int.from_bytes(frame[o + VLAN_TCI_AT : o + _TCI_END], "big") & VLAN_ID_MAX
        o += VLAN_TAG_LEN
    dst_mac = _mac(frame[offset : offset + MAC_LEN])
    src_mac = _mac(frame[offset + MAC_LEN : offset + ETHERTYPE_AT])
    ethertype = int.from_bytes(frame[o + ETHERTYPE_AT : o + _L3], "big")
    l3 = o + _L3
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    if ethertype == ETHERTYPE_IPV4:
        ihl = (frame[l3] & IPV4_IHL_MASK) * IPV4_IHL_UNIT
        src = ipaddress.IPv4Address(frame[l3 + IPV4_SRC_AT : l3 + IPV4_DST_AT])
        dst = ipaddress.IPv4Address(frame[l3 + IPV4_DST_AT : l3 + IPV4_HEADER_LEN])
        proto, ttl = frame[l3 + IPV4_PROTOCOL_AT], frame[l3 + IPV4_TTL_AT]
        fragment = bool(frame[l3 + IPV4_FLAGS_AT] & _OFFSET_HIGH or frame[l3 + IPV4_FLAGS_AT + 1])
        l4 = -1 if fragment else l3 + ihl
        icmp = PROTO_ICMP
    elif ethertype == ETHERTYPE_IPV6:
        src = ipaddress.IPv6Address(frame[l3 + IPV6_SRC_AT : l3 + IPV6_DST_AT])
        dst = ipaddress.IPv6Address(frame[l3 + IPV6_DST_AT : l3 + IPV6_HEADER_LEN])
        proto, l4 = _ipv6_l4(frame, l3)
        ttl = frame[l3 + IPV6_HOP_LIMIT_AT]
        icmp = PROTO_ICMPV6
    else:
        return FlowKey(src_mac, dst_mac, ethertype, vlan_id, key=key)
    sport = dport = itype = icode = flags = None
    if l4 >= 0 and proto in _PORTS_PROTOCOLS:
        sport = int.from_bytes(frame[l4 : l4 + _PORT_LEN], "big")
        dport = int.from_bytes(frame[l4 + UDP_DST_PORT_AT : l4 + _PORTS_LEN], "big")
        if proto == PROTO_TCP:
            flags = frame[l4 + TCP_FLAGS_AT]
    elif l4 >= 0 and proto == icmp:  # ICMP of IPv4, ICMPv6 of IPv6: as flow_key keys them
        itype, icode = frame[l4], frame[l4 + 1]
        at = l4 + ICMP_IDENTIFIER_AT
        sport = dport = int.from_bytes(frame[at : at + _ICMP_TYPE_CODE], "big")
    return FlowKey(
        src_mac, dst_mac, ethertype, vlan_id, src, dst, proto, sport, dport, itype, icode,
        flags, ttl, l3 - offset, -1 if l4 < 0 else l4 - offset, key,
    )  # fmt: skip


def describe_key(key: bytes) -> str:
    """A readable line for a fast key made by ``flow_key`` (for flow listings)."""
    if len(key) == FAST_KEY_LEN:  # IPv4 TCP/UDP fast form: re-lay it as the general form
        key = key[: _L3 + 1] + key[_FAST_PROTO:]
    dst, src, rest = key[:MAC_LEN].hex(":"), key[MAC_LEN:ETHERTYPE_AT].hex(":"), key[ETHERTYPE_AT:]
    if rest[:2] == ETHERTYPE_VLAN_BYTES and len(rest) >= VLAN_TAG_LEN + 2:
        rest = rest[VLAN_TAG_LEN:]
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


# -- frames from the PA network: the outer part of the key ------------------------------

_OUTER_HEAD = ETHERTYPE_IPV4_BYTES + bytes((IPV4_NO_OPTIONS,))
_ADDRESSES_LEN = IPV4_HEADER_LEN - IPV4_SRC_AT
_TO_PROTO = _V4_PROTO - (ETHERTYPE_AT + len(_OUTER_HEAD))
_CHECKSUM_LEN = IPV4_SRC_AT - IPV4_CHECKSUM_AT
_OUTER_IP = f"!{ETHERTYPE_AT}x{len(_OUTER_HEAD)}s{_TO_PROTO}x1s{_CHECKSUM_LEN}x"
_UDP_REST = UDP_HEADER_LEN - _PORTS_LEN
VXLAN_OUTER_KEY = struct.Struct(
    f"{_OUTER_IP}{_ADDRESSES_LEN + _PORTS_LEN}s{_UDP_REST}x{VXLAN_HEADER_LEN}s"
)
"""``!12x3s8x1s2x12s4x8s``: EtherType and version/IHL, protocol, PAs and UDP ports, VXLAN."""
NVGRE_OUTER_KEY = struct.Struct(f"{_OUTER_IP}{_ADDRESSES_LEN + NVGRE_HEADER_LEN}s")
"""``!12x3s8x1s2x16s``: EtherType and version/IHL, protocol, PAs, the GRE header and key."""
_VSID_LEN = 3  # VNI and VSID are 24 bits


def outer_key(frame: bytes) -> tuple[bytes, int]:
    """(outer part of the flow key, inner frame offset) of a frame from the PA network;
    offset -1: not a plain tunnel frame.

    The key holds the IP protocol, the PAs, the UDP ports and the VXLAN header (or the
    GRE header with the key), and the VLAN tag if any; a frame with IP options or another
    shape has no key and always takes the slow path.
    """
    o = VLAN_TAG_LEN if frame[ETHERTYPE_AT:_L3] == ETHERTYPE_VLAN_BYTES else 0
    if frame[o + ETHERTYPE_AT : o + _L3 + 1] != _OUTER_HEAD:
        return b"", -1
    tag = frame[ETHERTYPE_AT : ETHERTYPE_AT + VLAN_TAG_LEN] if o else b""
    proto = frame[o + _V4_PROTO] if len(frame) > o + _V4_PROTO else -1
    if proto == PROTO_UDP and len(frame) >= o + VXLAN_OUTER_LEN:
        return tag + b"".join(VXLAN_OUTER_KEY.unpack_from(frame, o)), o + VXLAN_OUTER_LEN
    if proto == PROTO_GRE and len(frame) >= o + NVGRE_OUTER_LEN:
        return tag + b"".join(NVGRE_OUTER_KEY.unpack_from(frame, o)), o + NVGRE_OUTER_LEN
    return b"", -1


@dataclass(frozen=True, slots=True)
class OuterKey:
    """The readable outer headers of a tunnelled frame, and the outer part of its key."""

    source_pa: str
    destination_pa: str
    encapsulation: str
    vsid: int
    inner_offset: int
    key: bytes
    """``outer_key(frame)[0]``: empty when the frame's shape has no key."""


def parse_outer(frame: bytes, key: bytes | None = None) -> OuterKey:
    """The outer headers of a VXLAN or NVGRE frame, or ``PacketError`` naming what is not
    one. ``key``: ``outer_key(frame)[0]`` when the caller made it already."""
    if len(frame) < _L3:
        raise PacketError("ethernet", 0, f"truncated frame of {len(frame)} bytes")
    o = VLAN_TAG_LEN if frame[ETHERTYPE_AT:_L3] == ETHERTYPE_VLAN_BYTES else 0
    if frame[o + ETHERTYPE_AT : o + _L3] != ETHERTYPE_IPV4_BYTES:
        raise PacketError("ethernet", o + ETHERTYPE_AT, "the outer frame is not IPv4")
    l3 = o + _L3
    if len(frame) < l3 + IPV4_HEADER_LEN or frame[l3] >> IPV4_VERSION_SHIFT != IPV4_VERSION:
        raise PacketError("ipv4", l3, "truncated or not version 4")
    l4 = l3 + (frame[l3] & IPV4_IHL_MASK) * IPV4_IHL_UNIT
    src = str(ipaddress.IPv4Address(frame[l3 + IPV4_SRC_AT : l3 + IPV4_DST_AT]))
    dst = str(ipaddress.IPv4Address(frame[l3 + IPV4_DST_AT : l3 + IPV4_HEADER_LEN]))
    proto = frame[l3 + IPV4_PROTOCOL_AT]
    if key is None:
        key = outer_key(frame)[0]
    if proto == PROTO_UDP:
        vxlan = l4 + UDP_HEADER_LEN
        inner = vxlan + VXLAN_HEADER_LEN
        if len(frame) < inner:
            raise PacketError("vxlan", l4, "truncated UDP/VXLAN header")
        port_at = l4 + UDP_DST_PORT_AT
        if int.from_bytes(frame[port_at : port_at + _PORT_LEN], "big") != VXLAN_PORT:
            raise PacketError("udp", port_at, f"destination port is not VXLAN {VXLAN_PORT}")
        if not frame[vxlan + VXLAN_FLAGS_AT] & VXLAN_FLAG_I:
            raise PacketError("vxlan", vxlan, "the I flag is not set")
        vni_at = vxlan + VXLAN_VNI_AT
        vsid = int.from_bytes(frame[vni_at : vni_at + _VSID_LEN], "big")
        return OuterKey(src, dst, "vxlan", vsid, inner, key)
    if proto == PROTO_GRE:
        inner = l4 + NVGRE_HEADER_LEN
        if len(frame) < inner:
            raise PacketError("gre", l4, "truncated GRE header")
        bits = int.from_bytes(frame[l4 : l4 + GRE_PROTOCOL_AT], "big")
        protocol = int.from_bytes(frame[l4 + GRE_PROTOCOL_AT : l4 + NVGRE_VSID_AT], "big")
        if bits != NVGRE_BITS or protocol != NVGRE_PROTOCOL:
            raise PacketError("gre", l4, "not NVGRE (key bit only, protocol 0x6558)")
        vsid_at = l4 + NVGRE_VSID_AT
        vsid = int.from_bytes(frame[vsid_at : vsid_at + _VSID_LEN], "big")
        return OuterKey(src, dst, "nvgre", vsid, inner, key)
    raise PacketError(
        "ipv4", l3 + IPV4_PROTOCOL_AT, f"protocol {proto} is neither VXLAN/UDP nor NVGRE/GRE"
    )
