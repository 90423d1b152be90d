"""Decoding whole frames into header stacks, and the one-line description."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6ND_NS
from scapy.layers.inet6 import IPv6 as ScapyIPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST, Arp
from openhnv.packet.decode import ETHERTYPES, GRE_PROTOCOLS, UDP_PORTS, decode, describe
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import Ethernet
from openhnv.packet.frames import (
    arp_frame,
    icmp_echo_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.gre import Gre
from openhnv.packet.icmp import Icmp
from openhnv.packet.icmpv6 import Icmpv6
from openhnv.packet.ipv4 import IPV4_FLAG_MF, IPv4
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.tcp import TCP_ACK, TCP_FIN, TCP_SYN, Tcp
from openhnv.packet.udp import Udp
from openhnv.packet.vxlan import Vxlan

VM_A, VM_B = "00:1d:d8:07:00:02", "00:1d:d8:07:00:01"
HOST_1, ROUTER = "02:00:c0:a8:01:0a", "02:00:c0:a8:02:14"
SYN = tcp_frame(
    src_mac=VM_A,
    dst_mac=VM_B,
    src_ip="10.1.1.12",
    dst_ip="10.1.1.11",
    src_port=40000,
    dst_port=1433,
    flags=TCP_SYN,
)
OUTER = {
    "outer_src_mac": HOST_1,
    "outer_dst_mac": ROUTER,
    "src_pa": "192.168.1.10",
    "dst_pa": "192.168.2.20",
}


def kinds(frame: bytes) -> list[type]:
    return [type(header) for header in decode(frame)]


def test_demux_tables_are_data() -> None:
    assert ETHERTYPES[0x0800] == "ipv4"
    assert UDP_PORTS[4789] == "vxlan"
    assert GRE_PROTOCOLS[0x6558] == "ethernet"


def test_vxlan_decodes_into_the_inner_frame() -> None:
    frame = vxlan_encapsulate(SYN, vni=5001, src_port=51234, **OUTER)  # type: ignore[arg-type]
    headers = decode(frame)
    assert [type(h) for h in headers] == [Ethernet, IPv4, Udp, Vxlan, Ethernet, IPv4, Tcp]
    assert headers[3] == Vxlan(5001)
    assert isinstance(headers[6], Tcp)
    assert headers[6].dst_port == 1433
    assert describe(frame) == (
        "vxlan 192.168.1.10 > 192.168.2.20 sport 51234 vni 5001 | "
        "00:1d:d8:07:00:02 > 00:1d:d8:07:00:01 ipv4 10.1.1.12 > 10.1.1.11 tcp 40000 > 1433 [S]"
    )


def test_nvgre_decodes_into_the_inner_frame() -> None:
    frame = nvgre_encapsulate(SYN, vsid=6001, flow_id=3, vlan_id=12, **OUTER)  # type: ignore[arg-type]
    assert kinds(frame) == [Ethernet, IPv4, Gre, Ethernet, IPv4, Tcp]
    assert describe(frame).startswith(
        "nvgre vlan 12 192.168.1.10 > 192.168.2.20 vsid 6001 flow 3 | 00:1d:d8:07:00:02 > "
    )


def test_scapy_built_frames_decode() -> None:
    inner = Ether(dst=VM_B, src=VM_A) / IP(src="10.1.1.12", dst="10.1.1.11") / ICMP(id=5, seq=6)
    outer = Ether(dst=ROUTER, src=HOST_1) / Dot1Q(vlan=7) / IP(src="192.168.1.10", dst="1.2.3.4")
    frame = bytes(outer / UDP(sport=50000, dport=4789) / VXLAN(vni=9) / inner)
    headers = decode(frame)
    assert [type(h) for h in headers] == [Ethernet, IPv4, Udp, Vxlan, Ethernet, IPv4, Icmp]
    assert describe(frame) == (
        "vxlan vlan 7 192.168.1.10 > 1.2.3.4 sport 50000 vni 9 | 00:1d:d8:07:00:02 > "
        "00:1d:d8:07:00:01 ipv4 10.1.1.12 > 10.1.1.11 icmp echo request id 5 seq 6"
    )
    frame = bytes(outer / GRE(key_present=1, key=0x1000_00, proto=0x6558) / inner)
    assert kinds(frame) == [Ethernet, IPv4, Gre, Ethernet, IPv4, Icmp]
    v6 = Ether(dst=VM_B, src=VM_A) / ScapyIPv6(src="fd00::1", dst="fd00::2") / TCP(flags="FA")
    assert kinds(bytes(v6)) == [Ethernet, IPv6, Tcp]
    assert describe(bytes(v6)).endswith("ipv6 fd00::1 > fd00::2 tcp 20 > 80 [F.]")


def test_arp_icmp_udp_descriptions() -> None:
    request = arp_frame(
        op=ARP_REQUEST,
        src_mac=VM_A,
        dst_mac="ff:ff:ff:ff:ff:ff",
        sender_mac=VM_A,
        sender_ip="10.1.1.12",
        target_mac=bytes(6),
        target_ip="10.1.1.11",
    )
    assert describe(request + bytes(18)) == (
        "00:1d:d8:07:00:02 > ff:ff:ff:ff:ff:ff arp who-has 10.1.1.11 tell 10.1.1.12"
    )
    asked = decode(request)[1]
    assert isinstance(asked, Arp)
    reply = asked.reply(bytes.fromhex("401dd8b71c06"))
    assert reply.op == ARP_REPLY
    frame = Ethernet(bytes(6), bytes(6), 0x0806).pack() + reply.pack()
    assert describe(frame).endswith("arp reply 10.1.1.11 is-at 40:1d:d8:b7:1c:06")
    echo = icmp_echo_frame(
        src_mac=VM_A, dst_mac=VM_B, src_ip="10.1.1.12", dst_ip="10.1.1.11", reply=True
    )
    assert describe(echo).endswith("ipv4 10.1.1.12 > 10.1.1.11 icmp echo reply id 1 seq 1")
    udp = udp_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip="fd00::1",
        dst_ip="fd00::2",
        src_port=5353,
        dst_port=53,
        payload=b"abc",
        vlan_id=4,
    )
    assert describe(udp) == (
        "00:1d:d8:07:00:02 > 00:1d:d8:07:00:01 vlan 4 ipv6 fd00::1 > fd00::2 udp 5353 > 53 len 3"
    )


def test_icmpv6_decodes_and_describes() -> None:
    ping = icmp_echo_frame(src_mac=VM_A, dst_mac=VM_B, src_ip="fd00::1", dst_ip="fd00::2")
    assert kinds(ping) == [Ethernet, IPv6, Icmpv6]
    assert describe(ping).endswith("ipv6 fd00::1 > fd00::2 icmpv6 echo request id 1 seq 1")
    solicit = bytes(
        Ether(dst="33:33:ff:00:00:02", src=VM_A)
        / ScapyIPv6(src="fd00::1", dst="ff02::1:ff00:2")
        / ICMPv6ND_NS(tgt="fd00::2")
    )
    assert describe(solicit).endswith("icmpv6 neighbor solicitation")
    bad = ping[:-1] + bytes([ping[-1] ^ 1])
    with pytest.raises(PacketError, match=r"^icmpv6 at offset 54: checksum"):
        decode(bad)


def test_memoryview_and_bytearray_frames_decode_alike() -> None:
    frame = nvgre_encapsulate(SYN, vsid=6001, flow_id=3, **OUTER)  # type: ignore[arg-type]
    assert decode(bytearray(frame)) == decode(frame) == decode(memoryview(frame))  # type: ignore[arg-type]


def test_icmp_unreachable_description() -> None:
    quoted = bytes(IP(src="10.1.1.11", dst="10.1.1.12") / UDP(sport=1, dport=2))
    frame = bytes(
        Ether(dst=VM_B, src=VM_A)
        / IP(src="10.1.1.1", dst="10.1.1.11")
        / ICMP(type=3, code=3)
        / quoted
    )
    assert describe(frame).endswith("icmp unreachable code 3")
    headers = decode(frame)
    assert isinstance(headers[-1], Icmp)
    assert headers[-1].payload == quoted


def test_tcp_flags_like_tcpdump() -> None:
    frame = tcp_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip="10.1.1.12",
        dst_ip="10.1.1.11",
        src_port=1,
        dst_port=2,
        flags=TCP_FIN | TCP_ACK,
    )
    assert describe(frame).endswith("tcp 1 > 2 [F.]")


def test_unknown_layers_end_the_stack() -> None:
    assert kinds(Ethernet(bytes(6), bytes(6), 0x88CC).pack() + b"lldp") == [Ethernet]
    other = bytes(Ether(dst=VM_B, src=VM_A) / IP(src="1.1.1.1", dst="2.2.2.2", proto=89))
    assert kinds(other) == [Ethernet, IPv4]
    assert describe(other).endswith("ipv4 1.1.1.1 > 2.2.2.2 proto 89")
    dns = bytes(Ether(dst=VM_B, src=VM_A) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(dport=53))
    assert kinds(dns) == [Ethernet, IPv4, Udp]


def test_fragments() -> None:
    src, dst = bytes([1, 1, 1, 1]), bytes([2, 2, 2, 2])
    datagram = Udp(7, 4789).pack(src, dst, b"x" * 100)
    first = IPv4(src, dst, 17, flags=IPV4_FLAG_MF).pack(40) + datagram[:40]
    headers = decode(Ethernet(bytes(6), bytes(6), 0x0800).pack() + first)
    assert [type(h) for h in headers] == [Ethernet, IPv4, Udp]  # no VXLAN in a fragment
    assert isinstance(headers[2], Udp)
    assert headers[2].length == 108
    later = bytes(
        Ether(dst=VM_B, src=VM_A) / IP(src="1.1.1.1", dst="2.2.2.2", frag=5, proto=17) / b"yy"
    )
    assert kinds(later) == [Ethernet, IPv4]
    assert "frag 40" in describe(later)


def test_malformed_inner_layer_raises_and_describe_says_so() -> None:
    frame = vxlan_encapsulate(SYN[:-2], vni=1, src_port=1, **OUTER)  # type: ignore[arg-type]
    with pytest.raises(PacketError) as err:
        decode(frame)
    assert err.value.header == "ipv4"
    assert err.value.offset == 64
    assert describe(frame).endswith(
        "| 00:1d:d8:07:00:02 > 00:1d:d8:07:00:01 [malformed: ipv4 at offset 64: total length 40 "
        "runs past the buffer (38 bytes left)]"
    )
    assert (
        describe(b"") == "[malformed: ethernet at offset 0: truncated: needs 14 bytes, only 0 left]"
    )


def test_bad_transport_checksum_raises_naming_the_header() -> None:
    bad = SYN[:-3] + bytes([SYN[-3] ^ 0xFF]) + SYN[-2:]
    with pytest.raises(PacketError, match=r"^tcp at offset 34: checksum 0x"):
        decode(bad)
    assert "[malformed: tcp at offset 34: checksum" in describe(bad)
