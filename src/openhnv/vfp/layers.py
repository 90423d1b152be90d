"""Crossing a port's layers: each group's chosen rule acts, then the layer's default.

``walk_layers`` takes a packet through the layers of a port in one direction (docs/vfp.md
"Order"): a stateful layer lets the reply of a connection it tracks pass; otherwise each
group of the packet's direction and family has its rule chosen by the index, and the
rule's action applies (block, count, rewrite, or choose how to forward); a layer where
no rule matched applies its default. Later layers see the packet as earlier ones
rewrote it (``Walk.view``).
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.flowkey import FlowKey
from openhnv.vfp.classifier import PacketView
from openhnv.vfp.decision import Decision, TraceStep
from openhnv.vfp.model import Layer, Port
from openhnv.vfp.policy import (
    Block,
    Count,
    Direction,
    Encapsulate,
    Rewrite,
    Route,
    describe_action,
)
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import HeaderOp


def view_of(fk: FlowKey, vsid: int) -> PacketView:
    """The fields rules match, from a parsed flow key."""
    ports = fk.icmp_type is None
    return PacketView(
        src_mac=fk.src_mac,
        dst_mac=fk.dst_mac,
        ethertype=fk.ethertype,
        vsid=vsid,
        family=fk.family,
        src_ip=None if fk.src_ip is None else int(fk.src_ip),
        dst_ip=None if fk.dst_ip is None else int(fk.dst_ip),
        protocol=fk.protocol,
        src_port=fk.src_port if ports else None,
        dst_port=fk.dst_port if ports else None,
    )


@dataclass(slots=True)
class Walk:
    """The packet as the layers crossed so far left it: the fields rules match, whether
    its TTL goes down by one, and the forwarding a layer chose."""

    view: PacketView
    ttl: bool = False
    forward: Encapsulate | Route | None = None


def walk_layers(
    port: Port, direction: Direction, fk: FlowKey, d: Decision, state: EngineState
) -> Walk | None:
    """Cross the port's layers; None when a layer blocks (``d`` holds the drop)."""
    w = Walk(view_of(fk, port.vsid))
    connection = fk.connection()
    for layer in port.layers_for(direction):
        if not _cross_layer(port, layer, direction, fk, connection, w, d, state):
            return None
    return w


def _cross_layer(
    port: Port,
    layer: Layer,
    direction: Direction,
    fk: FlowKey,
    connection: bytes,
    w: Walk,
    d: Decision,
    state: EngineState,
) -> bool:
    """One layer: the reply of a connection it tracks passes (of one no SYN opened, it
    meets the rules and pairs when they allow it); anything else meets its groups'
    rules, then its default. False when it blocks (``d`` holds the drop)."""
    if layer.stateful and connection:
        origin = port.connections.get(connection)
        if origin is not None and origin.table.direction != direction:
            d.reply_of = origin  # pairs with it, when allowed
            if not origin.unopened:  # no SYN opened it: the reverse meets the rules
                if d.record:
                    d.steps.append(
                        TraceStep(layer.name, "-", "-", None, "allow", "reply of a connection")
                    )
                return True
    matched = _apply_groups(layer, direction, fk, w, d, state)
    if matched is None:
        return False
    if not matched:
        default = layer.default(direction)
        if d.record:
            d.steps.append(
                TraceStep(layer.name, "-", "-", None, describe_action(default), "layer default")
            )
        if isinstance(default, Block):
            d.drop(default.reason, state, f"default of layer {layer.name}")
            return False
    if layer.stateful:
        d.stateful = True
    return True


def _apply_groups(
    layer: Layer, direction: Direction, fk: FlowKey, w: Walk, d: Decision, state: EngineState
) -> bool | None:
    """The chosen rule of each of the layer's groups acts; whether any rule matched, or
    None when one blocked (``d`` holds the drop)."""
    matched = False
    for group in layer.groups_for(direction, fk.family):
        rule = group.index().classify(w.view)
        if rule is None:
            continue
        matched = True
        d.rules.append(rule)
        d.hits.append((layer.name, group.name, rule.rule_id))
        act = rule.action
        if d.record:
            d.steps.append(
                TraceStep(layer.name, group.name, rule.rule_id, rule.priority, describe_action(act))
            )
        if isinstance(act, Block):
            d.drop(act.reason, state)
            return None
        if isinstance(act, Count):
            d.counters.append(act.counter)
        elif isinstance(act, Rewrite):
            _rewrite(w, act, d)
        elif isinstance(act, Encapsulate | Route):
            w.forward = act
        if rule.terminating:
            break
    return matched


def _rewrite(w: Walk, act: Rewrite, d: Decision) -> None:
    v = w.view
    src = act.src_mac or v.src_mac
    dst = act.dst_mac or v.dst_mac
    vsid = v.vsid if act.vsid is None else act.vsid
    w.view = PacketView(src, dst, v.ethertype, vsid, v.family, v.src_ip, v.dst_ip, v.protocol,
                        v.src_port, v.dst_port)  # fmt: skip
    w.ttl = w.ttl or act.decrement_ttl
    modify_ops(d, act.src_mac, act.dst_mac, act.decrement_ttl, act.vsid)


def modify_ops(d: Decision, src: str | None, dst: str | None, ttl: bool, vsid: int | None) -> None:
    if not d.record:
        return
    macs = tuple((k, v) for k, v in (("src", src), ("dst", dst)) if v)
    if macs and d.record:
        d.ops.append(HeaderOp("modify", "ethernet", macs))
    if ttl and d.record:
        d.ops.append(HeaderOp("modify", "ip", (("ttl", "-1"),)))
    if vsid is not None and d.record:
        d.ops.append(HeaderOp("modify", "metadata", (("vsid", str(vsid)),)))
