"""Receive from the PA network: the outer-header checks before decapsulation.

A frame from the uplink must be IPv4 to one of this switch's PAs and carry VXLAN
(UDP 4789, I flag, RFC 7348) or NVGRE (GRE with the key bit and protocol 0x6558,
RFC 7637). Its inner destination MAC names the local port; the VSID must be that
port's (``vsid_mismatch``); the outer source must be the PA the mapping space holds for
the inner source CA (``spoofed_source``). ``outer_key`` is the fast path's part of the
flow key taken from the outer headers.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import FlowKey, parse_flow_key
from openhnv.vfp.pipeline import Decision, Fabric, TraceStep
from openhnv.vfp.transposition import (
    GRE_KEY_PRESENT,
    NVGRE_PROTOCOL,
    VXLAN_FLAG_I,
    VXLAN_PORT,
    HeaderOp,
)

_VLAN = b"\x81\x00"
_IPV4_NO_OPTIONS = b"\x08\x00\x45"
_OUTER_VXLAN = 50  # inner frame offset: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
_OUTER_NVGRE = 42  # Ethernet 14 + IPv4 20 + GRE with key 8


VXLAN_OUTER_KEY = struct.Struct("!12x3s8x1s2x12s4x8s")  # type+IHL, proto, PAs+ports, VXLAN
NVGRE_OUTER_KEY = struct.Struct("!12x3s8x1s2x16s")  # type+IHL, proto, PAs, GRE header


def outer_key(frame: bytes) -> tuple[bytes, int]:
    """(outer part of the flow key, inner frame offset); offset -1: not a plain tunnel frame.

    The key holds the IP protocol, the PAs, the UDP ports and the VXLAN header (or the
    GRE header with the key), and the VLAN tag if any; a frame with IP options or another
    shape has no key and always takes the slow path.
    """
    o = 4 if frame[12:14] == _VLAN else 0
    if frame[o + 12 : o + 15] != _IPV4_NO_OPTIONS:
        return b"", -1
    tag = frame[12:16] if o else b""
    proto = frame[o + 23] if len(frame) > o + 23 else -1
    if proto == 17 and len(frame) >= o + _OUTER_VXLAN:
        return tag + b"".join(VXLAN_OUTER_KEY.unpack_from(frame, o)), o + _OUTER_VXLAN
    if proto == 47 and len(frame) >= o + _OUTER_NVGRE:
        return tag + b"".join(NVGRE_OUTER_KEY.unpack_from(frame, o)), o + _OUTER_NVGRE
    return b"", -1


@dataclass(frozen=True, slots=True)
class Outer:
    """The outer headers of a tunnelled frame."""

    source_pa: str
    destination_pa: str
    encapsulation: str
    vsid: int
    inner_offset: int


def parse_outer(frame: bytes) -> Outer:
    """The outer headers, or ``PacketError`` naming what is not a tunnel frame."""
    if len(frame) < 14:
        raise PacketError("ethernet", 0, f"truncated frame of {len(frame)} bytes")
    o = 4 if frame[12:14] == _VLAN else 0
    if frame[o + 12 : o + 14] != b"\x08\x00":
        raise PacketError("ethernet", o + 12, "the outer frame is not IPv4")
    l3 = o + 14
    if len(frame) < l3 + 20 or frame[l3] >> 4 != 4:
        raise PacketError("ipv4", l3, "truncated or not version 4")
    l4 = l3 + (frame[l3] & 0x0F) * 4
    src = str(ipaddress.IPv4Address(frame[l3 + 12 : l3 + 16]))
    dst = str(ipaddress.IPv4Address(frame[l3 + 16 : l3 + 20]))
    proto = frame[l3 + 9]
    if proto == 17:
        if len(frame) < l4 + 16:
            raise PacketError("vxlan", l4, "truncated UDP/VXLAN header")
        if int.from_bytes(frame[l4 + 2 : l4 + 4], "big") != VXLAN_PORT:
            raise PacketError("udp", l4 + 2, "destination port is not VXLAN 4789")
        if not frame[l4 + 8] & VXLAN_FLAG_I:
            raise PacketError("vxlan", l4 + 8, "the I flag is not set")
        vsid = int.from_bytes(frame[l4 + 12 : l4 + 15], "big")
        return Outer(src, dst, "vxlan", vsid, l4 + 16)
    if proto == 47:
        if len(frame) < l4 + 8:
            raise PacketError("gre", l4, "truncated GRE header")
        flags = int.from_bytes(frame[l4 : l4 + 2], "big")
        if flags != GRE_KEY_PRESENT or frame[l4 + 2 : l4 + 4] != NVGRE_PROTOCOL.to_bytes(2, "big"):
            raise PacketError("gre", l4, "not NVGRE (key bit only, protocol 0x6558)")
        vsid = int.from_bytes(frame[l4 + 4 : l4 + 7], "big")
        return Outer(src, dst, "nvgre", vsid, l4 + 8)
    raise PacketError("ipv4", l3 + 9, f"protocol {proto} is neither VXLAN/UDP nor NVGRE/GRE")


def decide_uplink(
    fab: Fabric, frame: bytes, record: bool = False
) -> tuple[Decision, FlowKey | None]:
    """The decision for a frame from the PA network, and its inner flow key."""
    d = Decision(record=record)
    try:
        outer = parse_outer(frame)
        inner = parse_flow_key(frame, outer.inner_offset)
    except PacketError as exc:
        return d.drop("malformed", fab, str(exc)), None
    if d.record:
        d.ops.append(HeaderOp("pop", outer.encapsulation, (("vsid", str(outer.vsid)),)))
    if d.record:
        d.steps.append(
            TraceStep("uplink", "-", "-", None, f"decapsulate({outer.encapsulation})",
                      f"{outer.source_pa} -> {outer.destination_pa} VSID {outer.vsid}")
        )  # fmt: skip
    if outer.destination_pa not in fab.provider_addresses:
        return d.drop(
            "not_local_pa", fab, f"{outer.destination_pa} is not a PA of this switch"
        ), inner
    port = fab.ports_by_mac.get(inner.dst_mac)
    if port is None:
        return d.drop("no_port", fab, f"no local port has MAC {inner.dst_mac}"), inner
    if port.vsid != outer.vsid:
        return d.drop("vsid_mismatch", fab, f"port {port.name} is in VSID {port.vsid}"), inner
    if inner.src_ip is not None:
        m = fab.mappings.by_ip(port.rdid, inner.src_ip)
    else:
        m = fab.mappings.by_mac(outer.vsid, inner.src_mac)
    if m is None or m.provider_address != outer.source_pa:
        why = "unknown source CA" if m is None else f"the CA lives at PA {m.provider_address}"
        return d.drop("spoofed_source", fab, why), inner
    okey, _ = outer_key(frame)
    d.template = fab.decap(port.name, outer.inner_offset, len(okey))
    d.next_port = port.name
    return d, inner
