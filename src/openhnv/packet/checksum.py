"""The Internet checksum (RFC 1071), with the incremental form of RFC 1624.

The checksum is the 16-bit one's complement of the one's complement sum of the data
taken as big-endian 16-bit words (an odd length is padded with a zero byte). Since
2**16 is congruent to 1 modulo 0xFFFF, the end-around-carry sum of all words equals
the whole buffer read as one big integer, modulo 0xFFFF, so we need no per-word loop:
``int.from_bytes`` and one ``%`` do it in C.
"""

from __future__ import annotations

import struct

from openhnv.packet.addresses import IPV4_LEN, IPV6_LEN
from openhnv.packet.errors import PacketError

WORD_MASK = 0xFFFF
"""All ones in 16 bits: the one's complement "negative zero" and the fold modulus."""
_WORD_BITS = 16


def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    """The folded 16-bit one's complement sum of ``data``, added to ``initial``.

    ``initial`` is a previous folded sum (for example of a pseudo-header). The result is
    0 only when every word is zero; a nonzero sum that is a multiple of 0xFFFF is 0xFFFF.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = int.from_bytes(data, "big") + initial
    folded = total % WORD_MASK
    if folded == 0 and total != 0:
        return WORD_MASK
    return folded


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """The Internet checksum of ``data`` (RFC 1071); 0 over data that carries a good one."""
    return ~ones_complement_sum(data, initial) & WORD_MASK


_CHECKSUM_LEN = 2
_IPV4_PSEUDO = struct.Struct("!4s4sxBH")
_IPV6_PSEUDO = struct.Struct("!16s16sI3xB")


def pseudo_header_sum(
    src_ip: bytes, dst_ip: bytes, protocol: int, length: int, header: str = "checksum"
) -> int:
    """The folded sum of the TCP/UDP pseudo-header for IPv4 (RFC 9293, RFC 768) or IPv6.

    IPv4: source, destination, zero, protocol, 16-bit length. IPv6 (RFC 8200 §8.1):
    source, destination, 32-bit upper-layer length, three zero bytes, next header.
    Addresses that are not both IPv4 or both IPv6 raise a PacketError naming ``header``.
    """
    if len(src_ip) == IPV4_LEN and len(dst_ip) == IPV4_LEN:
        return ones_complement_sum(_IPV4_PSEUDO.pack(src_ip, dst_ip, protocol, length))
    if len(src_ip) == IPV6_LEN and len(dst_ip) == IPV6_LEN:
        return ones_complement_sum(_IPV6_PSEUDO.pack(src_ip, dst_ip, length, protocol))
    raise PacketError(
        header,
        0,
        f"source {src_ip!r} and destination {dst_ip!r} are not both IPv4 or both IPv6",
    )


def verify_checksum(
    header: str,
    offset: int,
    data: bytes,
    checksum_at: int,
    initial: int = 0,
    what: str = "checksum",
) -> None:
    """Raise a PacketError naming ``header`` unless ``data`` carries a good checksum.

    ``checksum_at`` is where the 16-bit checksum field sits in ``data``; ``initial`` a
    pseudo-header sum. The message gives the checksum found and the one expected.
    """
    if internet_checksum(data, initial) == 0:
        return
    data = bytes(data)
    end = checksum_at + _CHECKSUM_LEN
    found = int.from_bytes(data[checksum_at:end], "big")
    expected = internet_checksum(data[:checksum_at] + bytes(_CHECKSUM_LEN) + data[end:], initial)
    raise PacketError(header, offset, f"{what} {found:#06x} does not match {expected:#06x}")


def update_checksum_word(checksum: int, old_word: int, new_word: int) -> int:
    """The checksum after one 16-bit word of the data changed (RFC 1624 eqn. 3:
    ``HC' = ~(~HC + ~m + m')``), without summing the data again."""
    s = (~checksum & WORD_MASK) + (~old_word & WORD_MASK) + new_word
    s = (s & WORD_MASK) + (s >> _WORD_BITS)
    s = (s & WORD_MASK) + (s >> _WORD_BITS)
    return ~s & WORD_MASK


def update_checksum(checksum: int, old: bytes, new: bytes) -> int:
    """The checksum after the 16-bit aligned bytes ``old`` became ``new`` (same length)."""
    s = ~checksum & WORD_MASK
    for i in range(0, len(old), _CHECKSUM_LEN):
        s += (~int.from_bytes(old[i : i + _CHECKSUM_LEN], "big") & WORD_MASK) + int.from_bytes(
            new[i : i + _CHECKSUM_LEN], "big"
        )
    while s >> _WORD_BITS:
        s = (s & WORD_MASK) + (s >> _WORD_BITS)
    return ~s & WORD_MASK
