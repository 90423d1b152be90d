"""vfp.answer: the frame a connection's answer arrives as, made from its first packet."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from vfp_frames import ROUTER, VM1, VM2, TcpEnd

from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.flowkey import flow_key, parse_flow_key, parse_outer
from openhnv.vfp.answer import answer_frame, answer_key
from openhnv.vfp.transposition import Encap, InnerEdit

PA_HERE, PA_THERE = "192.168.1.10", "192.168.1.20"
HERE_VSID, THERE_VSID = 5001, 5002
ENTROPY = 0x5A  # a VXLAN source port or an NVGRE FlowID alike


def encap(nvgre: bool, vlan_id: int | None = None, edit: InnerEdit | None = None) -> Encap:
    return Encap(
        nvgre=nvgre, outer_src_mac="02:00:00:00:0a:01", outer_dst_mac="02:00:00:00:0b:01",
        vlan_id=vlan_id, source_pa=PA_HERE, provider_address=PA_THERE, vsid=THERE_VSID,
        edit=edit,
    )  # fmt: skip


def syn_key() -> bytes:
    return flow_key(TcpEnd(VM1, VM2, 40000, 80).segment(0x02))


@pytest.mark.parametrize("nvgre", [False, True], ids=["vxlan", "nvgre"])
@pytest.mark.parametrize("vlan_id", [None, 42], ids=["untagged", "tagged"])
def test_the_answer_comes_from_the_peer_pa_in_the_receiving_port_vsid(
    nvgre: bool, vlan_id: int | None
) -> None:
    frame = answer_frame(syn_key(), encap(nvgre, vlan_id), ENTROPY, mac_to_bytes(VM1[1]), HERE_VSID)
    assert frame is not None
    outer = parse_outer(frame)
    assert (outer.source_pa, outer.destination_pa) == (PA_THERE, PA_HERE)
    assert outer.vsid == HERE_VSID
    assert outer.encapsulation == ("nvgre" if nvgre else "vxlan")
    inner = parse_flow_key(frame, outer.inner_offset)
    assert (str(inner.src_ip), inner.src_port) == (VM2[2], 80)
    assert (str(inner.dst_ip), inner.dst_port) == (VM1[2], 40000)
    assert (inner.src_mac, inner.dst_mac) == (VM2[1], VM1[1])
    assert inner.tcp_flags is not None
    assert inner.tcp_flags & 0x07 == 0  # neither SYN, FIN nor RST


def test_scapy_reads_the_answer_as_a_vxlan_frame_of_the_reply() -> None:
    frame = answer_frame(syn_key(), encap(False, 7), ENTROPY, mac_to_bytes(VM1[1]), HERE_VSID)
    assert frame is not None
    pkt = Ether(frame)
    assert pkt[Dot1Q].vlan == 7
    assert (pkt[IP].src, pkt[IP].dst) == (PA_THERE, PA_HERE)
    assert pkt[UDP].dport == 4789
    assert pkt[VXLAN].vni == HERE_VSID
    inner = pkt[VXLAN].payload
    assert (inner[IP].src, inner[IP].dst) == (VM2[2], VM1[2])
    assert (inner[TCP].sport, inner[TCP].dport) == (80, 40000)


def test_a_routed_answer_is_for_the_receiving_port_from_the_peer_as_edited() -> None:
    edit = InnerEdit(VM2[1], ROUTER, True, 4, 14)  # the router's MAC as the source now
    key = answer_key(syn_key(), mac_to_bytes(VM1[1]))
    assert key is not None
    frame = answer_frame(syn_key(), encap(False, None, edit), ENTROPY, mac_to_bytes(VM1[1]), 1)
    assert frame is not None
    inner = parse_flow_key(frame, parse_outer(frame).inner_offset)
    assert (inner.src_mac, inner.dst_mac) == (VM2[1], VM1[1])


def test_keys_of_other_shapes_have_no_answer() -> None:
    assert answer_key(b"\x00" * 14, mac_to_bytes(VM1[1])) is None
    assert answer_frame(b"\x00" * 14, encap(False), 0, mac_to_bytes(VM1[1]), 1) is None
