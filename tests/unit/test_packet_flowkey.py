"""Flow keys: equal for one flow, different across flows, readable, and never a crash."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import (
    FAST_KEY_LEN,
    describe_key,
    flow_key,
    outer_key,
    parse_flow_key,
    parse_outer,
)
from openhnv.packet.frames import nvgre_encapsulate, vxlan_encapsulate

SRC, DST = "00:1d:d8:00:00:01", "00:1d:d8:00:00:02"


def frame(*layers: object) -> bytes:
    pkt = Ether(src=SRC, dst=DST)
    for layer in layers:
        pkt = pkt / layer
    return bytes(pkt)


def test_known_answer_ipv4_udp_fast_key() -> None:
    f = frame(IP(src="10.1.1.11", dst="10.1.1.12", ttl=64, id=7), UDP(sport=1000, dport=53) / b"x")
    assert flow_key(f) == (
        bytes.fromhex("001dd8000002")  # dst MAC
        + bytes.fromhex("001dd8000001")  # src MAC
        + b"\x08\x00"  # ethertype IPv4
        + b"\x45"  # version 4, IHL 5
        + b"\x00\x00"  # flags, fragment offset
        + b"\x40"  # TTL 64
        + b"\x11"  # protocol UDP
        + bytes([10, 1, 1, 11])  # source IP
        + bytes([10, 1, 1, 12])  # destination IP
        + b"\x03\xe8"  # source port 1000
        + b"\x00\x35"  # destination port 53
    )
    assert len(flow_key(f)) == FAST_KEY_LEN


def test_the_ip_id_and_checksum_and_payload_do_not_change_the_key() -> None:
    a = frame(IP(src="10.0.0.1", dst="10.0.0.2", id=1), TCP(sport=1, dport=2, seq=1) / b"a")
    b = frame(IP(src="10.0.0.1", dst="10.0.0.2", id=2), TCP(sport=1, dport=2, seq=9) / b"bcd")
    assert flow_key(a) == flow_key(b)


@pytest.mark.parametrize(
    "other",
    [
        (IP(src="10.0.0.9", dst="10.0.0.2"), TCP(sport=1, dport=2)),
        (IP(src="10.0.0.1", dst="10.0.0.9"), TCP(sport=1, dport=2)),
        (IP(src="10.0.0.1", dst="10.0.0.2"), UDP(sport=1, dport=2)),
        (IP(src="10.0.0.1", dst="10.0.0.2"), TCP(sport=9, dport=2)),
        (IP(src="10.0.0.1", dst="10.0.0.2"), TCP(sport=1, dport=9)),
        (IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01\x01\x01\x01"), TCP(sport=1, dport=2)),
        (Dot1Q(vlan=5), IP(src="10.0.0.1", dst="10.0.0.2"), TCP(sport=1, dport=2)),
    ],
)
def test_any_field_of_the_flow_changes_the_key(other: tuple[object, ...]) -> None:
    base = frame(IP(src="10.0.0.1", dst="10.0.0.2"), TCP(sport=1, dport=2))
    assert flow_key(frame(*other)) != flow_key(base)


def test_icmp_keys_on_type_code_and_identifier_not_sequence() -> None:
    a = frame(IP(src="10.0.0.1", dst="10.0.0.2"), ICMP(type=8, id=5, seq=1))
    b = frame(IP(src="10.0.0.1", dst="10.0.0.2"), ICMP(type=8, id=5, seq=2))
    c = frame(IP(src="10.0.0.1", dst="10.0.0.2"), ICMP(type=8, id=6, seq=1))
    assert flow_key(a) == flow_key(b) != flow_key(c)
    fk = parse_flow_key(a)
    assert (fk.protocol, fk.icmp_type, fk.icmp_code, fk.src_port) == (1, 8, 0, 5)
    reply = parse_flow_key(frame(IP(src="10.0.0.2", dst="10.0.0.1"), ICMP(type=0, id=5)))
    assert fk.reply_connection() == reply.connection()


def test_parse_agrees_with_scapy_for_ipv4_tcp() -> None:
    f = frame(IP(src="10.1.1.11", dst="10.1.2.13", ttl=9), TCP(sport=5555, dport=80, flags="SA"))
    fk = parse_flow_key(f)
    assert (fk.src_mac, fk.dst_mac, fk.ethertype, fk.vlan_id) == (SRC, DST, 0x0800, None)
    assert (str(fk.src_ip), str(fk.dst_ip), fk.protocol, fk.ttl) == ("10.1.1.11", "10.1.2.13", 6, 9)
    assert (fk.src_port, fk.dst_port, fk.tcp_flags) == (5555, 80, 0x12)
    assert (fk.l3_offset, fk.l4_offset) == (14, 34)
    assert fk.describe() == "tcp 10.1.1.11:5555 -> 10.1.2.13:80"
    assert describe_key(flow_key(f)).startswith("tcp 10.1.1.11:5555 -> 10.1.2.13:80")
    back = parse_flow_key(frame(IP(src="10.1.2.13", dst="10.1.1.11"), TCP(sport=80, dport=5555)))
    assert fk.reply_connection() == back.connection() != fk.connection()


def test_ipv6_udp_and_its_fragment_header() -> None:
    f = frame(IPv6(src="fd00::1", dst="fd00::2", hlim=5), UDP(sport=7, dport=8))
    fk = parse_flow_key(f)
    assert (fk.src_ip, fk.dst_ip) == (
        ipaddress.IPv6Address("fd00::1"),
        ipaddress.IPv6Address("fd00::2"),
    )
    assert (fk.protocol, fk.src_port, fk.dst_port, fk.ttl, fk.l4_offset) == (17, 7, 8, 5, 54)
    first = frame(
        IPv6(src="fd00::1", dst="fd00::2"), IPv6ExtHdrFragment(offset=0, m=1), UDP(sport=7, dport=8)
    )
    assert parse_flow_key(first).src_port == 7
    later = frame(
        IPv6(src="fd00::1", dst="fd00::2"), IPv6ExtHdrFragment(offset=10, nh=17), b"\0" * 16
    )
    assert parse_flow_key(later).src_port is None
    assert "udp fd00::1:7 -> fd00::2:8" in describe_key(flow_key(f))


def test_ipv4_non_first_fragment_keys_without_ports() -> None:
    f = frame(IP(src="10.0.0.1", dst="10.0.0.2", proto=17, frag=100), b"\0" * 8)
    fk = parse_flow_key(f)
    assert fk.protocol == 17
    assert fk.src_port is None
    assert fk.l4_offset == -1


def test_arp_and_vlan_tagged_frames() -> None:
    arp = frame(ARP(op=1, hwsrc=SRC, psrc="10.0.0.1", pdst="10.0.0.2"))
    assert flow_key(arp) == arp[:14]
    assert parse_flow_key(arp).ethertype == 0x0806
    assert parse_flow_key(arp).src_ip is None
    tagged = frame(Dot1Q(vlan=42), IP(src="10.0.0.1", dst="10.0.0.2"), UDP(sport=1, dport=2))
    fk = parse_flow_key(tagged)
    assert fk.vlan_id == 42
    assert fk.l3_offset == 18
    assert fk.src_port == 1


@pytest.mark.parametrize(
    ("cut", "header"),
    [(10, "ethernet"), (20, "ipv4"), (36, "udp")],
)
def test_truncated_frames_raise_packet_error_naming_the_header(cut: int, header: str) -> None:
    f = frame(IP(src="10.0.0.1", dst="10.0.0.2"), UDP(sport=1, dport=2))
    with pytest.raises(PacketError) as err:
        flow_key(f[:cut])
    assert err.value.header == header


def test_a_bad_ip_version_is_malformed() -> None:
    f = bytearray(frame(IP(src="10.0.0.1", dst="10.0.0.2"), UDP(sport=1, dport=2)))
    f[14] = 0x65
    with pytest.raises(PacketError, match="version"):
        flow_key(bytes(f))


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=80),
    st.sampled_from([b"", b"\x08\x00", b"\x86\xdd", b"\x81\x00\x00\x01\x08\x00"]),
)
def test_arbitrary_bytes_give_a_key_or_a_packet_error(junk: bytes, ethertype: bytes) -> None:
    data = bytes(12) + ethertype + junk if ethertype else junk
    try:
        key = flow_key(data)
    except PacketError:
        return
    assert isinstance(key, bytes)
    parse_flow_key(data)
    describe_key(key)


def test_the_parsed_view_carries_the_key_and_offsets_from_its_own_start() -> None:
    inner = frame(IP(src="10.0.0.1", dst="10.0.0.2"), TCP(sport=1, dport=2, flags="S"))
    fk = parse_flow_key(b"padding!" + inner, 8)
    assert fk.key == flow_key(inner) == flow_key(b"padding!" + inner, 8)
    assert (fk.l3_offset, fk.l4_offset, fk.tcp_flags) == (14, 34, 0x02)
    assert parse_flow_key(inner, 0, fk.key) == fk == parse_flow_key(inner)


OUTER_SRC_MAC, OUTER_DST_MAC = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
SRC_PA, DST_PA = "192.168.1.10", "192.168.1.20"
INNER = bytes(
    Ether(src=SRC, dst=DST) / IP(src="10.1.1.11", dst="10.1.1.12") / UDP(sport=5, dport=6)
)


@pytest.mark.parametrize("vlan_id", [None, 7])
def test_outer_key_and_parse_outer_of_vxlan(vlan_id: int | None) -> None:
    packet = vxlan_encapsulate(
        INNER, vni=5001, src_port=50000, vlan_id=vlan_id, outer_src_mac=OUTER_SRC_MAC,
        outer_dst_mac=OUTER_DST_MAC, src_pa=SRC_PA, dst_pa=DST_PA,
    )  # fmt: skip
    key, inner_at = outer_key(packet)
    tag = 0 if vlan_id is None else 4
    assert inner_at == 50 + tag
    assert packet[inner_at:] == INNER
    assert key == (
        (packet[12:16] if tag else b"")  # the 802.1Q tag
        + b"\x08\x00\x45"  # EtherType IPv4, version 4 IHL 5
        + b"\x11"  # protocol UDP
        + bytes([192, 168, 1, 10, 192, 168, 1, 20])  # the PAs
        + (50000).to_bytes(2, "big")  # UDP source port: the inner flow's entropy
        + (4789).to_bytes(2, "big")  # UDP destination port VXLAN
        + bytes.fromhex("08000000") + (5001 << 8).to_bytes(4, "big")  # VXLAN, VNI 5001
    )  # fmt: skip
    outer = parse_outer(packet)
    assert (outer.source_pa, outer.destination_pa, outer.encapsulation) == (
        "192.168.1.10",
        "192.168.1.20",
        "vxlan",
    )
    assert (outer.vsid, outer.inner_offset, outer.key) == (5001, inner_at, key)


def test_outer_key_and_parse_outer_of_nvgre() -> None:
    packet = nvgre_encapsulate(
        INNER, vsid=6001, flow_id=9, outer_src_mac=OUTER_SRC_MAC, outer_dst_mac=OUTER_DST_MAC,
        src_pa=SRC_PA, dst_pa=DST_PA,
    )  # fmt: skip
    key, inner_at = outer_key(packet)
    assert inner_at == 42
    assert key[3:4] == b"\x2f"
    assert key[-8:] == (bytes.fromhex("20006558") + (6001 << 8 | 9).to_bytes(4, "big"))
    outer = parse_outer(packet)
    assert (outer.encapsulation, outer.vsid, outer.inner_offset) == ("nvgre", 6001, 42)


def test_a_frame_with_outer_ip_options_has_no_outer_key_but_parses() -> None:
    packet = bytes(
        Ether(src=SRC, dst=DST)
        / IP(src="192.168.1.10", dst="192.168.1.20", options=b"\x01\x01\x01\x01")
        / UDP(sport=50000, dport=4789)
        / VXLAN(vni=5001)
        / Ether(INNER)
    )
    assert outer_key(packet) == (b"", -1)
    outer = parse_outer(packet)
    assert (outer.key, outer.inner_offset, outer.vsid) == (b"", 54, 5001)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"short", "^ethernet at offset 0: truncated"),
        (frame(ARP(op=1)), "^ethernet at offset 12: the outer frame is not IPv4"),
        (frame(IP(proto=6) / (b"x" * 20)), "^ipv4 at offset 23: protocol 6 is neither"),
        (
            frame(IP() / UDP(dport=4790) / (b"\x08" + bytes(7))),
            "^udp at offset 36: .*not VXLAN 4789",
        ),
        (frame(IP() / UDP(dport=4789) / bytes(8)), "^vxlan at offset 42: the I flag"),
        (frame(IP(proto=47) / bytes.fromhex("0000655800000000")), "^gre at offset 34: not NVGRE"),
        (frame(IP() / UDP(dport=4789)), "^vxlan at offset 34: truncated"),
    ],
)
def test_parse_outer_names_what_is_not_a_tunnel(packet: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        parse_outer(packet)


@pytest.mark.parametrize(
    ("frame", "protocol"),
    [
        (bytes(Ether(dst=DST, src=SRC) / IP(src="10.1.1.1", dst="10.1.1.2", proto=58)), 58),
        (bytes(Ether(dst=DST, src=SRC) / IPv6(src="fd00::1", dst="fd00::2", nh=1)), 1),
    ],
)
def test_icmp_of_the_other_family_without_a_body_keys_on_addresses_alone(
    frame: bytes, protocol: int
) -> None:
    """ICMPv6 in IPv4 (or ICMP in IPv6) is not ICMP to the key: no type, no index error."""
    fk = parse_flow_key(frame)
    assert (fk.protocol, fk.icmp_type, fk.src_port) == (protocol, None, None)
    assert fk.key == flow_key(frame)
