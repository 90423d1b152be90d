"""UDP headers (RFC 768) with the checksum over the IPv4 or IPv6 pseudo-header.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            Length             |           Checksum            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Over IPv4 a zero checksum means "not computed" (RFC 768) and is accepted; a computed
checksum of zero is sent as 0xFFFF. Over IPv6 the checksum is mandatory (RFC 8200 §8.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.addresses import IPV6_LEN
from openhnv.packet.checksum import internet_checksum, pseudo_header_sum, verify_checksum
from openhnv.packet.errors import PacketError, check_range, need, resolve_length

PROTO_UDP = 17
UDP_HEADER_LEN = 8
UDP_MAX_LEN = 0xFFFF
UDP_NO_CHECKSUM = 0
UDP_ZERO_CHECKSUM_SENT_AS = 0xFFFF
_U16_MAX = 0xFFFF
_CHECKSUM_AT = 6

_HEADER = "udp"
_UDP = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class Udp:
    """A UDP header; ``length`` (header + payload) is what a parse found."""

    src_port: int
    dst_port: int
    length: int = 0

    def __post_init__(self) -> None:
        if (  # one cheap test for the common case; _validate names what is wrong
            type(self.src_port) is int
            and 0 <= self.src_port <= _U16_MAX
            and type(self.dst_port) is int
            and 0 <= self.dst_port <= _U16_MAX
            and type(self.length) is int
            and 0 <= self.length <= UDP_MAX_LEN
        ):
            return
        self._validate()

    def _validate(self) -> None:
        """Check every field, raising a PacketError naming the first one out of range."""
        check_range(_HEADER, "src_port", self.src_port, 0, _U16_MAX)
        check_range(_HEADER, "dst_port", self.dst_port, 0, _U16_MAX)
        check_range(_HEADER, "length", self.length, 0, UDP_MAX_LEN)

    @property
    def header_length(self) -> int:
        """Always 8 bytes."""
        return UDP_HEADER_LEN

    @classmethod
    def parse(
        cls,
        buf: bytes,
        offset: int = 0,
        src_ip: bytes | None = None,
        dst_ip: bytes | None = None,
        length: int | None = None,
        fragment: bool = False,
    ) -> tuple[Udp, int]:
        """The header at ``offset`` and the offset of its payload.

        ``length`` is what the IP header leaves for UDP (default: to the end of ``buf``);
        the UDP length field may not exceed it and the payload ends at
        ``offset + header.length``. With both IPs given the checksum is verified.
        ``fragment=True`` reads the header at the start of a first IP fragment: the
        datagram goes on in later fragments, so neither its length nor its checksum can
        be checked.
        """
        length = resolve_length(buf, offset, length, _HEADER)
        need(buf, offset, UDP_HEADER_LEN, _HEADER)
        src_port, dst_port, udp_length, checksum = _UDP.unpack_from(buf, offset)
        if udp_length < UDP_HEADER_LEN:
            raise PacketError(_HEADER, offset, f"length {udp_length} is below 8")
        if fragment:
            return cls(src_port, dst_port, udp_length), offset + UDP_HEADER_LEN
        if udp_length > length:
            raise PacketError(
                _HEADER,
                offset,
                f"length {udp_length} runs past the IP payload ({length} bytes)",
            )
        if src_ip is not None and dst_ip is not None:
            if checksum == UDP_NO_CHECKSUM:
                if len(src_ip) == IPV6_LEN:
                    raise PacketError(_HEADER, offset, "zero checksum is not allowed over IPv6")
            else:
                segment = bytes(buf[offset : offset + udp_length])
                initial = pseudo_header_sum(src_ip, dst_ip, PROTO_UDP, udp_length, _HEADER)
                verify_checksum(_HEADER, offset, segment, _CHECKSUM_AT, initial)
        return cls(src_port, dst_port, udp_length), offset + UDP_HEADER_LEN

    def pack(self, src_ip: bytes, dst_ip: bytes, payload: bytes, checksum: bool = True) -> bytes:
        """Header and payload; the checksum is computed unless ``checksum`` is False.

        ``checksum=False`` (a zero checksum) is only valid over IPv4.
        """
        length = UDP_HEADER_LEN + len(payload)
        if length > UDP_MAX_LEN:
            raise PacketError(_HEADER, 0, f"payload of {len(payload)} bytes is too long")
        initial = pseudo_header_sum(src_ip, dst_ip, PROTO_UDP, length, _HEADER)
        if not checksum:
            if len(src_ip) == IPV6_LEN:
                raise PacketError(_HEADER, 0, "zero checksum is not allowed over IPv6")
            return _UDP.pack(self.src_port, self.dst_port, length, UDP_NO_CHECKSUM) + payload
        unsummed = _UDP.pack(self.src_port, self.dst_port, length, 0) + payload
        value = internet_checksum(unsummed, initial) or UDP_ZERO_CHECKSUM_SENT_AS
        return _UDP.pack(self.src_port, self.dst_port, length, value) + payload
