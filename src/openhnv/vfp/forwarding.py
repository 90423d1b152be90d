"""Forwarding a VM's frame once its layers allowed it: route, encapsulate or replicate.

The layers chose ``Route`` (the distributed router: TTL - 1, MACs rewritten, the CA's
VSID; a destination outside the VNet goes toward its routing domain's gateway) or
``Encapsulate`` (L2 in the port's VSID). The mapping space then names the destination's
PA: a local one delivers to the port of that CA's MAC, a remote one is reached through
an outer header from this host's PA (``pinned_source``, else one chosen by the flow
hash). Broadcast and multicast go as unicast copies to every other VM of the VSID
(``retarget``). No lookup leaves the port's RDID.
"""

from __future__ import annotations

import ipaddress
import zlib

from openhnv.packet.addresses import MAC_GROUP_BIT, MAC_LEN, mac_to_bytes
from openhnv.packet.checksum import update_checksum
from openhnv.packet.flowkey import FlowKey
from openhnv.packet.gre import NVGRE_FLOW_ID_MAX
from openhnv.packet.ipv4 import (
    IPV4_CHECKSUM_AT,
    IPV4_DST_AT,
    IPV4_HEADER_LEN,
    PROTO_TCP,
    PROTO_UDP,
)
from openhnv.packet.tcp import TCP_CHECKSUM_AT
from openhnv.packet.udp import UDP_CHECKSUM_AT
from openhnv.vfp.classifier import PacketView
from openhnv.vfp.decision import Copy, Decision, TraceStep
from openhnv.vfp.layers import Walk, modify_ops
from openhnv.vfp.model import Port
from openhnv.vfp.policy import Route
from openhnv.vfp.routes import gateway_mapping
from openhnv.vfp.spaces import Mapping, ProviderAddress
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import HeaderOp, InnerEdit, Template, source_port_of


def is_group_mac(mac: str) -> bool:
    """Whether a MAC (text, normalized: aa:bb:..) is a broadcast or multicast one."""
    return bool(int(mac[:_OCTET], 16) & MAC_GROUP_BIT)


def forward(
    state: EngineState, port: Port, fk: FlowKey, frame: bytes, w: Walk, d: Decision
) -> Decision:
    """Carry out the forwarding the layers chose for ``frame`` (``w``): ``d`` with the
    flow's template, or with its drop."""
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
        modify_ops(d, fwd.router_mac, m.customer_mac, True, m.vsid)
        w.ttl = True
        v = PacketView(fwd.router_mac, m.customer_mac, v.ethertype, m.vsid)
        if d.record:
            d.steps.append(
                TraceStep(
                    "-", "-", "-", None, "route", f"to {m.customer_address}{via} in VSID {m.vsid}"
                )
            )
    elif is_group_mac(v.dst_mac):
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
