"""DHCPv4 messages and options (RFC 2131, RFC 2132)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP

from openhnv.packet.dhcp import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    DHCP_FIXED_LEN,
    DISCOVER,
    FLAG_BROADCAST,
    MIN_MESSAGE_LEN,
    OPTION_INTERFACE_MTU,
    OPTION_MESSAGE_TYPE,
    OPTION_PARAMETER_LIST,
    Dhcp,
    u16_option,
)
from openhnv.packet.errors import PacketError

MAC = bytes.fromhex("001dd8070011")
DISCOVER_BYTES = (
    bytes.fromhex(
        "01"  # op: BOOTREQUEST
        "01"  # htype: Ethernet
        "06"  # hlen
        "00"  # hops
        "12345678"  # xid
        "0003"  # secs
        "8000"  # flags: broadcast
        "00000000"  # ciaddr
        "00000000"  # yiaddr
        "00000000"  # siaddr
        "00000000"  # giaddr
        "001dd8070011" + "00" * 10  # chaddr: the MAC, padded to 16
    )
    + bytes(64 + 128)
    + bytes.fromhex(  # sname, file
        "63825363"  # magic cookie
        "350101"  # option 53, length 1: DISCOVER
        "3703011a06"  # option 55, length 3: subnet mask, MTU, DNS
        "ff"  # END
    )
)


def test_discover_known_answer() -> None:
    message = Dhcp(
        BOOTREQUEST, 0x12345678, MAC,
        ((OPTION_MESSAGE_TYPE, bytes((DISCOVER,))), (OPTION_PARAMETER_LIST, bytes((1, 26, 6)))),
        flags=FLAG_BROADCAST, secs=3,
    )  # fmt: skip
    packed = message.pack()
    assert packed[: len(DISCOVER_BYTES)] == DISCOVER_BYTES
    assert len(packed) == MIN_MESSAGE_LEN
    assert not any(packed[len(DISCOVER_BYTES) :])  # padded with zeros
    parsed, end = Dhcp.parse(DISCOVER_BYTES + bytes(4))  # PAD after END is not read
    assert parsed == message
    assert end == len(DISCOVER_BYTES)
    assert parsed.message_type == DISCOVER
    assert parsed.option(OPTION_PARAMETER_LIST) == bytes((1, 26, 6))
    assert parsed.option(OPTION_INTERFACE_MTU) is None


def test_scapy_reads_what_we_write_and_we_read_what_scapy_writes() -> None:
    ours = Dhcp(
        BOOTREPLY, 7, MAC, ((OPTION_MESSAGE_TYPE, bytes((ACK,))), u16_option(26, 1450)),
        yiaddr=bytes([10, 1, 1, 11]),
    )  # fmt: skip
    theirs = BOOTP(ours.pack())
    assert (theirs.op, theirs.xid, theirs.yiaddr) == (2, 7, "10.1.1.11")
    assert theirs.chaddr[:6] == MAC
    options: dict[str, Any] = dict(o for o in theirs[DHCP].options if isinstance(o, tuple))
    assert (options["message-type"], options["interface-mtu"]) == (5, 1450)
    built = bytes(
        BOOTP(op=1, xid=9, chaddr=MAC, flags=0x8000)
        / DHCP(options=[("message-type", "request"), ("requested_addr", "10.1.1.11"), "end"])
    )
    parsed, _ = Dhcp.parse(built)
    assert (parsed.op, parsed.xid, parsed.client_mac, parsed.flags) == (1, 9, MAC, 0x8000)
    assert parsed.option(50) == bytes([10, 1, 1, 11])


@pytest.mark.parametrize(
    ("buf", "reason"),
    [
        (DISCOVER_BYTES[:100], "dhcp"),
        (DISCOVER_BYTES[:1] + b"\x06" + DISCOVER_BYTES[2:], "hardware type"),
        (
            DISCOVER_BYTES[: DHCP_FIXED_LEN - 4] + b"\0\0\0\0" + DISCOVER_BYTES[DHCP_FIXED_LEN:],
            "cookie",
        ),
        (DISCOVER_BYTES[:DHCP_FIXED_LEN] + b"\x35\x05\x01", "dhcp"),  # option runs past the end
        (b"\x03" + DISCOVER_BYTES[1:], "op"),
    ],
)
def test_malformed_messages_raise_packet_error(buf: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        Dhcp.parse(buf)


def test_out_of_range_fields_and_options_are_refused() -> None:
    with pytest.raises(PacketError, match="client_mac"):
        Dhcp(BOOTREQUEST, 1, b"\x00" * 5)
    with pytest.raises(PacketError, match="xid"):
        Dhcp(BOOTREQUEST, 2**32, MAC)
    with pytest.raises(PacketError, match="option"):
        Dhcp(BOOTREQUEST, 1, MAC, ((255, b""),))
    with pytest.raises(PacketError, match="option"):
        Dhcp(BOOTREQUEST, 1, MAC, ((12, bytes(256)),))


@given(
    st.sampled_from((BOOTREQUEST, BOOTREPLY)),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=6, max_size=6),
    st.lists(st.tuples(st.integers(1, 254), st.binary(max_size=255)), max_size=6),
    st.integers(0, 0xFFFF),
    st.binary(min_size=4, max_size=4),
)
def test_round_trip(
    op: int, xid: int, mac: bytes, options: list[tuple[int, bytes]], flags: int, addr: bytes
) -> None:
    message = Dhcp(op, xid, mac, tuple(options), flags=flags, ciaddr=addr, yiaddr=addr)
    assert Dhcp.parse(message.pack())[0] == message
