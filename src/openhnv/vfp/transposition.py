"""Header transpositions (HT): what a flow does to the headers, described and compiled.

``HeaderTransposition`` is the readable form: a sequence of push/pop/modify operations,
one per header, as the slow path composed them (for trace and flow listings).

The compiled form is what the fast path runs:

- ``Encap``: the outer Ethernet [+802.1Q] / IPv4 / UDP+VXLAN (RFC 7348) or GRE+NVGRE
  (RFC 7637) headers precomputed once; per packet only the IP total length, the IP
  checksum (from a precomputed partial sum, RFC 1071) and the UDP length are packed, with
  the flow's UDP source port or NVGRE FlowID. An optional inner edit (routed flows: new
  MACs, TTL decrement with the incremental checksum of RFC 1624) runs first.
- ``LocalDelivery``: an optional inner edit, then the packet goes to a local port.
- ``Discard``: the flow's packets are dropped under a reason.
- ``Decap``: pop the outer headers of a frame from the uplink (its inner frame then
  crosses the destination port's inbound layers).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal

from openhnv.vfp.emits import Deliver, Drop, Emit, Transmit

VXLAN_PORT = 4789
VXLAN_PORT_BYTES = VXLAN_PORT.to_bytes(2, "big")
NVGRE_PROTOCOL = 0x6558
GRE_KEY_PRESENT = 0x2000
VXLAN_FLAG_I = 0x08
OUTER_TTL = 64
IP_PROTO_UDP = 17
IP_PROTO_GRE = 47
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
IPV4_HEADER_LEN = 20
UDP_HEADER_LEN = 8
VXLAN_HEADER_LEN = 8
NVGRE_HEADER_LEN = 8
SOURCE_PORT_BASE = 49152
SOURCE_PORT_SPAN = 65536 - SOURCE_PORT_BASE

_VXLAN_STRUCTS = {n: struct.Struct(f"!{n}sH6sH8sH2sH10s") for n in (16, 20)}
_NVGRE_STRUCTS = {n: struct.Struct(f"!{n}sH6sH15sB") for n in (16, 20)}


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


def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    """The 16-bit one's complement sum of ``data`` (RFC 1071), folded."""
    if len(data) % 2:
        data += b"\0"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = initial + sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def mac_bytes(mac: str) -> bytes:
    """Six bytes of a normalized ``aa:bb:..`` MAC."""
    return bytes.fromhex(mac.replace(":", ""))


class InnerEdit:
    """Rewrite the inner frame: MACs, and optionally decrement the IP TTL/hop limit."""

    __slots__ = ("decrement_ttl", "family", "l3", "macs")

    def __init__(self, dst_mac: str, src_mac: str, decrement_ttl: bool, family: int, l3: int):
        self.macs = mac_bytes(dst_mac) + mac_bytes(src_mac)
        self.decrement_ttl = decrement_ttl
        self.family = family
        self.l3 = l3

    def apply(self, frame: bytes) -> bytes | None:
        """The edited frame, or None when the TTL runs out."""
        if not self.decrement_ttl:
            return self.macs + frame[12:]
        l3 = self.l3
        if self.family == 6:
            hop = frame[l3 + 7]
            if hop <= 1:
                return None
            return self.macs + frame[12 : l3 + 7] + bytes((hop - 1,)) + frame[l3 + 8 :]
        ttl = frame[l3 + 8]
        if ttl <= 1:
            return None
        old_word = ttl << 8 | frame[l3 + 9]
        new_word = old_word - 0x100
        csum = int.from_bytes(frame[l3 + 10 : l3 + 12], "big")
        s = (~csum & 0xFFFF) + (~old_word & 0xFFFF) + new_word  # RFC 1624 eqn. 3
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return (
            self.macs
            + frame[12 : l3 + 8]
            + bytes((ttl - 1,))
            + frame[l3 + 9 : l3 + 10]
            + (~s & 0xFFFF).to_bytes(2, "big")
            + frame[l3 + 12 :]
        )


class Encap:
    """Push outer headers toward one PA; shared by every flow with the same destination."""

    __slots__ = (
        "addrs",
        "edit",
        "encap_inline",
        "head",
        "mid",
        "nvgre",
        "pack",
        "plain",
        "provider_address",
        "psum",
        "source_pa",
        "struct",
        "tail",
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
    ) -> None:
        eth = mac_bytes(outer_dst_mac) + mac_bytes(outer_src_mac)
        if vlan_id is not None:
            eth += struct.pack("!HH", ETHERTYPE_VLAN, vlan_id)
        eth += struct.pack("!H", ETHERTYPE_IPV4)
        self.head = eth + b"\x45\x00"
        proto = IP_PROTO_GRE if nvgre else IP_PROTO_UDP
        self.mid = struct.pack("!HHBB", 0, 0, OUTER_TTL, proto)
        addrs = (
            ipaddress.IPv4Address(source_pa).packed + ipaddress.IPv4Address(provider_address).packed
        )
        self.psum = ones_complement_sum(b"\x45\x00" + self.mid + addrs)
        self.nvgre = nvgre
        if nvgre:
            self.addrs = addrs + struct.pack("!HH", GRE_KEY_PRESENT, NVGRE_PROTOCOL)
            self.addrs += vsid.to_bytes(3, "big")
            self.struct = _NVGRE_STRUCTS[len(self.head)]
            self.tail = b""
        else:
            self.addrs = addrs
            self.struct = _VXLAN_STRUCTS[len(self.head)]
            self.tail = b"\0\0" + struct.pack("!B3xI", VXLAN_FLAG_I, vsid << 8)
        self.source_pa = source_pa
        self.provider_address = provider_address
        self.edit = edit
        self.pack = self.struct.pack
        self.plain = edit is None  # the fast path inlines these
        self.encap_inline = self.plain

    def header(self, n: int, flow_arg: int) -> bytes:
        """The outer headers for an inner frame of ``n`` bytes; ``flow_arg``: the UDP
        source port (VXLAN) or the FlowID (NVGRE), in its low 16 bits."""
        flow_arg &= 0xFFFF
        if self.nvgre:
            total = n + IPV4_HEADER_LEN + NVGRE_HEADER_LEN
            s = self.psum + total
            s = (s & 0xFFFF) + (s >> 16)
            return self.pack(self.head, total, self.mid, ~s & 0xFFFF, self.addrs, flow_arg)
        total = n + IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_HEADER_LEN
        s = self.psum + total
        s = (s & 0xFFFF) + (s >> 16)
        ulen = total - IPV4_HEADER_LEN
        return self.pack(
            self.head, total, self.mid, ~s & 0xFFFF, self.addrs, flow_arg, VXLAN_PORT_BYTES,
            ulen, self.tail,
        )  # fmt: skip

    def emit(self, port: str, frame: bytes, flow_arg: int) -> Emit:
        """The outer frame of ``frame``."""
        if self.edit is not None:
            edited = self.edit.apply(frame)
            if edited is None:
                return Drop(port, "ttl_exceeded")
            frame = edited
        outer = self.header(len(frame), flow_arg)
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


_SOURCE_PORTS = tuple(range(SOURCE_PORT_BASE, SOURCE_PORT_BASE + SOURCE_PORT_SPAN))


def source_port_of(flow_hash: int) -> int:
    """The VXLAN outer UDP source port for a flow hash: 49152..65535 (RFC 7348 §5); the
    int objects are shared, so a million flows do not hold a million ints."""
    return _SOURCE_PORTS[flow_hash % SOURCE_PORT_SPAN]


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


Template = Encap | LocalDelivery | Discard | Decap
