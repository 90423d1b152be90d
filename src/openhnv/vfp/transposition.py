"""Header transpositions (HT): what a flow does to the headers, described and compiled.

``HeaderTransposition`` is the readable form: a sequence of push/pop/modify operations,
one per header, as the slow path composed them (for trace and flow listings).

The compiled form is what the fast path runs:

- ``Encap``: the outer Ethernet [+802.1Q] / IPv4 / UDP+VXLAN (RFC 7348) or GRE+NVGRE
  (RFC 7637) headers of one destination as a ``packet.template.TunnelTemplate``: per
  packet only the IP total length, the IP checksum (from its precomputed partial sum)
  and the UDP length are packed, with the flow's UDP source port or NVGRE FlowID. An
  optional inner edit (routed flows: new MACs, TTL decrement with the incremental
  checksum of RFC 1624) runs first.
- ``LocalDelivery``: an optional inner edit, then the packet goes to a local port.
- ``Discard``: the flow's packets are dropped under a reason.
- ``Decap``: pop the outer headers of a frame from the uplink (its inner frame then
  crosses the destination port's inbound layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.checksum import update_checksum_word
from openhnv.packet.ethernet import ETHERNET_HEADER_LEN, ETHERTYPE_AT, vlan_tag
from openhnv.packet.ipv4 import (
    IPV4_CHECKSUM_AT,
    IPV4_MAX_TOTAL_LEN,
    IPV4_PROTOCOL_AT,
    IPV4_TTL_AT,
)
from openhnv.packet.ipv6 import IPV6_HOP_LIMIT_AT
from openhnv.packet.template import HeaderBuilder, TunnelTemplate
from openhnv.packet.vxlan import VXLAN_SOURCE_PORT_MAX, VXLAN_SOURCE_PORT_MIN
from openhnv.vfp.emits import BRIDGED, Deliver, Drop, Emit, Transmit

_IPV6 = 6
_BYTE_BITS = 8
ENTROPY_MASK = 0xFFFF
"""A flow's argument holds its VXLAN source port or NVGRE FlowID in these bits."""


@dataclass(frozen=True, slots=True)
class HeaderOp:
    """One edit: push, pop or modify ``header``, with its fields as (name, value) text."""

    op: Literal["push", "pop", "modify"]
    header: str
    fields: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.fields)
        return f"{self.op} {self.header}" + (f"({inner})" if inner else "")


@dataclass(frozen=True, slots=True)
class HeaderTransposition:
    """The composed edits of one flow, in order."""

    ops: tuple[HeaderOp, ...] = ()

    def describe(self) -> str:
        return "; ".join(op.describe() for op in self.ops) or "none"


class InnerEdit:
    """Rewrite the inner frame: MACs, and optionally decrement the IP TTL/hop limit."""

    __slots__ = ("decrement_ttl", "family", "l3", "macs")

    def __init__(self, dst_mac: str, src_mac: str, decrement_ttl: bool, family: int, l3: int):
        self.macs = mac_to_bytes(dst_mac) + mac_to_bytes(src_mac)
        self.decrement_ttl = decrement_ttl
        self.family = family
        self.l3 = l3

    def apply(self, frame: bytes) -> bytes | None:
        """The edited frame, or None when the TTL runs out."""
        macs_end = ETHERTYPE_AT
        if not self.decrement_ttl:
            return self.macs + frame[macs_end:]
        l3 = self.l3
        if self.family == _IPV6:
            at = l3 + IPV6_HOP_LIMIT_AT
            hop = frame[at]
            if hop <= 1:
                return None
            return self.macs + frame[macs_end:at] + bytes((hop - 1,)) + frame[at + 1 :]
        at = l3 + IPV4_TTL_AT
        ttl = frame[at]
        if ttl <= 1:
            return None
        old_word = ttl << _BYTE_BITS | frame[l3 + IPV4_PROTOCOL_AT]  # TTL and protocol
        checksum_at = l3 + IPV4_CHECKSUM_AT
        checksum = int.from_bytes(frame[checksum_at : checksum_at + 2], "big")
        checksum = update_checksum_word(checksum, old_word, old_word - (1 << _BYTE_BITS))
        return (
            self.macs
            + frame[macs_end:at]
            + bytes((ttl - 1,))
            + frame[at + 1 : checksum_at]
            + checksum.to_bytes(2, "big")
            + frame[checksum_at + 2 :]
        )


MTU_EXCEEDED = "mtu_exceeded"
"""The drop reason of a frame too big for its uplink once encapsulated."""


class Encap:
    """Push outer headers toward one PA; shared by every flow with the same destination.

    ``max_inner``: the longest inner frame whose outer IPv4 packet fits the source PA's
    uplink MTU (and is still one packet: its total length is 16 bits); a longer one is
    dropped under ``MTU_EXCEEDED``. ``next_hop_mtu``: the longest inner IPv4 packet, what
    a "fragmentation needed" tells the VM (the MTU less the 50 bytes of VXLAN or 42 of
    NVGRE)."""

    __slots__ = (
        "edit",
        "encap_inline",
        "header",
        "max_inner",
        "next_hop_mtu",
        "plain",
        "provider_address",
        "source_pa",
        "template",
    )

    def __init__(
        self,
        *,
        nvgre: bool,
        outer_src_mac: str,
        outer_dst_mac: str,
        vlan_id: int | None,
        source_pa: str,
        provider_address: str,
        vsid: int,
        edit: InnerEdit | None,
        mtu: int | None = None,
    ) -> None:
        if nvgre:
            self.template = TunnelTemplate.nvgre(
                outer_src_mac=outer_src_mac, outer_dst_mac=outer_dst_mac, src_pa=source_pa,
                dst_pa=provider_address, vsid=vsid, vlan_id=vlan_id,
            )  # fmt: skip
        else:
            self.template = TunnelTemplate.vxlan(
                outer_src_mac=outer_src_mac, outer_dst_mac=outer_dst_mac, src_pa=source_pa,
                dst_pa=provider_address, vni=vsid, vlan_id=vlan_id,
            )  # fmt: skip
        # header(inner_length, entropy): the outer headers for one packet; the entropy is
        # the flow's UDP source port (VXLAN) or FlowID (NVGRE), the low 16 bits of its arg
        self.header: HeaderBuilder = self.template.header_for
        self.source_pa = source_pa
        self.provider_address = provider_address
        self.edit = edit
        self.plain = edit is None  # the fast path inlines these
        self.encap_inline = self.plain
        outer_ip = len(self.template.header) - self.template.ip_offset
        outer_limit = IPV4_MAX_TOTAL_LEN if mtu is None else min(mtu, IPV4_MAX_TOTAL_LEN)
        self.max_inner = outer_limit - outer_ip
        self.next_hop_mtu = self.max_inner - ETHERNET_HEADER_LEN

    def emit(self, port: str, frame: bytes, flow_arg: int) -> Emit:
        """The outer frame of ``frame`` (a drop under ``MTU_EXCEEDED`` when too big)."""
        if len(frame) > self.max_inner:
            return Drop(port, MTU_EXCEEDED)
        if self.edit is not None:
            edited = self.edit.apply(frame)
            if edited is None:
                return Drop(port, "ttl_exceeded")
            frame = edited
        outer = self.header(len(frame), flow_arg & ENTROPY_MASK)
        return Transmit(outer + frame, self.source_pa, self.provider_address)


class LocalDelivery:
    """Deliver to a local port, after an optional inner edit."""

    __slots__ = ("edit", "plain", "port")
    encap_inline = False

    def __init__(self, port: str, edit: InnerEdit | None) -> None:
        self.port = port
        self.edit = edit
        self.plain = edit is None

    def emit(self, port: str, frame: bytes, flow_arg: int) -> Emit:
        if self.edit is not None:
            edited = self.edit.apply(frame)
            if edited is None:
                return Drop(port, "ttl_exceeded")
            frame = edited
        return Deliver(self.port, frame)


class Discard:
    """Drop every packet of the flow under ``reason``."""

    __slots__ = ("reason",)
    plain = False
    encap_inline = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def emit(self, port: str, frame: bytes, flow_arg: int) -> Emit:
        return Drop(port, self.reason)


_SOURCE_PORTS = tuple(range(VXLAN_SOURCE_PORT_MIN, VXLAN_SOURCE_PORT_MAX + 1))
_SOURCE_PORT_SPAN = len(_SOURCE_PORTS)


def source_port_of(flow_hash: int) -> int:
    """The VXLAN outer UDP source port for a flow hash, in ``VXLAN_SOURCE_PORT_MIN..MAX``
    (RFC 7348 §5); the int objects are shared, so a million flows do not hold a million
    ints."""
    return _SOURCE_PORTS[flow_hash % _SOURCE_PORT_SPAN]


class Decap:
    """Pop the outer headers (the inner frame starts at ``offset``) toward local ``port``;
    the first ``outer_len`` bytes of the flow's key come from the outer headers."""

    __slots__ = ("offset", "outer_len", "port")
    plain = False
    encap_inline = False

    def __init__(self, port: str, offset: int, outer_len: int) -> None:
        self.port = port
        self.offset = offset
        self.outer_len = outer_len

    def emit(self, port: str, frame: bytes, flow_arg: int) -> Emit:
        return Deliver(self.port, frame[self.offset :])


class Bridge:
    """Send the frame as it is out of the uplink of PA ``source_pa``, tagged with an
    access port's VLAN: a traditional VLAN network, no encapsulation."""

    __slots__ = ("source_pa", "tag", "vlan")
    plain = False
    encap_inline = False

    def __init__(self, vlan: int, source_pa: str) -> None:
        self.vlan = vlan
        self.tag = vlan_tag(vlan)
        self.source_pa = source_pa

    def emit(self, port: str, frame: bytes, flow_arg: int) -> Emit:
        return Transmit(frame[:ETHERTYPE_AT] + self.tag + frame[ETHERTYPE_AT:], self.source_pa,
                        BRIDGED)  # fmt: skip


Template = Encap | LocalDelivery | Discard | Decap | Bridge
