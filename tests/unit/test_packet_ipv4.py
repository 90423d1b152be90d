"""IPv4 headers (RFC 791): fields, options, header checksum, validation."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import ipv4_headers
from scapy.layers.inet import IP, IPOption_Router_Alert

from openhnv.packet.checksum import internet_checksum
from openhnv.packet.errors import PacketError
from openhnv.packet.ipv4 import (
    IPV4_FLAG_DF,
    IPV4_FLAG_MF,
    PROTO_UDP,
    IPv4,
    parse_options,
)

SRC = bytes([192, 168, 0, 1])
DST = bytes([192, 168, 0, 199])

HEADER = bytes.fromhex(
    "45"  # version 4, IHL 5 words
    "00"  # type of service
    "0073"  # total length 115
    "0000"  # identification
    "4000"  # flags DF, fragment offset 0
    "40"  # TTL 64
    "11"  # protocol UDP
    "b861"  # header checksum
    "c0a80001"  # source 192.168.0.1
    "c0a800c7"  # destination 192.168.0.199
)
WITH_OPTIONS = bytes.fromhex(
    "46"  # version 4, IHL 6 words
    "00"  # type of service
    "0020"  # total length 32
    "abcd"  # identification
    "2001"  # flags MF, fragment offset 1 (8 bytes)
    "01"  # TTL 1
    "02"  # protocol IGMP
    "0000"  # header checksum (patched below)
    "0a000001"  # source 10.0.0.1
    "e0000016"  # destination 224.0.0.22
    "94040000"  # option: Router Alert (RFC 2113), length 4, value 0
)


def with_checksum(header: bytes) -> bytes:
    return header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]


def test_known_answer() -> None:
    header = IPv4(SRC, DST, PROTO_UDP, ttl=64, flags=IPV4_FLAG_DF)
    assert header.pack(95) == HEADER
    parsed, offset = IPv4.parse(HEADER + bytes(95))
    assert parsed == dataclasses.replace(header, total_length=115)
    assert offset == 20
    assert parsed.payload_length == 95
    assert not parsed.is_fragment


def test_known_answer_with_options() -> None:
    raw = with_checksum(WITH_OPTIONS)
    parsed, offset = IPv4.parse(raw + bytes(8))
    assert offset == 24
    assert parsed == IPv4(
        bytes([10, 0, 0, 1]),
        bytes([224, 0, 0, 22]),
        2,
        ttl=1,
        identification=0xABCD,
        flags=IPV4_FLAG_MF,
        fragment_offset=1,
        options=bytes.fromhex("94040000"),
        total_length=32,
    )
    assert parsed.is_fragment
    assert parsed.pack(8) == raw
    assert parse_options(parsed.options) == ((0x94, b"\x00\x00"),)


def test_parse_options_nop_and_end() -> None:
    assert parse_options(bytes.fromhex("01 01 07 03 04 00 99 99".replace(" ", ""))) == (
        (1, b""),
        (1, b""),
        (7, b"\x04"),
    )


@given(ipv4_headers, st.integers(0, 40))
def test_round_trip(header: IPv4, payload_length: int) -> None:
    raw = header.pack(payload_length) + bytes(payload_length)
    total = header.header_length + payload_length
    assert IPv4.parse(raw) == (
        dataclasses.replace(header, total_length=total),
        header.header_length,
    )


def test_checksum_mismatch_names_ipv4_and_both_values() -> None:
    bad = HEADER[:10] + b"\x12\x34" + HEADER[12:]
    with pytest.raises(PacketError) as err:
        IPv4.parse(bytes(14) + bad + bytes(95), 14)
    assert str(err.value) == "ipv4 at offset 14: header checksum 0x1234 does not match 0xb861"
    parsed, _ = IPv4.parse(bad + bytes(95), verify_checksum=False)
    assert parsed.src == SRC


@pytest.mark.parametrize(
    ("patch_at", "patch", "payload", "reason"),
    [
        (0, "65", 95, "version 6 is not 4"),
        (0, "44", 95, "IHL 4 is below 5"),
        (2, "0010", 95, "total length 16 is shorter than the header 20"),
        (2, "0074", 95, "total length 116 runs past the buffer (115 bytes left)"),
        (0, "4f", 0, "truncated: needs 60 bytes, only 20 left"),
    ],
)
def test_malformed(patch_at: int, patch: str, payload: int, reason: str) -> None:
    raw = HEADER[:patch_at] + bytes.fromhex(patch) + HEADER[patch_at + len(patch) // 2 :]
    with pytest.raises(PacketError) as err:
        IPv4.parse(with_checksum(raw) + bytes(payload))
    assert str(err.value) == f"ipv4 at offset 0: {reason}"


@pytest.mark.parametrize("cut", [0, 1, 19])
def test_truncated(cut: int) -> None:
    with pytest.raises(PacketError, match=r"^ipv4 at offset 0: truncated"):
        IPv4.parse(HEADER[:cut])


@pytest.mark.parametrize(
    ("options", "reason"),
    [("07000000", "option 7 length 0 does not fit"), ("01010144", "option 68 has no length")],
)
def test_malformed_options_point_at_the_option(options: str, reason: str) -> None:
    raw = with_checksum(WITH_OPTIONS[:20] + bytes.fromhex(options))
    with pytest.raises(PacketError, match=rf"^ipv4 at offset \d+: {reason}") as err:
        IPv4.parse(raw + bytes(8))
    assert err.value.offset in (20, 23)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ttl", 256), ("flags", 8), ("fragment_offset", 0x2000), ("options", b"\x01"), ("src", b"")],
)
def test_bad_fields(field: str, value: object) -> None:
    fields: dict[str, object] = {"src": SRC, "dst": DST, "protocol": PROTO_UDP, field: value}
    with pytest.raises(PacketError, match=rf"^ipv4 at offset 0: {field}"):
        IPv4(**fields)  # type: ignore[arg-type]


def test_payload_too_long() -> None:
    with pytest.raises(PacketError, match=r"payload length 65516 does not fit"):
        IPv4(SRC, DST, PROTO_UDP).pack(65516)


def test_scapy_reads_ours() -> None:
    raw = IPv4(SRC, DST, 99, ttl=7, tos=0xB8, identification=4242, flags=IPV4_FLAG_DF).pack(3)
    packet = IP(raw + b"abc")
    assert (packet.src, packet.dst, packet.proto, packet.ttl, packet.tos) == (
        "192.168.0.1",
        "192.168.0.199",
        99,
        7,
        0xB8,
    )
    assert (packet.id, int(packet.flags), packet.len, packet.ihl) == (4242, 2, 23, 5)
    checksum = packet.chksum
    del packet.chksum
    assert IP(bytes(packet)).chksum == checksum


def test_we_read_scapys() -> None:
    raw = bytes(
        IP(
            src="10.1.1.12",
            dst="10.1.1.11",
            ttl=9,
            id=77,
            flags="MF",
            frag=3,
            proto=6,
            options=[IPOption_Router_Alert()],
        )
        / (b"x" * 8)
    )
    header, offset = IPv4.parse(raw)
    assert offset == 24
    assert header == IPv4(
        bytes([10, 1, 1, 12]),
        bytes([10, 1, 1, 11]),
        6,
        ttl=9,
        identification=77,
        flags=IPV4_FLAG_MF,
        fragment_offset=3,
        options=bytes.fromhex("94040000"),
        total_length=32,
    )
