"""The slow path: walk a packet through a port's layers and decide what its flow does.

``decide`` is a pure function of the switch's state (``Fabric``, the port) and the
frame: it returns a ``Decision`` (the compiled template, the trace steps, the composed
header transposition, the rules that matched) and changes nothing. The switch commits
decisions into the unified flow tables; ``trace`` shows them.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field

from openhnv.packet.flowkey import FlowKey
from openhnv.vfp.classifier import PacketView
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.model import Port
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
from openhnv.vfp.spaces import Mapping, MappingSpace, ProviderAddress
from openhnv.vfp.transposition import (
    Decap,
    Discard,
    Encap,
    HeaderOp,
    InnerEdit,
    LocalDelivery,
    Template,
    source_port_of,
)

ETHERTYPE_ARP = 0x0806
MAX_RULE_SETS = 100_000
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


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

    def drop(self, reason: str, fabric: Fabric, note: str = "") -> Decision:
        self.template = fabric.discard(reason)
        if self.record:
            self.steps.append(TraceStep("-", "-", "-", None, f"drop({reason})", note))
        return self

    @property
    def reason(self) -> str | None:
        t = self.template
        return t.reason if isinstance(t, Discard) else None


class Fabric:
    """The switch-wide state the slow path reads: spaces, PAs, ports by MAC, templates."""

    def __init__(self) -> None:
        self.mappings = MappingSpace()
        self.provider_addresses: dict[str, ProviderAddress] = {}
        self.pa_neighbors: dict[str, str] = {}
        self.ports: dict[str, Port] = {}
        self.ports_by_mac: dict[str, Port] = {}
        self._discards: dict[str, Discard] = {}
        self._locals: dict[tuple[object, ...], LocalDelivery] = {}
        self._encaps: dict[tuple[object, ...], Encap] = {}
        self._decaps: dict[tuple[str, int, int], Decap] = {}
        self._sources: dict[str, tuple[list[ProviderAddress], bool]] = {}
        self._rule_sets: dict[tuple[int, ...], tuple[Rule, ...]] = {}

    def rule_set(self, rules: list[Rule]) -> tuple[Rule, ...]:
        """``rules`` as a tuple shared by every flow decided by the same rules."""
        key = tuple(map(id, rules))
        found = self._rule_sets.get(key)
        if found is None:
            if len(self._rule_sets) > MAX_RULE_SETS:
                self._rule_sets.clear()
            found = self._rule_sets[key] = tuple(rules)
        return found

    def forget_templates(self) -> None:
        """Drop shared templates after a change of PAs or neighbours (flows re-evaluate)."""
        self._locals.clear()
        self._encaps.clear()
        self._sources.clear()

    def sources_toward(self, provider_address: str) -> tuple[list[ProviderAddress], bool]:
        """The local PAs to send toward ``provider_address`` from, and whether on-link."""
        found = self._sources.get(provider_address)
        if found is None:
            pas = sorted(self.provider_addresses.values(), key=lambda p: p.address)
            on_link = [p for p in pas if p.on_link(provider_address)]
            found = self._sources[provider_address] = (on_link or pas, bool(on_link))
        return found

    def discard(self, reason: str) -> Discard:
        t = self._discards.get(reason)
        if t is None:
            t = self._discards[reason] = Discard(reason)
        return t

    def decap(self, port: str, offset: int, outer_len: int) -> Decap:
        t = self._decaps.get((port, offset, outer_len))
        if t is None:
            t = self._decaps[(port, offset, outer_len)] = Decap(port, offset, outer_len)
        return t

    def local_delivery(self, port: str, edit: InnerEdit | None) -> LocalDelivery:
        key = (port, _edit_key(edit))
        t = self._locals.get(key)
        if t is None:
            t = self._locals[key] = LocalDelivery(port, edit)
        return t

    def encap(self, nvgre: bool, src: ProviderAddress, dst_pa: str, next_hop: str, vsid: int,
              edit: InnerEdit | None) -> Encap:  # fmt: skip
        key = (nvgre, src.address, dst_pa, next_hop, vsid, _edit_key(edit))
        t = self._encaps.get(key)
        if t is None:
            t = self._encaps[key] = Encap(
                nvgre=nvgre, outer_src_mac=src.mac, outer_dst_mac=next_hop,
                vlan_id=src.vlan_id, source_pa=src.address, provider_address=dst_pa,
                vsid=vsid, edit=edit,
            )  # fmt: skip
        return t


def _edit_key(edit: InnerEdit | None) -> tuple[object, ...] | None:
    if edit is None:
        return None
    return (edit.macs, edit.decrement_ttl, edit.family, edit.l3)


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
    port: Port, direction: Direction, fk: FlowKey, d: Decision, fab: Fabric
) -> _Walk | None:
    """Cross the port's layers; None when a layer blocks (``d`` holds the drop)."""
    w = _Walk(view_of(fk, port.vsid))
    connection = fk.connection()
    for layer in port.layers_for(direction):
        if layer.stateful and connection:
            origin = port.connections.get(connection)
            if origin is not None and origin.table.direction != direction:
                d.reply_of = origin
                if d.record:
                    d.steps.append(
                        TraceStep(layer.name, "-", "-", None, "allow", "reply of a connection")
                    )
                continue
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
                    TraceStep(
                        layer.name, group.name, rule.rule_id, rule.priority, describe_action(act)
                    )
                )
            if isinstance(act, Block):
                d.drop(act.reason, fab)
                return None
            if isinstance(act, Count):
                d.counters.append(act.counter)
            elif isinstance(act, Rewrite):
                _rewrite(w, act, d)
            elif isinstance(act, Encapsulate | Route):
                w.forward = act
            if rule.terminating:
                break
        if not matched:
            default = layer.default(direction)
            if d.record:
                d.steps.append(
                    TraceStep(layer.name, "-", "-", None, describe_action(default), "layer default")
                )
            if isinstance(default, Block):
                d.drop(default.reason, fab, f"default of layer {layer.name}")
                return None
        if layer.stateful:
            d.stateful = True
    return w


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
    fab: Fabric,
    port: Port,
    direction: Direction,
    frame: bytes,
    fk: FlowKey,
    key: bytes,
    record: bool = False,
) -> Decision:
    """The slow-path decision for ``frame`` crossing ``port`` in ``direction``."""
    d = Decision(record=record)
    if direction == OUT:
        if fk.ethertype == ETHERTYPE_ARP:
            d.punt, d.cacheable = "arp", False
            if d.record:
                d.steps.append(TraceStep("-", "-", "-", None, "punt(arp)", "answered by the agent"))
            return d
        if not port.allow_mac_spoofing and fk.src_mac != port.mac:
            return d.drop("spoofed_source", fab, f"source MAC {fk.src_mac} is not {port.mac}")
        if fk.src_ip is not None and port.ip_addresses and fk.src_ip not in port.ip_addresses:
            return d.drop("spoofed_source", fab, f"source IP {fk.src_ip} is not the port's")
    w = _walk_layers(port, direction, fk, d, fab)
    if w is None:
        return d
    if direction == IN:
        v = w.view
        edit = None
        if (v.src_mac, v.dst_mac) != (fk.src_mac, fk.dst_mac) or w.ttl:
            edit = InnerEdit(v.dst_mac, v.src_mac, w.ttl, fk.family or 4, fk.l3_offset)
        d.template = fab.local_delivery(port.name, edit)
        if d.record:
            d.steps.append(TraceStep("-", "-", "-", None, f"deliver({port.name})"))
        return d
    return _forward(fab, port, fk, key, frame, w, d)


def _forward(
    fab: Fabric, port: Port, fk: FlowKey, key: bytes, frame: bytes, w: _Walk, d: Decision
) -> Decision:
    fwd, v = w.forward, w.view
    if fwd is None:
        return d.drop("no_forwarding_rule", fab, "no layer chose encapsulate or route")
    if isinstance(fwd, Route) and v.dst_mac == fwd.router_mac:
        if fk.dst_ip is None:
            return d.drop("not_routable", fab, "a non-IP frame to the router MAC")
        m = fab.mappings.by_ip(port.rdid, fk.dst_ip)
        if m is None:
            return d.drop("no_mapping", fab, f"no CA {fk.dst_ip} in RDID {port.rdid}")
        _modify_ops(d, fwd.router_mac, m.customer_mac, True, m.vsid)
        w.ttl = True
        v = PacketView(fwd.router_mac, m.customer_mac, v.ethertype, m.vsid)
        if d.record:
            d.steps.append(
                TraceStep("-", "-", "-", None, "route", f"to {m.customer_address} in VSID {m.vsid}")
            )
    elif int(v.dst_mac[:2], 16) & 1:
        return _replicate(fab, port, fk, frame, v, d)
    else:
        m_or_none = fab.mappings.by_mac(v.vsid, v.dst_mac)
        if m_or_none is None:
            return d.drop("no_mapping", fab, f"no CA MAC {v.dst_mac} in VSID {v.vsid}")
        m = m_or_none
    if m.rdid != port.rdid:
        return d.drop("cross_rdid", fab, f"{m.customer_address} is in RDID {m.rdid}")
    edit = None
    if (v.src_mac, v.dst_mac) != (fk.src_mac, fk.dst_mac) or w.ttl:
        edit = InnerEdit(v.dst_mac, v.src_mac, w.ttl, fk.family or 4, fk.l3_offset)
    source = pinned_source(fab, port, fk)
    template, arg, next_port, reason = _toward(fab, m, edit, zlib.crc32(key), d, source)
    if reason is not None:
        return d.drop(reason, fab)
    d.template, d.arg, d.next_port = template, arg, next_port
    return d


def pinned_source(fab: Fabric, port: Port, fk: FlowKey) -> ProviderAddress | None:
    """The local PA the mapping space holds for the packet's source CA, if any.

    A receiver accepts a tunnelled packet only from the PA its mappings hold for the
    inner source (by CA IP, else by MAC), so a host with several PAs must send from that
    one; packets whose source is not mapped to a local PA spread over the PAs by hash.
    """
    m = None
    if fk.src_ip is not None:
        m = fab.mappings.by_ip(port.rdid, fk.src_ip)
    if m is None:
        m = fab.mappings.by_mac(port.vsid, fk.src_mac) or fab.mappings.by_mac(port.vsid, port.mac)
    return None if m is None else fab.provider_addresses.get(m.provider_address)


def _toward(
    fab: Fabric,
    m: Mapping,
    edit: InnerEdit | None,
    flow_hash: int,
    d: Decision,
    source: ProviderAddress | None = None,
) -> tuple[Template | None, int, str | None, str | None]:
    """(template, flow argument, local port, drop reason) to reach mapping ``m``, sent
    from PA ``source`` when given (``pinned_source``), else from one chosen by hash."""
    if m.provider_address in fab.provider_addresses:
        q = fab.ports_by_mac.get(m.customer_mac)
        if q is None or q.vsid != m.vsid:
            return None, 0, None, "no_port"
        if d.record:
            d.steps.append(TraceStep("-", "-", "-", None, f"deliver({q.name})", "local CA"))
        return fab.local_delivery(q.name, edit), 0, q.name, None
    if not fab.provider_addresses:
        return None, 0, None, "no_provider_address"
    if source is not None:
        choice, on_link = source, source.on_link(m.provider_address)
    else:
        sources, on_link = fab.sources_toward(m.provider_address)
        choice = sources[flow_hash % len(sources)]
    next_hop = fab.pa_neighbors.get(m.provider_address) if on_link else choice.gateway_mac
    if next_hop is None:
        return None, 0, None, "no_pa_route"
    nvgre = m.encapsulation == "nvgre"
    arg = flow_hash & 0xFF if nvgre else source_port_of(flow_hash)
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
    return fab.encap(nvgre, choice, m.provider_address, next_hop, m.vsid, edit), arg, None, None


def _replicate(
    fab: Fabric, port: Port, fk: FlowKey, frame: bytes, v: PacketView, d: Decision
) -> Decision:
    """Broadcast/multicast: one unicast copy per other VM of the VSID (not cached)."""
    d.cacheable = False
    d.copies = []
    seen = {fk.src_mac}
    source = pinned_source(fab, port, fk)
    for m in fab.mappings.in_vsid(v.vsid):
        if m.customer_mac in seen or m.rdid != port.rdid:
            continue
        seen.add(m.customer_mac)
        copy = retarget(frame, fk, m)
        template, arg, next_port, reason = _toward(fab, m, None, zlib.crc32(copy), d, source)
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
    out[0:6] = bytes.fromhex(m.customer_mac.replace(":", ""))
    dst = fk.dst_ip
    ca = ipaddress.ip_address(m.customer_address)
    if (
        isinstance(dst, ipaddress.IPv4Address)
        and ca.version == 4
        and (
            dst.is_multicast
            or int(dst) & 0xFF == 0xFF
            or dst == ipaddress.IPv4Address("255.255.255.255")
        )
    ):
        l3 = fk.l3_offset
        old, new = out[l3 + 16 : l3 + 20], ca.packed
        out[l3 + 16 : l3 + 20] = new
        out[l3 + 10 : l3 + 12] = _update(int.from_bytes(out[l3 + 10 : l3 + 12], "big"), old, new)
        l4 = fk.l4_offset
        if l4 >= 0 and fk.protocol in (6, 17):
            at = l4 + (16 if fk.protocol == 6 else 6)
            csum = int.from_bytes(out[at : at + 2], "big")
            if len(out) >= at + 2 and (csum or fk.protocol == 6):
                out[at : at + 2] = _update(csum, old, new)
    return bytes(out)


def _update(csum: int, old: bytes | bytearray, new: bytes | bytearray) -> bytes:
    """Incremental Internet checksum update for replaced 16-bit words (RFC 1624 eqn. 3)."""
    s = ~csum & 0xFFFF
    for i in range(0, len(old), 2):
        s += (~int.from_bytes(old[i : i + 2], "big") & 0xFFFF) + int.from_bytes(
            new[i : i + 2], "big"
        )
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).to_bytes(2, "big")
