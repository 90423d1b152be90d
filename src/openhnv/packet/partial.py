"""Finishing a frame sent with checksum offload: what the NIC would have computed.

A sender that offloads its TCP/UDP checksum (Linux ``CHECKSUM_PARTIAL``; the VM side
of a veth with ``tx`` on) leaves in the checksum field the folded sum of the
pseudo-header only, not complemented, and lets the device sum the transport header
and payload from the checksum's start onwards and store the complement (the device's
sum covers the field, i.e. the pseudo-header). A packet socket flags such a frame
(``TP_STATUS_CSUMNOTREADY``); a switch that forwards it to a receiver that checks
checksums must finish it first.

``finish_checksum(frame)`` does that for TCP or UDP over IPv4 (any IHL) or IPv6
(without extension headers), behind an optional 802.1Q tag. A frame from the PA
network carries its offloaded checksum in the inner frame (VXLAN sends UDP checksum
0, RFC 7348 §5; NVGRE has none): for VXLAN and NVGRE the inner transport checksum is
finished. Other frames come back unchanged. A UDP sum of 0 is sent as 0xFFFF (RFC 768).
"""

from __future__ import annotations

from openhnv.packet.checksum import WORD_MASK, ones_complement_sum
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_IPV6_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_TAG_LEN,
)
from openhnv.packet.frames import NVGRE_OUTER_LEN, VXLAN_OUTER_LEN
from openhnv.packet.gre import NVGRE_BITS, NVGRE_PROTOCOL
from openhnv.packet.ipv4 import (
    IPV4_HEADER_LEN,
    IPV4_IHL_MASK,
    IPV4_IHL_UNIT,
    IPV4_NO_OPTIONS,
    IPV4_PROTOCOL_AT,
    IPV4_TOTAL_LENGTH_AT,
    PROTO_GRE,
    PROTO_TCP,
    PROTO_UDP,
)
from openhnv.packet.ipv6 import IPV6_HEADER_LEN, IPV6_NEXT_HEADER_AT
from openhnv.packet.tcp import TCP_CHECKSUM_AT
from openhnv.packet.udp import UDP_CHECKSUM_AT, UDP_DST_PORT_AT, UDP_ZERO_CHECKSUM_SENT_AS
from openhnv.packet.vxlan import VXLAN_PORT

_CHECKSUM_AT = {PROTO_TCP: TCP_CHECKSUM_AT, PROTO_UDP: UDP_CHECKSUM_AT}
_CHECKSUM_LEN = 2
_IPV6_PAYLOAD_LENGTH_AT = 4
_U16 = 2
_TUNNEL_INNER = {PROTO_UDP: VXLAN_OUTER_LEN, PROTO_GRE: NVGRE_OUTER_LEN}
_NVGRE_HEAD = NVGRE_BITS.to_bytes(_U16, "big") + NVGRE_PROTOCOL.to_bytes(_U16, "big")


def _transport(frame: bytes, o: int) -> tuple[int, int, int] | None:
    """(protocol, transport start, end of the IP packet) of the Ethernet frame at ``o``
    (after any tag), or None when it is not IPv4/IPv6 TCP or UDP."""
    ethertype = frame[o + ETHERTYPE_AT : o + ETHERNET_HEADER_LEN]
    l3 = o + ETHERNET_HEADER_LEN
    if ethertype == ETHERTYPE_IPV4_BYTES and len(frame) >= l3 + IPV4_HEADER_LEN:
        ihl = (frame[l3] & IPV4_IHL_MASK) * IPV4_IHL_UNIT
        total = int.from_bytes(frame[l3 + IPV4_TOTAL_LENGTH_AT : l3 + IPV4_TOTAL_LENGTH_AT + _U16])
        return frame[l3 + IPV4_PROTOCOL_AT], l3 + ihl, l3 + total
    if ethertype == ETHERTYPE_IPV6_BYTES and len(frame) >= l3 + IPV6_HEADER_LEN:
        at = l3 + _IPV6_PAYLOAD_LENGTH_AT
        payload = int.from_bytes(frame[at : at + _U16])
        return frame[l3 + IPV6_NEXT_HEADER_AT], l3 + IPV6_HEADER_LEN, l3 + IPV6_HEADER_LEN + payload
    return None


def _inner_offset(frame: bytes, o: int, protocol: int, l4: int) -> int:
    """Where the inner frame of a VXLAN or NVGRE frame starts, or -1."""
    if frame[o + ETHERNET_HEADER_LEN] != IPV4_NO_OPTIONS:
        return -1
    if protocol == PROTO_UDP:
        port = int.from_bytes(frame[l4 + UDP_DST_PORT_AT : l4 + UDP_DST_PORT_AT + _U16])
        return o + VXLAN_OUTER_LEN if port == VXLAN_PORT else -1
    if protocol == PROTO_GRE and frame[l4 : l4 + 2 * _U16] == _NVGRE_HEAD:
        return o + NVGRE_OUTER_LEN
    return -1


def finish_checksum(frame: bytes) -> bytes:
    """``frame`` with its offloaded TCP/UDP checksum finished (see the module docstring)."""
    o = VLAN_TAG_LEN if frame[ETHERTYPE_AT:ETHERNET_HEADER_LEN] == ETHERTYPE_VLAN_BYTES else 0
    found = _transport(frame, o)
    if found is None:
        return frame
    protocol, l4, end = found
    if protocol in (PROTO_UDP, PROTO_GRE):
        inner = _inner_offset(frame, o, protocol, l4)
        if inner >= 0:
            inner_found = _transport(frame, inner)
            if inner_found is None:
                return frame
            protocol, l4, end = inner_found
    at = _CHECKSUM_AT.get(protocol)
    if at is None or end > len(frame) or end < l4 + at + _CHECKSUM_LEN:
        return frame
    checksum = ~ones_complement_sum(frame[l4:end]) & WORD_MASK
    if checksum == 0 and protocol == PROTO_UDP:
        checksum = UDP_ZERO_CHECKSUM_SENT_AS
    return frame[: l4 + at] + checksum.to_bytes(_CHECKSUM_LEN, "big") + frame[l4 + at + 2 :]
