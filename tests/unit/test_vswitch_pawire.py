"""PA-side wire helpers, checked against scapy as an independent decoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from openhnv.vswitch.pawire import (
    ArpPacket,
    Ipv4View,
    WireError,
    ethernet_header,
    icmp_echo_reply,
    internet_checksum,
    ipv4_header,
    mac_bytes,
    mac_text,
    pop_vlan,
    push_vlan,
)

SRC = "02:00:00:00:00:0a"
DST = "02:00:00:00:00:0b"


def test_tagged_header_known_answer() -> None:
    header = ethernet_header(mac_bytes(DST), mac_bytes(SRC), 0x0800, vlan=20)
    assert header == (
        bytes.fromhex("02000000000b")  # destination MAC
        + bytes.fromhex("02000000000a")  # source MAC
        + bytes.fromhex("8100")  # TPID 802.1Q
        + bytes.fromhex("0014")  # PCP 0, DEI 0, VID 20
        + bytes.fromhex("0800")  # EtherType IPv4
    )
    parsed = Ether(header + b"\x00" * 20)
    assert parsed[Dot1Q].vlan == 20 and parsed[Dot1Q].type == 0x0800


@given(vlan=st.integers(1, 4094), body=st.binary(min_size=0, max_size=64))
def test_push_then_pop_is_identity(vlan: int, body: bytes) -> None:
    frame = mac_bytes(DST) + mac_bytes(SRC) + b"\x08\x00" + body
    tagged = push_vlan(frame, vlan)
    assert Ether(tagged)[Dot1Q].vlan == vlan
    assert pop_vlan(tagged) == (vlan, frame)
    assert pop_vlan(frame) == (None, frame)


def test_short_frames_raise() -> None:
    with pytest.raises(WireError, match="ethernet"):
        pop_vlan(b"\x00" * 13)
    with pytest.raises(WireError, match=r"802\.1q"):
        pop_vlan(b"\x00" * 12 + b"\x81\x00\x00")
    with pytest.raises(WireError, match="not a MAC"):
        mac_bytes("02:00")


def test_arp_round_trip_against_scapy() -> None:
    arp = ArpPacket(
        1, mac_bytes(SRC), bytes([192, 168, 1, 10]), b"\x00" * 6, bytes([192, 168, 1, 1])
    )
    decoded = ARP(arp.build())
    assert (decoded.op, decoded.hwsrc, decoded.psrc, decoded.pdst) == (
        1,
        SRC,
        "192.168.1.10",
        "192.168.1.1",
    )
    assert ArpPacket.parse(
        bytes(ARP(op=2, hwsrc=DST, psrc="1.2.3.4", pdst="5.6.7.8"))
    ) == ArpPacket(2, mac_bytes(DST), bytes([1, 2, 3, 4]), b"\x00" * 6, bytes([5, 6, 7, 8]))
    with pytest.raises(WireError, match="operation 3"):
        ArpPacket.parse(bytes(ARP(op=3)))
    with pytest.raises(WireError, match="arp: 10 bytes"):
        ArpPacket.parse(b"\x00" * 10)


def test_ipv4_header_matches_scapy_checksum() -> None:
    header = ipv4_header(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 17, 8)
    scapy_ip = IP(header + b"\x00" * 8)
    expected = IP(
        bytes(
            IP(src="10.0.0.1", dst="10.0.0.2", proto=17, flags="DF", ttl=64, id=0) / (b"\x00" * 8)
        )
    )
    assert scapy_ip.chksum == expected.chksum
    assert internet_checksum(header) == 0
    view = Ipv4View.parse(header + b"\x00" * 8)
    assert (view.protocol, view.total_length, view.fragmented) == (17, 28, False)
    with pytest.raises(WireError, match="version 6"):
        Ipv4View.parse(b"\x60" + b"\x00" * 39)
    with pytest.raises(WireError, match="do not fit"):
        Ipv4View.parse(header[:2] + b"\x00\xff" + header[4:])


def test_echo_reply_keeps_id_sequence_and_data() -> None:
    request = bytes(ICMP(type=8, id=9, seq=4) / b"abc")
    reply = ICMP(icmp_echo_reply(request))
    assert (reply.type, reply.id, reply.seq, bytes(reply.payload)) == (0, 9, 4, b"abc")
    assert internet_checksum(bytes(reply)) == 0
    with pytest.raises(WireError):
        icmp_echo_reply(bytes(ICMP(type=0)))


def test_mac_text_round_trip() -> None:
    assert mac_text(mac_bytes("02-00-00-00-00-0A")) == SRC
