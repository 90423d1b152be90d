"""GRE (RFC 2784, with key and sequence number per RFC 2890) and NVGRE (RFC 7637).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |C| |K|S| Reserved0       | Ver |         Protocol Type         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |      Checksum (optional)      |       Reserved1 (Optional)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                         Key (optional)                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 Sequence Number (Optional)                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

NVGRE (RFC 7637 §3.2) is GRE with C=0, K=1, S=0, protocol 0x6558 (Transparent Ethernet
Bridging) and the key split as::

    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |               Virtual Subnet ID (VSID)        |    FlowID     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

A receiver discards packets with the routing or strict-source-route bits (1, 4) or the
recursion bits set (RFC 2784 §2.3, which lets RFC 1701 bits 1-5 be rejected), or with a
version other than 0. The checksum, when present, covers the GRE header and payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.checksum import internet_checksum
from openhnv.packet.checksum import verify_checksum as verify_sum
from openhnv.packet.errors import PacketError, check_range, need, resolve_length
from openhnv.packet.ethernet import ETHERTYPE_TEB
from openhnv.packet.fields import Field, Layout

GRE_CHECKSUM_FLAG = 0x8000
GRE_ROUTING_FLAG = 0x4000
GRE_KEY_FLAG = 0x2000
GRE_SEQUENCE_FLAG = 0x1000
GRE_STRICT_ROUTE_FLAG = 0x0800
GRE_RECURSION_MASK = 0x0700
GRE_VERSION_MASK = 0x0007
GRE_REJECTED_BITS = GRE_ROUTING_FLAG | GRE_STRICT_ROUTE_FLAG | GRE_RECURSION_MASK
GRE_VERSION = 0
GRE = Layout("gre", Field("bits", "H"), Field("protocol", "H"))
"""The base header: the flag bits with the version, and the protocol type."""
GRE_CHECKSUM = Layout("gre", Field("checksum_value", "H"), Field("reserved1", "H"))
GRE_KEY = Layout("gre", Field("key", "I", optional=True))
GRE_SEQUENCE = Layout("gre", Field("sequence", "I", optional=True))
GRE_BASE_LEN = GRE.size
GRE_FIELD_LEN = GRE_KEY.size
GRE_PROTOCOL_AT = GRE.offset("protocol")

NVGRE_PROTOCOL = ETHERTYPE_TEB
"""NVGRE carries Ethernet frames: Transparent Ethernet Bridging (RFC 7637 §3.2)."""
NVGRE = Layout(
    "nvgre",
    Field("bits", "H"),
    Field("protocol", "H"),
    Field("vsid", "I", bits=24),
    Field("flow_id", "I", bits=8),
)
"""The whole NVGRE header: GRE with only the key bit, the key split into VSID and FlowID."""
NVGRE_HEADER_LEN = NVGRE.size
NVGRE_BITS = GRE_KEY_FLAG | GRE_VERSION
NVGRE_VSID_MAX = NVGRE.high("vsid")
NVGRE_FLOW_ID_MAX = NVGRE.high("flow_id")
NVGRE_VSID_AT = NVGRE.offset("vsid")
NVGRE_FLOW_ID_AT = NVGRE_HEADER_LEN - 1
"""Where the FlowID byte sits in the header (the last byte of the key)."""
_FLOW_ID_BITS = NVGRE_FLOW_ID_MAX.bit_length()
_KEY_MAX = GRE_KEY.high("key")

_HEADER = "gre"
_CHECKSUM_AT = GRE_BASE_LEN
_check = GRE.checker("protocol", "key", "sequence", also=(GRE_KEY, GRE_SEQUENCE))


@dataclass(frozen=True, slots=True)
class Gre:
    """A GRE header: protocol type, optional key, checksum presence and sequence number."""

    protocol: int
    key: int | None = None
    checksum: bool = False
    sequence: int | None = None

    def __post_init__(self) -> None:
        _check(self)
        if not isinstance(self.checksum, bool):
            raise PacketError(_HEADER, 0, f"checksum {self.checksum!r} is not True or False")

    @property
    def header_length(self) -> int:
        """4 bytes plus 4 for each of checksum, key and sequence present."""
        present = (self.checksum, self.key is not None, self.sequence is not None)
        return GRE_BASE_LEN + GRE_FIELD_LEN * sum(present)

    @property
    def is_nvgre(self) -> bool:
        """True for NVGRE: key present, checksum and sequence absent, protocol 0x6558.

        RFC 7637 §3.2: the C and S bits MUST be zero.
        """
        return (
            self.key is not None
            and not self.checksum
            and self.sequence is None
            and self.protocol == NVGRE_PROTOCOL
        )

    @classmethod
    def parse(
        cls,
        buf: bytes,
        offset: int = 0,
        length: int | None = None,
        verify_checksum: bool = True,
    ) -> tuple[Gre, int]:
        """The header at ``offset`` and the offset of its payload.

        ``length`` is the GRE packet's length (header and payload; default: to the end
        of ``buf``), needed only to verify a checksum.
        """
        length = resolve_length(buf, offset, length, _HEADER)
        bits, protocol = GRE.unpack(buf, offset)
        version = bits & GRE_VERSION_MASK
        if version != GRE_VERSION:
            raise PacketError(_HEADER, offset, f"version {version} is not 0")
        if bits & GRE_REJECTED_BITS:
            raise PacketError(
                _HEADER,
                offset,
                f"flags {bits:#06x} set routing, strict source route or recursion bits",
            )
        at = offset + GRE_BASE_LEN
        has_checksum = bool(bits & GRE_CHECKSUM_FLAG)
        if has_checksum:
            need(buf, at, GRE_FIELD_LEN, _HEADER)
            if verify_checksum:
                packet = bytes(buf[offset : offset + length])
                verify_sum(_HEADER, offset, packet, _CHECKSUM_AT)
            at += GRE_FIELD_LEN
        key = sequence = None
        if bits & GRE_KEY_FLAG:
            (key,) = GRE_KEY.unpack(buf, at)
            at += GRE_FIELD_LEN
        if bits & GRE_SEQUENCE_FLAG:
            (sequence,) = GRE_SEQUENCE.unpack(buf, at)
            at += GRE_FIELD_LEN
        if at - offset > length:
            raise PacketError(
                _HEADER, offset, f"header of {at - offset} bytes is longer than the packet"
            )
        return cls(protocol, key, has_checksum, sequence), at

    def pack(self, payload: bytes = b"") -> bytes:
        """The header bytes; ``payload`` is only read to compute a checksum."""
        bits = GRE_VERSION
        fields = b""
        if self.checksum:
            bits |= GRE_CHECKSUM_FLAG
            fields += GRE_CHECKSUM.pack(0, 0)
        if self.key is not None:
            bits |= GRE_KEY_FLAG
            fields += GRE_KEY.pack(self.key)
        if self.sequence is not None:
            bits |= GRE_SEQUENCE_FLAG
            fields += GRE_SEQUENCE.pack(self.sequence)
        header = GRE.pack(bits, self.protocol) + fields
        if not self.checksum:
            return header
        value = internet_checksum(header + payload)
        rest = header[_CHECKSUM_AT + GRE_FIELD_LEN :]
        return header[:_CHECKSUM_AT] + GRE_CHECKSUM.pack(value, 0) + rest


def nvgre_key(vsid: int, flow_id: int) -> int:
    """The 32-bit GRE key of NVGRE: ``vsid << 8 | flow_id`` (RFC 7637 §3.2)."""
    check_range("nvgre", "vsid", vsid, 0, NVGRE_VSID_MAX)
    check_range("nvgre", "flow_id", flow_id, 0, NVGRE_FLOW_ID_MAX)
    return vsid << _FLOW_ID_BITS | flow_id


def split_nvgre_key(key: int) -> tuple[int, int]:
    """The ``(vsid, flow_id)`` of an NVGRE key."""
    check_range("nvgre", "key", key, 0, _KEY_MAX)
    return key >> _FLOW_ID_BITS, key & NVGRE_FLOW_ID_MAX
