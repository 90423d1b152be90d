"""AF_PACKET helpers that need no socket: restoring the VLAN tag the kernel took out."""

from __future__ import annotations

import struct

from scapy.layers.l2 import Dot1Q, Ether

from openhnv.vswitch.afpacket import (
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    restore_vlan_tag,
)

FRAME = bytes.fromhex("02000000000b02000000000a0800") + b"payload"


def auxdata(status: int, tci: int, tpid: int) -> bytes:
    return struct.pack("=IIIHHHH", status, len(FRAME), len(FRAME), 0, 14, tci, tpid)


def test_tag_from_auxdata_is_put_back() -> None:
    status = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID | 1
    restored = restore_vlan_tag(FRAME, auxdata(status, tci=(3 << 13) | 20, tpid=0x8100))
    parsed = Ether(restored)
    assert (parsed[Dot1Q].vlan, parsed[Dot1Q].prio, parsed[Dot1Q].type) == (20, 3, 0x0800)
    assert restored[:12] == FRAME[:12]
    assert restored[16:] == FRAME[12:]


def test_tpid_defaults_to_8021q_when_the_kernel_does_not_say() -> None:
    restored = restore_vlan_tag(FRAME, auxdata(TP_STATUS_VLAN_VALID, tci=7, tpid=0))
    assert restored[12:16] == bytes.fromhex("81000007")


def test_untagged_frames_are_unchanged() -> None:
    assert restore_vlan_tag(FRAME, auxdata(1, tci=0, tpid=0)) is FRAME
