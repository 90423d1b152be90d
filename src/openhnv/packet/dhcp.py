"""DHCP for IPv4: the BOOTP message and its options (RFC 2131, options of RFC 2132).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +---------------+---------------+---------------+---------------+
    |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
    +---------------+---------------+---------------+---------------+
    |                            xid (4)                            |
    +-------------------------------+-------------------------------+
    |           secs (2)            |           flags (2)           |
    +-------------------------------+-------------------------------+
    |                          ciaddr  (4)                          |
    |                          yiaddr  (4)                          |
    |                          siaddr  (4)                          |
    |                          giaddr  (4)                          |
    +---------------------------------------------------------------+
    |                          chaddr  (16)                         |
    |                          sname   (64)                         |
    |                          file    (128)                        |
    +---------------------------------------------------------------+
    |                 magic cookie 99.130.83.99 (4)                 |
    |                          options (variable)                   |
    +---------------------------------------------------------------+

Options are code, length, value; ``PAD`` (0) and ``END`` (255) are single bytes
(RFC 2132 §2). Only Ethernet hardware addresses (htype 1, hlen 6) are accepted: that is
all a VM port has. ``sname``/``file`` are kept empty on packing and not read for options
(option 52, overload, is not honoured). A packed message is padded to the 300 bytes of
RFC 1542 §2.1 that old clients expect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from openhnv.packet.addresses import IPV4_LEN, MAC_LEN
from openhnv.packet.errors import PacketError, need
from openhnv.packet.fields import Field, Layout

DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
BOOTREQUEST = 1
BOOTREPLY = 2
HTYPE_ETHERNET = 1
FLAG_BROADCAST = 0x8000
MAGIC_COOKIE = bytes((99, 130, 83, 99))
MIN_MESSAGE_LEN = 300  # RFC 1542 §2.1: BOOTP relays and old clients expect at least this

# message types (option 53)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)

# options (RFC 2132)
OPTION_PAD = 0
OPTION_SUBNET_MASK = 1
OPTION_ROUTER = 3
OPTION_DNS_SERVERS = 6
OPTION_INTERFACE_MTU = 26
OPTION_REQUESTED_ADDRESS = 50
OPTION_LEASE_TIME = 51
OPTION_MESSAGE_TYPE = 53
OPTION_SERVER_ID = 54
OPTION_PARAMETER_LIST = 55
OPTION_RENEWAL_TIME = 58
OPTION_REBINDING_TIME = 59
OPTION_END = 255
OPTION_MAX_LEN = 255

DHCP = Layout(
    "dhcp",
    Field("op", "B"),
    Field("htype", "B"),
    Field("hlen", "B"),
    Field("hops", "B"),
    Field("xid", "I"),
    Field("secs", "H"),
    Field("flags", "H"),
    Field("ciaddr", "4s"),
    Field("yiaddr", "4s"),
    Field("siaddr", "4s"),
    Field("giaddr", "4s"),
    Field("chaddr", "16s"),
    Field("sname", "64s"),
    Field("file", "128s"),
    Field("cookie", "4s"),
)
DHCP_FIXED_LEN = DHCP.size  # 240: up to and including the magic cookie

_HEADER = "dhcp"
_ZERO_IP = bytes(IPV4_LEN)
_CHADDR_PAD = bytes(16 - MAC_LEN)
_SNAME = bytes(64)
_FILE = bytes(128)
_check = DHCP.checker("op", "hops", "xid", "secs", "flags", "ciaddr", "yiaddr", "siaddr", "giaddr")

Option = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class Dhcp:
    """A DHCPv4 message from or to an Ethernet client (``client_mac``)."""

    op: int
    xid: int
    client_mac: bytes
    options: tuple[Option, ...] = ()
    flags: int = 0
    ciaddr: bytes = _ZERO_IP
    yiaddr: bytes = _ZERO_IP
    siaddr: bytes = _ZERO_IP
    giaddr: bytes = _ZERO_IP
    secs: int = 0
    hops: int = 0

    def __post_init__(self) -> None:
        if self.op not in (BOOTREQUEST, BOOTREPLY):
            raise PacketError(_HEADER, 0, f"op {self.op!r} is not request (1) or reply (2)")
        _check(self)
        if not isinstance(self.client_mac, bytes) or len(self.client_mac) != MAC_LEN:
            raise PacketError(_HEADER, 0, f"client_mac {self.client_mac!r} is not 6 bytes")
        for code, value in self.options:
            if not 0 < code < OPTION_END or len(value) > OPTION_MAX_LEN:
                raise PacketError(
                    _HEADER, 0, f"option {code} of {len(value)} bytes is not 1..254 of 0..255"
                )

    def option(self, code: int) -> bytes | None:
        """The value of option ``code`` (its first occurrence), or None."""
        return next((value for c, value in self.options if c == code), None)

    @property
    def message_type(self) -> int | None:
        """Option 53 (DISCOVER .. INFORM), or None (plain BOOTP)."""
        value = self.option(OPTION_MESSAGE_TYPE)
        return value[0] if value is not None and len(value) == 1 else None

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> tuple[Dhcp, int]:
        """The message at ``offset`` (a UDP payload) and the offset just after its END."""
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
         _sname, _file, cookie) = DHCP.unpack(buf, offset)  # fmt: skip
        if htype != HTYPE_ETHERNET or hlen != MAC_LEN:
            raise PacketError(
                _HEADER, offset, f"hardware type {htype} length {hlen} is not Ethernet"
            )
        if cookie != MAGIC_COOKIE:
            raise PacketError(_HEADER, offset, f"magic cookie {cookie.hex()} is not 63825363")
        options, end = _parse_options(buf, offset + DHCP_FIXED_LEN)
        try:
            message = cls(op, xid, chaddr[:MAC_LEN], options, flags, ciaddr, yiaddr, siaddr,
                          giaddr, secs, hops)  # fmt: skip
        except PacketError as err:
            raise PacketError(_HEADER, offset, err.reason) from None
        return message, end

    def pack(self) -> bytes:
        """The wire bytes: fixed part, cookie, options, END, padded to 300 bytes."""
        head = DHCP.pack(
            self.op, HTYPE_ETHERNET, MAC_LEN, self.hops, self.xid, self.secs, self.flags,
            self.ciaddr, self.yiaddr, self.siaddr, self.giaddr, self.client_mac + _CHADDR_PAD,
            _SNAME, _FILE, MAGIC_COOKIE,
        )  # fmt: skip
        body = b"".join(bytes((code, len(value))) + value for code, value in self.options)
        message = head + body + bytes((OPTION_END,))
        return message + bytes(max(0, MIN_MESSAGE_LEN - len(message)))


def _parse_options(buf: bytes, at: int) -> tuple[tuple[Option, ...], int]:
    """The options from ``at`` up to END (or the end of ``buf``) and where they stop."""
    options: list[Option] = []
    end = len(buf)
    while at < end:
        code = buf[at]
        if code == OPTION_END:
            return tuple(options), at + 1
        if code == OPTION_PAD:
            at += 1
            continue
        need(buf, at, 2, _HEADER)
        length = buf[at + 1]
        need(buf, at + 2, length, _HEADER)
        options.append((code, bytes(buf[at + 2 : at + 2 + length])))
        at += 2 + length
    return tuple(options), at


def addresses_option(code: int, addresses: Iterable[bytes]) -> Option:
    """An option holding IPv4 addresses one after the other (router, DNS servers)."""
    return code, b"".join(addresses)


def u32_option(code: int, value: int) -> Option:
    """An option holding one 32-bit number (lease, renewal and rebinding times)."""
    return code, value.to_bytes(4, "big")


def u16_option(code: int, value: int) -> Option:
    """An option holding one 16-bit number (interface MTU)."""
    return code, value.to_bytes(2, "big")
