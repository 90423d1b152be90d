"""Fast-path entries from the slow path's templates, and the kernel's keys of frames.

Templates come from the Python engine (``vfp.transposition.Encap.header(0, arg)``) and
from the packet layer (``TunnelTemplate``); frames are built with scapy (explicit MACs,
never sent) as an independent encoder.
"""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, Ether  # type: ignore[attr-defined]
from scapy.layers.l2 import ARP, Dot1Q
from scapy.layers.vxlan import VXLAN

from openhnv.packet.template import TunnelTemplate
from openhnv.vfp.transposition import Encap
from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import (
    ACT_DECAP_DELIVER,
    ACT_DELIVER,
    ACT_ENCAP,
    ENCAP_NVGRE,
    ENCAP_VXLAN,
    F_DEC_TTL,
    F_SET_MACS,
    F_VLAN,
    GEN_UNUSED,
    FlowTuple,
    GenerationRef,
    PortKey,
    UplinkKey,
)

A_MAC, B_MAC = "02:00:00:00:01:0b", "02:00:00:00:01:0c"
UP1, UP2 = "02:00:00:aa:00:01", "02:00:00:aa:00:02"
PA1, PA2 = "192.168.1.10", "192.168.1.11"
VSID = 5001


def _encap(nvgre: bool, vlan_id: int | None) -> Encap:
    return Encap(nvgre=nvgre, outer_src_mac=UP1, outer_dst_mac=UP2, vlan_id=vlan_id,
                 source_pa=PA1, provider_address=PA2, vsid=VSID, edit=None)  # fmt: skip


@pytest.mark.parametrize("nvgre", [False, True], ids=["vxlan", "nvgre"])
@pytest.mark.parametrize("vlan_id", [None, 42])
def test_encap_entry_from_the_engines_template(nvgre: bool, vlan_id: int | None) -> None:
    engine = _encap(nvgre, vlan_id)
    entropy = 0x33 if nvgre else 51000
    entry = entries.encap_flow(engine.header(0, entropy), entropy=entropy, uplink_ifindex=4,
                               mtu=1600, generations=[(1, 5)])  # fmt: skip
    assert (entry.action, entry.ifindex, entry.mtu, entry.entropy) == (ACT_ENCAP, 4, 1600, entropy)
    assert entry.encap == (ENCAP_NVGRE if nvgre else ENCAP_VXLAN)
    assert entry.header_len == (42 if nvgre else 50)
    assert entry.flags == (F_VLAN if vlan_id else 0)
    assert entry.vlan_tci == (vlan_id or 0)
    assert entry.csum_partial == engine.template.partial_sum  # the engine's own partial sum
    assert entry.gens == (GenerationRef(1, 5), GenerationRef(GEN_UNUSED, 0))
    untagged = _encap(nvgre, None).header(0, entropy)
    assert entry.header[: entry.header_len] == untagged
    assert entry.header[entry.header_len :] == bytes(52 - entry.header_len)


def test_what_the_kernel_computes_from_the_entry_is_the_engines_header() -> None:
    """Total length, checksum from the partial sum, UDP length and source port: the
    kernel's arithmetic (hnv_patch_outer), done here, gives the engine's bytes."""
    engine = _encap(False, None)
    entry = entries.encap_flow(engine.header(0, 0), entropy=60001, uplink_ifindex=4, mtu=0)
    for inner_len in (60, 1514, 9000):
        total = inner_len + entry.header_len - 14
        s = entry.csum_partial + total
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        header = bytearray(entry.header[: entry.header_len])
        header[16:18] = total.to_bytes(2, "big")
        header[24:26] = (~s & 0xFFFF).to_bytes(2, "big")
        header[34:36] = entry.entropy.to_bytes(2, "big")
        header[38:40] = (total - 20).to_bytes(2, "big")
        assert bytes(header) == engine.header(inner_len, 60001)


def test_the_packet_layers_template_is_accepted_too() -> None:
    template = TunnelTemplate.vxlan(outer_src_mac=UP1, outer_dst_mac=UP2, src_pa=PA1,
                                    dst_pa=PA2, vni=VSID, vlan_id=7)  # fmt: skip
    entry = entries.encap_flow(template.header, entropy=1, uplink_ifindex=2, mtu=1500)
    assert entry.vlan_tci == 7
    assert entry.encap == ENCAP_VXLAN
    assert entry.csum_partial == template.partial_sum


def test_an_inner_edit_sets_the_flags_and_macs() -> None:
    edit = entries.EntryEdit(bytes.fromhex("020000000102"), bytes.fromhex("02005e000101"), True)
    entry = entries.deliver_flow(9, edit=edit)
    assert entry.action == ACT_DELIVER
    assert entry.flags == F_SET_MACS | F_DEC_TTL
    assert (entry.dst_mac, entry.src_mac) == (edit.dst_mac, edit.src_mac)
    plain = entries.decap_deliver_flow(9)
    assert plain.action == ACT_DECAP_DELIVER
    assert plain.flags == 0
    assert plain.header_len == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: entries.deliver_flow(0), "ifindex"),
        (lambda: entries.deliver_flow(3, mtu=70000), "mtu"),
        (lambda: entries.deliver_flow(3, generations=[(1, 1), (2, 2), (3, 3)]), "generations"),
        (lambda: entries.deliver_flow(3, generations=[(GEN_UNUSED, 1)]), "slot"),
        (
            lambda: entries.encap_flow(
                _encap(True, None).header(0, 0), entropy=300, uplink_ifindex=2, mtu=0
            ),
            "FlowID",
        ),
        (
            lambda: entries.encap_flow(
                _encap(False, None).header(0, 0), entropy=70000, uplink_ifindex=2, mtu=0
            ),
            "source port",
        ),
        (lambda: entries.encap_flow(b"\0" * 50, entropy=0, uplink_ifindex=2, mtu=0), "IPv4"),
        (
            lambda: entries.encap_flow(
                _encap(False, None).header(0, 0)[:-1], entropy=0, uplink_ifindex=2, mtu=0
            ),
            "VXLAN",
        ),
        (lambda: entries.EntryEdit(b"\0" * 5, b"\0" * 6), "dst_mac"),
    ],
    ids=[
        "ifindex",
        "mtu",
        "three-generations",
        "unused-slot",
        "flow-id",
        "source-port",
        "not-ipv4",
        "short-header",
        "short-mac",
    ],
)
def test_bad_input_is_refused_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(FastPathError, match=field):
        call()  # type: ignore[operator]


def _tuple(frame: bytes, sport: int, dport: int, proto: int) -> FlowTuple:
    ether = Ether(frame)
    return FlowTuple(bytes.fromhex(ether.dst.replace(":", "")),
                     bytes.fromhex(ether.src.replace(":", "")),
                     ipaddress.IPv4Address(ether[IP].src).packed,
                     ipaddress.IPv4Address(ether[IP].dst).packed, sport, dport, proto)  # fmt: skip


def _ip() -> IP:
    return IP(src="10.0.0.11", dst="10.0.0.12")


def test_port_keys_of_tcp_udp_and_icmp_echo() -> None:
    eth = Ether(src=A_MAC, dst=B_MAC)
    tcp = bytes(eth / _ip() / TCP(sport=1234, dport=80, flags="S"))
    udp = bytes(eth / _ip() / UDP(sport=5353, dport=53) / b"q")
    echo = bytes(eth / _ip() / ICMP(type=8, code=0, id=0x4242, seq=1))
    assert entries.port_key_of(3, tcp) == PortKey(3, _tuple(tcp, 1234, 80, 6))
    assert entries.port_key_of(3, udp) == PortKey(3, _tuple(udp, 5353, 53, 17))
    assert entries.port_key_of(3, echo) == PortKey(3, _tuple(echo, 8 << 8, 0x4242, 1))


@pytest.mark.parametrize(
    "shape",
    [
        Ether(src=A_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.11", pdst="10.0.0.12"),
        Ether(src=A_MAC, dst="01:00:5e:00:00:01") / _ip() / UDP(),
        Ether(src=A_MAC, dst=B_MAC)
        / IP(src="10.0.0.11", dst="10.0.0.12", options=b"\x01" * 4)
        / UDP(),
        Ether(src=A_MAC, dst=B_MAC) / IP(src="10.0.0.11", dst="10.0.0.12", flags="MF") / UDP(),
        Ether(src=A_MAC, dst=B_MAC) / IP(src="10.0.0.11", dst="10.0.0.12", frag=10) / (b"x" * 8),
        Ether(src=A_MAC, dst=B_MAC) / _ip() / ICMP(type=3, code=1) / (b"x" * 28),
        Ether(src=A_MAC, dst=B_MAC) / Dot1Q(vlan=5) / _ip() / UDP(),
        Ether(src=A_MAC, dst=B_MAC) / IP(src="10.0.0.11", dst="10.0.0.12", proto=50) / (b"x" * 8),
    ],
    ids=[
        "arp",
        "multicast",
        "ip-options",
        "more-fragments",
        "fragment",
        "icmp-error",
        "vlan",
        "esp",
    ],
)
def test_shapes_the_kernel_never_executes_have_no_key(shape: Ether) -> None:
    assert entries.port_key_of(3, bytes(shape)) is None


@pytest.mark.parametrize("nvgre", [False, True], ids=["vxlan", "nvgre"])
def test_uplink_keys_of_tunnel_frames(nvgre: bool) -> None:
    inner = bytes(Ether(src=B_MAC, dst=A_MAC) / IP(src="10.0.0.12", dst="10.0.0.11")
                  / UDP(sport=7000, dport=40000))  # fmt: skip
    outer = Ether(src=UP2, dst=UP1) / Dot1Q(vlan=300) / IP(src=PA2, dst=PA1)
    if nvgre:
        frame = bytes(outer / GRE(key_present=1, proto=0x6558, key=VSID << 8 | 9) / inner)
    else:
        frame = bytes(outer / UDP(sport=50000, dport=4789) / VXLAN(vni=VSID, flags=0x08) / inner)
    expected = UplinkKey(ipaddress.IPv4Address(PA2).packed, ipaddress.IPv4Address(PA1).packed,
                         VSID, 300, ENCAP_NVGRE if nvgre else ENCAP_VXLAN,
                         _tuple(inner, 7000, 40000, 17))  # fmt: skip
    assert entries.uplink_key_of(frame) == expected
    untagged = frame[:12] + frame[16:]  # as the Linux driver hands it to the engine
    assert entries.uplink_key_of(untagged, vlan_id=300) == expected


def test_not_a_tunnel_frame_has_no_uplink_key() -> None:
    plain = bytes(Ether(src=UP2, dst=UP1) / IP(src=PA2, dst=PA1) / UDP(sport=1, dport=53))
    gre_ip = bytes(Ether(src=UP2, dst=UP1) / IP(src=PA2, dst=PA1) / GRE(proto=0x0800) / IP())
    assert entries.uplink_key_of(plain) is None
    assert entries.uplink_key_of(gre_ip) is None
    with pytest.raises(FastPathError, match="vlan_id"):
        entries.uplink_key_of(plain, vlan_id=5000)
