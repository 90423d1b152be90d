"""The few wire formats the PA side of a host needs, on bytes with ``struct``.

Ethernet II with an optional 802.1Q tag (IEEE 802.1Q-2018 §9), ARP over Ethernet/IPv4
(RFC 826), the IPv4 header (RFC 791) and its checksum (RFC 1071), ICMP echo (RFC 792).
Kept small and local until ``openhnv.packet`` lands on main; the uplink then switches
to those codecs. Malformed input raises ``WireError``.

    Ethernet:  dst MAC (6) | src MAC (6) | [0x8100 | PCP:3 DEI:1 VID:12] | EtherType (2)
    ARP:       htype=1 | ptype=0x0800 | hlen=6 | plen=4 | op | sha | spa | tha | tpa
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERNET_HEADER_LEN = 14
VLAN_TAG_LEN = 4
VLAN_ID_MASK = 0x0FFF
MAC_LEN = 6
BROADCAST_MAC = b"\xff" * MAC_LEN
ZERO_MAC = b"\x00" * MAC_LEN
ARP_REQUEST = 1
ARP_REPLY = 2
ARP_LEN = 28
ARP_HTYPE_ETHERNET = 1
IPV4_HEADER_MIN = 20
IP_PROTO_ICMP = 1
IP_PROTO_UDP = 17
IP_PROTO_GRE = 47
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
UDP_HEADER_LEN = 8
IP_DEFAULT_TTL = 64
_IP_MORE_FRAGMENTS = 0x2000
_IP_OFFSET_MASK = 0x1FFF
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_TAG = struct.Struct("!HH")


class WireError(ValueError):
    """A frame is too short or malformed; the message names the header and field."""


def mac_bytes(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` (or with ``-`` or no separators) as 6 bytes."""
    digits = text.replace(":", "").replace("-", "")
    if len(digits) != 2 * MAC_LEN:
        raise WireError(f"mac: {text!r} is not a MAC address")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise WireError(f"mac: {text!r} is not a MAC address") from None


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def ethernet_header(destination: bytes, source: bytes, ethertype: int, vlan: int = 0) -> bytes:
    """An Ethernet header, tagged with ``vlan`` when it is not 0."""
    if vlan:
        return destination + source + _TAG.pack(ETHERTYPE_VLAN, vlan) + ethertype.to_bytes(2)
    return destination + source + ethertype.to_bytes(2)


def push_vlan(frame: bytes, vlan: int, priority: int = 0) -> bytes:
    """Insert an 802.1Q tag after the MAC addresses."""
    if len(frame) < ETHERNET_HEADER_LEN:
        raise WireError(f"ethernet: frame of {len(frame)} bytes is shorter than a header")
    tci = (priority << 13) | (vlan & VLAN_ID_MASK)
    return frame[:12] + _TAG.pack(ETHERTYPE_VLAN, tci) + frame[12:]


def pop_vlan(frame: bytes) -> tuple[int | None, bytes]:
    """``(vid, untagged frame)``; ``(None, frame)`` when the frame carries no tag."""
    if len(frame) < ETHERNET_HEADER_LEN:
        raise WireError(f"ethernet: frame of {len(frame)} bytes is shorter than a header")
    if frame[12:14] != b"\x81\x00":
        return None, frame
    if len(frame) < ETHERNET_HEADER_LEN + VLAN_TAG_LEN:
        raise WireError(f"802.1q: frame of {len(frame)} bytes is too short for its tag")
    tci = int.from_bytes(frame[14:16])
    return tci & VLAN_ID_MASK, frame[:12] + frame[16:]


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet; addresses as bytes."""

    operation: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    def build(self) -> bytes:
        return _ARP.pack(
            ARP_HTYPE_ETHERNET,
            ETHERTYPE_IPV4,
            MAC_LEN,
            4,
            self.operation,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )

    @classmethod
    def parse(cls, payload: bytes) -> ArpPacket:
        if len(payload) < ARP_LEN:
            raise WireError(f"arp: {len(payload)} bytes, need {ARP_LEN}")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(payload)
        if (htype, ptype, hlen, plen) != (ARP_HTYPE_ETHERNET, ETHERTYPE_IPV4, MAC_LEN, 4):
            raise WireError(f"arp: not Ethernet/IPv4 (htype {htype}, ptype {ptype:#06x})")
        if op not in (ARP_REQUEST, ARP_REPLY):
            raise WireError(f"arp: operation {op} is neither request nor reply")
        return cls(op, sha, spa, tha, tpa)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum, returned ready to store."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True, slots=True)
class Ipv4View:
    """The fields of an IPv4 header the PA side looks at."""

    header_length: int
    total_length: int
    protocol: int
    source: bytes
    destination: bytes
    fragmented: bool

    @classmethod
    def parse(cls, packet: bytes) -> Ipv4View:
        if len(packet) < IPV4_HEADER_MIN:
            raise WireError(f"ipv4: {len(packet)} bytes, need {IPV4_HEADER_MIN}")
        version, ihl = packet[0] >> 4, (packet[0] & 0x0F) * 4
        if version != 4:
            raise WireError(f"ipv4: version {version}")
        total = int.from_bytes(packet[2:4])
        if ihl < IPV4_HEADER_MIN or total < ihl or total > len(packet):
            raise WireError(f"ipv4: header length {ihl} / total length {total} do not fit")
        flags = int.from_bytes(packet[6:8])
        fragmented = bool(flags & _IP_MORE_FRAGMENTS or flags & _IP_OFFSET_MASK)
        return cls(ihl, total, packet[9], packet[12:16], packet[16:20], fragmented)


def ipv4_header(source: bytes, destination: bytes, protocol: int, payload_length: int) -> bytes:
    """A 20-byte IPv4 header with DF set and its checksum filled in."""
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            IPV4_HEADER_MIN + payload_length,
            0,
            0x4000,
            IP_DEFAULT_TTL,
            protocol,
            0,
            source,
            destination,
        )
    )
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2)
    return bytes(header)


def icmp_echo_reply(request: bytes) -> bytes:
    """The ICMP echo reply to an ICMP echo request message (same id, sequence and data)."""
    if len(request) < 8 or request[0] != ICMP_ECHO_REQUEST:
        raise WireError("icmp: not an echo request")
    reply = bytearray(request)
    reply[0] = ICMP_ECHO_REPLY
    reply[2:4] = b"\x00\x00"
    reply[2:4] = internet_checksum(bytes(reply)).to_bytes(2)
    return bytes(reply)
