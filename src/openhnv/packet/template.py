"""Precomputed outer headers: VXLAN/NVGRE encapsulation for the per-packet fast path.

Building a tunnel packet field by field (:func:`openhnv.packet.frames.vxlan_encapsulate`)
costs microseconds in Python. A flow's outer headers are the same for every packet but
for the IPv4 total length and header checksum, the UDP length and (VXLAN) the UDP source
port; a :class:`TunnelTemplate` keeps the constant bytes and the one's complement sum of
the constant IPv4 words, and patches only those fields (RFC 1624's incremental checksum
idea: the sum is computed once, the length is added per packet). The bytes it makes are
exactly those of the field-by-field builders.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from openhnv.packet.checksum import WORD_MASK, ones_complement_sum
from openhnv.packet.errors import PacketError, check_range
from openhnv.packet.frames import nvgre_encapsulate, vxlan_encapsulate
from openhnv.packet.ipv4 import IPV4_HEADER_LEN, IPV4_MAX_TOTAL_LEN
from openhnv.packet.udp import UDP_HEADER_LEN

_TOTAL_LENGTH_AT = 2
_CHECKSUM_AT = 10
_UDP_SRC_PORT_AT = IPV4_HEADER_LEN
_UDP_LENGTH_AT = IPV4_HEADER_LEN + 4
_U16 = struct.Struct("!H")
_U16_MAX = 0xFFFF
_WORD_BITS = 16
_HEADER = "tunnel"


@dataclass(frozen=True, slots=True)
class TunnelTemplate:
    """The outer headers of one tunnel destination, ready to put in front of inner frames."""

    encapsulation: Literal["vxlan", "nvgre"]
    header: bytes
    """Outer Ethernet + IPv4 + UDP + VXLAN, or + GRE, as built for an empty inner frame."""
    ip_offset: int
    constant_sum: int
    """One's complement sum of the IPv4 header with total length and checksum zeroed."""

    @classmethod
    def vxlan(
        cls,
        *,
        outer_src_mac: str | bytes,
        outer_dst_mac: str | bytes,
        src_pa: str | bytes,
        dst_pa: str | bytes,
        vni: int,
        ttl: int = 64,
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
        return cls._of("vxlan", header)

    @classmethod
    def nvgre(
        cls,
        *,
        outer_src_mac: str | bytes,
        outer_dst_mac: str | bytes,
        src_pa: str | bytes,
        dst_pa: str | bytes,
        vsid: int,
        flow_id: int,
        ttl: int = 64,
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
        return cls._of("nvgre", header)

    @classmethod
    def _of(cls, encapsulation: Literal["vxlan", "nvgre"], header: bytes) -> TunnelTemplate:
        ip_offset = (
            len(header) - IPV4_HEADER_LEN - (UDP_HEADER_LEN + 8 if encapsulation == "vxlan" else 8)
        )
        ip_header = bytearray(header[ip_offset : ip_offset + IPV4_HEADER_LEN])
        _U16.pack_into(ip_header, _TOTAL_LENGTH_AT, 0)
        _U16.pack_into(ip_header, _CHECKSUM_AT, 0)
        return cls(encapsulation, header, ip_offset, ones_complement_sum(bytes(ip_header)))

    def encapsulate(self, inner: bytes, src_port: int = 0) -> bytes:
        """``inner`` behind these headers; ``src_port`` is the VXLAN UDP source port."""
        outer_ip_len = len(self.header) - self.ip_offset
        total = outer_ip_len + len(inner)
        if total > IPV4_MAX_TOTAL_LEN:
            raise PacketError(_HEADER, 0, f"inner frame of {len(inner)} bytes is too long")
        folded = self.constant_sum + total
        folded = (folded & WORD_MASK) + (folded >> _WORD_BITS)
        checksum = ~folded & WORD_MASK
        packet = bytearray(self.header)
        packet += inner
        ip = self.ip_offset
        _U16.pack_into(packet, ip + _TOTAL_LENGTH_AT, total)
        _U16.pack_into(packet, ip + _CHECKSUM_AT, checksum)
        if self.encapsulation == "vxlan":
            if not 0 <= src_port <= _U16_MAX:
                check_range(_HEADER, "src_port", src_port, 0, _U16_MAX)
            _U16.pack_into(packet, ip + _UDP_SRC_PORT_AT, src_port)
            _U16.pack_into(packet, ip + _UDP_LENGTH_AT, total - IPV4_HEADER_LEN)
        return bytes(packet)
