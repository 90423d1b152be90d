"""The slow path: walk a packet through a port's layers and decide what its flow does.

``decide`` is a pure function of the engine's state (``EngineState``, the port) and the
frame with its parsed view (a ``FlowKey``, made once by the caller): it returns a
``Decision`` (the compiled template, the trace steps, the composed header transposition,
the rules that matched) and changes nothing. The engine commits decisions into the
unified flow tables; ``trace`` shows them.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field

from openhnv.packet.addresses import MAC_GROUP_BIT, MAC_LEN, mac_to_bytes
from openhnv.packet.checksum import update_checksum
from openhnv.packet.dhcp import DHCP_CLIENT_PORT, DHCP_SERVER_PORT
from openhnv.packet.dhcp6 import (
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    DHCP6_CLIENT_PORT,
    DHCP6_SERVER_PORT,
)
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_ARP
from openhnv.packet.flowkey import FlowKey
from openhnv.packet.gre import NVGRE_FLOW_ID_MAX
from openhnv.packet.ipv4 import (
    IPV4_CHECKSUM_AT,
    IPV4_DST_AT,
    IPV4_HEADER_LEN,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
)
from openhnv.packet.tcp import TCP_CHECKSUM_AT
from openhnv.packet.udp import UDP_CHECKSUM_AT
from openhnv.vfp.classifier import PacketView
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.guards import arp_rules
from openhnv.vfp.model import Layer, Port
from openhnv.vfp.policy import (
    IN,
    OUT,
    Block,
    Count,
    Direction,
    Encapsulate,
    Rewrite,
    Route,
    Rule,
    describe_action,
)
from openhnv.vfp.routes import gateway_mapping, routed_through
from openhnv.vfp.spaces import Mapping, ProviderAddress
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import Discard, HeaderOp, InnerEdit, Template, source_port_of

DHCP_PUNT = "dhcp"  # a VM's DHCPv4 client message, for the agent's responder
DHCP6_PUNT = "dhcp6"  # a VM's DHCPv6 client message, for the agent's responder
ALL_DHCP_SERVERS = ipaddress.IPv6Address(ALL_DHCP_RELAY_AGENTS_AND_SERVERS)
ND_PUNT = "nd"  # a VM's Neighbor Discovery or MLD message, for the agent's responder
IPV4_FAMILY = 4
IPV6_FAMILY = 6
# ICMPv6 types a VM's link exchanges with its router and neighbours: MLD (130-132, 143,
# RFC 2710/3810) and Neighbor Discovery (133-137, RFC 4861). The host answers them in
# place of the router and the neighbours, so none is ever forwarded or flooded.
ND_TYPES = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One thing the slow path considered: a layer, a group's chosen rule, a default."""

    layer: str
    group: str
    rule_id: str
    priority: int | None
    action: str
    note: str = ""


@dataclass(slots=True)
class Copy:
    """One copy of a replicated (broadcast/multicast) packet."""

    template: Template
    arg: int
    frame: bytes
    next_port: str | None


@dataclass(slots=True)
class Decision:
    """What the slow path decided for one packet (and, when ``cacheable``, its flow)."""

    record: bool = False  # trace: keep the steps and the readable transposition
    steps: list[TraceStep] = field(default_factory=list)
    hits: list[tuple[str, str, str]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    ops: list[HeaderOp] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)
    template: Template | None = None
    arg: int = 0
    next_port: str | None = None
    punt: str | None = None
    copies: list[Copy] | None = None
    stateful: bool = False
    reply_of: Flow | None = None
    cacheable: bool = True

    def drop(self, reason: str, state: EngineState, note: str = "") -> Decision:
        self.template = state.discard(reason)
        if self.record:
            self.steps.append(TraceStep("-", "-", "-", None, f"drop({reason})", note))
        return self

    @property
    def reason(self) -> str | None:
        t = self.template
        return t.reason if isinstance(t, Discard) else None


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
class _Walk:
    view: PacketView
    ttl: bool = False
    forward: Encapsulate | Route | None = None


def _walk_layers(
    port: Port, direction: Direction, fk: FlowKey, d: Decision, state: EngineState
) -> _Walk | None:
    """Cross the port's layers; None when a layer blocks (``d`` holds the drop)."""
    w = _Walk(view_of(fk, port.vsid))
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
    w: _Walk,
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
    layer: Layer, direction: Direction, fk: FlowKey, w: _Walk, d: Decision, state: EngineState
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


def _rewrite(w: _Walk, act: Rewrite, d: Decision) -> None:
    v = w.view
    src = act.src_mac or v.src_mac
    dst = act.dst_mac or v.dst_mac
    vsid = v.vsid if act.vsid is None else act.vsid
    w.view = PacketView(src, dst, v.ethertype, vsid, v.family, v.src_ip, v.dst_ip, v.protocol,
                        v.src_port, v.dst_port)  # fmt: skip
    w.ttl = w.ttl or act.decrement_ttl
    _modify_ops(d, act.src_mac, act.dst_mac, act.decrement_ttl, act.vsid)


def _modify_ops(d: Decision, src: str | None, dst: str | None, ttl: bool, vsid: int | None) -> None:
    if not d.record:
        return
    macs = tuple((k, v) for k, v in (("src", src), ("dst", dst)) if v)
    if macs and d.record:
        d.ops.append(HeaderOp("modify", "ethernet", macs))
    if ttl and d.record:
        d.ops.append(HeaderOp("modify", "ip", (("ttl", "-1"),)))
    if vsid is not None and d.record:
        d.ops.append(HeaderOp("modify", "metadata", (("vsid", str(vsid)),)))


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
        if port.access_vlan is None and _for_the_host(state, port, frame, fk, d):
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
        return _vlan_arp(state, port, port.access_vlan, direction, fk, frame, d)
    w = _walk_layers(port, direction, fk, d, state)
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
        return _bridge(state, port, port.access_vlan, fk, frame, d)
    return _forward(state, port, fk, frame, w, d)


def _vlan_arp(
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
        if _arp_blocked(state, port, frame, fk, d):
            return d
        return _bridge(state, port, vlan, fk, frame, d)
    d.template = state.local_delivery(port.name, None)
    if d.record:
        d.steps.append(TraceStep("-", "-", "-", None, f"deliver({port.name})", "ARP"))
    return d


def _bridge(
    state: EngineState, port: Port, vlan: int, fk: FlowKey, frame: bytes, d: Decision
) -> Decision:
    """An access port's frame on its VLAN: to another access port of the VLAN on this
    host by its MAC, else out of the uplink tagged; broadcast and multicast to both."""
    members = state.access_ports.get(vlan, {})
    uplink = state.bridge(vlan)
    if int(fk.dst_mac[:_OCTET], 16) & MAC_GROUP_BIT:
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


def _for_the_host(state: EngineState, port: Port, frame: bytes, fk: FlowKey, d: Decision) -> bool:
    """ARP, DHCPv4 and DHCPv6 client messages and IPv6 Neighbor Discovery (with MLD) a VM sends are
    the host's to answer: punted to the agent (never cached), unless a guard drops ARP
    first. False for anything else."""
    if fk.ethertype == ETHERTYPE_ARP:
        d.cacheable = False  # its key is the Ethernet header alone: never cached
        if _arp_blocked(state, port, frame, fk, d):
            return True
        d.punt = "arp"
    elif is_dhcp_client(fk) and fk.src_mac == port.mac:
        d.punt, d.cacheable = DHCP_PUNT, False
    elif is_dhcp6_client(fk) and fk.src_mac == port.mac:
        d.punt, d.cacheable = DHCP6_PUNT, False
    elif fk.family == IPV6_FAMILY and fk.protocol == PROTO_ICMPV6 and fk.icmp_type in ND_TYPES:
        d.punt, d.cacheable = ND_PUNT, False
    else:
        return False
    if d.record:
        d.steps.append(TraceStep("-", "-", "-", None, f"punt({d.punt})", "answered by the agent"))
    return True


def _arp_blocked(state: EngineState, port: Port, frame: bytes, fk: FlowKey, d: Decision) -> bool:
    """The port's ARP groups (the GUARD layer's ARP guard) on an ARP frame it sent; True
    when one blocks it or it is malformed (``d`` holds the drop)."""
    try:
        chosen = arp_rules(port, frame, fk)
    except PacketError:
        d.drop("malformed", state, "an ARP frame that does not parse")
        return True
    for layer, group, rule in chosen:
        d.rules.append(rule)
        d.hits.append((layer, group, rule.rule_id))
        if d.record:
            d.steps.append(
                TraceStep(layer, group, rule.rule_id, rule.priority, describe_action(rule.action))
            )
        if isinstance(rule.action, Block):
            d.drop(rule.action.reason, state)
            return True
    return False


def is_dhcp_client(fk: FlowKey) -> bool:
    """A DHCPv4 client message (UDP 68 -> 67, RFC 2131 §4.1): the host answers it."""
    return (
        fk.protocol == PROTO_UDP
        and fk.dst_port == DHCP_SERVER_PORT
        and fk.src_port == DHCP_CLIENT_PORT
        and fk.family == IPV4_FAMILY
    )


def is_dhcp6_client(fk: FlowKey) -> bool:
    """A DHCPv6 client message (UDP 546 -> 547, RFC 8415 §7.2) to the link's servers."""
    return (
        fk.protocol == PROTO_UDP
        and fk.dst_port == DHCP6_SERVER_PORT
        and fk.src_port == DHCP6_CLIENT_PORT
        and fk.dst_ip == ALL_DHCP_SERVERS
    )


def _forward(
    state: EngineState, port: Port, fk: FlowKey, frame: bytes, w: _Walk, d: Decision
) -> Decision:
    fwd, v = w.forward, w.view
    if fwd is None:
        return d.drop("no_forwarding_rule", state, "no layer chose encapsulate or route")
    if isinstance(fwd, Route) and v.dst_mac == fwd.router_mac:
        if fk.dst_ip is None:
            return d.drop("not_routable", state, "a non-IP frame to the router MAC")
        m = state.mappings.by_ip(port.rdid, fk.dst_ip)
        via = ""
        if m is None:  # outside the VNet: the route toward its gateway, if any
            m = gateway_mapping(state.routes, state.mappings, port.rdid, fk.dst_ip)
            via = " (gateway)"
        if m is None:
            return d.drop(
                "no_mapping", state, f"no CA or route for {fk.dst_ip} in RDID {port.rdid}"
            )
        _modify_ops(d, fwd.router_mac, m.customer_mac, True, m.vsid)
        w.ttl = True
        v = PacketView(fwd.router_mac, m.customer_mac, v.ethertype, m.vsid)
        if d.record:
            d.steps.append(
                TraceStep(
                    "-", "-", "-", None, "route", f"to {m.customer_address}{via} in VSID {m.vsid}"
                )
            )
    elif int(v.dst_mac[:_OCTET], 16) & MAC_GROUP_BIT:  # the text is normalized: aa:bb:..
        return _replicate(state, port, fk, frame, v, d)
    else:
        m_or_none = state.mappings.by_mac(v.vsid, v.dst_mac)
        if m_or_none is None:
            return d.drop("no_mapping", state, f"no CA MAC {v.dst_mac} in VSID {v.vsid}")
        m = m_or_none
    if m.rdid != port.rdid:
        return d.drop("cross_rdid", state, f"{m.customer_address} is in RDID {m.rdid}")
    edit = None
    if (v.src_mac, v.dst_mac) != (fk.src_mac, fk.dst_mac) or w.ttl:
        edit = InnerEdit(v.dst_mac, v.src_mac, w.ttl, fk.family or 4, fk.l3_offset)
    source = pinned_source(state, port, fk)
    template, arg, next_port, reason = _toward(state, m, edit, zlib.crc32(fk.key), d, source)
    if reason is not None:
        return d.drop(reason, state)
    d.template, d.arg, d.next_port = template, arg, next_port
    return d


def pinned_source(state: EngineState, port: Port, fk: FlowKey) -> ProviderAddress | None:
    """The local PA the mapping space holds for the packet's source CA, if any.

    A receiver accepts a tunnelled packet only from the PA its mappings hold for the
    inner source (by CA IP, else by MAC), so a host with several PAs must send from that
    one; packets whose source is not mapped to a local PA spread over the PAs by hash.
    """
    m = None
    if fk.src_ip is not None:
        m = state.mappings.by_ip(port.rdid, fk.src_ip)
    if m is None:
        m = state.mappings.by_mac(port.vsid, fk.src_mac) or state.mappings.by_mac(
            port.vsid, port.mac
        )
    return None if m is None else state.provider_addresses.get(m.provider_address)


def _toward(
    state: EngineState,
    m: Mapping,
    edit: InnerEdit | None,
    flow_hash: int,
    d: Decision,
    source: ProviderAddress | None = None,
) -> tuple[Template | None, int, str | None, str | None]:
    """(template, flow argument, local port, drop reason) to reach mapping ``m``, sent
    from PA ``source`` when given (``pinned_source``), else from one chosen by hash."""
    if m.provider_address in state.provider_addresses:
        q = state.ports_by_mac.get(m.customer_mac)
        if q is None or q.vsid != m.vsid:
            return None, 0, None, "no_port"
        if d.record:
            d.steps.append(TraceStep("-", "-", "-", None, f"deliver({q.name})", "local CA"))
        return state.local_delivery(q.name, edit), 0, q.name, None
    if not state.provider_addresses:
        return None, 0, None, "no_provider_address"
    if source is not None:
        choice, on_link = source, source.on_link(m.provider_address)
    else:
        sources, on_link = state.sources_toward(m.provider_address)
        choice = sources[flow_hash % len(sources)]
    next_hop = state.pa_neighbors.get(m.provider_address) if on_link else choice.gateway_mac
    if next_hop is None:
        return None, 0, None, "no_pa_route"
    nvgre = m.encapsulation == "nvgre"
    arg = flow_hash & NVGRE_FLOW_ID_MAX if nvgre else source_port_of(flow_hash)
    fields = (("src", choice.address), ("dst", m.provider_address), ("vsid", str(m.vsid)))
    extra = (("flow_id", str(arg)),) if nvgre else (("src_port", str(arg)),)
    if choice.vlan_id is not None and d.record:
        d.ops.append(HeaderOp("push", "vlan", (("vid", str(choice.vlan_id)),)))
    if d.record:
        d.ops.append(HeaderOp("push", m.encapsulation, fields + extra))
    if d.record:
        d.steps.append(
            TraceStep(
                "-",
                "-",
                "-",
                None,
                f"encapsulate({m.encapsulation})",
                f"to PA {m.provider_address}",
            )
        )
    return state.encap(nvgre, choice, m.provider_address, next_hop, m.vsid, edit), arg, None, None


def _replicate(
    state: EngineState, port: Port, fk: FlowKey, frame: bytes, v: PacketView, d: Decision
) -> Decision:
    """Broadcast/multicast: one unicast copy per other VM of the VSID (not cached)."""
    d.cacheable = False
    d.copies = []
    seen = {fk.src_mac}
    source = pinned_source(state, port, fk)
    for m in state.mappings.in_vsid(v.vsid):
        if m.customer_mac in seen or m.rdid != port.rdid:
            continue
        seen.add(m.customer_mac)
        copy = retarget(frame, fk, m)
        template, arg, next_port, reason = _toward(state, m, None, zlib.crc32(copy), d, source)
        if template is not None:
            d.copies.append(Copy(template, arg, copy, next_port))
        else:
            if d.record:
                d.steps.append(
                    TraceStep("-", "-", "-", None, f"skip({reason})", m.customer_address)
                )
    if d.record:
        d.steps.append(TraceStep("-", "-", "-", None, "replicate", f"{len(d.copies)} copies"))
    return d


def retarget(frame: bytes, fk: FlowKey, m: Mapping) -> bytes:
    """``frame`` with dst MAC = the CA's MAC, and a broadcast/multicast IPv4 dst = the CA's IP."""
    out = bytearray(frame)
    out[:MAC_LEN] = mac_to_bytes(m.customer_mac)
    dst = fk.dst_ip
    ca = ipaddress.ip_address(m.customer_address)
    if (
        isinstance(dst, ipaddress.IPv4Address)
        and isinstance(ca, ipaddress.IPv4Address)
        and (dst.is_multicast or int(dst) & _HOST_BYTE == _HOST_BYTE or dst == _LIMITED_BROADCAST)
    ):
        l3 = fk.l3_offset
        at = l3 + IPV4_DST_AT
        old, new = bytes(out[at : l3 + IPV4_HEADER_LEN]), ca.packed
        out[at : l3 + IPV4_HEADER_LEN] = new
        _patch_checksum(out, l3 + IPV4_CHECKSUM_AT, old, new)
        l4 = fk.l4_offset
        if l4 >= 0 and fk.protocol in (PROTO_TCP, PROTO_UDP):
            at = l4 + (TCP_CHECKSUM_AT if fk.protocol == PROTO_TCP else UDP_CHECKSUM_AT)
            csum = int.from_bytes(out[at : at + _CHECKSUM_LEN], "big")
            if len(out) >= at + _CHECKSUM_LEN and (csum or fk.protocol == PROTO_TCP):
                _patch_checksum(out, at, old, new)  # UDP checksum 0: none (RFC 768)
    return bytes(out)


_HOST_BYTE = 0xFF
_OCTET = 2  # hex digits of one MAC octet
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_CHECKSUM_LEN = 2


def _patch_checksum(out: bytearray, at: int, old: bytes, new: bytes) -> None:
    """The checksum at ``at`` after ``old`` became ``new`` in what it covers (RFC 1624)."""
    checksum = int.from_bytes(out[at : at + _CHECKSUM_LEN], "big")
    out[at : at + _CHECKSUM_LEN] = update_checksum(checksum, old, new).to_bytes(
        _CHECKSUM_LEN, "big"
    )
