"""IPv4 headers (RFC 791) with options and the header checksum (RFC 1071).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version|  IHL  |Type of Service|          Total Length         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Identification        |Flags|      Fragment Offset    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Time to Live |    Protocol   |         Header Checksum       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       Source Address                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Destination Address                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options                    |    Padding    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

IHL counts 32-bit words (5..15). Options are kept as their raw bytes (a multiple of 4,
at most 40) and their type-length-value structure is checked on parse;
:func:`parse_options` lists them. Flags are the 3-bit field (``IPV4_FLAG_DF``,
``IPV4_FLAG_MF``); ``fragment_offset`` counts 8-byte units.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum
from openhnv.packet.checksum import verify_checksum as verify_sum
from openhnv.packet.errors import PacketError, need
from openhnv.packet.fields import Field, Layout

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_GRE = 47
PROTO_ICMPV6 = 58
"""IP protocol numbers (IANA): the IPv4 protocol field and the IPv6 next header share them."""

_IHL_BITS = 4
IPV4 = Layout(
    "ipv4",
    Field("version", "B", bits=4),
    Field("ihl", "B", bits=_IHL_BITS),
    Field("tos", "B"),
    Field("total_length", "H"),
    Field("identification", "H"),
    Field("flags", "H", bits=3),
    Field("fragment_offset", "H", bits=13),
    Field("ttl", "B"),
    Field("protocol", "B"),
    Field("checksum", "H"),
    Field("src", "4s"),
    Field("dst", "4s"),
)
IPV4_VERSION = 4
_WORD = 4
IPV4_HEADER_LEN = IPV4.size
IPV4_MAX_HEADER_LEN = 60
IPV4_MAX_OPTIONS_LEN = IPV4_MAX_HEADER_LEN - IPV4_HEADER_LEN
IPV4_MAX_TOTAL_LEN = IPV4.high("total_length")
IPV4_DEFAULT_TTL = 64
IPV4_FLAG_MF = 0x1
IPV4_FLAG_DF = 0x2
IPV4_FLAGS_MAX = IPV4.high("flags")
IPV4_FRAGMENT_OFFSET_MAX = IPV4.high("fragment_offset")
IPV4_FRAGMENT_UNIT = 8
"""``fragment_offset`` counts 8-byte units."""
IPV4_OPTION_EOL = 0
IPV4_OPTION_NOP = 1
IPV4_TOTAL_LENGTH_AT = IPV4.offset("total_length")
IPV4_FLAGS_AT = IPV4.offset("flags")
IPV4_TTL_AT = IPV4.offset("ttl")
IPV4_PROTOCOL_AT = IPV4.offset("protocol")
IPV4_CHECKSUM_AT = IPV4.offset("checksum")
IPV4_SRC_AT = IPV4.offset("src")
IPV4_DST_AT = IPV4.offset("dst")
"""Byte offsets of fields in the header, for hot paths that read a frame in place."""
IPV4_VERSION_SHIFT = _IHL_BITS
IPV4_IHL_MASK = (1 << _IHL_BITS) - 1
IPV4_IHL_UNIT = _WORD
"""The first byte is ``version << IPV4_VERSION_SHIFT | IHL``; IHL counts 32-bit words."""
IPV4_NO_OPTIONS = IPV4_VERSION << _IHL_BITS | IPV4_HEADER_LEN // _WORD
"""The first byte of a header without options (0x45)."""
IPV4_FRAGMENT_BITS = (
    IPV4_FLAG_MF << IPV4_FRAGMENT_OFFSET_MAX.bit_length() | IPV4_FRAGMENT_OFFSET_MAX
)
"""The bits of the flags/fragment word that make a packet a fragment (MF, offset)."""
_OPTION_MIN_LEN = 2

_HEADER = "ipv4"
_check = IPV4.checker(
    "src", "dst", "protocol", "ttl", "tos", "identification", "flags", "fragment_offset",
    "total_length",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IPv4:
    """An IPv4 header; ``total_length`` is what a parse found (``pack`` computes its own)."""

    src: bytes
    dst: bytes
    protocol: int
    ttl: int = IPV4_DEFAULT_TTL
    tos: int = 0
    identification: int = 0
    flags: int = 0
    fragment_offset: int = 0
    options: bytes = b""
    total_length: int = 0

    def __post_init__(self) -> None:
        _check(self)
        if self.options == b"":
            return
        if not isinstance(self.options, bytes):
            raise PacketError(_HEADER, 0, f"options {self.options!r} are not bytes")
        if len(self.options) % _WORD or len(self.options) > IPV4_MAX_OPTIONS_LEN:
            raise PacketError(
                _HEADER,
                0,
                f"options are {len(self.options)} bytes, not a multiple of 4 up to 40",
            )

    @property
    def header_length(self) -> int:
        """20 bytes plus the options."""
        return IPV4_HEADER_LEN + len(self.options)

    @property
    def payload_length(self) -> int:
        """``total_length`` minus the header (meaningful after a parse)."""
        return max(self.total_length - self.header_length, 0)

    @property
    def is_fragment(self) -> bool:
        """True for any fragment of a fragmented datagram (MF set or offset nonzero)."""
        return bool(self.flags & IPV4_FLAG_MF) or self.fragment_offset != 0

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0, verify_checksum: bool = True) -> tuple[IPv4, int]:
        """The header at ``offset`` and the offset of its payload.

        The payload ends at ``offset + header.total_length``; bytes after that (Ethernet
        padding) are not the datagram's.
        """
        (version, ihl, tos, total, ident, flags, fragment, ttl, proto, _, src, dst) = IPV4.unpack(
            buf, offset
        )
        if version != IPV4_VERSION:
            raise PacketError(_HEADER, offset, f"version {version} is not 4")
        header_len = ihl * _WORD
        if header_len < IPV4_HEADER_LEN:
            raise PacketError(_HEADER, offset, f"IHL {ihl} is below 5")
        need(buf, offset, header_len, _HEADER)
        if total < header_len:
            raise PacketError(
                _HEADER, offset, f"total length {total} is shorter than the header {header_len}"
            )
        if total > len(buf) - offset:
            raise PacketError(
                _HEADER,
                offset,
                f"total length {total} runs past the buffer ({len(buf) - offset} bytes left)",
            )
        header_bytes = buf[offset : offset + header_len]
        if verify_checksum:
            verify_sum(_HEADER, offset, header_bytes, IPV4_CHECKSUM_AT, what="header checksum")
        options = b""
        if header_len > IPV4_HEADER_LEN:
            options = bytes(header_bytes[IPV4_HEADER_LEN:])
            parse_options(options, offset + IPV4_HEADER_LEN)
        header = cls(src, dst, proto, ttl, tos, ident, flags, fragment, options, total)
        return header, offset + header_len

    def pack(self, payload_length: int) -> bytes:
        """The header for ``payload_length`` bytes of payload, total length and checksum set."""
        total = self.header_length + payload_length
        if payload_length < 0 or total > IPV4_MAX_TOTAL_LEN:
            raise PacketError(
                _HEADER, 0, f"payload length {payload_length} does not fit a datagram"
            )
        fields = (
            IPV4_VERSION,
            self.header_length // _WORD,
            self.tos,
            total,
            self.identification,
            self.flags,
            self.fragment_offset,
            self.ttl,
            self.protocol,
        )
        unsummed = IPV4.pack(*fields, 0, self.src, self.dst) + self.options
        return IPV4.pack(*fields, internet_checksum(unsummed), self.src, self.dst) + self.options


def parse_options(options: bytes, offset: int = 0) -> tuple[tuple[int, bytes], ...]:
    """The options as ``(type, data)`` pairs, stopping at End of Option List.

    NOP (type 1) appears as ``(1, b"")``. ``offset`` is where the options start in the
    buffer, for error messages.
    """
    found: list[tuple[int, bytes]] = []
    at = 0
    while at < len(options):
        kind = options[at]
        if kind == IPV4_OPTION_EOL:
            break
        if kind == IPV4_OPTION_NOP:
            found.append((kind, b""))
            at += 1
            continue
        if at + 1 >= len(options):
            raise PacketError(_HEADER, offset + at, f"option {kind} has no length byte")
        length = options[at + 1]
        if length < _OPTION_MIN_LEN or at + length > len(options):
            raise PacketError(
                _HEADER, offset + at, f"option {kind} length {length} does not fit the options"
            )
        found.append((kind, bytes(options[at + 2 : at + length])))
        at += length
    return tuple(found)
