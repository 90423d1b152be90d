"""ARP for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import pytest
from hypothesis import given
from packet_strategies import arps
from scapy.layers.l2 import ARP

from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST, Arp
from openhnv.packet.errors import PacketError

MAC_A = bytes.fromhex("001dd8070002")
MAC_B = bytes.fromhex("001dd8070001")
IP_A = bytes([10, 1, 1, 12])
IP_B = bytes([10, 1, 1, 11])

REQUEST = bytes.fromhex(
    "0001"  # hardware type Ethernet
    "0800"  # protocol type IPv4
    "06"  # hardware address length
    "04"  # protocol address length
    "0001"  # operation: request
    "001dd8070002"  # sender MAC
    "0a01010c"  # sender IP 10.1.1.12
    "000000000000"  # target MAC (unknown)
    "0a01010b"  # target IP 10.1.1.11
)


def test_request_known_answer() -> None:
    arp = Arp(ARP_REQUEST, MAC_A, IP_A, bytes(6), IP_B)
    assert arp.pack() == REQUEST
    assert Arp.parse(REQUEST + bytes(18)) == (arp, 28)  # Ethernet padding is not ARP's


def test_reply_answers_the_request() -> None:
    reply = Arp.parse(REQUEST)[0].reply(MAC_B)
    assert reply == Arp(ARP_REPLY, MAC_B, IP_B, MAC_A, IP_A)
    with pytest.raises(PacketError, match=r"only a request can be answered"):
        reply.reply(MAC_B)


@given(arps)
def test_round_trip(arp: Arp) -> None:
    assert Arp.parse(arp.pack()) == (arp, 28)


@pytest.mark.parametrize(
    ("at", "value", "reason"),
    [
        (0, "0006", "hardware type 6 length 6 is not Ethernet"),
        (2, "86dd", "protocol type 0x86dd length 4 is not IPv4"),
        (4, "08", "hardware type 1 length 8 is not Ethernet"),
        (5, "10", "protocol type 0x0800 length 16 is not IPv4"),
        (6, "0003", "op 3 is not request"),
    ],
)
def test_other_than_ethernet_ipv4_is_rejected(at: int, value: str, reason: str) -> None:
    patch = bytes.fromhex(value)
    raw = REQUEST[:at] + patch + REQUEST[at + len(patch) :]
    with pytest.raises(PacketError, match=rf"^arp at offset 0: {reason}"):
        Arp.parse(raw)


def test_truncated() -> None:
    with pytest.raises(PacketError, match=r"arp at offset 14: truncated: needs 28 bytes, only 27"):
        Arp.parse(bytes(14) + REQUEST[:27], 14)


def test_scapy_reads_ours() -> None:
    arp = ARP(Arp(ARP_REPLY, MAC_B, IP_B, MAC_A, IP_A).pack())
    assert (arp.op, arp.hwsrc, arp.psrc, arp.hwdst, arp.pdst) == (
        2,
        "00:1d:d8:07:00:01",
        "10.1.1.11",
        "00:1d:d8:07:00:02",
        "10.1.1.12",
    )


def test_we_read_scapys() -> None:
    raw = bytes(ARP(op=1, hwsrc="00:1d:d8:07:00:02", psrc="10.1.1.12", pdst="10.1.1.11"))
    assert Arp.parse(raw)[0] == Arp(ARP_REQUEST, MAC_A, IP_A, bytes(6), IP_B)
