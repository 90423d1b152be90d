"""Precomputed outer headers: VXLAN/NVGRE encapsulation for the per-packet fast path.

Building a tunnel packet field by field (:func:`openhnv.packet.frames.vxlan_encapsulate`)
costs microseconds in Python. A flow's outer headers are the same for every packet but
for the IPv4 total length and header checksum, the UDP length (VXLAN) and the flow's
entropy: the UDP source port (VXLAN, RFC 7348 §5) or the FlowID (NVGRE, RFC 7637 §3.2).
A :class:`TunnelTemplate` keeps the constant bytes and the one's complement sum of the
constant IPv4 words, and patches only those fields (RFC 1624's incremental checksum idea:
the sum is computed once, the length is added per packet). The bytes it makes are exactly
those of the field-by-field builders.

It is the one home of outer headers: the VFP engine's ``Encap`` sends with
``header_for``, and a kernel fast path can take the same plain data for its flow entries:

- ``header``: the outer headers for a zero-length inner frame (entropy 0 for VXLAN, the
  given FlowID for NVGRE; the IPv4 total length and checksum of that empty packet);
- ``partial_sum``: the folded one's complement sum of the IPv4 header with its total
  length and checksum fields zero;
- ``total_length_at``, ``checksum_at``, ``udp_length_at`` (-1 for NVGRE), ``entropy_at``
  and ``entropy_len`` (2: the UDP source port, 1: the FlowID byte of the GRE key): where
  the per-packet fields sit in ``header``. Per packet: total length = ``len(header) -
  ip_offset + len(inner)``; checksum = ``~fold(partial_sum + total length)``; UDP length
  = total length - 20.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from openhnv.packet.checksum import WORD_MASK, ones_complement_sum
from openhnv.packet.errors import PacketError, check_range
from openhnv.packet.ethernet import ETHERNET_HEADER_LEN
from openhnv.packet.frames import (
    NVGRE_OUTER_LEN,
    VXLAN_OUTER_LEN,
    nvgre_encapsulate,
    vxlan_encapsulate,
)
from openhnv.packet.gre import NVGRE_FLOW_ID_AT, NVGRE_FLOW_ID_MAX
from openhnv.packet.ipv4 import (
    IPV4_CHECKSUM_AT,
    IPV4_DEFAULT_TTL,
    IPV4_HEADER_LEN,
    IPV4_MAX_TOTAL_LEN,
    IPV4_TOTAL_LENGTH_AT,
)
from openhnv.packet.udp import UDP_LENGTH_AT, UDP_SRC_PORT_AT
from openhnv.packet.vxlan import VXLAN_SOURCE_PORT_MAX

HeaderBuilder = Callable[[int, int], bytes]
"""``(inner_length, entropy) -> outer headers``; the entropy is not range-checked."""

_WORD_BITS = 16
_U16_LEN = 2
_HEADER = "tunnel"
_NO_FIELD = -1


def _vxlan_builder(pieces: tuple[bytes, ...], partial_sum: int, ip_len: int) -> HeaderBuilder:
    c0, c1, c2, c3, c4 = pieces
    pack = struct.Struct(f"!{len(c0)}sH{len(c1)}sH{len(c2)}sH{len(c3)}sH{len(c4)}s").pack

    def header_for(inner_length: int, entropy: int) -> bytes:
        total = ip_len + inner_length
        s = partial_sum + total
        s = (s & WORD_MASK) + (s >> _WORD_BITS)
        return pack(c0, total, c1, ~s & WORD_MASK, c2, entropy, c3, total - IPV4_HEADER_LEN, c4)

    return header_for


def _nvgre_builder(pieces: tuple[bytes, ...], partial_sum: int, ip_len: int) -> HeaderBuilder:
    c0, c1, c2 = pieces
    pack = struct.Struct(f"!{len(c0)}sH{len(c1)}sH{len(c2)}sB").pack

    def header_for(inner_length: int, entropy: int) -> bytes:
        total = ip_len + inner_length
        s = partial_sum + total
        s = (s & WORD_MASK) + (s >> _WORD_BITS)
        return pack(c0, total, c1, ~s & WORD_MASK, c2, entropy)

    return header_for


@dataclass(frozen=True, slots=True)
class TunnelTemplate:
    """The outer headers of one tunnel destination, ready to put in front of inner frames."""

    encapsulation: Literal["vxlan", "nvgre"]
    header: bytes
    """Outer Ethernet [+ 802.1Q] + IPv4 + UDP + VXLAN, or + GRE, for an empty inner frame."""
    ip_offset: int
    partial_sum: int = field(init=False)
    """One's complement sum of the IPv4 header with total length and checksum zeroed."""
    total_length_at: int = field(init=False)
    checksum_at: int = field(init=False)
    udp_length_at: int = field(init=False)
    entropy_at: int = field(init=False)
    entropy_len: int = field(init=False)
    header_for: HeaderBuilder = field(init=False, repr=False, compare=False)
    """``header_for(inner_length, entropy)``: the outer headers for one packet."""

    def __post_init__(self) -> None:
        ip = self.ip_offset
        total_at, checksum_at = ip + IPV4_TOTAL_LENGTH_AT, ip + IPV4_CHECKSUM_AT
        words = bytearray(self.header[ip : ip + IPV4_HEADER_LEN])
        words[IPV4_TOTAL_LENGTH_AT : IPV4_TOTAL_LENGTH_AT + _U16_LEN] = bytes(_U16_LEN)
        words[IPV4_CHECKSUM_AT : IPV4_CHECKSUM_AT + _U16_LEN] = bytes(_U16_LEN)
        partial_sum = ones_complement_sum(bytes(words))
        ip_len = len(self.header) - ip
        h = self.header
        if self.encapsulation == "vxlan":
            udp = ip + IPV4_HEADER_LEN
            entropy_at, entropy_len = udp + UDP_SRC_PORT_AT, _U16_LEN
            udp_length_at = udp + UDP_LENGTH_AT
            pieces = _between(h, (total_at, checksum_at, entropy_at, udp_length_at))
            builder = _vxlan_builder(pieces, partial_sum, ip_len)
        else:
            entropy_at, entropy_len = ip + IPV4_HEADER_LEN + NVGRE_FLOW_ID_AT, 1
            udp_length_at = _NO_FIELD
            pieces = _between(h, (total_at, checksum_at), end=entropy_at)
            builder = _nvgre_builder(pieces, partial_sum, ip_len)
        for name, value in (
            ("partial_sum", partial_sum),
            ("total_length_at", total_at),
            ("checksum_at", checksum_at),
            ("udp_length_at", udp_length_at),
            ("entropy_at", entropy_at),
            ("entropy_len", entropy_len),
            ("header_for", builder),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def vxlan(
        cls,
        *,
        outer_src_mac: str | bytes,
        outer_dst_mac: str | bytes,
        src_pa: str | bytes,
        dst_pa: str | bytes,
        vni: int,
        ttl: int = IPV4_DEFAULT_TTL,
        vlan_id: int | None = None,
    ) -> TunnelTemplate:
        """The template of :func:`vxlan_encapsulate` with these arguments."""
        header = vxlan_encapsulate(
            b"",
            outer_src_mac=outer_src_mac,
            outer_dst_mac=outer_dst_mac,
            src_pa=src_pa,
            dst_pa=dst_pa,
            vni=vni,
            src_port=0,
            ttl=ttl,
            vlan_id=vlan_id,
        )
        return cls("vxlan", header, len(header) - (VXLAN_OUTER_LEN - ETHERNET_HEADER_LEN))

    @classmethod
    def nvgre(
        cls,
        *,
        outer_src_mac: str | bytes,
        outer_dst_mac: str | bytes,
        src_pa: str | bytes,
        dst_pa: str | bytes,
        vsid: int,
        flow_id: int = 0,
        ttl: int = IPV4_DEFAULT_TTL,
        vlan_id: int | None = None,
    ) -> TunnelTemplate:
        """The template of :func:`nvgre_encapsulate` with these arguments."""
        header = nvgre_encapsulate(
            b"",
            outer_src_mac=outer_src_mac,
            outer_dst_mac=outer_dst_mac,
            src_pa=src_pa,
            dst_pa=dst_pa,
            vsid=vsid,
            flow_id=flow_id,
            ttl=ttl,
            vlan_id=vlan_id,
        )
        return cls("nvgre", header, len(header) - (NVGRE_OUTER_LEN - ETHERNET_HEADER_LEN))

    def encapsulate(self, inner: bytes, entropy: int | None = None) -> bytes:
        """``inner`` behind these headers; ``entropy`` is the VXLAN UDP source port or the
        NVGRE FlowID (default: the template's own)."""
        if len(self.header) - self.ip_offset + len(inner) > IPV4_MAX_TOTAL_LEN:
            raise PacketError(_HEADER, 0, f"inner frame of {len(inner)} bytes is too long")
        if entropy is None:
            at = self.entropy_at
            entropy = int.from_bytes(self.header[at : at + self.entropy_len], "big")
        elif self.encapsulation == "vxlan":
            check_range(_HEADER, "src_port", entropy, 0, VXLAN_SOURCE_PORT_MAX)
        else:
            check_range(_HEADER, "flow_id", entropy, 0, NVGRE_FLOW_ID_MAX)
        return self.header_for(len(inner), entropy) + inner


def _between(header: bytes, cuts: tuple[int, ...], end: int | None = None) -> tuple[bytes, ...]:
    """The constant pieces of ``header`` around 16-bit fields at ``cuts`` (up to ``end``)."""
    pieces = []
    at = 0
    for cut in cuts:
        pieces.append(header[at:cut])
        at = cut + _U16_LEN
    pieces.append(header[at:end])
    return tuple(pieces)
