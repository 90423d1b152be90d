"""Compiled transpositions build outer headers that an independent decoder (scapy) accepts."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from vfp_frames import csum, udp_frame

from openhnv.vfp.emits import Drop, Transmit
from openhnv.vfp.transposition import Encap, InnerEdit, source_port_of

INNER = udp_frame("00:1d:d8:00:00:01", "00:1d:d8:00:00:02", "10.1.1.11", "10.1.1.12", ttl=5)


def encap(nvgre: bool, vlan: int | None = None, edit: InnerEdit | None = None) -> Encap:
    return Encap(
        nvgre=nvgre,
        outer_src_mac="02:00:00:00:0a:01",
        outer_dst_mac="02:00:00:00:0b:01",
        vlan_id=vlan,
        source_pa="192.168.1.10",
        provider_address="192.168.1.20",
        vsid=5001,
        edit=edit,
    )


def test_vxlan_outer_headers_decode_with_scapy() -> None:
    em = encap(False).emit("vm1", INNER, source_port_of(12345))
    assert isinstance(em, Transmit)
    pkt = Ether(em.frame)
    assert (pkt[Ether].src, pkt[Ether].dst) == ("02:00:00:00:0a:01", "02:00:00:00:0b:01")
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].ttl, pkt[IP].len) == (
        "192.168.1.10",
        "192.168.1.20",
        64,
        36 + len(INNER),
    )
    assert csum(em.frame[14:34]) == 0
    assert (pkt[UDP].dport, pkt[UDP].sport, pkt[UDP].chksum) == (4789, 49152 + 12345 % 16384, 0)
    assert (pkt[VXLAN].vni, pkt[VXLAN].flags & 0x08) == (5001, 0x08)
    assert bytes(pkt[VXLAN].payload) == INNER


def test_nvgre_with_a_vlan_tag_decodes_with_scapy() -> None:
    em = encap(True, vlan=42).emit("vm1", INNER, 0xAB)
    assert isinstance(em, Transmit)
    pkt = Ether(em.frame)
    assert pkt[Dot1Q].vlan == 42
    assert pkt[IP].proto == 47
    assert csum(em.frame[18:38]) == 0
    assert pkt[GRE].key_present == 1
    assert pkt[GRE].proto == 0x6558
    assert pkt[GRE].key == 5001 << 8 | 0xAB
    assert bytes(pkt[GRE].payload) == INNER


def test_inner_edit_decrements_ttl_and_keeps_the_checksum_right() -> None:
    edit = InnerEdit("00:1d:d8:00:00:04", "40:1d:d8:b7:1c:06", True, 4, 14)
    out = edit.apply(INNER)
    assert out is not None
    assert out[22] == 4
    assert csum(out[14:34]) == 0
    assert Ether(out)[Ether].dst == "00:1d:d8:00:00:04"
    assert (
        edit.apply(
            udp_frame("00:1d:d8:00:00:01", "00:1d:d8:00:00:02", "10.1.1.11", "10.1.1.12", ttl=1)
        )
        is None
    )
    assert encap(False, edit=InnerEdit("00:1d:d8:00:00:04", "40:1d:d8:b7:1c:06", True, 4, 14)).emit(
        "vm1",
        udp_frame("00:1d:d8:00:00:01", "00:1d:d8:00:00:02", "10.1.1.11", "10.1.1.12", ttl=1),
        1,
    ) == Drop("vm1", "ttl_exceeded")
