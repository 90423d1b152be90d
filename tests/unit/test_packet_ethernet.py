"""Ethernet II and one 802.1Q tag: known answers, round trips, scapy both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from packet_strategies import ethernets
from scapy.layers.l2 import Dot1Q, Ether

from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, Ethernet

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
