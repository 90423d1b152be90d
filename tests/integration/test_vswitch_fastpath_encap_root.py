"""The kernel fast path on VM ports: encapsulation and local delivery, byte for byte.

Two hosts built by ``openhnv.testing.fastpath_net`` (namespaces ``hnv-fp…``, removed
afterwards), the fast path loaded on h1 and entries installed by hand. A VM sends a
frame; what leaves h1's uplink is captured on h2's end of the uplink (an AF_PACKET
socket sees it before anything else there) and must equal what the Python engine sends
for the same inner frame (``vfp.transposition.Encap``); scapy decodes it as an
independent reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import GRE, IP, UDP, Ether  # type: ignore[attr-defined]
from scapy.layers.l2 import Dot1Q
from scapy.layers.vxlan import VXLAN

from openhnv.packet.addresses import mac_to_bytes
from openhnv.testing.fastpath_net import UPLINK, VSID, FastpathNet, receive, settle
from openhnv.testing.polling import eventually
from openhnv.vfp.emits import Deliver, Transmit
from openhnv.vfp.transposition import InnerEdit, LocalDelivery
from openhnv.vswitch.fastpath import entries

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

ROUTER_MAC = "02:00:5e:00:01:01"
VXLAN_PORT = 4789


@pytest.fixture
def net() -> Iterator[FastpathNet]:
    with FastpathNet("en") as built:
        built.load("h1")
        yield built


@pytest.mark.parametrize(
    ("nvgre", "vlan_id", "entropy"),
    [(False, None, 50123), (True, None, 0x5A), (False, 100, 61000), (True, 200, 0x11)],
    ids=["vxlan", "nvgre", "vxlan-vlan", "nvgre-vlan"],
)
def test_encapsulated_bytes_equal_the_python_engines(
    net: FastpathNet, nvgre: bool, vlan_id: int | None, entropy: int
) -> None:
    fp = net.fast_paths["h1"]
    frame = net.udp("v1", "v2", 40000, 7000, payload=b"fast path " * 20)
    key = net.port_key("v1", frame)
    fp.port_flows.set(key, net.encap_entry("h1", entropy, nvgre=nvgre, vlan_id=vlan_id))
    wire = net.capture(net.hosts["h2"].namespace, UPLINK)
    try:
        before = time.monotonic_ns()
        net.inject("v1", [frame])
        got = receive(wire)
    finally:
        wire.close()
    template = net.template("h1", nvgre=nvgre, vlan_id=vlan_id)
    assert got == [template.header(len(frame), entropy) + frame]

    outer = Ether(got[0])
    assert outer.src == net.hosts["h1"].uplink_mac
    assert outer.dst == net.hosts["h2"].uplink_mac
    if vlan_id is not None:
        assert outer[Dot1Q].vlan == vlan_id
    else:
        assert Dot1Q not in outer
    assert (outer[IP].src, outer[IP].dst) == (net.hosts["h1"].pa, net.hosts["h2"].pa)
    assert outer[IP].len == len(frame) + (28 if nvgre else 36)
    if nvgre:
        assert outer[IP].proto == 47
        assert outer[GRE].key_present == 1
        assert outer[GRE].proto == 0x6558
        assert outer[GRE].key == VSID << 8 | entropy
        inner = outer[GRE].payload
    else:
        assert outer[UDP].dport == VXLAN_PORT
        assert outer[UDP].sport == entropy
        assert outer[UDP].chksum == 0
        assert outer[VXLAN].vni == VSID
        assert outer[VXLAN].flags & 0x08
        inner = outer[VXLAN].payload
    assert bytes(inner) == frame

    stats = fp.port_flows.stats()[key]
    assert (stats.packets, stats.bytes) == (1, len(frame))
    assert stats.last_used_ns >= before
    assert fp.counters.read()["hit_encap"] == 1


def test_outer_ipv4_checksum_is_valid(net: FastpathNet) -> None:
    fp = net.fast_paths["h1"]
    frames = [net.udp("v1", "v2", 40000, 7000, payload=bytes(n)) for n in (1, 200, 1400)]
    for frame in frames[:1]:
        fp.port_flows.set(net.port_key("v1", frame), net.encap_entry("h1", 49999))
    wire = net.capture(net.hosts["h2"].namespace, UPLINK)
    try:
        net.inject("v1", frames)
        got = receive(wire, len(frames))
    finally:
        wire.close()
    assert len(got) == len(frames)
    for outer in got:
        ip = Ether(outer)[IP]
        claimed = ip.chksum
        del ip.chksum
        assert IP(bytes(ip)).chksum == claimed  # scapy recomputes the same checksum


def test_routed_flow_rewrites_macs_and_decrements_ttl(net: FastpathNet) -> None:
    fp = net.fast_paths["h1"]
    frame = net.udp("v1", "v2", 40001, 7001, ttl=9, dst_mac=ROUTER_MAC)
    v2 = net.vms["v2"]
    edit = entries.EntryEdit(mac_to_bytes(v2.mac), mac_to_bytes(ROUTER_MAC), decrement_ttl=True)
    fp.port_flows.set(net.port_key("v1", frame), net.encap_entry("h1", 50000, edit=edit))
    wire = net.capture(net.hosts["h2"].namespace, UPLINK)
    try:
        net.inject("v1", [frame])
        got = receive(wire)
    finally:
        wire.close()
    engine = net.template("h1", edit=InnerEdit(v2.mac, ROUTER_MAC, True, 4, 14))
    expected = engine.emit("v1", frame, 50000)
    assert isinstance(expected, Transmit)
    assert got == [expected.frame]
    inner = Ether(got[0][50:])
    assert (inner.dst, inner.src, inner[IP].ttl) == (v2.mac, ROUTER_MAC, 8)
    claimed = inner[IP].chksum
    del inner[IP].chksum
    assert IP(bytes(inner[IP])).chksum == claimed


def test_local_delivery_with_an_inner_edit(net: FastpathNet) -> None:
    fp = net.fast_paths["h1"]
    v3 = net.vms["v3"]
    frame = net.udp("v1", "v3", 40002, 7002, ttl=2, dst_mac=ROUTER_MAC)
    edit = entries.EntryEdit(mac_to_bytes(v3.mac), mac_to_bytes(ROUTER_MAC), decrement_ttl=True)
    key = net.port_key("v1", frame)
    fp.port_flows.set(key, entries.deliver_flow(net.ifindex("h1", v3.port), edit=edit))
    vm3 = net.capture(v3.namespace, "eth0")
    try:
        net.inject("v1", [frame])
        got = receive(vm3)
    finally:
        vm3.close()
    expected = LocalDelivery("v3", InnerEdit(v3.mac, ROUTER_MAC, True, 4, 14)).emit("v1", frame, 0)
    assert isinstance(expected, Deliver)
    assert got == [expected.frame]
    assert Ether(got[0])[IP].ttl == 1
    assert fp.port_flows.stats()[key].packets == 1
    assert fp.counters.read()["hit_deliver"] == 1


def test_a_ttl_that_would_run_out_misses(net: FastpathNet) -> None:
    fp = net.fast_paths["h1"]
    v3 = net.vms["v3"]
    frame = net.udp("v1", "v3", 40003, 7003, ttl=1, dst_mac=ROUTER_MAC)
    edit = entries.EntryEdit(mac_to_bytes(v3.mac), mac_to_bytes(ROUTER_MAC), decrement_ttl=True)
    key = net.port_key("v1", frame)
    fp.port_flows.set(key, entries.deliver_flow(net.ifindex("h1", v3.port), edit=edit))
    vm3 = net.capture(v3.namespace, "eth0")
    try:
        net.inject("v1", [frame])
        eventually(lambda: fp.counters.read()["miss_ttl"] == 1, "a TTL miss")
        assert settle(vm3) == []
    finally:
        vm3.close()
    assert fp.port_flows.stats()[key].packets == 0
