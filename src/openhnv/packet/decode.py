"""Decode a whole frame into its header stack, and describe it in one line.

The demux tables (which codec follows which header) live here, apart from the header
classes, in the manner of dpkt and os-ken: EtherType -> codec, IP protocol -> codec,
UDP destination port 4789 -> VXLAN, GRE protocol 0x6558 -> Ethernet, VXLAN -> Ethernet.
Decoding walks into inner frames, so a VXLAN packet decodes as
``[Ethernet, IPv4, Udp, Vxlan, Ethernet, IPv4, Tcp]``.

Transport checksums are verified whenever the IP header allows (not for fragments).
A header with no codec (an unknown EtherType, IPv6 extension headers, an unknown IP
protocol, a UDP port other than VXLAN) ends the stack; its bytes are payload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openhnv.packet.addresses import ip_to_str, mac_to_str
from openhnv.packet.arp import ARP_REQUEST, Arp
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet
from openhnv.packet.gre import NVGRE_PROTOCOL, Gre, split_nvgre_key
from openhnv.packet.icmp import ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, Icmp
from openhnv.packet.icmpv6 import (
    ICMPV6_ECHO_REPLY,
    ICMPV6_ECHO_REQUEST,
    ICMPV6_NEIGHBOR_ADVERTISEMENT,
    ICMPV6_NEIGHBOR_SOLICITATION,
    Icmpv6,
)
from openhnv.packet.ipv4 import (
    IPV4_FRAGMENT_UNIT,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    IPv4,
)
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.tcp import (
    TCP_ACK,
    TCP_CWR,
    TCP_ECE,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    TCP_URG,
    Tcp,
)
from openhnv.packet.udp import UDP_HEADER_LEN, Udp
from openhnv.packet.vxlan import VXLAN_PORT, Vxlan


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where the next header starts, where its packet ends, and the IPs around it."""

    offset: int
    end: int
    src_ip: bytes | None = None
    dst_ip: bytes | None = None
    fragment: bool = False
    """True in the first fragment of a datagram: transport lengths and checksums are moot."""


Codec = Callable[[bytes, _Cursor], tuple[object, str | None, _Cursor]]
"""Parse one header at the cursor: the header, the name of the next codec, the cursor."""

ETHERTYPES: dict[int, str] = {
    ETHERTYPE_IPV4: "ipv4",
    ETHERTYPE_IPV6: "ipv6",
    ETHERTYPE_ARP: "arp",
}
IPV4_PROTOCOLS: dict[int, str] = {
    PROTO_ICMP: "icmp",
    PROTO_TCP: "tcp",
    PROTO_UDP: "udp",
    PROTO_GRE: "gre",
}
IPV6_NEXT_HEADERS: dict[int, str] = {
    PROTO_ICMPV6: "icmpv6",
    PROTO_TCP: "tcp",
    PROTO_UDP: "udp",
    PROTO_GRE: "gre",
}
UDP_PORTS: dict[int, str] = {VXLAN_PORT: "vxlan"}
GRE_PROTOCOLS: dict[int, str] = {NVGRE_PROTOCOL: "ethernet"}


def _ethernet(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = Ethernet.parse(buf[: at.end], at.offset)
    return header, ETHERTYPES.get(header.ethertype), _Cursor(offset, at.end)


def _arp(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = Arp.parse(buf[: at.end], at.offset)
    return header, None, _Cursor(offset, at.end)


def _ipv4(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = IPv4.parse(buf[: at.end], at.offset)
    end = at.offset + header.total_length
    if header.fragment_offset:
        return header, None, _Cursor(offset, end)
    if header.is_fragment:  # the first fragment: transport header present, checksum moot
        return header, IPV4_PROTOCOLS.get(header.protocol), _Cursor(offset, end, fragment=True)
    return header, IPV4_PROTOCOLS.get(header.protocol), _Cursor(offset, end, header.src, header.dst)


def _ipv6(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = IPv6.parse(buf[: at.end], at.offset)
    end = offset + header.payload_length
    return (
        header,
        IPV6_NEXT_HEADERS.get(header.next_header),
        _Cursor(offset, end, header.src, header.dst),
    )


def _icmp(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    verify = at.src_ip is not None
    header, offset = Icmp.parse(buf, at.offset, at.end - at.offset, verify_checksum=verify)
    return header, None, _Cursor(offset, at.end)


def _icmpv6(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    length = at.end - at.offset
    header, offset = Icmpv6.parse(buf, at.offset, at.src_ip, at.dst_ip, length)
    return header, None, _Cursor(offset, at.end)


def _tcp(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = Tcp.parse(buf, at.offset, at.src_ip, at.dst_ip, at.end - at.offset)
    return header, None, _Cursor(offset, at.end)


def _udp(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    if at.fragment:
        header, offset = Udp.parse(buf[: at.end], at.offset, fragment=True)
        return header, None, _Cursor(offset, at.end)
    header, offset = Udp.parse(buf, at.offset, at.src_ip, at.dst_ip, at.end - at.offset)
    return header, UDP_PORTS.get(header.dst_port), _Cursor(offset, at.offset + header.length)


def _vxlan(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = Vxlan.parse(buf[: at.end], at.offset)
    return header, "ethernet", _Cursor(offset, at.end)


def _gre(buf: bytes, at: _Cursor) -> tuple[object, str | None, _Cursor]:
    header, offset = Gre.parse(buf, at.offset, at.end - at.offset, not at.fragment)
    following = None if at.fragment else GRE_PROTOCOLS.get(header.protocol)
    return header, following, _Cursor(offset, at.end)


CODECS: dict[str, Codec] = {
    "ethernet": _ethernet,
    "arp": _arp,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "icmp": _icmp,
    "icmpv6": _icmpv6,
    "tcp": _tcp,
    "udp": _udp,
    "vxlan": _vxlan,
    "gre": _gre,
}


def _walk(frame: bytes) -> tuple[list[object], PacketError | None]:
    """The headers decoded, and the error that stopped the walk (if one did)."""
    headers: list[object] = []
    at = _Cursor(0, len(frame))
    codec: str | None = "ethernet"
    while codec is not None:
        try:
            header, codec, at = CODECS[codec](frame, at)
        except PacketError as err:
            return headers, err
        headers.append(header)
    return headers, None


def decode(frame: bytes) -> list[object]:
    """The header stack of ``frame``, outermost first, into inner frames of tunnels.

    Raises PacketError when any header on the way is malformed or truncated.
    """
    headers, error = _walk(frame)
    if error is not None:
        raise error
    return headers


_TCP_FLAG_LETTERS = (
    (TCP_SYN, "S"),
    (TCP_FIN, "F"),
    (TCP_RST, "R"),
    (TCP_PSH, "P"),
    (TCP_URG, "U"),
    (TCP_ECE, "E"),
    (TCP_CWR, "W"),
    (TCP_ACK, "."),
)


def tcp_flags_text(flags: int) -> str:
    """TCP flags as tcpdump writes them: ``S``, ``S.``, ``P.``, ``F.``, ``R``."""
    return "".join(letter for bit, letter in _TCP_FLAG_LETTERS if flags & bit) or "none"


def _describe_ip(header: IPv4 | IPv6, following: object | None) -> str:
    name = "ipv4" if isinstance(header, IPv4) else "ipv6"
    text = f"{name} {ip_to_str(header.src)} > {ip_to_str(header.dst)}"
    if isinstance(header, IPv4) and header.is_fragment:
        text += f" frag {header.fragment_offset * IPV4_FRAGMENT_UNIT}"
    if following is None:
        proto = header.protocol if isinstance(header, IPv4) else header.next_header
        text += f" proto {proto}"
    return text


def _describe_icmp(header: Icmp) -> str:
    if header.type == ICMP_ECHO_REQUEST:
        return f"icmp echo request id {header.identifier} seq {header.sequence}"
    if header.type == ICMP_ECHO_REPLY:
        return f"icmp echo reply id {header.identifier} seq {header.sequence}"
    if header.type == ICMP_DEST_UNREACHABLE:
        return f"icmp unreachable code {header.code}"
    return f"icmp type {header.type} code {header.code}"


def _describe_icmpv6(header: Icmpv6) -> str:
    if header.type == ICMPV6_ECHO_REQUEST:
        return f"icmpv6 echo request id {header.identifier} seq {header.sequence}"
    if header.type == ICMPV6_ECHO_REPLY:
        return f"icmpv6 echo reply id {header.identifier} seq {header.sequence}"
    if header.type in _ICMPV6_NAMES:
        return f"icmpv6 {_ICMPV6_NAMES[header.type]}"
    return f"icmpv6 type {header.type} code {header.code}"


_ICMPV6_NAMES = {
    ICMPV6_NEIGHBOR_SOLICITATION: "neighbor solicitation",
    ICMPV6_NEIGHBOR_ADVERTISEMENT: "neighbor advertisement",
}


def _describe_one(header: object, following: object | None) -> str:
    """One header in a few words (``following`` is the next header, or None)."""
    if isinstance(header, Ethernet):
        vlan = "" if header.vlan_id is None else f" vlan {header.vlan_id}"
        return f"{mac_to_str(header.src)} > {mac_to_str(header.dst)}{vlan}"
    if isinstance(header, Arp):
        if header.op == ARP_REQUEST:
            target, sender = ip_to_str(header.target_ip), ip_to_str(header.sender_ip)
            return f"arp who-has {target} tell {sender}"
        return f"arp reply {ip_to_str(header.sender_ip)} is-at {mac_to_str(header.sender_mac)}"
    if isinstance(header, IPv4 | IPv6):
        return _describe_ip(header, following)
    if isinstance(header, Tcp):
        return f"tcp {header.src_port} > {header.dst_port} [{tcp_flags_text(header.flags)}]"
    if isinstance(header, Udp):
        payload = header.length - UDP_HEADER_LEN
        return f"udp {header.src_port} > {header.dst_port} len {payload}"
    if isinstance(header, Icmp):
        return _describe_icmp(header)
    if isinstance(header, Icmpv6):
        return _describe_icmpv6(header)
    if isinstance(header, Gre):
        key = "" if header.key is None else f" key {header.key:#x}"
        return f"gre proto {header.protocol:#06x}{key}"
    if isinstance(header, Vxlan):
        return f"vxlan vni {header.vni}"
    return type(header).__name__.lower()


def _tunnel_segment(headers: list[object], index: int) -> tuple[str, int] | None:
    """``vxlan A > B sport P vni V`` for Ethernet/IPv4/UDP/VXLAN at ``index`` (or NVGRE)."""
    window = headers[index : index + 4]
    if len(window) < 3 or not isinstance(window[0], Ethernet):
        return None
    outer, ip = window[0], window[1]
    if not isinstance(ip, IPv4 | IPv6):
        return None
    vlan = "" if outer.vlan_id is None else f" vlan {outer.vlan_id}"
    route = f"{ip_to_str(ip.src)} > {ip_to_str(ip.dst)}"
    carrier = window[2]
    if isinstance(carrier, Udp) and len(window) == 4 and isinstance(window[3], Vxlan):
        text = f"vxlan{vlan} {route} sport {carrier.src_port} vni {window[3].vni}"
        return text, index + 4
    if isinstance(carrier, Gre) and carrier.is_nvgre and carrier.key is not None:
        vsid, flow_id = split_nvgre_key(carrier.key)
        return f"nvgre{vlan} {route} vsid {vsid} flow {flow_id}", index + 3
    return None


def describe(frame: bytes) -> str:
    """A one-line summary of ``frame``, for captures and traces.

    A tunnel shows as ``vxlan 192.168.1.10 > 192.168.2.20 sport 51234 vni 5001 | <inner>``.
    It never raises: a malformed header ends the line with ``[malformed: <reason>]``.
    """
    headers, error = _walk(frame)
    segments: list[str] = []
    words: list[str] = []
    index = 0
    while index < len(headers):
        tunnel = _tunnel_segment(headers, index)
        if tunnel is not None:
            segments.append(tunnel[0])
            index = tunnel[1]
            continue
        if isinstance(headers[index], Ethernet) and words:
            segments.append(" ".join(words))
            words = []
        following = headers[index + 1] if index + 1 < len(headers) else None
        words.append(_describe_one(headers[index], following))
        index += 1
    if words:
        segments.append(" ".join(words))
    if error is not None:
        segments.append(f"[malformed: {error}]")
        if len(segments) > 1:
            segments[-2:] = [" ".join(segments[-2:])]
    return " | ".join(segments) if segments else "empty"
