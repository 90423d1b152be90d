"""GRE (RFC 2784/2890) and NVGRE (RFC 7637)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import gres, payloads
from scapy.layers.l2 import GRE

from openhnv.packet.errors import PacketError
from openhnv.packet.gre import (
    GRE_KEY_FLAG,
    NVGRE_PROTOCOL,
    Gre,
    nvgre_key,
    split_nvgre_key,
)

NVGRE = bytes.fromhex(
    "2000"  # flags: K (key present), version 0
    "6558"  # protocol: Transparent Ethernet Bridging
    "001389"  # key: VSID 5001
    "07"  # key: FlowID 7
)
ALL_FIELDS = bytes.fromhex(
    "b000"  # flags: C, K, S, version 0
    "0800"  # protocol IPv4
    "0000"  # checksum (patched below)
    "0000"  # reserved1
    "00000010"  # key 16
    "00000020"  # sequence number 32
)


def test_nvgre_known_answer() -> None:
    assert GRE_KEY_FLAG == 0x2000
    header = Gre(NVGRE_PROTOCOL, nvgre_key(5001, 7))
    assert header.pack() == NVGRE
    assert Gre.parse(NVGRE + b"inner") == (header, 8)
    assert header.is_nvgre
    assert split_nvgre_key(header.key or 0) == (5001, 7)


def test_checksum_key_and_sequence_offsets() -> None:
    header = Gre(0x0800, key=16, checksum=True, sequence=32)
    raw = header.pack(b"payload")
    assert raw[:4] + raw[6:] == ALL_FIELDS[:4] + ALL_FIELDS[6:]
    assert Gre.parse(raw + b"payload") == (header, 16)
    assert header.header_length == 16


def test_checksum_mismatch_names_gre() -> None:
    raw = Gre(0x0800, checksum=True).pack(b"payload") + b"paylo4d"
    with pytest.raises(PacketError, match=r"^gre at offset 0: checksum 0x[0-9a-f]{4} does not"):
        Gre.parse(raw)
    assert Gre.parse(raw, verify_checksum=False)[1] == 8


def test_sequence_without_key_is_found() -> None:
    raw = bytes.fromhex("1000 6558 0000002a".replace(" ", ""))
    assert Gre.parse(raw) == (Gre(NVGRE_PROTOCOL, sequence=42), 8)
    assert not Gre(NVGRE_PROTOCOL).is_nvgre


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2001 6558 00000000", "version 1 is not 0"),
        ("4000 6558", "flags 0x4000 set routing, strict source route or recursion bits"),
        ("0100 6558", "flags 0x0100 set routing, strict source route or recursion bits"),
        ("2000 6558 000013", "truncated: needs 4 bytes, only 3 left"),
        ("20", "truncated: needs 4 bytes, only 1 left"),
    ],
)
def test_malformed(raw: str, reason: str) -> None:
    with pytest.raises(PacketError) as err:
        Gre.parse(bytes.fromhex(raw.replace(" ", "")))
    assert err.value.header == "gre"
    assert err.value.reason == reason


def test_nvgre_key_ranges() -> None:
    assert nvgre_key(0xFFFFFF, 0xFF) == 0xFFFFFFFF
    with pytest.raises(PacketError, match=r"^nvgre at offset 0: vsid 16777216 is not in"):
        nvgre_key(1 << 24, 0)
    with pytest.raises(PacketError, match=r"^nvgre at offset 0: flow_id 256 is not in"):
        nvgre_key(5001, 256)
    with pytest.raises(PacketError, match=r"^nvgre at offset 0: key -1 is not in"):
        split_nvgre_key(-1)


@given(st.integers(0, 0xFFFFFF), st.integers(0, 0xFF))
def test_nvgre_key_round_trip(vsid: int, flow_id: int) -> None:
    assert split_nvgre_key(nvgre_key(vsid, flow_id)) == (vsid, flow_id)


@given(gres, payloads)
def test_round_trip(header: Gre, payload: bytes) -> None:
    raw = header.pack(payload) + payload
    assert Gre.parse(raw) == (header, header.header_length)


def test_scapy_reads_ours() -> None:
    packet = GRE(Gre(NVGRE_PROTOCOL, nvgre_key(5001, 7)).pack() + b"x" * 14)
    assert (packet.key_present, packet.chksum_present, packet.seqnum_present) == (1, 0, 0)
    assert (packet.proto, packet.key, packet.version) == (0x6558, 5001 << 8 | 7, 0)
    full = GRE(Gre(0x0800, key=1, checksum=True, sequence=2).pack(b"abcd") + b"abcd")
    assert (full.chksum_present, full.key, full.sequence_number) == (1, 1, 2)
    checksum = full.chksum
    del full.chksum
    assert GRE(bytes(full)).chksum == checksum


def test_we_read_scapys() -> None:
    raw = bytes(GRE(key_present=1, key=0x00138907, proto=0x6558))
    assert Gre.parse(raw) == (Gre(NVGRE_PROTOCOL, 0x00138907), 8)
    raw = bytes(GRE(chksum_present=1, seqnum_present=1, sequence_number=9, proto=0x800) / b"ab")
    assert Gre.parse(raw) == (Gre(0x0800, checksum=True, sequence=9), 12)
