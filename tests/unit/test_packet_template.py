"""Precomputed tunnel headers make exactly the bytes of the field-by-field builders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import macs, ports
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from openhnv.packet.errors import PacketError
from openhnv.packet.frames import decapsulate, nvgre_encapsulate, vxlan_encapsulate
from openhnv.packet.template import TunnelTemplate

pas = st.binary(min_size=4, max_size=4)
vlans = st.none() | st.integers(0, 4094)
inners = st.binary(min_size=14, max_size=200)


@given(macs, macs, pas, pas, st.integers(0, 0xFFFFFF), st.integers(0, 255), vlans, inners, ports)
def test_vxlan_template_matches_the_builder(
    src_mac: bytes,
    dst_mac: bytes,
    src_pa: bytes,
    dst_pa: bytes,
    vni: int,
    ttl: int,
    vlan_id: int | None,
    inner: bytes,
    src_port: int,
) -> None:
    outer = {
        "outer_src_mac": src_mac,
        "outer_dst_mac": dst_mac,
        "src_pa": src_pa,
        "dst_pa": dst_pa,
        "ttl": ttl,
        "vlan_id": vlan_id,
    }
    template = TunnelTemplate.vxlan(vni=vni, **outer)  # type: ignore[arg-type]
    expected = vxlan_encapsulate(inner, vni=vni, src_port=src_port, **outer)  # type: ignore[arg-type]
    assert template.encapsulate(inner, src_port) == expected


@given(macs, macs, pas, pas, st.integers(0, 0xFFFFFF), st.integers(0, 255), vlans, inners)
def test_nvgre_template_matches_the_builder(
    src_mac: bytes,
    dst_mac: bytes,
    src_pa: bytes,
    dst_pa: bytes,
    vsid: int,
    flow_id: int,
    vlan_id: int | None,
    inner: bytes,
) -> None:
    outer = {
        "outer_src_mac": src_mac,
        "outer_dst_mac": dst_mac,
        "src_pa": src_pa,
        "dst_pa": dst_pa,
        "vlan_id": vlan_id,
    }
    template = TunnelTemplate.nvgre(vsid=vsid, flow_id=flow_id, **outer)  # type: ignore[arg-type]
    expected = nvgre_encapsulate(inner, vsid=vsid, flow_id=flow_id, **outer)  # type: ignore[arg-type]
    assert template.encapsulate(inner) == expected


def test_scapy_agrees_on_the_patched_fields() -> None:
    template = TunnelTemplate.vxlan(
        outer_src_mac="02:00:00:00:00:01",
        outer_dst_mac="02:00:00:00:00:02",
        src_pa="192.168.1.10",
        dst_pa="192.168.2.20",
        vni=5001,
    )
    inner = bytes(14) + b"x" * 100
    packet = Ether(template.encapsulate(inner, 50123))
    assert (packet[IP].len, packet[UDP].len, packet[UDP].sport) == (150, 130, 50123)
    checksum = packet[IP].chksum
    del packet[IP].chksum
    assert Ether(bytes(packet))[IP].chksum == checksum
    tunnel = decapsulate(template.encapsulate(inner, 50123))
    assert (tunnel.vsid, tunnel.udp_src_port, tunnel.inner) == (5001, 50123, inner)


def test_limits() -> None:
    template = TunnelTemplate.vxlan(
        outer_src_mac=bytes(6), outer_dst_mac=bytes(6), src_pa="1.1.1.1", dst_pa="2.2.2.2", vni=1
    )
    with pytest.raises(PacketError, match=r"^tunnel at offset 0: src_port 65536 is not in"):
        template.encapsulate(bytes(14), 65536)
    with pytest.raises(PacketError, match=r"^tunnel at offset 0: inner frame of 65500 bytes"):
        template.encapsulate(bytes(65500), 1)


@given(macs, macs, pas, pas, st.integers(0, 0xFFFFFF), vlans, inners, st.integers(0, 255))
def test_nvgre_template_patches_the_flow_id_per_packet(
    src_mac: bytes,
    dst_mac: bytes,
    src_pa: bytes,
    dst_pa: bytes,
    vsid: int,
    vlan_id: int | None,
    inner: bytes,
    flow_id: int,
) -> None:
    outer = {
        "outer_src_mac": src_mac,
        "outer_dst_mac": dst_mac,
        "src_pa": src_pa,
        "dst_pa": dst_pa,
        "vlan_id": vlan_id,
    }
    template = TunnelTemplate.nvgre(vsid=vsid, **outer)  # type: ignore[arg-type]
    expected = nvgre_encapsulate(inner, vsid=vsid, flow_id=flow_id, **outer)  # type: ignore[arg-type]
    assert template.encapsulate(inner, flow_id) == expected
    assert template.header_for(len(inner), flow_id) + inner == expected


def _patch_by_hand(template: TunnelTemplate, inner: bytes, entropy: int) -> bytes:
    """What a kernel fast path does with the template's plain data."""
    packet = bytearray(template.header + inner)
    total = len(template.header) - template.ip_offset + len(inner)
    folded = template.partial_sum + total
    folded = (folded & 0xFFFF) + (folded >> 16)
    at = template.total_length_at
    packet[at : at + 2] = total.to_bytes(2, "big")
    at = template.checksum_at
    packet[at : at + 2] = (~folded & 0xFFFF).to_bytes(2, "big")
    if template.udp_length_at >= 0:
        at = template.udp_length_at
        packet[at : at + 2] = (total - 20).to_bytes(2, "big")
    at = template.entropy_at
    packet[at : at + template.entropy_len] = entropy.to_bytes(template.entropy_len, "big")
    return bytes(packet)


@pytest.mark.parametrize("vlan_id", [None, 42])
def test_the_plain_data_is_enough_to_encapsulate(vlan_id: int | None) -> None:
    outer = {
        "outer_src_mac": "02:00:00:00:00:01",
        "outer_dst_mac": "02:00:00:00:00:02",
        "src_pa": "192.168.1.10",
        "dst_pa": "192.168.2.20",
        "vlan_id": vlan_id,
    }
    inner = bytes(14) + b"y" * 77
    vxlan = TunnelTemplate.vxlan(vni=5001, **outer)  # type: ignore[arg-type]
    tag = 0 if vlan_id is None else 4
    assert (vxlan.ip_offset, vxlan.total_length_at, vxlan.checksum_at) == (
        14 + tag,
        16 + tag,
        24 + tag,
    )
    assert (vxlan.udp_length_at, vxlan.entropy_at, vxlan.entropy_len) == (38 + tag, 34 + tag, 2)
    assert len(vxlan.header) == 50 + tag
    assert _patch_by_hand(vxlan, inner, 50123) == vxlan.encapsulate(inner, 50123)
    nvgre = TunnelTemplate.nvgre(vsid=5001, **outer)  # type: ignore[arg-type]
    assert (nvgre.udp_length_at, nvgre.entropy_at, nvgre.entropy_len) == (-1, 41 + tag, 1)
    assert len(nvgre.header) == 42 + tag
    assert _patch_by_hand(nvgre, inner, 0xAB) == nvgre.encapsulate(inner, 0xAB)
    assert nvgre.partial_sum == vxlan.partial_sum - 17 + 47  # only the protocol differs


def test_nvgre_flow_id_limit() -> None:
    template = TunnelTemplate.nvgre(
        outer_src_mac=bytes(6), outer_dst_mac=bytes(6), src_pa="1.1.1.1", dst_pa="2.2.2.2", vsid=1
    )
    with pytest.raises(PacketError, match=r"^tunnel at offset 0: flow_id 256 is not in"):
        template.encapsulate(bytes(14), 256)
