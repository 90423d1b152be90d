"""The data plane outlives its process: a restarted process adopts the attached fast path.

The first ``FastPath`` installs entries and closes every handle (as a killed process
would); the programs stay attached and keep executing. ``FastPath.adopt`` finds them
through the tc filter dump, reuses their maps with every entry, counter and
generation, and re-attaching its fresh programs replaces the old ones in place.
Namespaces ``hnv-fp…`` from ``openhnv.testing.fastpath_net``, removed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openhnv.lab import netns
from openhnv.testing.fastpath_net import UPLINK, FastpathNet, receive
from openhnv.vswitch.fastpath import attach
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import PROGRAM_TC_PORT, FastPath
from openhnv.vswitch.ingress import hide_from_kernel

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

SLOT = 3


@pytest.fixture
def net() -> Iterator[FastpathNet]:
    with FastpathNet("ad") as built:
        yield built


def _send_and_capture(net: FastpathNet, frame: bytes) -> list[bytes]:
    wire = net.capture(net.hosts["h2"].namespace, UPLINK)
    try:
        net.inject("v1", [frame])
        return receive(wire)
    finally:
        wire.close()


def test_a_restarted_process_keeps_and_adopts_the_entries(net: FastpathNet) -> None:
    ns = net.hosts["h1"].namespace
    interfaces = [UPLINK, "vm1", "vm3"]
    first = net.load("h1")
    frame = net.udp("v1", "v2", 40000, 7000)
    key = net.port_key("v1", frame)
    first.generations.set(SLOT, 9)
    first.port_flows.set(key, net.encap_entry("h1", 50001, generations=[(SLOT, 9)]))
    assert len(_send_and_capture(net, frame)) == 1
    old_program = netns.run_in(ns, attach.attached_tc, "vm1")[0].program_id

    first.close()  # the process is gone: no handle of ours is left
    del net.fast_paths["h1"]
    assert len(_send_and_capture(net, frame)) == 1  # the kernel still forwards

    second = netns.run_in(ns, FastPath.adopt, interfaces)
    assert second is not None
    assert second.adopted
    net.fast_paths["h1"] = second
    entry = second.port_flows.get(key)
    assert entry is not None
    assert entry.stats.packets == 2
    assert second.generations.get(SLOT) == 9
    assert second.counters.read()["hit_encap"] == 2

    net.attach("h1", second)  # fresh programs, same maps, replaced in place
    [found] = netns.run_in(ns, attach.attached_tc, "vm1")
    assert found.name == PROGRAM_TC_PORT
    assert found.program_id != old_program
    assert len(_send_and_capture(net, frame)) == 1
    assert second.port_flows.stats()[key].packets == 3
    second.generations.bump(SLOT)  # the adopted generations still decide
    assert _send_and_capture(net, frame) == []


def test_nothing_attached_adopts_nothing_and_open_loads(net: FastpathNet) -> None:
    ns = net.hosts["h2"].namespace
    assert netns.run_in(ns, FastPath.adopt, [UPLINK, "vm2"]) is None
    fp = netns.run_in(ns, FastPath.open, [UPLINK, "vm2"])
    try:
        assert not fp.adopted
        assert len(fp.port_flows) == 0
    finally:
        fp.close()


def test_two_fast_paths_attached_is_an_error_naming_them(net: FastpathNet) -> None:
    ns = net.hosts["h1"].namespace
    net.load("h1")
    other = FastPath.load()
    try:
        netns.run_in(ns, other.attach_port, "vm3")
        with pytest.raises(FastPathError, match=r"vm3|vm1|up0"):
            netns.run_in(ns, FastPath.adopt, [UPLINK, "vm1", "vm3"])
    finally:
        other.close()


def test_attaching_replaces_the_drop_program_in_place(net: FastpathNet) -> None:
    """The Linux driver hides its interfaces with ``vswitch.ingress``'s drop program; the
    fast path takes that filter's place (same handle and priority), and detaching it
    leaves the interface without a filter."""
    ns = net.hosts["h1"].namespace
    netns.run_in(ns, hide_from_kernel, "vm1")
    [drop] = netns.run_in(ns, attach.attached_tc, "vm1")
    assert drop.name == "hnv_kernel_drop"
    fp = net.load("h1")
    [ours] = netns.run_in(ns, attach.attached_tc, "vm1")
    assert (ours.name, ours.handle, ours.priority) == (PROGRAM_TC_PORT, drop.handle, drop.priority)
    netns.run_in(ns, fp.detach, "vm1")
    assert netns.run_in(ns, attach.attached_tc, "vm1") == []
