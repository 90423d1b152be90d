"""TCP GSO super-frames as a sender with TSO hands them to its device, for the tests of
``packet.segment`` and of the packet ring that takes them whole."""

from __future__ import annotations

from openhnv.packet.checksum import pseudo_header_sum
from openhnv.packet.ethernet import ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet
from openhnv.packet.ipv4 import IPV4_FLAG_DF, PROTO_TCP, IPv4
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.tcp import TCP_ACK, TCP_CHECKSUM_AT, TCP_PSH, Tcp

MAC_A, MAC_B = bytes.fromhex("020000000a01"), bytes.fromhex("020000000b01")
A4, B4 = bytes([10, 1, 1, 11]), bytes([10, 1, 1, 12])
A6 = bytes.fromhex("fd000006000000010000000000000010")
B6 = bytes.fromhex("fd000006000000010000000000000011")
TIMESTAMPS = bytes([1, 1, 8, 10]) + bytes(8)  # NOP NOP, timestamp option: 12 bytes


def gso_frame(
    payload: bytes,
    *,
    v6: bool = False,
    vlan: int | None = None,
    seq: int = 1000,
    flags: int = TCP_ACK | TCP_PSH,
    identification: int = 7,
    options: bytes = TIMESTAMPS,
) -> bytes:
    """One header over the whole payload, the TCP checksum holding the folded
    pseudo-header sum only (CHECKSUM_PARTIAL)."""
    tcp = Tcp(40000, 5201, seq=seq, ack=99, flags=flags, window=500, options=options)
    src, dst = (A6, B6) if v6 else (A4, B4)
    segment_bytes = bytearray(tcp.pack(src, dst, payload))
    partial = pseudo_header_sum(src, dst, PROTO_TCP, len(segment_bytes))
    segment_bytes[TCP_CHECKSUM_AT : TCP_CHECKSUM_AT + 2] = partial.to_bytes(2, "big")
    ethertype = ETHERTYPE_IPV6 if v6 else ETHERTYPE_IPV4
    eth = Ethernet(MAC_B, MAC_A, ethertype, vlan_id=vlan).pack()
    if v6:
        ip = IPv6(src, dst, PROTO_TCP, flow_label=5).pack(len(segment_bytes))
    else:
        ip4 = IPv4(src, dst, PROTO_TCP, identification=identification, flags=IPV4_FLAG_DF)
        ip = ip4.pack(len(segment_bytes))
    return eth + ip + bytes(segment_bytes)
