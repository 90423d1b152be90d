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
