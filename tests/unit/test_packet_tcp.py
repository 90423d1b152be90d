"""TCP headers (RFC 9293) and their checksum over IPv4 and IPv6 pseudo-headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from packet_strategies import ip_pairs, payloads, tcps
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from openhnv.packet.addresses import ip_to_bytes
from openhnv.packet.errors import PacketError
from openhnv.packet.tcp import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, Tcp

SRC4, DST4 = ip_to_bytes("10.1.1.12"), ip_to_bytes("10.1.1.11")
SRC6, DST6 = ip_to_bytes("fd00::12"), ip_to_bytes("fd00::11")

SYN = bytes.fromhex(
    "9c40"  # source port 40000
    "0599"  # destination port 1433
    "00000001"  # sequence number 1
    "00000000"  # acknowledgment number
    "6002"  # data offset 6 words, flags SYN
    "faf0"  # window 64240
    "e542"  # checksum over the IPv4 pseudo-header 10.1.1.12 > 10.1.1.11
    "0000"  # urgent pointer
    "020405b4"  # option: MSS 1460
)
PUSH_V6 = bytes.fromhex(
    "9c40"  # source port 40000
    "0599"  # destination port 1433
    "00000005"  # sequence number 5
    "00000006"  # acknowledgment number 6
    "5018"  # data offset 5 words, flags PSH ACK
    "2000"  # window 8192
    "afec"  # checksum over the IPv6 pseudo-header fd00::12 > fd00::11
    "0000"  # urgent pointer
    "68656c6c6f"  # payload "hello"
)


def test_syn_known_answer() -> None:
    syn = Tcp(40000, 1433, seq=1, flags=TCP_SYN, window=64240, options=bytes.fromhex("020405b4"))
    assert syn.pack(SRC4, DST4, b"") == SYN
    assert Tcp.parse(SYN, 0, SRC4, DST4) == (syn, 24)


def test_ipv6_known_answer() -> None:
    push = Tcp(40000, 1433, seq=5, ack=6, flags=TCP_PSH | TCP_ACK, window=8192)
    assert push.pack(SRC6, DST6, b"hello") == PUSH_V6
    assert Tcp.parse(PUSH_V6, 0, SRC6, DST6) == (push, 20)


def test_flag_values() -> None:
    assert (TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK) == (1, 2, 4, 8, 16)


@given(tcps, ip_pairs, payloads)
def test_round_trip(header: Tcp, ips: tuple[bytes, bytes], payload: bytes) -> None:
    raw = header.pack(ips[0], ips[1], payload)
    parsed, offset = Tcp.parse(b"ab" + raw, 2, ips[0], ips[1])
    assert parsed == header
    assert raw[offset - 2 :] == payload


def test_checksum_mismatch_names_tcp() -> None:
    with pytest.raises(PacketError) as err:
        Tcp.parse(bytes(34) + SYN, 34, SRC4, ip_to_bytes("10.1.1.13"))
    assert err.value.header == "tcp"
    assert err.value.offset == 34
    assert err.value.reason.startswith("checksum 0xe542 does not match 0x")
    assert Tcp.parse(SYN, 0)[0].dst_port == 1433  # no IPs, no verification


def test_length_limits_the_segment() -> None:
    raw = PUSH_V6 + b"trailer"
    assert Tcp.parse(raw, 0, SRC6, DST6, len(PUSH_V6))[1] == 20
    with pytest.raises(PacketError, match=r"^tcp at offset 0: header length 20 is longer"):
        Tcp.parse(raw, 0, length=19)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (SYN[:19], "truncated: needs 20 bytes, only 19 left"),
        (SYN[:12] + b"\x40" + SYN[13:], "data offset 4 is below 5"),
        (SYN[:12] + b"\x70" + SYN[13:], "header length 28 is longer than the segment (24 bytes)"),
    ],
)
def test_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as err:
        Tcp.parse(raw)
    assert str(err.value) == f"tcp at offset 0: {reason}"


def test_bad_fields() -> None:
    with pytest.raises(PacketError, match=r"^tcp at offset 0: dst_port 65536"):
        Tcp(1, 65536)
    with pytest.raises(PacketError, match=r"^tcp at offset 0: options are 3 bytes"):
        Tcp(1, 2, options=b"\x01\x01\x01")
    with pytest.raises(PacketError, match=r"^tcp at offset 0: .*not both IPv4 or both IPv6"):
        Tcp(1, 2).pack(SRC4, DST6, b"")


def test_scapy_reads_ours() -> None:
    segment = Tcp(1234, 80, seq=7, ack=8, flags=TCP_SYN | TCP_ACK).pack(SRC4, DST4, b"data")
    packet = IP(bytes(IP(src="10.1.1.12", dst="10.1.1.11") / TCP(segment)))
    tcp = packet[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, str(tcp.flags)) == (1234, 80, 7, 8, "SA")
    checksum = tcp.chksum
    del packet[TCP].chksum
    assert IP(bytes(packet))[TCP].chksum == checksum
    v6 = IPv6(src="fd00::12", dst="fd00::11") / TCP(Tcp(1, 2).pack(SRC6, DST6, b"x"))
    checksum = v6[TCP].chksum
    del v6[TCP].chksum
    assert IPv6(bytes(v6))[TCP].chksum == checksum


def test_we_read_scapys() -> None:
    packet = IP(src="10.1.1.12", dst="10.1.1.11") / TCP(
        sport=5, dport=6, seq=9, flags="FA", options=[("NOP", None), ("NOP", None)]
    )
    raw = bytes(packet)[20:]
    assert Tcp.parse(raw, 0, SRC4, DST4) == (
        Tcp(5, 6, seq=9, flags=TCP_FIN | TCP_ACK, window=8192, options=b"\x01\x01\x00\x00"),
        24,
    )
