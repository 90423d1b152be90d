"""The packet layer's one error type, and the bounds check every parser uses.

Every malformed or truncated input to a parser in :mod:`openhnv.packet` raises
:class:`PacketError` naming the header, the byte offset in the buffer where that header
starts (or where the fault lies) and the reason. Parsers never let ``IndexError`` or
``struct.error`` escape: they call :func:`need` before they read.
"""

from __future__ import annotations


class PacketError(ValueError):
    """Malformed, truncated or unsupported bytes, or an out-of-range header field."""

    def __init__(self, header: str, offset: int, reason: str) -> None:
        super().__init__(f"{header} at offset {offset}: {reason}")
        self.header = header
        self.offset = offset
        self.reason = reason

    def __reduce__(self) -> tuple[type[PacketError], tuple[str, int, str]]:
        return (PacketError, (self.header, self.offset, self.reason))


def need(buf: bytes, offset: int, length: int, header: str) -> None:
    """Raise unless ``buf[offset:offset + length]`` is wholly inside ``buf``."""
    if offset < 0:
        raise PacketError(header, offset, "negative offset")
    have = len(buf) - offset
    if have < length:
        raise PacketError(
            header, offset, f"truncated: needs {length} bytes, only {max(have, 0)} left"
        )


def resolve_length(buf: bytes, offset: int, length: int | None, header: str) -> int:
    """A packet's length: ``length``, or all of ``buf`` after ``offset``; it must fit."""
    need(buf, offset, 0, header)
    if length is None:
        return len(buf) - offset
    if length < 0:
        raise PacketError(header, offset, f"length {length} is negative")
    need(buf, offset, length, header)
    return length


def check_range(header: str, name: str, value: int, low: int, high: int) -> None:
    """Raise unless ``low <= value <= high`` (for building headers from fields)."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise PacketError(header, 0, f"{name} {value!r} is not in {low}..{high}")


def check_length(header: str, name: str, value: bytes, lengths: tuple[int, ...]) -> None:
    """Raise unless ``value`` is bytes of one of ``lengths``."""
    if not isinstance(value, bytes) or len(value) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise PacketError(header, 0, f"{name} {value!r} is not {want} bytes")
