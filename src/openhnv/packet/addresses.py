"""MAC (IEEE 802) and IP (RFC 791, RFC 8200) addresses between text and wire bytes.

MACs are written lower case with colons (``00:1d:d8:07:00:01``), as the southbound
``Ucast_Macs_Remote.MAC`` column has them; on input the Windows forms
(``00-1D-D8-07-00-01``, ``001DD8070001``) are accepted too.
"""

from __future__ import annotations

import ipaddress
import re

from openhnv.packet.errors import PacketError

MAC_LEN = 6
IPV4_LEN = 4
IPV6_LEN = 16
BROADCAST_MAC = b"\xff" * MAC_LEN
ZERO_MAC = b"\x00" * MAC_LEN
MAC_GROUP_BIT = 0x01
"""The I/G bit of the first octet: set for multicast and broadcast (IEEE 802)."""

_HEADER = "address"
_MAC_SEPARATED = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")
_MAC_BARE = re.compile(r"[0-9A-Fa-f]{12}")


def mac_to_bytes(text: str | bytes) -> bytes:
    """The 6 wire bytes of a MAC given as text (colons, dashes or bare hex) or bytes."""
    if isinstance(text, bytes):
        if len(text) != MAC_LEN:
            raise PacketError(_HEADER, 0, f"MAC {text!r} is {len(text)} bytes, not {MAC_LEN}")
        return text
    if not isinstance(text, str):
        raise PacketError(_HEADER, 0, f"MAC {text!r} is neither text nor bytes")
    if _MAC_SEPARATED.fullmatch(text):
        return bytes.fromhex(text.replace(text[2], ""))
    if _MAC_BARE.fullmatch(text):
        return bytes.fromhex(text)
    raise PacketError(_HEADER, 0, f"MAC {text!r} is not like 00:1d:d8:07:00:01")


def mac_to_str(mac: bytes) -> str:
    """A MAC as lower-case hex pairs joined by colons."""
    if not isinstance(mac, bytes) or len(mac) != MAC_LEN:
        raise PacketError(_HEADER, 0, f"MAC {mac!r} is not {MAC_LEN} bytes")
    return mac.hex(":")


def ip_to_bytes(text: str | bytes) -> bytes:
    """The 4 (IPv4) or 16 (IPv6) wire bytes of an IP address given as text or bytes."""
    if isinstance(text, bytes):
        if len(text) not in (IPV4_LEN, IPV6_LEN):
            raise PacketError(_HEADER, 0, f"IP address {text!r} is not 4 or 16 bytes")
        return text
    if not isinstance(text, str):
        raise PacketError(_HEADER, 0, f"IP address {text!r} is neither text nor bytes")
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise PacketError(_HEADER, 0, f"{text!r} is not an IPv4 or IPv6 address") from None


def ip_to_str(b: bytes) -> str:
    """An IP address in its usual text form (dotted quad, or RFC 5952 IPv6)."""
    if not isinstance(b, bytes) or len(b) not in (IPV4_LEN, IPV6_LEN):
        raise PacketError(_HEADER, 0, f"IP address {b!r} is not 4 or 16 bytes")
    return str(ipaddress.ip_address(b))


def is_multicast_mac(mac: bytes) -> bool:
    """True for group addresses (the I/G bit, broadcast included)."""
    return len(mac) == MAC_LEN and bool(mac[0] & MAC_GROUP_BIT)
