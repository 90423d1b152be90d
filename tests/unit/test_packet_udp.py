"""UDP headers (RFC 768) and their checksum over IPv4 and IPv6 pseudo-headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from packet_strategies import ip_pairs, payloads, udps
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from openhnv.packet.addresses import ip_to_bytes
from openhnv.packet.errors import PacketError
from openhnv.packet.udp import Udp

SRC4, DST4 = ip_to_bytes("10.1.1.12"), ip_to_bytes("10.1.1.11")
SRC6, DST6 = ip_to_bytes("fd00::12"), ip_to_bytes("fd00::11")

DATAGRAM_V4 = bytes.fromhex(
    "14e9"  # source port 5353
    "0035"  # destination port 53
    "000d"  # length 13
    "90cb"  # checksum over the IPv4 pseudo-header 10.1.1.12 > 10.1.1.11
    "68656c6c6f"  # payload "hello"
)
DATAGRAM_V6 = bytes.fromhex(
    "14e9"  # source port 5353
    "0035"  # destination port 53
    "000d"  # length 13
    "acbf"  # checksum over the IPv6 pseudo-header fd00::12 > fd00::11
    "68656c6c6f"  # payload "hello"
)


def test_known_answers() -> None:
    assert Udp(5353, 53).pack(SRC4, DST4, b"hello") == DATAGRAM_V4
    assert Udp.parse(DATAGRAM_V4, 0, SRC4, DST4) == (Udp(5353, 53, 13), 8)
    assert Udp(5353, 53).pack(SRC6, DST6, b"hello") == DATAGRAM_V6
    assert Udp.parse(DATAGRAM_V6, 0, SRC6, DST6) == (Udp(5353, 53, 13), 8)


def test_zero_checksum_over_ipv4_means_none() -> None:
    raw = Udp(5353, 53).pack(SRC4, DST4, b"hello", checksum=False)
    assert raw[6:8] == b"\x00\x00"
    assert Udp.parse(raw, 0, SRC4, DST4) == (Udp(5353, 53, 13), 8)


def test_zero_checksum_over_ipv6_is_refused() -> None:
    raw = DATAGRAM_V6[:6] + b"\x00\x00" + DATAGRAM_V6[8:]
    with pytest.raises(PacketError, match=r"^udp at offset 0: zero checksum is not allowed"):
        Udp.parse(raw, 0, SRC6, DST6)
    with pytest.raises(PacketError, match=r"^udp at offset 0: zero checksum is not allowed"):
        Udp(1, 2).pack(SRC6, DST6, b"", checksum=False)


def test_computed_zero_is_sent_as_ffff() -> None:
    # pick a payload word that makes the sum 0xffff, so the checksum computes to 0
    first = Udp(1, 2).pack(SRC4, DST4, b"\x00\x00")
    needed = int.from_bytes(first[6:8], "big")
    raw = Udp(1, 2).pack(SRC4, DST4, needed.to_bytes(2, "big"))
    assert raw[6:8] == b"\xff\xff"
    assert Udp.parse(raw, 0, SRC4, DST4)[0] == Udp(1, 2, 10)


@given(udps, ip_pairs, payloads)
def test_round_trip(header: Udp, ips: tuple[bytes, bytes], payload: bytes) -> None:
    raw = header.pack(ips[0], ips[1], payload)
    parsed, offset = Udp.parse(raw + b"pad", 0, ips[0], ips[1], len(raw) + 3)
    assert parsed == Udp(header.src_port, header.dst_port, 8 + len(payload))
    assert raw[offset : parsed.length] == payload


def test_checksum_mismatch_names_udp() -> None:
    with pytest.raises(PacketError) as err:
        Udp.parse(DATAGRAM_V4, 0, SRC4, ip_to_bytes("10.1.1.13"))
    assert str(err.value).startswith("udp at offset 0: checksum 0x90cb does not match 0x")
    with pytest.raises(PacketError, match=r"^udp at offset 0: checksum"):
        Udp.parse(DATAGRAM_V4[:-1] + b"O", 0, SRC4, DST4)


@pytest.mark.parametrize(
    ("raw", "length", "reason"),
    [
        (DATAGRAM_V4[:7], None, "truncated: needs 8 bytes, only 7 left"),
        (DATAGRAM_V4[:4] + b"\x00\x07" + DATAGRAM_V4[6:], None, "length 7 is below 8"),
        (DATAGRAM_V4, 12, "length 13 runs past the IP payload (12 bytes)"),
    ],
)
def test_malformed(raw: bytes, length: int | None, reason: str) -> None:
    with pytest.raises(PacketError) as err:
        Udp.parse(raw, 0, length=length)
    assert str(err.value) == f"udp at offset 0: {reason}"


def test_scapy_reads_ours() -> None:
    packet = IP(bytes(IP(src="10.1.1.12", dst="10.1.1.11") / UDP(DATAGRAM_V4)))
    assert (packet[UDP].sport, packet[UDP].dport, packet[UDP].len) == (5353, 53, 13)
    checksum = packet[UDP].chksum
    del packet[UDP].chksum
    assert IP(bytes(packet))[UDP].chksum == checksum
    v6 = IPv6(bytes(IPv6(src="fd00::12", dst="fd00::11") / UDP(DATAGRAM_V6)))
    checksum = v6[UDP].chksum
    del v6[UDP].chksum
    assert IPv6(bytes(v6))[UDP].chksum == checksum


def test_we_read_scapys() -> None:
    raw = bytes(IP(src="10.1.1.12", dst="10.1.1.11") / UDP(sport=1, dport=4789) / b"x")[20:]
    assert Udp.parse(raw, 0, SRC4, DST4) == (Udp(1, 4789, 9), 8)
    raw6 = bytes(IPv6(src="fd00::12", dst="fd00::11") / UDP(sport=1, dport=2))[40:]
    assert Udp.parse(raw6, 0, SRC6, DST6) == (Udp(1, 2, 8), 8)
