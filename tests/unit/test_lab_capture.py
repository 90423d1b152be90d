"""Decoding what a capture on a PA link saw: tunnels in, anything else out."""

from __future__ import annotations

from openhnv.lab.capture import CapturedFrame, tunnel_record, tunnels
from openhnv.packet.frames import nvgre_encapsulate, tcp_frame, udp_frame, vxlan_encapsulate
from openhnv.packet.tcp import TCP_SYN

WEB_MAC, SQL_MAC = "00:1d:d8:b7:00:02", "00:1d:d8:b7:00:01"
HOST2_MAC, ROUTER_MAC = "02:00:00:00:02:00", "02:00:00:00:00:01"


def inner_syn() -> bytes:
    return tcp_frame(
        src_mac=WEB_MAC,
        dst_mac=SQL_MAC,
        src_ip="10.1.1.12",
        dst_ip="10.1.1.11",
        src_port=40000,
        dst_port=1433,
        flags=TCP_SYN,
        ttl=63,
    )


def test_a_vxlan_packet_with_a_vlan_tag_is_decoded_to_its_inner_flow() -> None:
    frame = vxlan_encapsulate(
        inner_syn(),
        outer_src_mac=HOST2_MAC,
        outer_dst_mac=ROUTER_MAC,
        src_pa="192.168.2.20",
        dst_pa="192.168.1.10",
        vni=5001,
        src_port=51234,
        vlan_id=20,
    )
    record = tunnel_record(CapturedFrame("host2", "u0-host2", frame))
    assert record is not None
    assert (record.encapsulation, record.vlan, record.vsid) == ("vxlan", 20, 5001)
    assert (record.outer_src, record.outer_dst) == ("192.168.2.20", "192.168.1.10")
    assert (record.inner_src, record.inner_dst, record.inner_dport) == (
        "10.1.1.12",
        "10.1.1.11",
        1433,
    )
    assert (record.inner_src_mac, record.inner_ttl, record.inner_protocol) == (WEB_MAC, 63, 6)
    assert "vni 5001" in record.line
    assert "10.1.1.12" in record.line


def test_an_nvgre_packet_gives_its_vsid() -> None:
    frame = nvgre_encapsulate(
        inner_syn(),
        outer_src_mac=HOST2_MAC,
        outer_dst_mac=ROUTER_MAC,
        src_pa="192.168.2.20",
        dst_pa="192.168.1.10",
        vsid=6001,
        flow_id=7,
    )
    record = tunnel_record(CapturedFrame("host2", "u0-host2", frame))
    assert record is not None
    assert (record.encapsulation, record.vsid, record.vlan) == ("nvgre", 6001, None)


def test_frames_that_are_not_tunnels_are_left_out() -> None:
    plain = udp_frame(
        src_mac=HOST2_MAC,
        dst_mac=ROUTER_MAC,
        src_ip="192.168.2.20",
        dst_ip="192.168.1.10",
        src_port=5000,
        dst_port=53,
    )
    frames = [CapturedFrame("h", "i", plain), CapturedFrame("h", "i", b"\x00" * 10)]
    assert tunnels(frames) == []
