"""DHCP for IPv6: the client/server message and its options (RFC 8415 §8, §21).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +---------------+-----------------------------------------------+
    |    msg-type   |               transaction-id (3)              |
    +---------------+-----------------------------------------------+
    |   option-code (2)             |   option-len (2)              |
    +-------------------------------+-------------------------------+
    |   option-data (option-len) ... then more options              |

An IA_NA option (3) holds IAID, T1 and T2 (4 bytes each) and options of its own, among
them IA Address options (5: the address, preferred and valid lifetimes, options) and a
Status Code (13). Relay messages (12, 13) are not read: no relay sits between a VM and
its host. Only what the host's server needs is named here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from openhnv.packet.addresses import MAC_LEN
from openhnv.packet.errors import PacketError, need

DHCP6_CLIENT_PORT = 546
DHCP6_SERVER_PORT = 547
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = "ff02::1:2"

# message types (§7.3)
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE = range(1, 10)
RECONFIGURE, INFORMATION_REQUEST = 10, 11
CLIENT_TYPES = frozenset(
    (SOLICIT, REQUEST, CONFIRM, RENEW, REBIND, RELEASE, DECLINE, INFORMATION_REQUEST)
)

# options (§21; DNS servers from RFC 3646)
OPTION_CLIENTID = 1
OPTION_SERVERID = 2
OPTION_IA_NA = 3
OPTION_IAADDR = 5
OPTION_ORO = 6
OPTION_PREFERENCE = 7
OPTION_ELAPSED_TIME = 8
OPTION_STATUS_CODE = 13
OPTION_RAPID_COMMIT = 14
OPTION_DNS_SERVERS = 23

# status codes (§21.13)
STATUS_SUCCESS = 0
STATUS_NO_ADDRS_AVAIL = 2
STATUS_NO_BINDING = 3
STATUS_NOT_ON_LINK = 4

DUID_LL = 3  # §11.4: link-layer address
HARDWARE_ETHERNET = 1
IPV6_LEN = 16
MAX_TRANSACTION_ID = 0xFFFFFF
MAX_PREFERENCE = 255  # §18.2.1: the client takes such an Advertise at once

_HEADER = "dhcp6"
_MESSAGE = struct.Struct("!I")  # msg-type in the high byte, transaction-id below
_OPTION = struct.Struct("!HH")
_IA_NA = struct.Struct("!III")  # IAID, T1, T2
_IAADDR = struct.Struct("!16sII")  # address, preferred, valid
_OPTION_MAX_LEN = 0xFFFF

Option6 = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class Dhcp6:
    """A DHCPv6 client or server message (not a relay message)."""

    msg_type: int
    transaction_id: int
    options: tuple[Option6, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.msg_type < 0x100:
            raise PacketError(_HEADER, 0, f"msg_type {self.msg_type!r} is not 1..255")
        if not 0 <= self.transaction_id <= MAX_TRANSACTION_ID:
            raise PacketError(_HEADER, 0, f"transaction_id {self.transaction_id!r} is not 24 bits")
        _check_options(self.options)

    def option(self, code: int) -> bytes | None:
        """The value of option ``code`` (its first occurrence), or None."""
        return find(self.options, code)

    def all(self, code: int) -> tuple[bytes, ...]:
        """The values of every option ``code``, in order."""
        return tuple(value for c, value in self.options if c == code)

    @classmethod
    def parse(cls, buf: bytes, offset: int = 0) -> Dhcp6:
        """The message from ``offset`` to the end of ``buf`` (a UDP payload)."""
        need(buf, offset, _MESSAGE.size, _HEADER)
        (word,) = _MESSAGE.unpack_from(buf, offset)
        options = parse_options(buf, offset + _MESSAGE.size, len(buf))
        try:
            return cls(word >> 24, word & MAX_TRANSACTION_ID, options)
        except PacketError as err:
            raise PacketError(_HEADER, offset, err.reason) from None

    def pack(self) -> bytes:
        return _MESSAGE.pack(self.msg_type << 24 | self.transaction_id) + pack_options(self.options)


@dataclass(frozen=True, slots=True)
class IaAddress:
    """An IA Address option's value (§21.6)."""

    address: bytes
    preferred_lifetime: int
    valid_lifetime: int
    options: tuple[Option6, ...] = ()

    @classmethod
    def parse(cls, value: bytes) -> IaAddress:
        need(value, 0, _IAADDR.size, _HEADER)
        address, preferred, valid = _IAADDR.unpack_from(value)
        return cls(address, preferred, valid, parse_options(value, _IAADDR.size, len(value)))

    def pack(self) -> bytes:
        head = _IAADDR.pack(self.address, self.preferred_lifetime, self.valid_lifetime)
        return head + pack_options(self.options)


@dataclass(frozen=True, slots=True)
class IaNa:
    """An IA_NA option's value (§21.4): one identity association's addresses."""

    iaid: int
    t1: int
    t2: int
    options: tuple[Option6, ...] = ()

    @classmethod
    def parse(cls, value: bytes) -> IaNa:
        need(value, 0, _IA_NA.size, _HEADER)
        iaid, t1, t2 = _IA_NA.unpack_from(value)
        return cls(iaid, t1, t2, parse_options(value, _IA_NA.size, len(value)))

    def addresses(self) -> tuple[IaAddress, ...]:
        return tuple(IaAddress.parse(v) for c, v in self.options if c == OPTION_IAADDR)

    def pack(self) -> bytes:
        return _IA_NA.pack(self.iaid, self.t1, self.t2) + pack_options(self.options)


def find(options: Iterable[Option6], code: int) -> bytes | None:
    return next((value for c, value in options if c == code), None)


def parse_options(buf: bytes, at: int, end: int) -> tuple[Option6, ...]:
    """The options from ``at`` to ``end``; ``PacketError`` when one overruns ``end``."""
    options: list[Option6] = []
    while at < end:
        need(buf[:end], at, _OPTION.size, _HEADER)
        code, length = _OPTION.unpack_from(buf, at)
        at += _OPTION.size
        need(buf[:end], at, length, _HEADER)
        options.append((code, bytes(buf[at : at + length])))
        at += length
    return tuple(options)


def pack_options(options: Iterable[Option6]) -> bytes:
    return b"".join(_OPTION.pack(code, len(value)) + value for code, value in options)


def _check_options(options: Iterable[Option6]) -> None:
    for code, value in options:
        if not 0 < code <= _OPTION_MAX_LEN or len(value) > _OPTION_MAX_LEN:
            raise PacketError(_HEADER, 0, f"option {code} of {len(value)} bytes is out of range")


def duid_ll(mac: bytes) -> bytes:
    """A DUID-LL (§11.4) from an Ethernet MAC: the server identifier of a router MAC."""
    if len(mac) != MAC_LEN:
        raise PacketError(_HEADER, 0, f"mac {mac!r} is not 6 bytes")
    return struct.pack("!HH", DUID_LL, HARDWARE_ETHERNET) + mac


def status_option(code: int, message: str = "") -> Option6:
    """A Status Code option (§21.13)."""
    return OPTION_STATUS_CODE, struct.pack("!H", code) + message.encode("utf-8")


def status_of(options: Iterable[Option6]) -> int | None:
    """The status code among ``options``, or None when there is none."""
    value = find(options, OPTION_STATUS_CODE)
    if value is None:
        return None
    need(value, 0, 2, _HEADER)
    code: int = struct.unpack_from("!H", value)[0]
    return code


def addresses_option(code: int, addresses: Iterable[bytes]) -> Option6:
    """An option holding IPv6 addresses one after the other (DNS servers)."""
    return code, b"".join(addresses)
