"""ICMPv6 (RFC 4443): echo request/reply and the common message shape.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Identifier          |        Sequence Number        |  echo
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                         Data ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

As for ICMPv4 the second word is kept as two 16-bit fields whatever the type (for
Neighbor Discovery, RFC 4861, it is the reserved word or the router-advertisement
flags). Unlike ICMPv4 the checksum covers the IPv6 pseudo-header (next header 58).
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum, pseudo_header_sum
from openhnv.packet.checksum import verify_checksum as verify_sum
from openhnv.packet.errors import PacketError, need, resolve_length
from openhnv.packet.fields import Field, Layout
from openhnv.packet.ipv4 import PROTO_ICMPV6

ICMPV6_DEST_UNREACHABLE = 1
ICMPV6_PACKET_TOO_BIG = 2
ICMPV6_TIME_EXCEEDED = 3
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
ICMPV6_NEIGHBOR_SOLICITATION = 135
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136

ICMPV6 = Layout(
    "icmpv6",
    Field("type", "B"),
    Field("code", "B"),
    Field("checksum", "H"),
    Field("identifier", "H"),
    Field("sequence", "H"),
)
ICMPV6_HEADER_LEN = ICMPV6.size
_CHECKSUM_AT = ICMPV6.offset("checksum")

_HEADER = "icmpv6"
_check = ICMPV6.checker("type", "code", "identifier", "sequence")


@dataclass(frozen=True, slots=True)
class Icmpv6:
    """An ICMPv6 message with its data."""

    type: int
    code: int
    identifier: int = 0
    sequence: int = 0
    payload: bytes = b""

    def __post_init__(self) -> None:
        _check(self)
        if not isinstance(self.payload, bytes):
            raise PacketError(_HEADER, 0, f"payload {self.payload!r} is not bytes")

    @classmethod
    def parse(
        cls,
        buf: bytes,
        offset: int = 0,
        src_ip: bytes | None = None,
        dst_ip: bytes | None = None,
        length: int | None = None,
    ) -> tuple[Icmpv6, int]:
        """The message at ``offset``, ``length`` bytes long (default: to the end of buf).

        With both IPv6 addresses given the checksum is verified. Returns the message and
        the offset just after it.
        """
        length = resolve_length(buf, offset, length, _HEADER)
        if length < ICMPV6_HEADER_LEN:
            need(buf, offset, ICMPV6_HEADER_LEN, _HEADER)
            raise PacketError(
                _HEADER, offset, f"message of {length} bytes is shorter than the 8-byte header"
            )
        message = bytes(buf[offset : offset + length])
        kind, code, _, identifier, sequence = ICMPV6.unpack(message)
        if src_ip is not None and dst_ip is not None:
            initial = pseudo_header_sum(src_ip, dst_ip, PROTO_ICMPV6, length, _HEADER)
            verify_sum(_HEADER, offset, message, _CHECKSUM_AT, initial)
        return cls(kind, code, identifier, sequence, message[ICMPV6_HEADER_LEN:]), offset + length

    def pack(self, src_ip: bytes, dst_ip: bytes) -> bytes:
        """The whole message, checksum filled over the IPv6 pseudo-header."""
        unsummed = ICMPV6.pack(self.type, self.code, 0, self.identifier, self.sequence)
        length = len(unsummed) + len(self.payload)
        initial = pseudo_header_sum(src_ip, dst_ip, PROTO_ICMPV6, length, _HEADER)
        checksum = internet_checksum(unsummed + self.payload, initial)
        return ICMPV6.pack(self.type, self.code, checksum, self.identifier, self.sequence) + (
            self.payload
        )
