"""ARP for IPv4 over Ethernet (RFC 826).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |    Hardware type (1)          |   Protocol type (0x0800)      |
    +---------------+---------------+-------------------------------+
    | HW len (6)    | Proto len (4) |   Operation (1 req, 2 reply)  |
    +---------------+---------------+-------------------------------+
    |                   Sender hardware address (6)                 |
    +                               +-------------------------------+
    |                               |   Sender protocol address (4) |
    +-------------------------------+-------------------------------+
    |                               |                               |
    +-------------------------------+                               +
    |                   Target hardware address (6)                 |
    +---------------------------------------------------------------+
    |                   Target protocol address (4)                 |
    +---------------------------------------------------------------+

Only Ethernet/IPv4 with request or reply is accepted: that is all an HNV host answers.
Trailing Ethernet padding after the 28 bytes is left to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.packet.addresses import IPV4_LEN, MAC_LEN
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_IPV4
from openhnv.packet.fields import Field, Layout

ARP_REQUEST = 1
ARP_REPLY = 2
ARP_HTYPE_ETHERNET = 1
ARP_PTYPE_IPV4 = ETHERTYPE_IPV4
ARP = Layout(
    "arp",
    Field("htype", "H"),
    Field("ptype", "H"),
    Field("hlen", "B"),
    Field("plen", "B"),
    Field("op", "H"),
    Field("sender_mac", "6s"),
    Field("sender_ip", "4s"),
    Field("target_mac", "6s"),
    Field("target_ip", "4s"),
)
ARP_LEN = ARP.size

_HEADER = "arp"
_OPS = (ARP_REQUEST, ARP_REPLY)
_check = ARP.checker("sender_mac", "sender_ip", "target_mac", "target_ip")


@dataclass(frozen=True, slots=True)
class Arp:
    """An ARP request or reply for IPv4 over Ethernet."""

    op: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise PacketError(_HEADER, 0, f"op {self.op!r} is not request (1) or reply (2)")
        _check(self)

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[Arp, int]:
        """The ARP message at ``offset`` and the offset just after it."""
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP.unpack(buf, offset)
        if htype != ARP_HTYPE_ETHERNET or hlen != MAC_LEN:
            raise PacketError(
                _HEADER, offset, f"hardware type {htype} length {hlen} is not Ethernet (1, 6)"
            )
        if ptype != ARP_PTYPE_IPV4 or plen != IPV4_LEN:
            raise PacketError(
                _HEADER, offset, f"protocol type {ptype:#06x} length {plen} is not IPv4"
            )
        if op not in _OPS:
            raise PacketError(_HEADER, offset, f"op {op} is not request (1) or reply (2)")
        return cls(op, sha, spa, tha, tpa), offset + ARP_LEN

    def pack(self) -> bytes:
        """The 28 wire bytes."""
        return ARP.pack(
            ARP_HTYPE_ETHERNET,
            ARP_PTYPE_IPV4,
            MAC_LEN,
            IPV4_LEN,
            self.op,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )

    def reply(self, answer_mac: bytes) -> Arp:
        """The reply to this request: ``target_ip`` is at ``answer_mac``."""
        if self.op != ARP_REQUEST:
            raise PacketError(_HEADER, 0, "only a request can be answered")
        return Arp(ARP_REPLY, answer_mac, self.target_ip, self.sender_mac, self.sender_ip)
