"""The access-port relay: pop our VLAN towards the access link, push it back."""

from __future__ import annotations

from scapy.layers.l2 import Dot1Q, Ether

from openhnv.vswitch.accessport import access_to_trunk, main, trunk_to_access

UNTAGGED = bytes(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02", type=0x0800) / (b"x" * 30))


def tagged(vlan: int) -> bytes:
    return bytes(
        Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")
        / Dot1Q(vlan=vlan, type=0x0800)
        / (b"x" * 30)
    )


def test_trunk_frames_of_our_vlan_lose_the_tag_on_the_access_link() -> None:
    assert trunk_to_access(tagged(20), 20) == UNTAGGED


def test_other_vlans_untagged_and_runts_are_not_relayed_to_the_router() -> None:
    assert trunk_to_access(tagged(30), 20) is None
    assert trunk_to_access(UNTAGGED, 20) is None
    assert trunk_to_access(b"\x00" * 5, 20) is None


def test_access_frames_get_the_tag() -> None:
    assert access_to_trunk(UNTAGGED, 20) == tagged(20)
    assert access_to_trunk(tagged(20), 20) is None
    assert access_to_trunk(b"\x00", 20) is None


def test_bad_vlan_argument_exits_2(tmp_path: object) -> None:
    argv = ["--trunk", "a", "--access", "b", "--vlan", "0"]
    assert main([*argv, "--pidfile", "/nonexistent/p.pid"]) == 2
