"""IPv6 Neighbor Discovery (RFC 4861): solicitations, advertisements and their options.

Each message is an ICMPv6 message (``icmpv6.Icmpv6``, hop limit 255); after the type,
code and checksum come::

    Router Solicitation (133)        Router Advertisement (134)
    +-------------------------------+  +-------+-+-+-------+---------------+
    |           Reserved            |  |Cur Hop|M|O|  Rsvd | Router Lifetime|
    +-------------------------------+  +-------+-+-+-------+---------------+
    |   Options ...                    |          Reachable Time           |
                                       +-----------------------------------+
                                       |          Retrans Timer            |
                                       +-----------------------------------+
                                       |   Options ...

    Neighbor Solicitation (135)      Neighbor Advertisement (136)
    +-------------------------------+  +-+-+-+-------------------------+
    |           Reserved            |  |R|S|O|       Reserved          |
    +-------------------------------+  +-+-+-+-------------------------+
    |     Target Address (16)       |  |     Target Address (16)       |
    +-------------------------------+  +-------------------------------+
    |   Options ...                    |   Options ...

Options are type-length-value items, the length in units of 8 bytes (§4.6): source (1)
and target (2) link-layer address (a MAC, 8 bytes in all), prefix information (3, 32
bytes: prefix length, L and A flags, valid and preferred lifetimes, the prefix), MTU
(5, 8 bytes) and Recursive DNS Server (25, RFC 8106 §5.1: 8 bytes, then 16 per server)::

    +---------------+---------------+-------------------------------+
    |   Type (25)   |    Length     |           Reserved            |
    +---------------+---------------+-------------------------------+
    |                           Lifetime                            |
    +---------------------------------------------------------------+
    |        Addresses of IPv6 Recursive DNS Servers (16 each)      |

Only those are read; others are skipped whole.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openhnv.packet.addresses import MAC_LEN
from openhnv.packet.errors import PacketError

ND_HOP_LIMIT = 255  # RFC 4861 §6.1.1/§7.1.1: anything else is refused by receivers
ICMPV6_ROUTER_SOLICITATION = 133
ICMPV6_ROUTER_ADVERTISEMENT = 134
ICMPV6_NEIGHBOR_SOLICITATION = 135
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
ICMPV6_REDIRECT = 137

OPTION_SOURCE_LINK_LAYER = 1
OPTION_TARGET_LINK_LAYER = 2
OPTION_PREFIX_INFORMATION = 3
OPTION_MTU = 5
OPTION_RDNSS = 25  # RFC 8106 §5.1
OPTION_UNIT = 8  # option lengths count 8-byte units
MAX_OPTION_UNITS = 0xFF  # the length is one byte

NA_ROUTER = 0x8000  # the R, S and O flags, in the high bits of the reserved word
NA_SOLICITED = 0x4000
NA_OVERRIDE = 0x2000
RA_MANAGED = 0x80  # M and O flags of the RA's flags byte
RA_OTHER = 0x40
PREFIX_ON_LINK = 0x80  # L and A flags of a prefix information option
PREFIX_AUTONOMOUS = 0x40
INFINITE_LIFETIME = 0xFFFFFFFF

IPV6_ADDRESS_LEN = 16
_RA_TIMERS = struct.Struct("!II")  # reachable time, retrans timer (after the second word)
_PREFIX = struct.Struct("!BBBBIII16s")  # type, length, prefix length, flags, valid,
# preferred, reserved, prefix
_MTU = struct.Struct("!BBHI")  # type, length, reserved, MTU
_RDNSS = struct.Struct("!BBHI")  # type, length, reserved, lifetime (then the servers)
ADDRESS_UNITS = IPV6_ADDRESS_LEN // OPTION_UNIT  # 2: the units one server takes
RDNSS_MIN_UNITS = _RDNSS.size // OPTION_UNIT + ADDRESS_UNITS  # 3: header and one server
RDNSS_MAX_SERVERS = (MAX_OPTION_UNITS - _RDNSS.size // OPTION_UNIT) // ADDRESS_UNITS  # 127
_HEADER = "ndp"


@dataclass(frozen=True, slots=True)
class PrefixInformation:
    """A prefix information option (§4.6.2)."""

    prefix: bytes
    prefix_length: int
    on_link: bool = True
    autonomous: bool = False
    valid_lifetime: int = INFINITE_LIFETIME
    preferred_lifetime: int = INFINITE_LIFETIME

    def pack(self) -> bytes:
        flags = (PREFIX_ON_LINK if self.on_link else 0) | (
            PREFIX_AUTONOMOUS if self.autonomous else 0
        )
        return _PREFIX.pack(
            OPTION_PREFIX_INFORMATION, _PREFIX.size // OPTION_UNIT, self.prefix_length, flags,
            self.valid_lifetime, self.preferred_lifetime, 0, self.prefix,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecursiveDnsServers:
    """A Recursive DNS Server option (RFC 8106 §5.1): servers (16 bytes each) and how
    many seconds a host may use them (0: no longer; ``INFINITE_LIFETIME``: forever)."""

    servers: tuple[bytes, ...]
    lifetime: int

    def pack(self) -> bytes:
        """The option; PacketError naming the field when it cannot be one."""
        if not 1 <= len(self.servers) <= RDNSS_MAX_SERVERS:
            raise PacketError(
                _HEADER, 0, f"RDNSS servers: {len(self.servers)} (1 to {RDNSS_MAX_SERVERS})"
            )
        for server in self.servers:
            if len(server) != IPV6_ADDRESS_LEN:
                raise PacketError(_HEADER, 0, f"RDNSS server {server.hex()} is not 16 bytes")
        if not 0 <= self.lifetime <= INFINITE_LIFETIME:
            raise PacketError(_HEADER, 0, f"RDNSS lifetime {self.lifetime} is not 32 bits")
        units = _RDNSS.size // OPTION_UNIT + ADDRESS_UNITS * len(self.servers)
        return _RDNSS.pack(OPTION_RDNSS, units, 0, self.lifetime) + b"".join(self.servers)


@dataclass(frozen=True, slots=True)
class NdOptions:
    """The options of a message that this module reads."""

    source_mac: bytes | None = None
    target_mac: bytes | None = None
    prefixes: tuple[PrefixInformation, ...] = ()
    mtu: int | None = None
    dns_servers: tuple[RecursiveDnsServers, ...] = ()  # one per RDNSS option, in order


def link_layer_option(kind: int, mac: bytes) -> bytes:
    """A source (1) or target (2) link-layer address option holding ``mac``."""
    return bytes((kind, 1)) + mac


def mtu_option(mtu: int) -> bytes:
    return _MTU.pack(OPTION_MTU, _MTU.size // OPTION_UNIT, 0, mtu)


def parse_options(buf: bytes, offset: int = 0) -> NdOptions:
    """The options from ``offset`` to the end of ``buf``; PacketError when malformed
    (a zero length, or an option past the end: §4.6 says drop the message; an RDNSS
    option whose length holds no server or half of one: RFC 8106 §5.1)."""
    source = target = None
    prefixes: list[PrefixInformation] = []
    dns_servers: list[RecursiveDnsServers] = []
    mtu = None
    at = offset
    while at < len(buf):
        if at + 2 > len(buf):
            raise PacketError(_HEADER, at, "truncated option")
        kind, units = buf[at], buf[at + 1]
        length = units * OPTION_UNIT
        if length == 0 or at + length > len(buf):
            raise PacketError(_HEADER, at, f"option {kind} of length {units} units is malformed")
        if kind in (OPTION_SOURCE_LINK_LAYER, OPTION_TARGET_LINK_LAYER) and length >= 2 + MAC_LEN:
            mac = bytes(buf[at + 2 : at + 2 + MAC_LEN])
            if kind == OPTION_SOURCE_LINK_LAYER:
                source = mac
            else:
                target = mac
        elif kind == OPTION_PREFIX_INFORMATION and length == _PREFIX.size:
            _, _, plen, flags, valid, preferred, _, prefix = _PREFIX.unpack_from(buf, at)
            on_link, autonomous = bool(flags & PREFIX_ON_LINK), bool(flags & PREFIX_AUTONOMOUS)
            prefixes.append(PrefixInformation(prefix, plen, on_link, autonomous, valid, preferred))
        elif kind == OPTION_MTU and length == _MTU.size:
            mtu = _MTU.unpack_from(buf, at)[3]
        elif kind == OPTION_RDNSS:
            dns_servers.append(_parse_rdnss(buf, at, units))
        at += length
    return NdOptions(source, target, tuple(prefixes), mtu, tuple(dns_servers))


def _parse_rdnss(buf: bytes, at: int, units: int) -> RecursiveDnsServers:
    """The RDNSS option at ``at`` (its ``units`` already known to fit in ``buf``)."""
    if units < RDNSS_MIN_UNITS:
        raise PacketError(
            _HEADER, at, f"RDNSS length {units} units is below {RDNSS_MIN_UNITS} (no server)"
        )
    if (units - _RDNSS.size // OPTION_UNIT) % ADDRESS_UNITS:
        raise PacketError(_HEADER, at, f"RDNSS length {units} units holds half a server")
    lifetime = _RDNSS.unpack_from(buf, at)[3]
    first = at + _RDNSS.size
    end = at + units * OPTION_UNIT
    servers = tuple(bytes(buf[a : a + IPV6_ADDRESS_LEN]) for a in
                    range(first, end, IPV6_ADDRESS_LEN))  # fmt: skip
    return RecursiveDnsServers(servers, lifetime)


def target_and_options(payload: bytes) -> tuple[bytes, NdOptions]:
    """An NS's or NA's target address and options (``payload``: after the ICMPv6 header's
    second word, as ``Icmpv6.payload`` holds it)."""
    if len(payload) < IPV6_ADDRESS_LEN:
        raise PacketError(_HEADER, 0, f"{len(payload)} bytes hold no target address")
    return bytes(payload[:IPV6_ADDRESS_LEN]), parse_options(payload, IPV6_ADDRESS_LEN)


def ra_timers_and_options(payload: bytes) -> tuple[int, int, NdOptions]:
    """An RA's reachable time, retrans timer and options (``payload`` as above)."""
    if len(payload) < _RA_TIMERS.size:
        raise PacketError(_HEADER, 0, f"{len(payload)} bytes hold no RA timers")
    reachable, retrans = _RA_TIMERS.unpack_from(payload)
    return reachable, retrans, parse_options(payload, _RA_TIMERS.size)


def ra_payload(options: bytes, reachable_time: int = 0, retrans_timer: int = 0) -> bytes:
    """The part of an RA after the second word: timers (0: unspecified) and options."""
    return _RA_TIMERS.pack(reachable_time, retrans_timer) + options


def solicited_node(address: bytes) -> bytes:
    """The solicited-node multicast address of ``address`` (ff02::1:ffXX:XXXX, RFC 4291)."""
    return SOLICITED_NODE_PREFIX + address[-3:]


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet address of IPv6 multicast ``group`` (33:33 + its last 32 bits,
    RFC 2464 §7)."""
    return IPV6_MULTICAST_MAC_PREFIX + group[-4:]


def link_local_of(mac: bytes) -> bytes:
    """fe80::/64 with the modified EUI-64 interface identifier of ``mac`` (RFC 4291 §2.5.1,
    appendix A): the universal/local bit flipped and ff:fe in the middle."""
    eui = bytes((mac[0] ^ UNIVERSAL_LOCAL_BIT,)) + mac[1:3] + b"\xff\xfe" + mac[3:]
    return LINK_LOCAL_PREFIX + eui


UNIVERSAL_LOCAL_BIT = 0x02
LINK_LOCAL_PREFIX = bytes.fromhex("fe80000000000000")
SOLICITED_NODE_PREFIX = bytes.fromhex("ff0200000000000000000001ff")
IPV6_MULTICAST_MAC_PREFIX = b"\x33\x33"
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
UNSPECIFIED = bytes(IPV6_ADDRESS_LEN)
