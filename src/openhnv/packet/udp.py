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

from dataclasses import dataclass

from openhnv.packet.addresses import IPV6_LEN
from openhnv.packet.checksum import internet_checksum, pseudo_header_sum, verify_checksum
from openhnv.packet.errors import PacketError, resolve_length
from openhnv.packet.fields import Field, Layout
from openhnv.packet.ipv4 import PROTO_UDP

UDP = Layout(
    "udp",
    Field("src_port", "H"),
    Field("dst_port", "H"),
    Field("length", "H"),
    Field("checksum", "H"),
)
UDP_HEADER_LEN = UDP.size
UDP_MAX_LEN = UDP.high("length")
UDP_NO_CHECKSUM = 0
UDP_ZERO_CHECKSUM_SENT_AS = UDP.high("checksum")
UDP_SRC_PORT_AT = UDP.offset("src_port")
UDP_DST_PORT_AT = UDP.offset("dst_port")
UDP_LENGTH_AT = UDP.offset("length")
UDP_CHECKSUM_AT = UDP.offset("checksum")
"""Byte offsets of fields in the header, for hot paths that read a frame in place."""

_HEADER = "udp"
_check = UDP.checker("src_port", "dst_port", "length")


@dataclass(frozen=True, slots=True)
class Udp:
    """A UDP header; ``length`` (header + payload) is what a parse found."""

    src_port: int
    dst_port: int
    length: int = 0

    def __post_init__(self) -> None:
        _check(self)

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
        src_port, dst_port, udp_length, checksum = UDP.unpack(buf, offset)
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
                verify_checksum(_HEADER, offset, segment, UDP_CHECKSUM_AT, initial)
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
            return UDP.pack(self.src_port, self.dst_port, length, UDP_NO_CHECKSUM) + payload
        unsummed = UDP.pack(self.src_port, self.dst_port, length, 0) + payload
        value = internet_checksum(unsummed, initial) or UDP_ZERO_CHECKSUM_SENT_AS
        return UDP.pack(self.src_port, self.dst_port, length, value) + payload
