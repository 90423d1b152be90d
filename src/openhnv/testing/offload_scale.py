"""Bench helper: many offloaded flows on one host: setup time and memory, engine and kernel.

``offloaded_flows(count)`` loads a fresh kernel fast path (root; no interface needed: a
map entry names ifindexes the kernel does not check until a frame hits it), puts a
``HostSwitch`` over it with a driver that has no wire (``ScaleDriver``: the
``NullDriver`` with made-up ifindexes), and sets up ``count`` // 2 UDP connections from
a VM on this host to a VM behind another PA, both directions through the slow path and
then VM1's next two datagrams (a connection goes down once it carries frames past its
pairing: ``FRAMES_PAST_PAIRING``), so that the engine offloads ``count`` flows (an
encapsulation and a decapsulation per connection). It returns what that took:
microseconds per offloaded flow (slow path, pairing, kernel writes), the process's
resident memory per flow (unified flows, connections, offload bookkeeping) and an
estimate of the kernel's memory per entry.
"""

from __future__ import annotations

import os
import time
from typing import Any

from openhnv.packet.frames import udp_frame, vxlan_encapsulate
from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.layout import hnv_port_commands
from openhnv.vfp.offload import FRAMES_PAST_PAIRING
from openhnv.vfp.spaces import Mapping
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.fastpath.layout import FlowEntry, PortKey, UplinkKey
from openhnv.vswitch.null import NullDriver, made_up_mac
from openhnv.vswitch.switch import HostSwitch, PaConfig

PA_A, PA_B = "192.168.1.10", "192.168.1.20"
MAC_B = "02:00:00:00:0b:01"
VM1 = ("vm1", "02:00:00:00:01:01", "10.0.0.11")
VM2 = ("vm2", "02:00:00:00:01:02", "10.0.0.12")
RDID, VSID = "vnet", 5001
BATCH = 256
PORTS_PER_ADDRESS = 50_000
HTAB_ELEMENT_OVERHEAD = 48  # struct htab_elem before the key (hash node, hash, padding)
PAGE = os.sysconf("SC_PAGE_SIZE")


class ScaleDriver(NullDriver):
    """A driver without a wire over a real fast path's maps."""

    def __init__(self, fast_path: FastPath) -> None:
        super().__init__()
        self.fast_path = fast_path

    def port_ifindex(self, port: str) -> int | None:
        return 100

    def uplink_ifindex(self, interface: str) -> int | None:
        return 2

    def uplink_mtu(self, interface: str) -> int | None:
        return 1600

    def fastpath_status(self) -> dict[str, object]:
        return {"mode": "on", "state": "on", "adopted": False}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _connection(i: int) -> tuple[bytes, bytes]:
    """The first datagram of connection ``i`` from VM1, and VM2's answer from host B."""
    sport, dport = 10_000 + i % PORTS_PER_ADDRESS, 7_000 + i // PORTS_PER_ADDRESS
    out = udp_frame(src_mac=VM1[1], dst_mac=VM2[1], src_ip=VM1[2], dst_ip=VM2[2],
                    src_port=sport, dst_port=dport)  # fmt: skip
    back = udp_frame(src_mac=VM2[1], dst_mac=VM1[1], src_ip=VM2[2], dst_ip=VM1[2],
                     src_port=dport, dst_port=sport)  # fmt: skip
    outer = vxlan_encapsulate(back, outer_src_mac=MAC_B, outer_dst_mac=made_up_mac("up0"),
                              src_pa=PA_B, dst_pa=PA_A, vni=VSID, src_port=50_000)  # fmt: skip
    return out, outer


def offloaded_flows(count: int) -> dict[str, Any]:
    connections = max(count // 2, 1)
    fp = FastPath.load(flow_capacity=max(2 * connections, 1024))
    try:
        driver = ScaleDriver(fp)
        switch = HostSwitch(VfpEngine(), driver, expire_interval=None)
        switch.start()
        switch.set_provider_addresses([PaConfig(PA_A, 24, None, None, "up0")])
        add = c.AddPort(VM1[0], VM1[1], VSID, RDID, (VM1[2],))
        commands = hnv_port_commands(add, router_mac="02:00:5e:00:01:01",
                                     vnet_prefixes=["10.0.0.0/24"])  # fmt: skip
        commands += [c.AddMapping(Mapping(RDID, ip, pa, mac, VSID))
                     for (_, mac, ip), pa in ((VM1, PA_A), (VM2, PA_B))]  # fmt: skip
        switch.apply(commands)
        driver.inject_port(VM1[0], VM1[1])
        driver.inject_neighbor(PA_B, MAC_B)
        frames = [_connection(i) for i in range(connections)]
        sink = driver.sink
        assert sink is not None
        before = _rss()
        began = time.perf_counter()
        for at in range(0, connections, BATCH):
            batch = frames[at : at + BATCH]
            sink.from_port(VM1[0], [out for out, _ in batch])
            sink.from_uplink([back for _, back in batch])
            sink.round_done()
            for _ in range(FRAMES_PAST_PAIRING):  # the rounds after it: then they go down
                sink.from_port(VM1[0], [out for out, _ in batch])
                sink.round_done()
        elapsed = time.perf_counter() - began
        del frames
        python_bytes = _rss() - before
        entries = len(fp.port_flows) + len(fp.uplink_flows)
        status = switch.fastpath_status()
        switch.stop()
    finally:
        fp.close()
    element = HTAB_ELEMENT_OVERHEAD + max(PortKey.size(), UplinkKey.size()) + FlowEntry.size()
    return {
        "offloaded_flows": entries,
        "setup_us_per_offloaded_flow": round(elapsed / max(entries, 1) * 1e6, 1),
        "python_bytes_per_offloaded_flow": round(python_bytes / max(entries, 1)),
        "kernel_bytes_per_entry_estimate": element + 16,  # + its share of the bucket array
        "edge": status.get("edge", {}),
    }
