"""Segmenting TCP GSO super-frames: the payload cut at gso_size, every header of every
segment as a NIC would have sent it, checked by scapy as an independent decoder."""

from __future__ import annotations

import pytest
from gso_frames import A4, B4, MAC_A, MAC_B, gso_frame
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6 as ScapyIPv6
from scapy.layers.l2 import GRE, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import Ethernet
from openhnv.packet.frames import nvgre_encapsulate, udp_frame, vxlan_encapsulate
from openhnv.packet.segment import (
    GSO_ECN,
    GSO_TCPV4,
    GSO_TCPV6,
    GSO_UDP_L4,
    segment,
)
from openhnv.packet.tcp import TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH

OUTER = {
    "outer_src_mac": "02:00:c0:a8:01:0a",
    "outer_dst_mac": "02:00:c0:a8:01:14",
    "src_pa": "192.168.1.10",
    "dst_pa": "192.168.1.20",
}
UDP_FRAME = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A4, dst_ip=B4, src_port=1,
                      dst_port=2, payload=bytes(3000))  # fmt: skip


def checksums_recomputed(packet: Ether) -> Ether:
    """``packet`` rebuilt by scapy with every checksum and length it computes itself."""
    copy = packet.copy()
    for layer in (IP, TCP, UDP):
        found: Packet | None = copy
        while found is not None and found.haslayer(layer):
            found = found.getlayer(layer)
            assert found is not None
            for field in ("chksum", "len"):
                if field in found.fields and not (layer is UDP and found.chksum == 0):
                    del found.fields[field]
            found = found.payload
    return Ether(bytes(copy))


def assert_as_scapy_computes(frame: bytes) -> Ether:
    """scapy decodes ``frame`` and computes the same checksums and lengths."""
    packet = Ether(frame)
    assert packet.haslayer(TCP)
    assert bytes(checksums_recomputed(packet)) == frame
    return packet


def inner_tcp(packet: Ether) -> Packet:
    tcp: Packet = packet[TCP]
    while tcp.payload.haslayer(TCP):
        tcp = tcp.payload[TCP]
    return tcp


@pytest.mark.parametrize(("v6", "vlan"), [(False, None), (False, 20), (True, None), (True, 30)])
def test_a_super_frame_is_cut_at_gso_size_with_every_header_right(
    v6: bool, vlan: int | None
) -> None:
    payload = bytes(range(256)) * 20  # 5120 bytes: three segments of 1448 and one of 776
    frame = gso_frame(payload, v6=v6, vlan=vlan, flags=TCP_ACK | TCP_PSH | TCP_FIN)
    segments = segment(frame, GSO_TCPV6 if v6 else GSO_TCPV4, 1448)
    assert len(segments) == 4
    packets = [assert_as_scapy_computes(s) for s in segments]
    assert b"".join(bytes(p[TCP].payload) for p in packets) == payload
    assert [p[TCP].seq for p in packets] == [1000, 2448, 3896, 5344]
    assert [str(p[TCP].flags) for p in packets] == ["A", "A", "A", "FPA"]
    assert all(p[TCP].options == packets[0][TCP].options for p in packets)  # options kept
    if v6:
        assert [p[ScapyIPv6].plen for p in packets] == [1480, 1480, 1480, 808]
        assert all(p[ScapyIPv6].fl == 5 for p in packets)
    else:
        assert [p[IP].id for p in packets] == [7, 8, 9, 10]
        assert [p[IP].len for p in packets] == [1500, 1500, 1500, 828]
        assert all(p[IP].flags == "DF" for p in packets)
    if vlan is not None:
        assert all(s[12:16] == b"\x81\x00" + vlan.to_bytes(2, "big") for s in segments)


def test_cwr_stays_on_the_first_segment_only() -> None:
    frame = gso_frame(bytes(3000), flags=TCP_ACK | TCP_CWR)
    packets = [Ether(s) for s in segment(frame, GSO_TCPV4 | GSO_ECN, 1000)]
    assert [str(p[TCP].flags) for p in packets] == ["AC", "A", "A"]


def test_sequence_numbers_wrap_and_identifications_wrap() -> None:
    frame = gso_frame(bytes(3000), seq=(1 << 32) - 1000, identification=0xFFFF)
    packets = [assert_as_scapy_computes(s) for s in segment(frame, GSO_TCPV4, 1000)]
    assert [p[TCP].seq for p in packets] == [(1 << 32) - 1000, 0, 1000]
    assert [p[IP].id for p in packets] == [0xFFFF, 0, 1]


def test_a_frame_that_fits_one_segment_comes_back_finished() -> None:
    frame = gso_frame(b"small", flags=TCP_ACK | TCP_PSH)
    (only,) = segment(frame, GSO_TCPV4, 1448)
    packet = assert_as_scapy_computes(only)
    assert bytes(packet[TCP].payload) == b"small"
    assert str(packet[TCP].flags) == "PA"


@pytest.mark.parametrize("v6", [False, True])
def test_a_vxlan_super_frame_keeps_its_outer_headers_with_their_lengths(v6: bool) -> None:
    payload = bytes(range(200)) * 30  # 6000 bytes
    inner = gso_frame(payload, v6=v6)
    outer = vxlan_encapsulate(inner, vni=5001, src_port=51234, **OUTER)  # type: ignore[arg-type]
    outer = outer[:18] + (300).to_bytes(2, "big") + outer[20:]  # an outer identification
    segments = segment(outer, GSO_TCPV6 if v6 else GSO_TCPV4, 1400)
    packets = [assert_as_scapy_computes(s) for s in segments]
    assert len(packets) == 5
    assert all(p[VXLAN].vni == 5001 for p in packets)
    assert all(p[UDP].chksum == 0 and p[UDP].sport == 51234 for p in packets)
    assert [p[IP].id for p in packets] == [300, 301, 302, 303, 304]
    assert all(p[IP].len == len(s) - 14 for p, s in zip(packets, segments, strict=True))
    tcps = [inner_tcp(p) for p in packets]
    assert b"".join(bytes(t.payload) for t in tcps) == payload
    assert [t.seq for t in tcps] == [1000 + 1400 * i for i in range(5)]
    for p in packets:  # the inner packet's own headers, by scapy from the inner bytes
        assert_as_scapy_computes(bytes(p[VXLAN].payload))


def test_an_nvgre_super_frame_keeps_its_key_and_outer_lengths() -> None:
    payload = bytes(4000)
    inner = gso_frame(payload, vlan=None)
    outer = nvgre_encapsulate(inner, vsid=5002, flow_id=9, **OUTER)  # type: ignore[arg-type]
    segments = segment(outer, GSO_TCPV4, 1448)
    assert len(segments) == 3
    for s in segments:
        packet = Ether(s)
        assert packet[GRE].key == 5002 << 8 | 9
        assert packet[IP].len == len(s) - 14
        assert bytes(checksums_recomputed(packet))[:34] == s[:34]  # outer IPv4 checksum
        assert_as_scapy_computes(s[14 + 20 + 8 :])  # the inner frame
    assert b"".join(s[42 + 66 :] for s in segments) == payload


def test_udp_gso_is_refused_by_name() -> None:
    frame = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A4, dst_ip=B4, src_port=1,
                      dst_port=2, payload=bytes(3000))  # fmt: skip
    with pytest.raises(PacketError, match="gso_type 0x5 \\(udp_l4\\) is not TCP"):
        segment(frame, GSO_UDP_L4, 1000)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x00" * 10, "truncated"),
        (Ethernet(MAC_B, MAC_A, 0x0806).pack() + bytes(28), "neither IPv4 nor IPv6"),
        (UDP_FRAME, "UDP port 2 is not VXLAN"),
    ],
    ids=["truncated", "arp", "udp"],
)
def test_what_is_not_a_tcp_frame_is_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        segment(frame, GSO_TCPV4, 1000)


def test_a_zero_gso_size_is_refused() -> None:
    with pytest.raises(PacketError, match="gso_size 0"):
        segment(gso_frame(bytes(100)), GSO_TCPV4, 0)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=20000),
    gso_size=st.integers(min_value=1, max_value=9000),
    v6=st.booleans(),
    tunnel=st.sampled_from([None, "vxlan", "nvgre"]),
    seq=st.integers(min_value=0, max_value=(1 << 32) - 1),
    fin=st.booleans(),
)
def test_segments_concatenate_to_the_payload_fit_gso_size_and_continue_the_sequence(
    size: int, gso_size: int, v6: bool, tunnel: str | None, seq: int, fin: bool
) -> None:
    payload = bytes(i % 251 for i in range(size))
    flags = TCP_ACK | TCP_PSH | (TCP_FIN if fin else 0)
    frame = gso_frame(payload, v6=v6, seq=seq, flags=flags)
    if tunnel == "vxlan":
        frame = vxlan_encapsulate(frame, vni=7, src_port=50000, **OUTER)  # type: ignore[arg-type]
    elif tunnel == "nvgre":
        frame = nvgre_encapsulate(frame, vsid=7, flow_id=1, **OUTER)  # type: ignore[arg-type]
    segments = segment(frame, GSO_TCPV6 if v6 else GSO_TCPV4, gso_size)
    packets = [assert_as_scapy_computes(s) for s in segments]
    tcps = [inner_tcp(p) for p in packets]
    chunks = [bytes(t.payload) for t in tcps]
    assert b"".join(chunks) == payload
    assert all(len(c) <= gso_size for c in chunks)
    assert all(len(c) == gso_size for c in chunks[:-1])
    expected = seq
    for t, chunk in zip(tcps, chunks, strict=True):
        assert t.seq == expected
        expected = (expected + len(chunk)) % (1 << 32)
    assert [bool(t.flags & TCP_FIN) for t in tcps] == [False] * (len(tcps) - 1) + [fin]
