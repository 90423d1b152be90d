"""ICMP for IPv4 (RFC 792): echo request/reply and destination unreachable.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Identifier          |        Sequence Number        |  echo
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |             unused            |         Next-Hop MTU          |  unreachable
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Data (echo) / IP header + 64 bits of the original datagram |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The second word is kept as two 16-bit fields whatever the type: ``identifier`` and
``sequence`` for echo; for destination unreachable the first is unused and the second
is the next-hop MTU of "fragmentation needed" (code 4, RFC 1191). The checksum covers
the whole message.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum
from openhnv.packet.checksum import verify_checksum as verify_sum
from openhnv.packet.errors import PacketError, need, resolve_length
from openhnv.packet.fields import Field, Layout

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11

ICMP_NET_UNREACHABLE = 0
ICMP_HOST_UNREACHABLE = 1
ICMP_PROTOCOL_UNREACHABLE = 2
ICMP_PORT_UNREACHABLE = 3
ICMP_FRAGMENTATION_NEEDED = 4
ICMP_ADMIN_PROHIBITED = 13

ICMP = Layout(
    "icmp",
    Field("type", "B"),
    Field("code", "B"),
    Field("checksum", "H"),
    Field("identifier", "H"),
    Field("sequence", "H"),
)
ICMP_HEADER_LEN = ICMP.size
ICMP_CHECKSUM_AT = ICMP.offset("checksum")
ICMP_IDENTIFIER_AT = ICMP.offset("identifier")

_HEADER = "icmp"
_check = ICMP.checker("type", "code", "identifier", "sequence")


@dataclass(frozen=True, slots=True)
class Icmp:
    """An ICMP message with its data."""

    type: int
    code: int
    identifier: int = 0
    sequence: int = 0
    payload: bytes = b""

    def __post_init__(self) -> None:
        _check(self)
        if not isinstance(self.payload, bytes):
            raise PacketError(_HEADER, 0, f"payload {self.payload!r} is not bytes")

    @property
    def is_echo(self) -> bool:
        """True for an echo request or reply."""
        return self.type in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY)

    @property
    def next_hop_mtu(self) -> int | None:
        """The MTU of a "fragmentation needed" message, otherwise None."""
        if self.type == ICMP_DEST_UNREACHABLE and self.code == ICMP_FRAGMENTATION_NEEDED:
            return self.sequence
        return None

    @classmethod
    def unreachable(cls, code: int, original: bytes, mtu: int = 0) -> Icmp:
        """A destination unreachable message quoting ``original`` (its IP header + 8 bytes)."""
        return cls(ICMP_DEST_UNREACHABLE, code, 0, mtu, original)

    def echo_reply(self) -> Icmp:
        """The reply to this echo request, same identifier, sequence and data."""
        if self.type != ICMP_ECHO_REQUEST:
            raise PacketError(_HEADER, 0, f"type {self.type} is not an echo request")
        return Icmp(ICMP_ECHO_REPLY, 0, self.identifier, self.sequence, self.payload)

    @classmethod
    def parse(
        cls,
        buf: bytes,
        offset: int = 0,
        length: int | None = None,
        verify_checksum: bool = True,
    ) -> tuple[Icmp, int]:
        """The message at ``offset``, ``length`` bytes long (default: to the end of buf).

        Returns the message and the offset just after it.
        """
        length = resolve_length(buf, offset, length, _HEADER)
        if length < ICMP_HEADER_LEN:
            need(buf, offset, ICMP_HEADER_LEN, _HEADER)
            raise PacketError(
                _HEADER, offset, f"message of {length} bytes is shorter than the 8-byte header"
            )
        message = bytes(buf[offset : offset + length])
        kind, code, _, identifier, sequence = ICMP.unpack(message)
        if verify_checksum:
            verify_sum(_HEADER, offset, message, ICMP_CHECKSUM_AT)
        header = cls(kind, code, identifier, sequence, message[ICMP_HEADER_LEN:])
        return header, offset + length

    def pack(self) -> bytes:
        """The whole message, checksum filled."""
        unsummed = ICMP.pack(self.type, self.code, 0, self.identifier, self.sequence)
        checksum = internet_checksum(unsummed + self.payload)
        return ICMP.pack(self.type, self.code, checksum, self.identifier, self.sequence) + (
            self.payload
        )
