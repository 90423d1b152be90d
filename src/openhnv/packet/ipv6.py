"""The IPv6 base header (RFC 8200 §3).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Traffic Class |           Flow Label                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Payload Length        |  Next Header  |   Hop Limit   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +                         Source Address (16)                   +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +                      Destination Address (16)                 +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Extension headers are not walked: ``next_header`` is reported as found.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.addresses import IPV6_LEN
from openhnv.packet.errors import PacketError, check_length, check_range, need

IPV6_VERSION = 6
IPV6_HEADER_LEN = 40
IPV6_FLOW_LABEL_MAX = 0xFFFFF
IPV6_MAX_PAYLOAD_LEN = 0xFFFF
_BYTE_MAX = 0xFF
_VERSION_SHIFT = 28
_CLASS_SHIFT = 20

_HEADER = "ipv6"
_IPV6 = struct.Struct("!IHBB16s16s")


@dataclass(frozen=True, slots=True)
class IPv6:
    """An IPv6 base header; ``payload_length`` is what a parse found."""

    src: bytes
    dst: bytes
    next_header: int
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    payload_length: int = 0

    def __post_init__(self) -> None:
        check_length(_HEADER, "src", self.src, (IPV6_LEN,))
        check_length(_HEADER, "dst", self.dst, (IPV6_LEN,))
        check_range(_HEADER, "next_header", self.next_header, 0, _BYTE_MAX)
        check_range(_HEADER, "hop_limit", self.hop_limit, 0, _BYTE_MAX)
        check_range(_HEADER, "traffic_class", self.traffic_class, 0, _BYTE_MAX)
        check_range(_HEADER, "flow_label", self.flow_label, 0, IPV6_FLOW_LABEL_MAX)
        check_range(_HEADER, "payload_length", self.payload_length, 0, IPV6_MAX_PAYLOAD_LEN)

    @property
    def header_length(self) -> int:
        """Always 40 bytes."""
        return IPV6_HEADER_LEN

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[IPv6, int]:
        """The header at ``offset`` and the offset of its payload."""
        need(buf, offset, IPV6_HEADER_LEN, _HEADER)
        first, length, next_header, hop_limit, src, dst = _IPV6.unpack_from(buf, offset)
        version = first >> _VERSION_SHIFT
        if version != IPV6_VERSION:
            raise PacketError(_HEADER, offset, f"version {version} is not 6")
        left = len(buf) - offset - IPV6_HEADER_LEN
        if length > left:
            raise PacketError(
                _HEADER, offset, f"payload length {length} runs past the buffer ({left} left)"
            )
        header = cls(
            src,
            dst,
            next_header,
            hop_limit=hop_limit,
            traffic_class=first >> _CLASS_SHIFT & _BYTE_MAX,
            flow_label=first & IPV6_FLOW_LABEL_MAX,
            payload_length=length,
        )
        return header, offset + IPV6_HEADER_LEN

    def pack(self, payload_length: int) -> bytes:
        """The 40 header bytes for ``payload_length`` bytes of payload."""
        check_range(_HEADER, "payload length", payload_length, 0, IPV6_MAX_PAYLOAD_LEN)
        first = (
            IPV6_VERSION << _VERSION_SHIFT | self.traffic_class << _CLASS_SHIFT | self.flow_label
        )
        return _IPV6.pack(
            first, payload_length, self.next_header, self.hop_limit, self.src, self.dst
        )
