"""Ethernet II frames (IEEE 802.3, RFC 894) with at most one IEEE 802.1Q VLAN tag.

The frame check sequence is not part of the bytes we see (capture, AF_PACKET and the
inner frame of VXLAN/NVGRE carry no FCS)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                  Destination MAC (6 octets)                   |
    +                               +-------------------------------+
    |                               |                               |
    +-------------------------------+                               +
    |                     Source MAC (6 octets)                     |
    +-------------------------------+-------------------------------+
    |   TPID 0x8100 (if tagged)     | PCP |D|       VLAN ID         |
    +-------------------------------+-------------------------------+
    |          EtherType            |  payload ...
    +-------------------------------+

The 802.1Q tag control information is PCP (3 bits, priority), DEI (1 bit, drop
eligible) and the 12-bit VLAN ID.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.addresses import MAC_LEN
from openhnv.packet.errors import PacketError, check_length, check_range, need

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_TEB = 0x6558
"""Transparent Ethernet Bridging: an Ethernet frame as payload (NVGRE, RFC 7637)."""

ETHERNET_HEADER_LEN = 14
VLAN_TAG_LEN = 4
ETHERTYPE_MAX = 0xFFFF
VLAN_ID_MAX = 0xFFF
VLAN_PCP_MAX = 7
_PCP_SHIFT = 13
_DEI_SHIFT = 12
_ADDRESSES = 2 * MAC_LEN

_HEADER = "ethernet"
_ADDR = struct.Struct("!6s6s")
_U16 = struct.Struct("!H")
_TAG = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class Ethernet:
    """An Ethernet header; ``vlan_id`` is None for an untagged frame."""

    dst: bytes
    src: bytes
    ethertype: int
    vlan_id: int | None = None
    vlan_pcp: int = 0
    vlan_dei: bool = False

    def __post_init__(self) -> None:
        if (  # one cheap test for the common case; _validate names what is wrong
            type(self.dst) is bytes
            and len(self.dst) == MAC_LEN
            and type(self.src) is bytes
            and len(self.src) == MAC_LEN
            and type(self.ethertype) is int
            and 0 <= self.ethertype <= ETHERTYPE_MAX
            and type(self.vlan_pcp) is int
            and (
                (
                    self.vlan_id is None
                    and self.vlan_pcp == 0
                    and self.vlan_dei is False
                    and self.ethertype != ETHERTYPE_VLAN
                )
                or (
                    type(self.vlan_id) is int
                    and 0 <= self.vlan_id <= VLAN_ID_MAX
                    and 0 <= self.vlan_pcp <= VLAN_PCP_MAX
                )
            )
        ):
            return
        self._validate()

    def _validate(self) -> None:
        """Check every field, raising a PacketError naming the first one out of range."""
        check_length(_HEADER, "dst", self.dst, (MAC_LEN,))
        check_length(_HEADER, "src", self.src, (MAC_LEN,))
        check_range(_HEADER, "ethertype", self.ethertype, 0, ETHERTYPE_MAX)
        if self.vlan_id is not None:
            check_range(_HEADER, "vlan_id", self.vlan_id, 0, VLAN_ID_MAX)
        check_range(_HEADER, "vlan_pcp", self.vlan_pcp, 0, VLAN_PCP_MAX)
        if self.vlan_id is None and (self.vlan_pcp or self.vlan_dei):
            raise PacketError(_HEADER, 0, "vlan_pcp and vlan_dei need a vlan_id")
        if self.vlan_id is None and self.ethertype == ETHERTYPE_VLAN:
            raise PacketError(_HEADER, 0, "ethertype 0x8100 is the tag: give vlan_id instead")

    @property
    def header_length(self) -> int:
        """14 bytes, or 18 with the 802.1Q tag."""
        return ETHERNET_HEADER_LEN + (0 if self.vlan_id is None else VLAN_TAG_LEN)

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[Ethernet, int]:
        """The header at ``offset`` and the offset of its payload."""
        need(buf, offset, ETHERNET_HEADER_LEN, _HEADER)
        dst, src = _ADDR.unpack_from(buf, offset)
        (ethertype,) = _U16.unpack_from(buf, offset + _ADDRESSES)
        if ethertype != ETHERTYPE_VLAN:
            return cls(dst, src, ethertype), offset + ETHERNET_HEADER_LEN
        need(buf, offset, ETHERNET_HEADER_LEN + VLAN_TAG_LEN, "802.1q")
        tci, inner_type = _TAG.unpack_from(buf, offset + ETHERNET_HEADER_LEN)
        header = cls(
            dst,
            src,
            inner_type,
            vlan_id=tci & VLAN_ID_MAX,
            vlan_pcp=tci >> _PCP_SHIFT,
            vlan_dei=bool(tci >> _DEI_SHIFT & 1),
        )
        return header, offset + ETHERNET_HEADER_LEN + VLAN_TAG_LEN

    def pack(self) -> bytes:
        """The header's wire bytes (with the tag when ``vlan_id`` is set)."""
        if self.vlan_id is None:
            return _ADDR.pack(self.dst, self.src) + _U16.pack(self.ethertype)
        tci = self.vlan_pcp << _PCP_SHIFT | int(self.vlan_dei) << _DEI_SHIFT | self.vlan_id
        return (
            _ADDR.pack(self.dst, self.src)
            + _TAG.pack(ETHERTYPE_VLAN, tci)
            + _U16.pack(self.ethertype)
        )
