"""Receive from the PA network: the outer-header checks before decapsulation.

A frame from the uplink must be IPv4 to one of this switch's PAs and carry VXLAN
(UDP 4789, I flag, RFC 7348) or NVGRE (GRE with the key bit and protocol 0x6558,
RFC 7637); ``packet.flowkey.parse_outer`` reads those headers. Its inner destination MAC
names the local port; the VSID must be that port's (``vsid_mismatch``); the outer source
must be the PA the mapping space holds for the inner source CA (``spoofed_source``); an
inner source outside the VNet must come from the PA of the gateway its routing domain
routes that source to.
"""

from __future__ import annotations

from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import FlowKey, parse_flow_key, parse_outer
from openhnv.vfp.decision import Decision, TraceStep
from openhnv.vfp.routes import gateway_mapping
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import HeaderOp


def decide_uplink(
    state: EngineState,
    frame: bytes,
    record: bool = False,
    *,
    outer_key: bytes | None = None,
    inner_key: bytes | None = None,
) -> tuple[Decision, FlowKey | None]:
    """The decision for a frame from the PA network, and its inner flow key (offsets from
    the inner frame's start). ``outer_key`` and ``inner_key``: the two parts of the flow
    key when the caller made them already (``outer_key``, ``flow_key`` at the inner
    offset); they are not made again."""
    d = Decision(record=record)
    try:
        outer = parse_outer(frame, outer_key)
        inner = parse_flow_key(frame, outer.inner_offset, inner_key)
    except PacketError as exc:
        return d.drop("malformed", state, str(exc)), None
    if d.record:
        d.ops.append(HeaderOp("pop", outer.encapsulation, (("vsid", str(outer.vsid)),)))
    if d.record:
        d.steps.append(
            TraceStep("uplink", "-", "-", None, f"decapsulate({outer.encapsulation})",
                      f"{outer.source_pa} -> {outer.destination_pa} VSID {outer.vsid}")
        )  # fmt: skip
    if outer.destination_pa not in state.provider_addresses:
        return d.drop(
            "not_local_pa", state, f"{outer.destination_pa} is not a PA of this switch"
        ), inner
    port = state.ports_by_mac.get(inner.dst_mac)
    if port is None:
        return d.drop("no_port", state, f"no local port has MAC {inner.dst_mac}"), inner
    if port.vsid != outer.vsid:
        return d.drop("vsid_mismatch", state, f"port {port.name} is in VSID {port.vsid}"), inner
    if inner.src_ip is not None:
        m = state.mappings.by_ip(port.rdid, inner.src_ip)
        if m is None:  # from outside the VNet: only through the gateway it routes that to
            m = gateway_mapping(state.routes, state.mappings, port.rdid, inner.src_ip)
    else:
        m = state.mappings.by_mac(outer.vsid, inner.src_mac)
    if m is None or m.provider_address != outer.source_pa:
        why = "unknown source CA" if m is None else f"the CA lives at PA {m.provider_address}"
        return d.drop("spoofed_source", state, why), inner
    d.template = state.decap(port.name, outer.inner_offset, len(outer.key))
    d.next_port = port.name
    return d, inner
