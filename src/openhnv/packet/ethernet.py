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

from dataclasses import dataclass

from openhnv.packet.errors import PacketError, need
from openhnv.packet.fields import Field, Layout

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_TEB = 0x6558
"""Transparent Ethernet Bridging: an Ethernet frame as payload (NVGRE, RFC 7637)."""
_U16_LEN = 2
ETHERTYPE_IPV4_BYTES = ETHERTYPE_IPV4.to_bytes(_U16_LEN, "big")
ETHERTYPE_ARP_BYTES = ETHERTYPE_ARP.to_bytes(_U16_LEN, "big")
ETHERTYPE_IPV6_BYTES = ETHERTYPE_IPV6.to_bytes(_U16_LEN, "big")
ETHERTYPE_VLAN_BYTES = ETHERTYPE_VLAN.to_bytes(_U16_LEN, "big")
"""EtherTypes as they appear on the wire, for hot paths that compare slices of a frame."""

_DST = Field("dst", "6s")
_SRC = Field("src", "6s")
_ETHERTYPE = Field("ethertype", "H")
ETHERNET = Layout("ethernet", _DST, _SRC, _ETHERTYPE)
"""The untagged header; a tagged one has ``ETHERTYPE_VLAN`` here and ``VLAN_TAG`` after."""
VLAN_TAG = Layout(
    "802.1q",
    Field("vlan_pcp", "H", bits=3),
    Field("vlan_dei", "H", bits=1),
    Field("vlan_id", "H", bits=12, optional=True),
    _ETHERTYPE,
)
"""What follows the TPID 0x8100 of a tagged frame: the tag control information and the
EtherType of the payload."""

ETHERNET_HEADER_LEN = ETHERNET.size
VLAN_TAG_LEN = VLAN_TAG.size
ETHERTYPE_AT = ETHERNET.offset("ethertype")
"""Where the EtherType (or the TPID of a tag) sits in a frame."""
VLAN_TCI_AT = ETHERNET_HEADER_LEN
"""Where the tag control information of a tagged frame sits."""
ETHERTYPE_MAX = ETHERNET.high("ethertype")
VLAN_ID_MAX = VLAN_TAG.high("vlan_id")
VLAN_PCP_MAX = VLAN_TAG.high("vlan_pcp")

_HEADER = "ethernet"
_check = ETHERNET.checker(
    "dst", "src", "ethertype", "vlan_id", "vlan_pcp", "vlan_dei", also=(VLAN_TAG,)
)


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
        _check(self)
        if self.vlan_id is None:
            if self.vlan_pcp or self.vlan_dei:
                raise PacketError(_HEADER, 0, "vlan_pcp and vlan_dei need a vlan_id")
            if self.ethertype == ETHERTYPE_VLAN:
                raise PacketError(_HEADER, 0, "ethertype 0x8100 is the tag: give vlan_id instead")

    @property
    def header_length(self) -> int:
        """14 bytes, or 18 with the 802.1Q tag."""
        return ETHERNET_HEADER_LEN + (0 if self.vlan_id is None else VLAN_TAG_LEN)

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[Ethernet, int]:
        """The header at ``offset`` and the offset of its payload."""
        dst, src, ethertype = ETHERNET.unpack(buf, offset)
        if ethertype != ETHERTYPE_VLAN:
            return cls(dst, src, ethertype), offset + ETHERNET_HEADER_LEN
        need(buf, offset, ETHERNET_HEADER_LEN + VLAN_TAG_LEN, "802.1q")
        pcp, dei, vlan_id, inner_type = VLAN_TAG.unpack(buf, offset + ETHERNET_HEADER_LEN)
        header = cls(dst, src, inner_type, vlan_id, pcp, bool(dei))
        return header, offset + ETHERNET_HEADER_LEN + VLAN_TAG_LEN

    def pack(self) -> bytes:
        """The header's wire bytes (with the tag when ``vlan_id`` is set)."""
        if self.vlan_id is None:
            return ETHERNET.pack(self.dst, self.src, self.ethertype)
        tag = VLAN_TAG.pack(self.vlan_pcp, int(self.vlan_dei), self.vlan_id, self.ethertype)
        return ETHERNET.pack(self.dst, self.src, ETHERTYPE_VLAN) + tag


def vlan_tag(vlan_id: int, pcp: int = 0) -> bytes:
    """The 4 bytes of an 802.1Q tag: the TPID 0x8100 and the tag control information."""
    return ETHERTYPE_VLAN_BYTES + VLAN_TAG.pack(pcp, 0, vlan_id, 0)[:_U16_LEN]


def push_vlan(frame: bytes, vlan_id: int, pcp: int = 0) -> bytes:
    """``frame`` with an 802.1Q tag inserted after the MAC addresses."""
    need(frame, 0, ETHERNET_HEADER_LEN, _HEADER)
    return frame[:ETHERTYPE_AT] + vlan_tag(vlan_id, pcp) + frame[ETHERTYPE_AT:]


def pop_vlan(frame: bytes) -> tuple[int | None, bytes]:
    """``(VLAN ID, untagged frame)``; ``(None, frame)`` when the frame carries no tag."""
    need(frame, 0, ETHERNET_HEADER_LEN, _HEADER)
    if frame[ETHERTYPE_AT:VLAN_TCI_AT] != ETHERTYPE_VLAN_BYTES:
        return None, frame
    need(frame, 0, ETHERNET_HEADER_LEN + VLAN_TAG_LEN, "802.1q")
    _, _, vlan_id, _ = VLAN_TAG.unpack(frame, VLAN_TCI_AT)
    return vlan_id, frame[:ETHERTYPE_AT] + frame[VLAN_TCI_AT + _U16_LEN :]
