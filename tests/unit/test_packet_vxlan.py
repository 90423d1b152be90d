"""VXLAN headers (RFC 7348)."""

from __future__ import annotations

import pytest
from hypothesis import given
from packet_strategies import vxlans
from scapy.layers.vxlan import VXLAN

from openhnv.packet.errors import PacketError
from openhnv.packet.vxlan import VXLAN_HEADER_LEN, VXLAN_PORT, Vxlan

HEADER = bytes.fromhex(
    "08"  # flags: I (VNI valid)
    "000000"  # reserved
    "001389"  # VNI 5001
    "00"  # reserved
)


def test_known_answer() -> None:
    assert (VXLAN_PORT, VXLAN_HEADER_LEN) == (4789, 8)
    assert Vxlan(5001).pack() == HEADER
    assert Vxlan.parse(HEADER + b"inner") == (Vxlan(5001), 8)


def test_reserved_bits_are_ignored_on_receipt() -> None:
    assert Vxlan.parse(bytes.fromhex("0cffffff001389ff"))[0] == Vxlan(5001)


def test_missing_i_flag_is_named() -> None:
    with pytest.raises(PacketError) as err:
        Vxlan.parse(bytes(50) + b"\x00" + HEADER[1:], 50)
    assert str(err.value) == "vxlan at offset 50: flags 0x00 lack the I flag (0x08): no valid VNI"


def test_truncated_and_bad_vni() -> None:
    with pytest.raises(PacketError, match=r"^vxlan at offset 0: truncated: needs 8 bytes"):
        Vxlan.parse(HEADER[:7])
    with pytest.raises(PacketError, match=r"^vxlan at offset 0: vni 16777216 is not in"):
        Vxlan(1 << 24)


@given(vxlans)
def test_round_trip(header: Vxlan) -> None:
    assert Vxlan.parse(header.pack()) == (header, 8)


def test_scapy_reads_ours() -> None:
    packet = VXLAN(Vxlan(0xABCDEF).pack())
    assert packet.vni == 0xABCDEF
    assert int(packet.flags) == 0x08


def test_we_read_scapys() -> None:
    assert Vxlan.parse(bytes(VXLAN(vni=4096, flags=0x08)))[0] == Vxlan(4096)
