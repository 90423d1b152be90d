"""TCP headers (RFC 9293) with the checksum over the IPv4 or IPv6 pseudo-header.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                        Sequence Number                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Acknowledgment Number                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Data |       |C|E|U|A|P|R|S|F|                               |
    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    |       |       |R|E|G|K|H|T|N|N|                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Checksum            |         Urgent Pointer        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           [Options]                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

``flags`` holds all 12 bits after the data offset (the four reserved bits included), so
a parse and pack give back the same bytes. Options are kept raw (a multiple of 4, at
most 40 bytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum, pseudo_header_sum, verify_checksum
from openhnv.packet.errors import PacketError, check_range, need, resolve_length

TCP_FIN = 0x001
TCP_SYN = 0x002
TCP_RST = 0x004
TCP_PSH = 0x008
TCP_ACK = 0x010
TCP_URG = 0x020
TCP_ECE = 0x040
TCP_CWR = 0x080
TCP_FLAGS_MAX = 0xFFF

PROTO_TCP = 6
TCP_HEADER_LEN = 20
TCP_MAX_HEADER_LEN = 60
TCP_MAX_OPTIONS_LEN = TCP_MAX_HEADER_LEN - TCP_HEADER_LEN
_WORD = 4
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_OFFSET_SHIFT = 12
_CHECKSUM_AT = 16

_HEADER = "tcp"
_TCP = struct.Struct("!HHIIHHHH")


@dataclass(frozen=True, slots=True)
class Tcp:
    """A TCP header (the payload travels apart)."""

    src_port: int
    dst_port: int
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 65535
    urgent: int = 0
    options: bytes = b""

    def __post_init__(self) -> None:
        if (  # one cheap test for the common case; _validate names what is wrong
            type(self.src_port) is int
            and 0 <= self.src_port <= _U16_MAX
            and type(self.dst_port) is int
            and 0 <= self.dst_port <= _U16_MAX
            and type(self.seq) is int
            and 0 <= self.seq <= _U32_MAX
            and type(self.ack) is int
            and 0 <= self.ack <= _U32_MAX
            and type(self.flags) is int
            and 0 <= self.flags <= TCP_FLAGS_MAX
            and type(self.window) is int
            and 0 <= self.window <= _U16_MAX
            and type(self.urgent) is int
            and 0 <= self.urgent <= _U16_MAX
            and self.options == b""
        ):
            return
        self._validate()

    def _validate(self) -> None:
        """Check every field, raising a PacketError naming the first one out of range."""
        check_range(_HEADER, "src_port", self.src_port, 0, _U16_MAX)
        check_range(_HEADER, "dst_port", self.dst_port, 0, _U16_MAX)
        check_range(_HEADER, "seq", self.seq, 0, _U32_MAX)
        check_range(_HEADER, "ack", self.ack, 0, _U32_MAX)
        check_range(_HEADER, "flags", self.flags, 0, TCP_FLAGS_MAX)
        check_range(_HEADER, "window", self.window, 0, _U16_MAX)
        check_range(_HEADER, "urgent", self.urgent, 0, _U16_MAX)
        if not isinstance(self.options, bytes):
            raise PacketError(_HEADER, 0, f"options {self.options!r} are not bytes")
        if len(self.options) % _WORD or len(self.options) > TCP_MAX_OPTIONS_LEN:
            raise PacketError(
                _HEADER,
                0,
                f"options are {len(self.options)} bytes, not a multiple of 4 up to 40",
            )

    @property
    def header_length(self) -> int:
        """20 bytes plus the options."""
        return TCP_HEADER_LEN + len(self.options)

    @classmethod
    def parse(
        cls,
        buf: bytes,
        offset: int = 0,
        src_ip: bytes | None = None,
        dst_ip: bytes | None = None,
        length: int | None = None,
    ) -> tuple[Tcp, int]:
        """The header at ``offset`` and the offset of its payload.

        ``length`` is the segment's length (header and payload; default: to the end of
        ``buf``). With both IPs given the checksum is verified over the pseudo-header.
        """
        length = resolve_length(buf, offset, length, _HEADER)
        need(buf, offset, TCP_HEADER_LEN, _HEADER)
        src_port, dst_port, seq, ack, off_flags, window, _, urgent = _TCP.unpack_from(buf, offset)
        header_len = (off_flags >> _OFFSET_SHIFT) * _WORD
        if header_len < TCP_HEADER_LEN:
            raise PacketError(_HEADER, offset, f"data offset {header_len // _WORD} is below 5")
        if header_len > length:
            raise PacketError(
                _HEADER,
                offset,
                f"header length {header_len} is longer than the segment ({length} bytes)",
            )
        if src_ip is not None and dst_ip is not None:
            segment = bytes(buf[offset : offset + length])
            initial = pseudo_header_sum(src_ip, dst_ip, PROTO_TCP, length, _HEADER)
            verify_checksum(_HEADER, offset, segment, _CHECKSUM_AT, initial)
        header = cls(
            src_port,
            dst_port,
            seq,
            ack,
            off_flags & TCP_FLAGS_MAX,
            window,
            urgent,
            bytes(buf[offset + TCP_HEADER_LEN : offset + header_len]),
        )
        return header, offset + header_len

    def pack(self, src_ip: bytes, dst_ip: bytes, payload: bytes) -> bytes:
        """Header and payload, checksum filled over the pseudo-header of the two IPs."""
        fields = (
            self.src_port,
            self.dst_port,
            self.seq,
            self.ack,
            self.header_length // _WORD << _OFFSET_SHIFT | self.flags,
            self.window,
        )
        segment = _TCP.pack(*fields, 0, self.urgent) + self.options + payload
        initial = pseudo_header_sum(src_ip, dst_ip, PROTO_TCP, len(segment), _HEADER)
        checksum = internet_checksum(segment, initial)
        return _TCP.pack(*fields, checksum, self.urgent) + self.options + payload
