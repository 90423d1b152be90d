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

from dataclasses import dataclass

from openhnv.packet.errors import PacketError
from openhnv.packet.fields import Field, Layout

VXLAN_PORT = 4789
"""The UDP destination port of VXLAN (IANA)."""
VXLAN_SOURCE_PORT_MIN = 49152
VXLAN_SOURCE_PORT_MAX = 65535
"""The UDP source port carries the inner flow's entropy, in the dynamic range (RFC 7348 §5)."""
VXLAN_FLAG_I = 0x08
VXLAN = Layout(
    "vxlan",
    Field("flags", "I", bits=8),
    Field("reserved", "I", bits=24),
    Field("vni", "I", bits=24),
    Field("reserved2", "I", bits=8),
)
VXLAN_HEADER_LEN = VXLAN.size
VXLAN_VNI_MAX = VXLAN.high("vni")
VXLAN_FLAGS_AT = VXLAN.offset("flags")
VXLAN_VNI_AT = VXLAN.offset("vni")

_HEADER = "vxlan"
_check = VXLAN.checker("vni")


@dataclass(frozen=True, slots=True)
class Vxlan:
    """A VXLAN header: the 24-bit VNI."""

    vni: int

    def __post_init__(self) -> None:
        _check(self)

    @property
    def header_length(self) -> int:
        """Always 8 bytes."""
        return VXLAN_HEADER_LEN

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[Vxlan, int]:
        """The header at ``offset`` and the offset of the inner Ethernet frame."""
        flags, _, vni, _ = VXLAN.unpack(buf, offset)
        if not flags & VXLAN_FLAG_I:
            raise PacketError(
                _HEADER, offset, f"flags {flags:#04x} lack the I flag (0x08): no valid VNI"
            )
        return cls(vni), offset + VXLAN_HEADER_LEN

    def pack(self) -> bytes:
        """The 8 header bytes."""
        return VXLAN.pack(VXLAN_FLAG_I, 0, self.vni, 0)
