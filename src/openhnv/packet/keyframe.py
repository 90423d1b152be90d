"""Frames made from flow keys: the smallest frame whose flow key is a given key.

A revalidator decides a flow again without waiting for a packet of it (OVS's
revalidators do the same with their flow keys): it makes the smallest frame that
``packet.flowkey`` keys exactly like the flow and hands it to the slow path. Two
shapes of key are enough, because the kernel fast path executes nothing else:

- ``frame_of_key(key)``: an IPv4 fast key (untagged, no options, TCP or UDP: MACs,
  flags/fragment word, TTL, protocol, addresses, ports) or an untagged IPv4 ICMP key
  (MACs, protocol, addresses, type, code, echo identifier). TCP segments carry ACK
  only (neither a SYN, nor a FIN, nor an RST: the frame opens and closes nothing),
  UDP datagrams no checksum (RFC 768: 0 is "none"), ICMP an echo of no data.
  Anything else: None.
- ``tunnel_frame_of_key(key)``: a key of a frame from the PA network (``outer_key``
  + the inner frame's key): the outer Ethernet [802.1Q] / IPv4 / UDP + VXLAN (RFC
  7348) or GRE + NVGRE (RFC 7637) headers the key holds, around ``frame_of_key`` of
  its inner part; the outer MACs (not part of the key) are zero.

``flow_key(frame_of_key(k)) == k``, and the same for tunnel keys with ``outer_key``.
"""

from __future__ import annotations

import struct

from openhnv.packet.addresses import ZERO_MAC
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_TAG_LEN,
)
from openhnv.packet.flowkey import (
    FAST_KEY_ADDRESSES_AT,
    FAST_KEY_FLAGS_AT,
    FAST_KEY_LEN,
    FAST_KEY_PROTOCOL_AT,
    FAST_KEY_TTL_AT,
    IPV4_KEY_PROTOCOL_AT,
)
from openhnv.packet.gre import NVGRE_HEADER_LEN
from openhnv.packet.icmp import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, Icmp
from openhnv.packet.ipv4 import (
    IPV4_DEFAULT_TTL,
    IPV4_FRAGMENT_OFFSET_MAX,
    IPV4_NO_OPTIONS,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    IPv4,
)
from openhnv.packet.tcp import TCP_ACK, Tcp
from openhnv.packet.udp import UDP, UDP_HEADER_LEN, UDP_NO_CHECKSUM
from openhnv.packet.vxlan import VXLAN_HEADER_LEN

_IPV4_HEAD = ETHERTYPE_IPV4_BYTES + bytes((IPV4_NO_OPTIONS,))
_ADDRESSES_LEN = 8  # IPv4 source and destination
_PORTS = struct.Struct("!HH")
_FLAGS_WORD = struct.Struct("!H")
_FRAGMENT_BITS = IPV4_FRAGMENT_OFFSET_MAX.bit_length()  # the offset's bits below the flags
_ICMP_KEY_LEN = IPV4_KEY_PROTOCOL_AT + 1 + _ADDRESSES_LEN + 4  # + type, code, identifier
_ICMP_ECHOES = (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY)
_SYNTHETIC_WINDOW = 1024
# outer keys (packet.flowkey.outer_key): EtherType and version/IHL, protocol, then
# the PAs and UDP ports + VXLAN header, or the PAs + GRE header with its key
_OUTER_PROTOCOL_AT = len(_IPV4_HEAD)
_OUTER_ADDRESSES_AT = _OUTER_PROTOCOL_AT + 1
_OUTER_REST_AT = _OUTER_ADDRESSES_AT + _ADDRESSES_LEN
_VXLAN_OUTER_KEY_LEN = _OUTER_REST_AT + 4 + VXLAN_HEADER_LEN  # UDP ports, VXLAN header
_NVGRE_OUTER_KEY_LEN = _OUTER_REST_AT + NVGRE_HEADER_LEN


def frame_of_key(key: bytes) -> bytes | None:
    """The smallest frame whose ``flow_key`` is ``key`` (see the module docstring), or
    None for a key of another shape."""
    if key[ETHERTYPE_AT : ETHERTYPE_AT + len(_IPV4_HEAD)] != _IPV4_HEAD:
        return None
    ethernet = key[:ETHERNET_HEADER_LEN]
    if len(key) == FAST_KEY_LEN:
        word = _FLAGS_WORD.unpack_from(key, FAST_KEY_FLAGS_AT)[0]
        protocol = key[FAST_KEY_PROTOCOL_AT]
        at = FAST_KEY_ADDRESSES_AT
        src, dst = key[at : at + 4], key[at + 4 : at + _ADDRESSES_LEN]
        src_port, dst_port = _PORTS.unpack_from(key, at + _ADDRESSES_LEN)
        if protocol == PROTO_TCP:
            segment = Tcp(src_port, dst_port, flags=TCP_ACK, window=_SYNTHETIC_WINDOW)
            body = segment.pack(src, dst, b"")
        elif protocol == PROTO_UDP:
            body = UDP.pack(src_port, dst_port, UDP_HEADER_LEN, UDP_NO_CHECKSUM)
        else:
            return None
        ip = IPv4(src, dst, protocol, ttl=key[FAST_KEY_TTL_AT], flags=word >> _FRAGMENT_BITS,
                  fragment_offset=word & IPV4_FRAGMENT_OFFSET_MAX)  # fmt: skip
        return ethernet + ip.pack(len(body)) + body
    if len(key) == _ICMP_KEY_LEN and key[IPV4_KEY_PROTOCOL_AT] == PROTO_ICMP:
        at = IPV4_KEY_PROTOCOL_AT + 1
        src, dst = key[at : at + 4], key[at + 4 : at + _ADDRESSES_LEN]
        kind, code = key[at + _ADDRESSES_LEN], key[at + _ADDRESSES_LEN + 1]
        if kind not in _ICMP_ECHOES:
            return None
        identifier = _FLAGS_WORD.unpack_from(key, at + _ADDRESSES_LEN + 2)[0]
        body = Icmp(kind, code, identifier).pack()
        ip = IPv4(src, dst, PROTO_ICMP, ttl=IPV4_DEFAULT_TTL)
        return ethernet + ip.pack(len(body)) + body
    return None


def _outer_shape(key: bytes) -> tuple[int, int]:
    """(tag length, outer length) of a tunnel frame's key; outer length 0: not one."""
    tag = VLAN_TAG_LEN if key[:2] == ETHERTYPE_VLAN_BYTES else 0
    if key[tag : tag + len(_IPV4_HEAD)] != _IPV4_HEAD or len(key) <= tag + _OUTER_PROTOCOL_AT:
        return tag, 0
    protocol = key[tag + _OUTER_PROTOCOL_AT]
    if protocol == PROTO_UDP:
        return tag, tag + _VXLAN_OUTER_KEY_LEN
    if protocol == PROTO_GRE:
        return tag, tag + _NVGRE_OUTER_KEY_LEN
    return tag, 0


def outer_key_length(key: bytes) -> int:
    """How many bytes of a tunnel frame's key are its outer part (``outer_key``); 0 when
    ``key`` is not one."""
    return _outer_shape(key)[1]


def tunnel_frame_of_key(key: bytes) -> bytes | None:
    """The smallest tunnel frame whose key (``outer_key`` + ``flow_key`` of the inner
    frame) is ``key``, or None for a key of another shape."""
    tag_len, outer_len = _outer_shape(key)
    if not outer_len:
        return None
    inner = frame_of_key(key[outer_len:])
    if inner is None:
        return None
    protocol = key[tag_len + _OUTER_PROTOCOL_AT]
    at = tag_len + _OUTER_ADDRESSES_AT
    src, dst = key[at : at + 4], key[at + 4 : at + _ADDRESSES_LEN]
    rest = key[tag_len + _OUTER_REST_AT : outer_len]
    if protocol == PROTO_UDP:
        ports, vxlan = rest[:4], rest[4:]
        length = UDP_HEADER_LEN + VXLAN_HEADER_LEN + len(inner)
        body = ports + UDP.pack(0, 0, length, UDP_NO_CHECKSUM)[4:] + vxlan
    else:
        body = rest
    ip = IPv4(src, dst, protocol, ttl=IPV4_DEFAULT_TTL).pack(len(body) + len(inner))
    return ZERO_MAC + ZERO_MAC + key[:tag_len] + ETHERTYPE_IPV4_BYTES + ip + body + inner
