"""An access port's frames on its VLAN: bridged, not routed nor encapsulated.

A NIC on a VLAN network (``Port.access_vlan``) has its frames bridged: to another access
port of the VLAN on this host by destination MAC, else out of the uplink tagged with the
VLAN; broadcast and multicast to both. Its ARP goes on the wire like any frame, after
its ARP guard (docs/vfp.md).
"""

from __future__ import annotations

from openhnv.packet.flowkey import FlowKey
from openhnv.vfp.decision import Copy, Decision, TraceStep
from openhnv.vfp.forwarding import is_group_mac
from openhnv.vfp.model import Port
from openhnv.vfp.policy import OUT, Direction
from openhnv.vfp.punts import arp_blocked
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import HeaderOp


def bridge_arp(
    state: EngineState,
    port: Port,
    vlan: int,
    direction: Direction,
    fk: FlowKey,
    frame: bytes,
    d: Decision,
) -> Decision:
    """ARP of an access port passes its ACLs, which are IP rules (a VM port's ARP is
    answered by the agent instead): on the VLAN like any frame, or delivered. What it
    sends meets its ARP guard first, and is never cached: its key is the Ethernet
    header alone, so a cached decision would carry later, spoofed ARP past the guard."""
    if direction == OUT:
        d.cacheable = False
        if arp_blocked(state, port, frame, fk, d):
            return d
        return bridge(state, port, vlan, fk, frame, d)
    d.template = state.local_delivery(port.name, None)
    if d.record:
        d.steps.append(TraceStep("-", "-", "-", None, f"deliver({port.name})", "ARP"))
    return d


def bridge(
    state: EngineState, port: Port, vlan: int, fk: FlowKey, frame: bytes, d: Decision
) -> Decision:
    """An access port's frame on its VLAN: to another access port of the VLAN on this
    host by its MAC, else out of the uplink tagged; broadcast and multicast to both."""
    members = state.access_ports.get(vlan, {})
    uplink = state.bridge(vlan)
    if is_group_mac(fk.dst_mac):
        d.cacheable = False
        d.copies = [
            Copy(state.local_delivery(q.name, None), 0, frame, q.name)
            for q in members.values()
            if q is not port
        ]
        if uplink is not None:
            d.copies.append(Copy(uplink, 0, frame, None))
        if d.record:
            d.steps.append(
                TraceStep("-", "-", "-", None, "flood", f"VLAN {vlan}: {len(d.copies)} copies")
            )
        return d
    q = members.get(fk.dst_mac)
    if q is not None and q is not port:
        d.template, d.next_port = state.local_delivery(q.name, None), q.name
        if d.record:
            d.steps.append(TraceStep("-", "-", "-", None, f"deliver({q.name})", f"VLAN {vlan}"))
        return d
    if uplink is None:
        return d.drop("no_provider_address", state, "no uplink to bridge onto")
    if d.record:
        d.ops.append(HeaderOp("push", "vlan", (("vid", str(vlan)),)))
        d.steps.append(TraceStep("-", "-", "-", None, "bridge", f"VLAN {vlan} of the uplink"))
    d.template = uplink
    return d
