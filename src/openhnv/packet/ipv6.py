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

Extension headers are not walked here (``next_header`` is reported as found); their
numbers are, for ``flowkey``, which walks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.errors import PacketError, check_range
from openhnv.packet.fields import Field, Layout

IPV6 = Layout(
    "ipv6",
    Field("version", "I", bits=4),
    Field("traffic_class", "I", bits=8),
    Field("flow_label", "I", bits=20),
    Field("payload_length", "H"),
    Field("next_header", "B"),
    Field("hop_limit", "B"),
    Field("src", "16s"),
    Field("dst", "16s"),
)
IPV6_VERSION = 6
IPV6_DEFAULT_HOP_LIMIT = 64
IPV6_HEADER_LEN = IPV6.size
IPV6_FLOW_LABEL_MAX = IPV6.high("flow_label")
IPV6_MAX_PAYLOAD_LEN = IPV6.high("payload_length")
IPV6_NEXT_HEADER_AT = IPV6.offset("next_header")
IPV6_HOP_LIMIT_AT = IPV6.offset("hop_limit")
IPV6_SRC_AT = IPV6.offset("src")
IPV6_DST_AT = IPV6.offset("dst")
"""Byte offsets of fields in the header, for hot paths that read a frame in place."""
IPV6_EXTENSION_HEADERS = frozenset({0, 43, 60})
"""Hop-by-hop, routing and destination options: ``next header, length in 8-byte units - 1``."""
IPV6_FRAGMENT_HEADER = 44
"""The fragment header (8 bytes): ``next header, reserved, offset in 8-byte units << 3 | M``."""
IPV6_EXTENSION_UNIT = 8

_HEADER = "ipv6"
_check = IPV6.checker(
    "src", "dst", "next_header", "hop_limit", "traffic_class", "flow_label", "payload_length"
)


@dataclass(frozen=True, slots=True)
class IPv6:
    """An IPv6 base header; ``payload_length`` is what a parse found."""

    src: bytes
    dst: bytes
    next_header: int
    hop_limit: int = IPV6_DEFAULT_HOP_LIMIT
    traffic_class: int = 0
    flow_label: int = 0
    payload_length: int = 0

    def __post_init__(self) -> None:
        _check(self)

    @property
    def header_length(self) -> int:
        """Always 40 bytes."""
        return IPV6_HEADER_LEN

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[IPv6, int]:
        """The header at ``offset`` and the offset of its payload."""
        version, traffic_class, flow_label, length, next_header, hop_limit, src, dst = IPV6.unpack(
            buf, offset
        )
        if version != IPV6_VERSION:
            raise PacketError(_HEADER, offset, f"version {version} is not 6")
        left = len(buf) - offset - IPV6_HEADER_LEN
        if length > left:
            raise PacketError(
                _HEADER, offset, f"payload length {length} runs past the buffer ({left} left)"
            )
        header = cls(src, dst, next_header, hop_limit, traffic_class, flow_label, length)
        return header, offset + IPV6_HEADER_LEN

    def pack(self, payload_length: int) -> bytes:
        """The 40 header bytes for ``payload_length`` bytes of payload."""
        check_range(_HEADER, "payload length", payload_length, 0, IPV6_MAX_PAYLOAD_LEN)
        return IPV6.pack(
            IPV6_VERSION, self.traffic_class, self.flow_label, payload_length,
            self.next_header, self.hop_limit, self.src, self.dst,
        )  # fmt: skip
