"""The IPv6 base header (RFC 8200)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import ipv6_headers
from scapy.layers.inet6 import IPv6 as ScapyIPv6

from openhnv.packet.addresses import ip_to_bytes
from openhnv.packet.errors import PacketError
from openhnv.packet.ipv6 import IPv6

SRC = ip_to_bytes("fd00::12")
DST = ip_to_bytes("fd00::11")

HEADER = bytes.fromhex(
    "6"  # version 6
    "b8"  # traffic class 0xb8 (DSCP EF)
    "12345"  # flow label
    "0004"  # payload length 4
    "11"  # next header UDP
    "40"  # hop limit 64
    "fd000000000000000000000000000012"  # source fd00::12
    "fd000000000000000000000000000011"  # destination fd00::11
)


def test_known_answer() -> None:
    header = IPv6(SRC, DST, 17, hop_limit=64, traffic_class=0xB8, flow_label=0x12345)
    assert header.pack(4) == HEADER
    assert IPv6.parse(HEADER + b"abcd") == (dataclasses.replace(header, payload_length=4), 40)


@given(ipv6_headers, st.integers(0, 40))
def test_round_trip(header: IPv6, payload_length: int) -> None:
    raw = header.pack(payload_length) + bytes(payload_length)
    parsed = dataclasses.replace(header, payload_length=payload_length)
    assert IPv6.parse(raw) == (parsed, 40)


def test_malformed() -> None:
    with pytest.raises(PacketError, match=r"^ipv6 at offset 0: version 4 is not 6"):
        IPv6.parse(b"\x4b" + HEADER[1:] + b"abcd")
    with pytest.raises(PacketError, match=r"^ipv6 at offset 0: payload length 4 runs past"):
        IPv6.parse(HEADER + b"abc")
    with pytest.raises(PacketError, match=r"^ipv6 at offset 2: truncated: needs 40 bytes"):
        IPv6.parse(b"xx" + HEADER[:39], 2)
    with pytest.raises(PacketError, match=r"^ipv6 at offset 0: flow_label"):
        IPv6(SRC, DST, 17, flow_label=1 << 20)
    with pytest.raises(PacketError, match=r"^ipv6 at offset 0: src"):
        IPv6(b"\x00" * 4, DST, 17)


def test_scapy_reads_ours() -> None:
    packet = ScapyIPv6(HEADER + b"abcd")
    assert (packet.src, packet.dst, packet.nh, packet.hlim) == ("fd00::12", "fd00::11", 17, 64)
    assert (packet.tc, packet.fl, packet.plen) == (0xB8, 0x12345, 4)


def test_we_read_scapys() -> None:
    raw = bytes(ScapyIPv6(src="fd00::12", dst="fd00::11", nh=59, hlim=3, tc=1, fl=7) / b"xyz")
    assert IPv6.parse(raw) == (
        IPv6(SRC, DST, 59, hop_limit=3, traffic_class=1, flow_label=7, payload_length=3),
        40,
    )
