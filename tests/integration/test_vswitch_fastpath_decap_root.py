"""The kernel fast path on uplinks: decapsulation to the right VM, and a Linux peer VTEP.

Namespaces from ``openhnv.testing.fastpath_net`` (``hnv-fp…``, removed afterwards). Outer frames are
either made by the Python engine's template and sent into h1's uplink from h2's end,
or made by a Linux kernel VXLAN device on h2 (``kernel_vxlan``): an independent VTEP
that must understand what the fast path sends, and be understood, in both directions.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from openhnv.lab import netns
from openhnv.testing.fastpath_net import UPLINK, FastpathNet, receive, settle
from openhnv.testing.polling import eventually
from openhnv.vswitch.fastpath import entries

pytestmark = [pytest.mark.root, pytest.mark.fastpath]


@pytest.fixture
def net() -> Iterator[FastpathNet]:
    with FastpathNet("de") as built:
        built.load("h1")
        yield built


@pytest.mark.parametrize(
    ("nvgre", "vlan_id"), [(False, None), (True, None), (False, 300), (True, 301)],
    ids=["vxlan", "nvgre", "vxlan-vlan", "nvgre-vlan"],
)  # fmt: skip
def test_decapsulated_to_the_right_vm(net: FastpathNet, nvgre: bool, vlan_id: int | None) -> None:
    fp = net.fast_paths["h1"]
    frame = net.udp("v2", "v1", 7000, 40000, payload=b"to v1 " * 30)
    outer = net.template("h2", nvgre=nvgre, vlan_id=vlan_id).header(len(frame), 17) + frame
    key = net.uplink_key(outer)
    assert key.vlan_id == (vlan_id or 0)
    fp.uplink_flows.set(key, entries.decap_deliver_flow(net.ifindex("h1", "vm1")))
    v1 = net.capture(net.vms["v1"].namespace, "eth0")
    v3 = net.capture(net.vms["v3"].namespace, "eth0")
    sender = net.capture(net.hosts["h2"].namespace, UPLINK)
    try:
        sender.send(outer)
        assert receive(v1) == [frame]
        assert settle(v3) == []
    finally:
        for sock in (v1, v3, sender):
            sock.close()
    stats = fp.uplink_flows.stats()[key]
    assert (stats.packets, stats.bytes) == (1, len(outer))
    assert fp.counters.read()["hit_decap"] == 1


def test_another_vlan_or_pa_or_vsid_has_no_entry(net: FastpathNet) -> None:
    fp = net.fast_paths["h1"]
    frame = net.udp("v2", "v1", 7000, 40000)
    good = net.template("h2", vlan_id=300).header(len(frame), 17) + frame
    fp.uplink_flows.set(net.uplink_key(good), entries.decap_deliver_flow(net.ifindex("h1", "vm1")))
    wrong_vlan = net.template("h2", vlan_id=301).header(len(frame), 17) + frame
    untagged = net.template("h2").header(len(frame), 17) + frame
    v1 = net.capture(net.vms["v1"].namespace, "eth0")
    sender = net.capture(net.hosts["h2"].namespace, UPLINK)
    try:
        for outer in (wrong_vlan, untagged):
            sender.send(outer)
        eventually(lambda: fp.counters.read()["miss_no_entry"] >= 2, "two misses")
        assert settle(v1) == []
    finally:
        v1.close()
        sender.close()
    assert fp.counters.read()["hit_decap"] == 0


def _udp_socket(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(5.0)
    return s


def test_interoperates_with_a_linux_vxlan_device(net: FastpathNet) -> None:
    """h2 is a Linux bridge + VXLAN VTEP: v2 -> v1 is decapsulated by the fast path on
    h1, v1 -> v2 encapsulated by it and decapsulated by the Linux device."""
    fp = net.fast_paths["h1"]
    net.kernel_vxlan("h2")
    v1, v2 = net.vms["v1"], net.vms["v2"]
    request = net.udp("v2", "v1", 7100, 7200)  # the shape (key) of what v2 will send
    outer = net.template("h2").header(len(request), 0) + request
    fp.uplink_flows.set(net.uplink_key(outer), entries.decap_deliver_flow(net.ifindex("h1", "vm1")))
    reply = net.udp("v1", "v2", 7200, 7100)
    fp.port_flows.set(net.port_key("v1", reply), net.encap_entry("h1", 55555))

    at_v1 = netns.run_in(v1.namespace, _udp_socket, 7200)
    at_v2 = netns.run_in(v2.namespace, _udp_socket, 7100)
    try:
        at_v2.sendto(b"hello from the Linux VTEP side", (v1.ip, 7200))
        data, peer = at_v1.recvfrom(2048)
        assert data == b"hello from the Linux VTEP side"
        assert peer == (v2.ip, 7100)
        at_v1.sendto(b"hello from the fast path", (v2.ip, 7100))
        data, peer = at_v2.recvfrom(2048)
        assert data == b"hello from the fast path"
        assert peer == (v1.ip, 7200)
    finally:
        at_v1.close()
        at_v2.close()
    counters = fp.counters.read()
    assert counters["hit_decap"] >= 1
    assert counters["hit_encap"] >= 1
