"""Fuzz target of the data plane: frames from tenant VMs and from the PA network.

The world is the seed's figure 8 (``EmulatedDatacenter``: the real compiler's rows,
planned and programmed as the agent does, two hosts on the emulated PA network). The
first byte of an input picks where its frame enters: one of the four VM ports, or
host1's uplink (the engine's receive path, before any driver filter). Nothing may
escape: a frame the switch cannot use is a counted drop, never an exception.

The world retires its flows as a real host does when they go idle: every
``EXPIRE_EVERY`` inputs an expiry pass runs as if the idle timeout had passed, so a long
run measures the switch's steady memory, not a table that only grows.
"""

from __future__ import annotations

import functools
import itertools

from openhnv.packet.frames import (
    icmp_echo_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.testing import snapshots as nb
from openhnv.testing.fuzz import Target
from openhnv.testing.fuzz.world import EmulatedDatacenter
from openhnv.testing.southbound import ROUTER_MAC as DISTRIBUTED_ROUTER_MAC

NICS = ("contoso-sql", "contoso-web", "fabrikam-sql", "fabrikam-web")
UPLINK_SELECTOR = len(NICS)
SELECTORS = UPLINK_SELECTOR + 1
RECEIVER = "host1"
MACS = {
    "contoso-sql": "00:1d:d8:07:00:11",
    "contoso-web": "00:1d:d8:07:00:12",
    "fabrikam-sql": "00:1d:d8:07:00:21",
    "fabrikam-web": "00:1d:d8:07:00:22",
}
IPS = {"contoso-sql": "10.1.1.11", "contoso-web": "10.1.1.12",
       "fabrikam-sql": "10.1.1.11", "fabrikam-web": "10.1.1.12"}  # fmt: skip
VSIDS = {"contoso": 5001, "fabrikam": 6001}
EXPIRE_EVERY = 10_000  # inputs between expiry passes
_inputs = itertools.count(1)


@functools.cache
def world() -> EmulatedDatacenter:
    """Figure 8, built once per process (the flows it learns stay: so does a real host)."""
    return EmulatedDatacenter(nb.figure8())


def frames(data: bytes) -> None:
    """The first byte picks the entry (a VM port or host1's uplink); the rest is the frame."""
    if not data:
        return
    dc = world()
    where, frame = data[0] % SELECTORS, data[1:]
    if where == UPLINK_SELECTOR:
        dc.switches[RECEIVER].from_uplink([frame])
    else:
        host, port = dc.ports[NICS[where]]
        dc.switches[host].from_port(port, [frame])
    for nic in NICS:  # what VMs received is not kept
        dc.received(nic)
    if next(_inputs) % EXPIRE_EVERY == 0:
        for switch in dc.switches.values():  # every flow idle past the timeout
            switch.expire(switch.engine.clock() + switch.engine.idle_timeout + 1.0)


def _from(nic: str, to: str, kind: int) -> bytes:
    mac, peer = MACS[nic], MACS[to]
    if kind == 0:
        return udp_frame(src_mac=mac, dst_mac=peer, src_ip=IPS[nic], dst_ip=IPS[to],
                         src_port=5000, dst_port=53, payload=b"q")  # fmt: skip
    if kind == 1:
        return tcp_frame(src_mac=mac, dst_mac=peer, src_ip=IPS[nic], dst_ip=IPS[to],
                         src_port=5000, dst_port=80, flags=0x02)  # fmt: skip
    return icmp_echo_frame(src_mac=mac, dst_mac=DISTRIBUTED_ROUTER_MAC, src_ip=IPS[nic],
                           dst_ip="10.1.1.1", identifier=9)  # fmt: skip


def seeds() -> tuple[bytes, ...]:
    """Valid frames from each VM to its tenant's peer, and tunnel frames to host1."""
    out = []
    for i, nic in enumerate(NICS):
        peer = NICS[i ^ 1]
        out += [bytes((i,)) + _from(nic, peer, kind) for kind in range(3)]
    dc = world()
    uplink = dc.network.uplink_mac(RECEIVER, "up0")
    for tenant, vsid in VSIDS.items():
        inner = _from(f"{tenant}-web", f"{tenant}-sql", 0)
        vx = vxlan_encapsulate(inner, outer_src_mac="02:00:00:00:00:01", outer_dst_mac=uplink,
                               src_pa=nb.HOST2_PA[0], dst_pa=nb.HOST1_PA[0], vni=vsid,
                               src_port=49152)  # fmt: skip
        gre = nvgre_encapsulate(inner, outer_src_mac="02:00:00:00:00:01", outer_dst_mac=uplink,
                                src_pa=nb.HOST2_PA[0], dst_pa=nb.HOST1_PA[0], vsid=vsid,
                                flow_id=1)  # fmt: skip
        out += [bytes((UPLINK_SELECTOR,)) + vx, bytes((UPLINK_SELECTOR,)) + gre]
    return tuple(out)


TARGETS = (Target("vfp-engine", frames, seeds),)
