"""The Internet checksum (RFC 1071) and the TCP/UDP pseudo-headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.packet.checksum import (
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum,
    update_checksum,
    update_checksum_word,
    verify_checksum,
)
from openhnv.packet.errors import PacketError


def reference_sum(data: bytes) -> int:
    """RFC 1071 §4.1, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_rfc1071_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")  # RFC 1071 §3's numerical example
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_all_zero_words_sum_to_zero_and_checksum_to_ffff() -> None:
    assert ones_complement_sum(b"\x00" * 20) == 0
    assert internet_checksum(b"\x00" * 20) == 0xFFFF


def test_negative_zero_is_ffff() -> None:
    assert ones_complement_sum(b"\xff\xff") == 0xFFFF
    assert ones_complement_sum(b"\x12\x34\xed\xcb") == 0xFFFF


def test_odd_length_pads_with_zero() -> None:
    assert ones_complement_sum(b"\x01") == 0x0100


@given(st.binary(max_size=300))
def test_matches_the_word_loop(data: bytes) -> None:
    assert ones_complement_sum(data) == reference_sum(data)


@given(st.binary(max_size=300).map(lambda b: b + b"\x00" * (len(b) % 2)))
def test_appending_the_checksum_verifies(data: bytes) -> None:
    assert internet_checksum(data + internet_checksum(data).to_bytes(2, "big")) == 0


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_initial_chains_sums(head: bytes, tail: bytes) -> None:
    head += b"\x00" * (len(head) % 2)
    assert ones_complement_sum(tail, ones_complement_sum(head)) == reference_sum(head + tail)


def test_pseudo_headers() -> None:
    v4 = pseudo_header_sum(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 17, 12)
    assert v4 == reference_sum(bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12]))
    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    v6 = pseudo_header_sum(src, dst, 6, 20)
    assert v6 == reference_sum(src + dst + (20).to_bytes(4, "big") + bytes(3) + b"\x06")


def test_mixed_families_are_refused_by_name() -> None:
    with pytest.raises(PacketError, match=r"tcp at offset 0: .*not both IPv4 or both IPv6"):
        pseudo_header_sum(bytes(4), bytes(16), 6, 20, "tcp")


def test_verify_names_found_and_expected() -> None:
    with pytest.raises(PacketError) as err:
        verify_checksum("udp", 34, bytes.fromhex("00010002000a1234") + b"ab", 6)
    assert err.value.header == "udp"
    assert err.value.offset == 34
    expected = internet_checksum(bytes.fromhex("00010002000a0000") + b"ab")
    assert err.value.reason == f"checksum 0x1234 does not match {expected:#06x}"


@given(
    st.binary(min_size=2, max_size=64).filter(lambda b: len(b) % 2 == 0),
    st.data(),
)
def test_incremental_update_equals_a_fresh_checksum(data: bytes, draw: st.DataObject) -> None:
    """RFC 1624: changing words and updating the checksum gives the checksum of the new
    data (up to the two forms of one's complement zero, 0x0000 and 0xFFFF)."""
    at = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    size = draw.draw(st.integers(1, (len(data) - at) // 2)) * 2
    new = draw.draw(st.binary(min_size=size, max_size=size))
    changed = data[:at] + new + data[at + size :]
    old_sum = internet_checksum(data)
    updated = update_checksum(old_sum, data[at : at + size], new)
    fresh = internet_checksum(changed)
    assert updated == fresh or {updated, fresh} == {0, 0xFFFF}
    if size == 2:
        word = update_checksum_word(old_sum, int.from_bytes(data[at : at + 2]), int.from_bytes(new))
        assert word == updated


def test_ttl_decrement_known_answer() -> None:
    header = bytes.fromhex("4500001c00000000401100000a0000010a000002")
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    lowered = header[:8] + b"\x3f" + header[9:]
    old = internet_checksum(header[:10] + b"\0\0" + header[12:])
    new = update_checksum_word(old, 0x4011, 0x3F11)
    assert new == internet_checksum(lowered[:10] + b"\0\0" + lowered[12:])
