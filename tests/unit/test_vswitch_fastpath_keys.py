"""The kernel's keys packed straight from the engine's flow keys equal the keys of the
frames those flow keys stand for (``keyframe.frame_of_key`` then ``entries.port_key_of``:
what the edge did before), for every flow kind and shape the engine keys.

Frames come from scapy (explicit MACs, never sent), the engine's keys from
``packet.flowkey``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, Ether  # type: ignore[attr-defined]
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q
from scapy.layers.vxlan import VXLAN

from openhnv.packet.flowkey import flow_key, outer_key
from openhnv.packet.keyframe import frame_of_key, tunnel_frame_of_key
from openhnv.vswitch.fastpath import entries, keys
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import ENCAP_NVGRE, ENCAP_VXLAN, PortKey, UplinkKey

A_MAC, B_MAC, GROUP_MAC = "02:00:00:00:01:0b", "02:00:00:00:01:0c", "01:00:5e:00:00:01"
UP1, UP2 = "02:00:00:aa:00:01", "02:00:00:aa:00:02"
PA1, PA2 = "192.168.1.10", "192.168.1.11"
MF, DF = 1, 2


def _old_port_key(ifindex: int, key: bytes) -> bytes | None:
    frame = frame_of_key(key)
    found = None if frame is None else entries.port_key_of(ifindex, frame)
    return None if found is None else found.pack()


def _old_uplink_key(key: bytes, vlan_id: int = 0) -> bytes | None:
    frame = tunnel_frame_of_key(key)
    found = None if frame is None else entries.uplink_key_of(frame, vlan_id)
    return None if found is None else found.pack()


def _tunnel_key(frame: bytes) -> bytes:
    okey, at = outer_key(frame)
    assert at > 0
    return okey + flow_key(frame, at)


inner_frames = st.builds(
    lambda kind, dst, src, sport, dport, ttl, flags, frag, code, tag: bytes(
        Ether(dst=dst, src=src)
        / (Dot1Q(vlan=tag) if tag else Ether().payload)
        / IP(src="10.0.0.1", dst="10.0.0.2", ttl=ttl, flags=flags, frag=frag)
        / {
            "tcp": TCP(sport=sport, dport=dport, flags="A"),
            "syn": TCP(sport=sport, dport=dport, flags="S"),
            "udp": UDP(sport=sport, dport=dport),
            "echo": ICMP(type=8, code=code, id=dport),
            "reply": ICMP(type=0, code=code, id=dport),
            "unreachable": ICMP(type=3, code=code),
        }[kind]
    ),
    st.sampled_from(["tcp", "syn", "udp", "echo", "reply", "unreachable"]),
    st.sampled_from([B_MAC, GROUP_MAC]),
    st.just(A_MAC),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.sampled_from([0, DF, MF]),
    st.sampled_from([0, 0, 185]),
    st.sampled_from([0, 1]),
    st.sampled_from([0, 0, 0, 7]),
)


@settings(max_examples=300)
@given(inner_frames, st.integers(1, 2**32 - 1))
def test_port_key_is_the_frames_key(frame: bytes, ifindex: int) -> None:
    key = flow_key(frame)
    assert keys.port_key(ifindex, key) == _old_port_key(ifindex, key)


@settings(max_examples=300)
@given(
    inner_frames,
    st.sampled_from(["vxlan", "nvgre", "vxlan-other-port", "vxlan-no-i", "gre-plain"]),
    st.sampled_from([None, 20]),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 4094),
)
def test_uplink_key_is_the_frames_key(
    inner: bytes, shape: str, vlan: int | None, vsid: int, entropy: int, pa_vlan: int
) -> None:
    outer = Ether(src=UP1, dst=UP2) / (Dot1Q(vlan=vlan) if vlan else Ether().payload)
    ip = IP(src=PA1, dst=PA2)
    if shape.startswith("vxlan"):
        port = 4790 if shape == "vxlan-other-port" else 4789
        flags = 0 if shape == "vxlan-no-i" else 0x08
        outer = outer / ip / UDP(sport=entropy, dport=port) / VXLAN(flags=flags, vni=vsid)
    elif shape == "nvgre":
        gre = GRE(key_present=1, proto=0x6558, key=vsid << 8 | entropy & 0xFF)
        outer = outer / ip / gre
    else:
        outer = outer / ip / GRE(proto=0x6558)
    frame = bytes(outer) + inner
    okey, at = outer_key(frame)
    if at < 0:
        return  # no tunnel key: the engine never offers it
    key = okey + flow_key(frame, at)
    assert keys.uplink_key(key, pa_vlan) == _old_uplink_key(key, pa_vlan)


@pytest.mark.parametrize(
    "frame",
    [
        Ether(dst=B_MAC, src=A_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2),
        Ether(dst=B_MAC, src=A_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=3, dport=4),
        Ether(dst=B_MAC, src=A_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(id=9),
    ],
    ids=["tcp", "udp", "icmp"],
)
def test_port_key_fields(frame: Ether) -> None:
    packed = keys.port_key(7, flow_key(bytes(frame)))
    assert packed is not None
    found = PortKey.unpack(packed)
    assert found.ifindex == 7
    assert (found.flow.src_ip, found.flow.dst_ip) == (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    assert found.flow.dst_mac == bytes.fromhex(B_MAC.replace(":", ""))


def test_shapes_the_kernel_never_keys() -> None:
    arp = Ether(dst="ff:ff:ff:ff:ff:ff", src=A_MAC) / ARP(psrc="10.0.0.1", pdst="10.0.0.2")
    v6 = Ether(dst=B_MAC, src=A_MAC) / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2)
    options = Ether(dst=B_MAC, src=A_MAC) / IP(options=b"\x01\x01\x01\x00") / UDP()
    for frame in (arp, v6, options):
        assert keys.port_key(1, flow_key(bytes(frame))) is None
        assert keys.uplink_key(flow_key(bytes(frame))) is None
    assert keys.port_key(1, b"") is None


@pytest.mark.parametrize("vlan", [None, 20])
@pytest.mark.parametrize("nvgre", [False, True], ids=["vxlan", "nvgre"])
def test_uplink_key_fields_and_its_vlan(nvgre: bool, vlan: int | None) -> None:
    inner = Ether(dst=B_MAC, src=A_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A")
    ip = IP(src=PA1, dst=PA2)
    tunnel = (
        ip / GRE(key_present=1, proto=0x6558, key=5001 << 8 | 3)
        if nvgre
        else ip / UDP(sport=50000, dport=4789) / VXLAN(vni=5001)
    )
    outer = Ether(src=UP1, dst=UP2) / (Dot1Q(vlan=vlan) if vlan else Ether().payload) / tunnel
    key = _tunnel_key(bytes(outer / inner))
    packed = keys.uplink_key(key, 30)
    assert packed is not None
    found = UplinkKey.unpack(packed)
    assert (found.remote_pa, found.local_pa) == (bytes([192, 168, 1, 10]), bytes([192, 168, 1, 11]))
    assert (found.vsid, found.encap) == (5001, ENCAP_NVGRE if nvgre else ENCAP_VXLAN)
    assert found.vlan_id == (vlan or 30)  # the key's tag wins
    other = keys.uplink_key(key, 30, tag_wins=False)
    assert other is not None
    assert UplinkKey.unpack(other).vlan_id == 30
    assert keys.local_pa(key) == bytes([192, 168, 1, 11])
    with pytest.raises(FastPathError, match="vlan_id=5000"):
        keys.uplink_key(key, 5000, tag_wins=False)
