"""MAC and IP addresses between text and bytes; PacketError and its helpers."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.packet.addresses import (
    BROADCAST_MAC,
    ip_to_bytes,
    ip_to_str,
    is_multicast_mac,
    mac_to_bytes,
    mac_to_str,
)
from openhnv.packet.errors import PacketError, need

MAC = b"\x00\x1d\xd8\x07\x00\x01"


@pytest.mark.parametrize(
    "text", ["00:1d:d8:07:00:01", "00-1D-D8-07-00-01", "001DD8070001", "00:1D:d8:07:00:01", MAC]
)
def test_mac_forms(text: str | bytes) -> None:
    assert mac_to_bytes(text) == MAC


@pytest.mark.parametrize(
    "text",
    ["00:1d:d8:07:00", "00:1d-d8:07:00:01", "001DD807000", "zz:1d:d8:07:00:01", "", b"\x00" * 5],
)
def test_bad_macs(text: str | bytes) -> None:
    with pytest.raises(PacketError, match=r"^address at offset 0: MAC") as err:
        mac_to_bytes(text)
    assert err.value.header == "address"


def test_mac_to_str_is_lower_case_with_colons() -> None:
    assert mac_to_str(b"\x00\x1d\xd8\xb7\x1c\x06") == "00:1d:d8:b7:1c:06"
    assert mac_to_str(BROADCAST_MAC) == "ff:ff:ff:ff:ff:ff"
    with pytest.raises(PacketError):
        mac_to_str(b"\x00")


def test_multicast_bit() -> None:
    assert is_multicast_mac(BROADCAST_MAC)
    assert is_multicast_mac(bytes.fromhex("01005e000001"))
    assert not is_multicast_mac(MAC)


@given(st.binary(min_size=6, max_size=6))
def test_mac_round_trip(mac: bytes) -> None:
    assert mac_to_bytes(mac_to_str(mac)) == mac
    assert mac_to_bytes(mac_to_str(mac).replace(":", "-").upper()) == mac


def test_ip_forms() -> None:
    assert ip_to_bytes("10.1.1.11") == bytes([10, 1, 1, 11])
    assert ip_to_bytes("fd00::1") == bytes.fromhex("fd00" + "00" * 13 + "01")
    assert ip_to_str(bytes([192, 168, 1, 10])) == "192.168.1.10"
    assert ip_to_str(bytes.fromhex("fd00" + "00" * 13 + "01")) == "fd00::1"


@pytest.mark.parametrize("text", ["10.1.1", "10.1.1.256", "fd00:::1", "host", b"\x01\x02"])
def test_bad_ips(text: str | bytes) -> None:
    with pytest.raises(PacketError, match=r"^address at offset 0: "):
        ip_to_bytes(text)


@given(st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16))
def test_ip_round_trip(address: bytes) -> None:
    assert ip_to_bytes(ip_to_str(address)) == address


def test_packet_error_fields_and_text() -> None:
    err = PacketError("ipv4", 14, "header checksum 0x1234 does not match 0xabcd")
    assert str(err) == "ipv4 at offset 14: header checksum 0x1234 does not match 0xabcd"
    assert (err.header, err.offset, err.reason) == (
        "ipv4",
        14,
        "header checksum 0x1234 does not match 0xabcd",
    )
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.header, again.offset, again.reason) == (err.header, err.offset, err.reason)


def test_need() -> None:
    need(b"abcd", 1, 3, "x")
    with pytest.raises(PacketError, match=r"x at offset 2: truncated: needs 3 bytes, only 2 left"):
        need(b"abcd", 2, 3, "x")
    with pytest.raises(PacketError, match=r"negative offset"):
        need(b"abcd", -1, 1, "x")
