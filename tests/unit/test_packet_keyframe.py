"""Frames made from flow keys: the engine keys them exactly as the flows they stand for."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import macs, ports

from openhnv.packet.flowkey import flow_key, outer_key
from openhnv.packet.frames import (
    arp_frame,
    icmp_echo_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.keyframe import frame_of_key, outer_key_length, tunnel_frame_of_key
from openhnv.packet.tcp import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

A, B = "10.1.1.11", "10.1.1.12"
PA_A, PA_B = "192.168.1.10", "192.168.1.20"
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0b:01"


def frames(src: bytes, dst: bytes, sport: int, dport: int, ttl: int) -> list[bytes]:
    """A TCP segment, a UDP datagram, an echo request and an echo reply of one flow."""
    return [
        tcp_frame(src_mac=src, dst_mac=dst, src_ip=A, dst_ip=B, src_port=sport, dst_port=dport,
                  flags=TCP_SYN, payload=b"x" * 9, ttl=ttl),
        udp_frame(src_mac=src, dst_mac=dst, src_ip=A, dst_ip=B, src_port=sport, dst_port=dport,
                  payload=b"y", ttl=ttl),
        icmp_echo_frame(src_mac=src, dst_mac=dst, src_ip=A, dst_ip=B, identifier=sport,
                        payload=b"ping", ttl=ttl),
        icmp_echo_frame(src_mac=src, dst_mac=dst, src_ip=A, dst_ip=B, identifier=dport,
                        reply=True, ttl=ttl),
    ]  # fmt: skip


@given(macs, macs, ports, ports, st.integers(1, 255))
def test_the_frame_of_a_key_has_that_key(
    src: bytes, dst: bytes, sport: int, dport: int, ttl: int
) -> None:
    for frame in frames(src, dst, sport, dport, ttl):
        key = flow_key(frame)
        made = frame_of_key(key)
        assert made is not None
        assert flow_key(made) == key


def test_a_tcp_frame_made_from_a_key_opens_and_closes_nothing() -> None:
    segment = tcp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A, dst_ip=B, src_port=1,
                        dst_port=2, flags=TCP_SYN | TCP_FIN | TCP_RST)  # fmt: skip
    made = frame_of_key(flow_key(segment))
    assert made is not None
    assert made[47] == TCP_ACK  # the flags byte: ACK only


def test_keys_of_other_shapes_have_no_frame() -> None:
    arp = arp_frame(op=1, src_mac=MAC_A, dst_mac="ff:ff:ff:ff:ff:ff", sender_mac=MAC_A,
                    sender_ip=A, target_mac="00:00:00:00:00:00", target_ip=B)  # fmt: skip
    v6 = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip="fd00::1", dst_ip="fd00::2",
                   src_port=1, dst_port=2)  # fmt: skip
    tagged = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A, dst_ip=B, src_port=1,
                       dst_port=2, vlan_id=7)  # fmt: skip
    for frame in (arp, v6, tagged):
        assert frame_of_key(flow_key(frame)) is None


@given(ports, st.sampled_from([None, 20]), st.integers(0, 255))
def test_the_tunnel_frame_of_an_uplink_key_has_that_key(
    source_port: int, vlan: int | None, flow_id: int
) -> None:
    for inner in frames(bytes.fromhex("020000000001"), bytes.fromhex("020000000002"), 1000, 80, 64):
        for outer in (
            vxlan_encapsulate(inner, outer_src_mac=MAC_A, outer_dst_mac=MAC_B, src_pa=PA_A,
                              dst_pa=PA_B, vni=5001, src_port=source_port, vlan_id=vlan),
            nvgre_encapsulate(inner, outer_src_mac=MAC_A, outer_dst_mac=MAC_B, src_pa=PA_A,
                              dst_pa=PA_B, vsid=5001, flow_id=flow_id, vlan_id=vlan),
        ):  # fmt: skip
            okey, at = outer_key(outer)
            key = okey + flow_key(outer, at)
            assert outer_key_length(key) == len(okey)
            made = tunnel_frame_of_key(key)
            assert made is not None
            made_outer, made_at = outer_key(made)
            assert made_outer + flow_key(made, made_at) == key
