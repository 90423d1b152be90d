"""VXLAN headers (RFC 7348 §5): an Ethernet frame over UDP port 4789.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |R|R|R|R|I|R|R|R|            Reserved                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                VXLAN Network Identifier (VNI) |   Reserved    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The I flag must be set; the reserved bits are sent as zero and ignored on receipt. In
HNV the VNI is the virtual subnet's VSID. The inner Ethernet frame (no FCS) follows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.errors import PacketError, check_range, need

VXLAN_PORT = 4789
VXLAN_HEADER_LEN = 8
VXLAN_FLAG_I = 0x08
VXLAN_VNI_MAX = 0xFFFFFF
_VNI_SHIFT = 8
_FLAGS_SHIFT = 24

_HEADER = "vxlan"
_VXLAN = struct.Struct("!II")


@dataclass(frozen=True, slots=True)
class Vxlan:
    """A VXLAN header: the 24-bit VNI."""

    vni: int

    def __post_init__(self) -> None:
        if type(self.vni) is int and 0 <= self.vni <= VXLAN_VNI_MAX:
            return
        self._validate()

    def _validate(self) -> None:
        """Check every field, raising a PacketError naming the first one out of range."""
        check_range(_HEADER, "vni", self.vni, 0, VXLAN_VNI_MAX)

    @property
    def header_length(self) -> int:
        """Always 8 bytes."""
        return VXLAN_HEADER_LEN

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[Vxlan, int]:
        """The header at ``offset`` and the offset of the inner Ethernet frame."""
        need(buf, offset, VXLAN_HEADER_LEN, _HEADER)
        flags_word, vni_word = _VXLAN.unpack_from(buf, offset)
        flags = flags_word >> _FLAGS_SHIFT
        if not flags & VXLAN_FLAG_I:
            raise PacketError(
                _HEADER, offset, f"flags {flags:#04x} lack the I flag (0x08): no valid VNI"
            )
        return cls(vni_word >> _VNI_SHIFT), offset + VXLAN_HEADER_LEN

    def pack(self) -> bytes:
        """The 8 header bytes."""
        return _VXLAN.pack(VXLAN_FLAG_I << _FLAGS_SHIFT, self.vni << _VNI_SHIFT)
