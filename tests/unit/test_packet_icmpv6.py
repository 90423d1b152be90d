"""ICMPv6 (RFC 4443) with its checksum over the IPv6 pseudo-header."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import ipv6s, payloads, u8, u16
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS
from scapy.layers.inet6 import IPv6 as ScapyIPv6

from openhnv.packet.addresses import ip_to_bytes
from openhnv.packet.errors import PacketError
from openhnv.packet.icmpv6 import (
    ICMPV6_ECHO_REQUEST,
    ICMPV6_NEIGHBOR_SOLICITATION,
    Icmpv6,
)

SRC, DST = ip_to_bytes("fd00::1"), ip_to_bytes("fd00::2")


def scapy_echo() -> bytes:
    packet = ScapyIPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(id=7, seq=8, data=b"hi")
    return bytes(packet)[40:]


def test_known_answer_against_scapy() -> None:
    raw = scapy_echo()
    assert raw[:2] + raw[4:] == bytes.fromhex(
        "80"  # type: echo request
        "00"  # code
        "0007"  # identifier
        "0008"  # sequence
        "6869"  # data "hi"
    )
    echo = Icmpv6(ICMPV6_ECHO_REQUEST, 0, 7, 8, b"hi")
    assert echo.pack(SRC, DST) == raw
    assert Icmpv6.parse(raw, 0, SRC, DST) == (echo, 10)


def test_checksum_covers_the_pseudo_header() -> None:
    with pytest.raises(PacketError, match=r"^icmpv6 at offset 0: checksum 0x[0-9a-f]{4} does"):
        Icmpv6.parse(scapy_echo(), 0, SRC, ip_to_bytes("fd00::3"))
    assert Icmpv6.parse(scapy_echo())[0].identifier == 7  # no addresses, no verification


def test_we_read_scapys_neighbor_solicitation() -> None:
    raw = bytes(ScapyIPv6(src="fd00::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="fd00::2"))
    message, end = Icmpv6.parse(raw, 40, SRC, ip_to_bytes("ff02::1:ff00:2"))
    assert (message.type, end) == (ICMPV6_NEIGHBOR_SOLICITATION, len(raw))
    assert message.payload == ip_to_bytes("fd00::2")


@given(u8, u8, u16, u16, payloads, ipv6s, ipv6s)
def test_round_trip(
    kind: int, code: int, ident: int, seq: int, data: bytes, src: bytes, dst: bytes
) -> None:
    message = Icmpv6(kind, code, ident, seq, data)
    raw = message.pack(src, dst)
    assert Icmpv6.parse(raw, 0, src, dst) == (message, len(raw))


def packet_error(call: Callable[[], object]) -> PacketError | None:
    """The PacketError ``call`` raised, or None when it returned (anything else escapes)."""
    try:
        call()
    except PacketError as err:
        return err
    return None


@given(st.binary(max_size=40), st.integers(-2, 42))
def test_only_packet_errors(buf: bytes, offset: int) -> None:
    for args in ((), (SRC, DST), (SRC, DST, 9)):
        err = packet_error(partial(Icmpv6.parse, buf, offset, *args))
        assert err is None or err.header == "icmpv6"


def test_short_message() -> None:
    with pytest.raises(PacketError, match=r"^icmpv6 at offset 0: message of 6 bytes is shorter"):
        Icmpv6.parse(scapy_echo(), 0, length=6)
