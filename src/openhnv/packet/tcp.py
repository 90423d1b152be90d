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

from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum, pseudo_header_sum, verify_checksum
from openhnv.packet.errors import PacketError, resolve_length
from openhnv.packet.fields import Field, Layout
from openhnv.packet.ipv4 import PROTO_TCP

TCP_FIN = 0x001
TCP_SYN = 0x002
TCP_RST = 0x004
TCP_PSH = 0x008
TCP_ACK = 0x010
TCP_URG = 0x020
TCP_ECE = 0x040
TCP_CWR = 0x080

TCP = Layout(
    "tcp",
    Field("src_port", "H"),
    Field("dst_port", "H"),
    Field("seq", "I"),
    Field("ack", "I"),
    Field("data_offset", "H", bits=4),
    Field("flags", "H", bits=12),
    Field("window", "H"),
    Field("checksum", "H"),
    Field("urgent", "H"),
)
TCP_HEADER_LEN = TCP.size
TCP_MAX_HEADER_LEN = 60
TCP_MAX_OPTIONS_LEN = TCP_MAX_HEADER_LEN - TCP_HEADER_LEN
TCP_FLAGS_MAX = TCP.high("flags")
TCP_DEFAULT_WINDOW = TCP.high("window")
TCP_CHECKSUM_AT = TCP.offset("checksum")
TCP_FLAGS_AT = TCP.offset("flags") + 1
"""The byte holding the eight classic flags (FIN .. CWR), for hot paths."""
_WORD = 4

_HEADER = "tcp"
_check = TCP.checker("src_port", "dst_port", "seq", "ack", "flags", "window", "urgent")


@dataclass(frozen=True, slots=True)
class Tcp:
    """A TCP header (the payload travels apart)."""

    src_port: int
    dst_port: int
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = TCP_DEFAULT_WINDOW
    urgent: int = 0
    options: bytes = b""

    def __post_init__(self) -> None:
        _check(self)
        if self.options == b"":
            return
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
        src_port, dst_port, seq, ack, data_offset, flags, window, _, urgent = TCP.unpack(
            buf, offset
        )
        header_len = data_offset * _WORD
        if header_len < TCP_HEADER_LEN:
            raise PacketError(_HEADER, offset, f"data offset {data_offset} is below 5")
        if header_len > length:
            raise PacketError(
                _HEADER,
                offset,
                f"header length {header_len} is longer than the segment ({length} bytes)",
            )
        if src_ip is not None and dst_ip is not None:
            segment = bytes(buf[offset : offset + length])
            initial = pseudo_header_sum(src_ip, dst_ip, PROTO_TCP, length, _HEADER)
            verify_checksum(_HEADER, offset, segment, TCP_CHECKSUM_AT, initial)
        options = bytes(buf[offset + TCP_HEADER_LEN : offset + header_len])
        header = cls(src_port, dst_port, seq, ack, flags, window, urgent, options)
        return header, offset + header_len

    def pack(self, src_ip: bytes, dst_ip: bytes, payload: bytes) -> bytes:
        """Header and payload, checksum filled over the pseudo-header of the two IPs."""
        fields = (
            self.src_port,
            self.dst_port,
            self.seq,
            self.ack,
            self.header_length // _WORD,
            self.flags,
            self.window,
        )
        segment = TCP.pack(*fields, 0, self.urgent) + self.options + payload
        initial = pseudo_header_sum(src_ip, dst_ip, PROTO_TCP, len(segment), _HEADER)
        checksum = internet_checksum(segment, initial)
        return TCP.pack(*fields, checksum, self.urgent) + self.options + payload
