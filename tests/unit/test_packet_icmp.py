"""ICMP for IPv4 (RFC 792): echo and destination unreachable."""

from __future__ import annotations

import pytest
from hypothesis import given
from packet_strategies import icmps
from scapy.layers.inet import ICMP, IP

from openhnv.packet.errors import PacketError
from openhnv.packet.icmp import (
    ICMP_DEST_UNREACHABLE,
    ICMP_ECHO_REPLY,
    ICMP_ECHO_REQUEST,
    ICMP_FRAGMENTATION_NEEDED,
    ICMP_PORT_UNREACHABLE,
    Icmp,
)

ECHO = bytes.fromhex(
    "08"  # type: echo request
    "00"  # code
    "8f94"  # checksum: ~(0x0800 + 0x0001 + 0x0001 + 0x6869)
    "0001"  # identifier
    "0001"  # sequence number
    "6869"  # data "hi"
)


def test_echo_known_answer() -> None:
    echo = Icmp(ICMP_ECHO_REQUEST, 0, 1, 1, b"hi")
    assert echo.pack().hex() == ECHO.hex()
    assert Icmp.parse(ECHO) == (echo, 10)
    assert echo.is_echo


def test_echo_reply_keeps_identifier_sequence_and_data() -> None:
    reply = Icmp(ICMP_ECHO_REQUEST, 0, 7, 9, b"data").echo_reply()
    assert reply == Icmp(ICMP_ECHO_REPLY, 0, 7, 9, b"data")
    with pytest.raises(PacketError, match=r"is not an echo request"):
        reply.echo_reply()


def test_fragmentation_needed_carries_the_mtu() -> None:
    original = bytes(28)
    message = Icmp.unreachable(ICMP_FRAGMENTATION_NEEDED, original, mtu=1450)
    raw = message.pack()
    assert raw[4:8] == bytes.fromhex("000005aa")  # unused, next-hop MTU 1450
    parsed, _ = Icmp.parse(raw)
    assert parsed.next_hop_mtu == 1450
    assert parsed.payload == original
    assert Icmp.unreachable(ICMP_PORT_UNREACHABLE, original).next_hop_mtu is None


@given(icmps)
def test_round_trip(message: Icmp) -> None:
    raw = message.pack()
    assert Icmp.parse(raw) == (message, len(raw))
    assert Icmp.parse(b"pad" + raw + b"trailer", 3, len(raw)) == (message, 3 + len(raw))


def test_checksum_mismatch_names_icmp() -> None:
    bad = ECHO[:2] + b"\x00\x00" + ECHO[4:]
    with pytest.raises(PacketError) as err:
        Icmp.parse(bad)
    assert str(err.value) == "icmp at offset 0: checksum 0x0000 does not match 0x8f94"
    assert Icmp.parse(bad, verify_checksum=False)[0].payload == b"hi"


def test_truncated() -> None:
    with pytest.raises(PacketError, match=r"^icmp at offset 0: truncated: needs 8 bytes"):
        Icmp.parse(ECHO[:7])
    with pytest.raises(PacketError, match=r"^icmp at offset 0: truncated: needs 12 bytes"):
        Icmp.parse(ECHO, 0, 12)


def test_scapy_reads_ours() -> None:
    packet = ICMP(Icmp(ICMP_ECHO_REPLY, 0, 0x1234, 0x5678, b"payload").pack())
    assert (packet.type, packet.code, packet.id, packet.seq) == (0, 0, 0x1234, 0x5678)
    assert bytes(packet.payload) == b"payload"
    checksum = packet.chksum
    del packet.chksum
    assert ICMP(bytes(packet)).chksum == checksum


def test_we_read_scapys() -> None:
    quoted = bytes(IP(src="10.1.1.12", dst="10.1.1.11", proto=17)) + bytes(8)
    raw = bytes(ICMP(type=3, code=3) / quoted)
    assert Icmp.parse(raw) == (Icmp(ICMP_DEST_UNREACHABLE, 3, 0, 0, quoted), len(raw))
    raw = bytes(ICMP(type=8, id=3, seq=4) / b"abc")
    assert Icmp.parse(raw) == (Icmp(ICMP_ECHO_REQUEST, 0, 3, 4, b"abc"), 11)
