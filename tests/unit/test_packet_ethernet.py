"""Ethernet II and one 802.1Q tag: known answers, round trips, scapy both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import ethernets
from scapy.layers.l2 import Dot1Q, Ether

from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_ARP,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_TAG_LEN,
    VLAN_TCI_AT,
    Ethernet,
    pop_vlan,
    push_vlan,
)

DST = bytes.fromhex("001dd8070001")
SRC = bytes.fromhex("001dd8070002")

UNTAGGED = bytes.fromhex(
    "001dd8070001"  # destination MAC
    "001dd8070002"  # source MAC
    "0800"  # EtherType IPv4
)
TAGGED = bytes.fromhex(
    "ffffffffffff"  # destination MAC: broadcast
    "001dd8070002"  # source MAC
    "8100"  # TPID 802.1Q
    "b00a"  # TCI: PCP 5, DEI 1, VLAN ID 10
    "0806"  # EtherType ARP
)


def test_untagged_known_answer() -> None:
    header = Ethernet(DST, SRC, ETHERTYPE_IPV4)
    assert header.pack() == UNTAGGED
    assert Ethernet.parse(UNTAGGED + b"payload") == (header, 14)
    assert header.header_length == 14


def test_tagged_known_answer() -> None:
    header = Ethernet(b"\xff" * 6, SRC, ETHERTYPE_ARP, vlan_id=10, vlan_pcp=5, vlan_dei=True)
    assert header.pack() == TAGGED
    assert Ethernet.parse(TAGGED) == (header, 18)
    assert header.header_length == 18


def test_parse_at_an_offset() -> None:
    assert Ethernet.parse(b"xx" + UNTAGGED, 2) == (Ethernet(DST, SRC, ETHERTYPE_IPV4), 16)


@given(ethernets)
def test_round_trip(header: Ethernet) -> None:
    assert Ethernet.parse(header.pack()) == (header, header.header_length)


@pytest.mark.parametrize("cut", range(14))
def test_truncated_header(cut: int) -> None:
    with pytest.raises(PacketError, match=r"^ethernet at offset 0: truncated"):
        Ethernet.parse(UNTAGGED[:cut])


def test_truncated_tag_names_802_1q() -> None:
    with pytest.raises(PacketError, match=r"^802.1q at offset 0: truncated"):
        Ethernet.parse(TAGGED[:16])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dst", b"\x00"),
        ("ethertype", 0x10000),
        ("vlan_id", 4096),
        ("vlan_pcp", 8),
        ("vlan_pcp", 1),
        ("ethertype", 0x8100),
    ],
)
def test_bad_fields(field: str, value: object) -> None:
    fields: dict[str, object] = {"dst": DST, "src": SRC, "ethertype": ETHERTYPE_IPV4}
    fields[field] = value
    with pytest.raises(PacketError, match=rf"ethernet at offset 0: .*{field}"):
        Ethernet(**fields)  # type: ignore[arg-type]


def test_scapy_reads_ours() -> None:
    frame = Ether(Ethernet(DST, SRC, 0x88B5, vlan_id=4094, vlan_pcp=3).pack() + b"data")
    assert frame.dst == "00:1d:d8:07:00:01"
    assert frame.src == "00:1d:d8:07:00:02"
    assert frame[Dot1Q].vlan == 4094
    assert frame[Dot1Q].prio == 3
    assert frame[Dot1Q].type == 0x88B5


def test_we_read_scapys() -> None:
    raw = bytes(
        Ether(dst="00:1d:d8:07:00:01", src="00:1d:d8:07:00:02")
        / Dot1Q(vlan=100, prio=6, id=1, type=0x0800)
    )
    header, offset = Ethernet.parse(raw)
    assert header == Ethernet(DST, SRC, ETHERTYPE_IPV4, vlan_id=100, vlan_pcp=6, vlan_dei=True)
    assert offset == 18


@given(vlan=st.integers(1, 4094), pcp=st.integers(0, 7), body=st.binary(max_size=64))
def test_push_then_pop_vlan_is_identity(vlan: int, pcp: int, body: bytes) -> None:
    frame = DST + SRC + b"\x08\x00" + body
    tagged = push_vlan(frame, vlan, pcp)
    assert (Ether(tagged)[Dot1Q].vlan, Ether(tagged)[Dot1Q].prio) == (vlan, pcp)
    assert tagged == Ethernet(DST, SRC, ETHERTYPE_IPV4, vlan, pcp).pack() + body
    assert pop_vlan(tagged) == (vlan, frame)
    assert pop_vlan(frame) == (None, frame)


def test_push_and_pop_refuse_short_frames() -> None:
    with pytest.raises(PacketError, match=r"^ethernet at offset 0: truncated"):
        pop_vlan(bytes(13))
    with pytest.raises(PacketError, match=r"^ethernet at offset 0: truncated"):
        push_vlan(bytes(13), 5)
    with pytest.raises(PacketError, match=r"^802\.1q at offset 0: truncated"):
        pop_vlan(bytes(12) + b"\x81\x00\x00")


def test_offsets_for_hot_paths() -> None:
    assert (ETHERNET_HEADER_LEN, VLAN_TAG_LEN, ETHERTYPE_AT, VLAN_TCI_AT) == (14, 4, 12, 14)
    assert ETHERTYPE_VLAN_BYTES == b"\x81\x00"
    assert ETHERTYPE_IPV4_BYTES == b"\x08\x00"
