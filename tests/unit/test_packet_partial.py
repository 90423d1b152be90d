"""Finishing offloaded checksums: what a NIC would have sent, checked by scapy."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from openhnv.packet.checksum import pseudo_header_sum
from openhnv.packet.frames import (
    arp_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.partial import finish_checksum
from openhnv.packet.tcp import TCP_ACK

MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
A, B = "10.1.1.11", "10.1.1.12"


def offloaded(frame: bytes, checksum_at: int, vlan: bool = False) -> bytes:
    """``frame`` as a sender with checksum offload leaves it: the transport checksum
    holds the folded pseudo-header sum only."""
    ip = 14 + (4 if vlan else 0)
    l4 = ip + 20
    partial = pseudo_header_sum(frame[ip + 12 : ip + 16], frame[ip + 16 : ip + 20],
                                frame[ip + 9], len(frame) - l4)  # fmt: skip
    at = l4 + checksum_at
    return frame[:at] + partial.to_bytes(2, "big") + frame[at + 2 :]


@pytest.mark.parametrize("vlan", [None, 30])
def test_an_offloaded_tcp_segment_is_finished(vlan: int | None) -> None:
    whole = tcp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A, dst_ip=B, src_port=40000,
                      dst_port=80, flags=TCP_ACK, payload=b"z" * 1001, vlan_id=vlan)  # fmt: skip
    finished = finish_checksum(offloaded(whole, 16, vlan is not None))
    assert finished == whole
    assert Ether(finished)[TCP].chksum == TCP(bytes(Ether(finished)[TCP])).chksum


def test_an_offloaded_udp_datagram_inside_vxlan_is_finished_inside() -> None:
    inner = udp_frame(src_mac=MAC_A, dst_mac=MAC_B, src_ip=A, dst_ip=B, src_port=5000,
                      dst_port=53, payload=b"q" * 33)  # fmt: skip
    outer = vxlan_encapsulate(offloaded(inner, 6), outer_src_mac=MAC_A, outer_dst_mac=MAC_B,
                              src_pa="192.168.1.10", dst_pa="192.168.1.20", vni=5001,
                              src_port=50000)  # fmt: skip
    finished = finish_checksum(outer)
    assert finished[50:] == inner
    assert finished[:50] == outer[:50]  # the outer UDP checksum stays 0 (RFC 7348)
    packet = Ether(finished)
    assert packet[UDP].chksum == 0
    assert packet[IP].payload


def test_frames_without_a_transport_checksum_are_left_alone() -> None:
    arp = arp_frame(op=1, src_mac=MAC_A, dst_mac="ff:ff:ff:ff:ff:ff", sender_mac=MAC_A,
                    sender_ip=A, target_mac="00:00:00:00:00:00", target_ip=B)  # fmt: skip
    assert finish_checksum(arp) == arp


def offloaded6(frame: bytes, checksum_at: int) -> bytes:
    """An IPv6 ``frame`` as a sender with checksum offload leaves it (CHECKSUM_PARTIAL):
    the transport checksum holds the folded IPv6 pseudo-header sum only."""
    ip, l4 = 14, 14 + 40
    partial = pseudo_header_sum(frame[ip + 8 : ip + 24], frame[ip + 24 : ip + 40],
                                frame[ip + 6], len(frame) - l4)  # fmt: skip
    at = l4 + checksum_at
    return frame[:at] + partial.to_bytes(2, "big") + frame[at + 2 :]


@pytest.mark.parametrize(
    ("layer", "checksum_at"),
    [(TCP(sport=40000, dport=5201, flags="A", seq=1), 16), (UDP(sport=5000, dport=53), 6)],
)
def test_an_offloaded_ipv6_segment_is_finished(layer: TCP | UDP, checksum_at: int) -> None:
    whole = bytes(
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src="fd00:6:0:1::10", dst="fd00:6:0:2::12")
        / layer
        / (b"s" * 1200)
    )
    finished = finish_checksum(offloaded6(whole, checksum_at))
    assert finished == whole  # scapy's own checksum: the receiver accepts it


def test_an_offloaded_ipv6_segment_inside_nvgre_is_finished_inside() -> None:
    inner = bytes(
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src="fd00:6:0:1::10", dst="fd00:6:0:1::11")
        / TCP(sport=40000, dport=5202, flags="A")
        / (b"n" * 900)
    )
    outer = nvgre_encapsulate(offloaded6(inner, 16), outer_src_mac=MAC_A, outer_dst_mac=MAC_B,
                              src_pa="192.168.1.10", dst_pa="192.168.1.20", vsid=5001,
                              flow_id=7)  # fmt: skip
    finished = finish_checksum(outer)
    assert finished[len(outer) - len(inner) :] == inner
