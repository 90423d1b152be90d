"""The slow path of a VM port: the order of its stages, and what each decides.

``decide`` is a pure function of the engine's state (``EngineState``, the port) and the
frame with its parsed view (a ``FlowKey``, made once by the caller): it returns a
``Decision`` (``vfp.decision``: the compiled template, the trace steps, the composed
header transposition, the rules that matched) and changes nothing. The engine commits
decisions into the unified flow tables; ``trace`` shows them.

A frame a VM sends is first the host's (``vfp.punts``), then checked against spoofing;
an access port's ARP is bridged (``vfp.bridging``); everything else crosses the port's
layers (``vfp.layers``) and is delivered to the VM (inbound), bridged onto the access
port's VLAN, or forwarded (``vfp.forwarding``).
"""

from __future__ import annotations

from openhnv.packet.ethernet import ETHERTYPE_ARP
from openhnv.packet.flowkey import FlowKey
from openhnv.vfp.bridging import bridge, bridge_arp
from openhnv.vfp.decision import Decision, TraceStep
from openhnv.vfp.forwarding import forward
from openhnv.vfp.layers import walk_layers
from openhnv.vfp.model import Port
from openhnv.vfp.policy import IN, OUT, Direction
from openhnv.vfp.punts import for_the_host
from openhnv.vfp.routes import routed_through
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import InnerEdit


def decide(
    state: EngineState,
    port: Port,
    direction: Direction,
    frame: bytes,
    fk: FlowKey,
    record: bool = False,
) -> Decision:
    """The slow-path decision for ``frame`` (parsed: ``fk``) crossing ``port`` in
    ``direction``."""
    d = Decision(record=record)
    if direction == OUT:
        if port.access_vlan is None and for_the_host(state, port, frame, fk, d):
            return d
        if not port.allow_mac_spoofing and fk.src_mac != port.mac:
            return d.drop("spoofed_source", state, f"source MAC {fk.src_mac} is not {port.mac}")
        if (
            fk.src_ip is not None
            and port.ip_addresses
            and fk.src_ip not in port.ip_addresses
            and not (
                port.gateway
                and routed_through(
                    state.routes, state.mappings, port.rdid, fk.src_ip, port.ip_addresses
                )
            )
        ):
            return d.drop("spoofed_source", state, f"source IP {fk.src_ip} is not the port's")
    if port.access_vlan is not None and fk.ethertype == ETHERTYPE_ARP:
        return bridge_arp(state, port, port.access_vlan, direction, fk, frame, d)
    w = walk_layers(port, direction, fk, d, state)
    if w is None:
        return d
    if direction == IN:
        v = w.view
        edit = None
        if (v.src_mac, v.dst_mac) != (fk.src_mac, fk.dst_mac) or w.ttl:
            edit = InnerEdit(v.dst_mac, v.src_mac, w.ttl, fk.family or 4, fk.l3_offset)
        d.template = state.local_delivery(port.name, edit)
        if d.record:
            d.steps.append(TraceStep("-", "-", "-", None, f"deliver({port.name})"))
        return d
    if port.access_vlan is not None:
        return bridge(state, port, port.access_vlan, fk, frame, d)
    return forward(state, port, fk, frame, w, d)
