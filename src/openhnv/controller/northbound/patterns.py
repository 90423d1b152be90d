"""Regular expressions that both the parsers and ``/openapi.json`` use, so the published
schema says exactly what a field accepts: a decimal range, a word in any ASCII case, a
MAC address, a port range, a resource id.

They are written in the subset that Python's ``re``, ECMA-262 and Rust's ``regex`` read
alike (no look-around, no inline flags): schema validators and fuzzers on any platform
agree with the server.
"""

from __future__ import annotations

from collections.abc import Iterable

from openhnv.controller.northbound.paths import MAX_ID_LENGTH

# a resourceId: 1..256 characters, no '/', no control character (paths.check_resource_id)
ID_PATTERN = f"^[^/\\u0000-\\u001f\\u007f]{{1,{MAX_ID_LENGTH}}}$"
# 12 hex digits, or 6 pairs joined by '-' or ':' (00-1D-D8-07-00-01, 00:1d:d8:07:00:01)
MAC_PATTERN = "^(?:[0-9A-Fa-f]{12}|[0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5})$"
# '*', a port, or low-high (each 0..65535 and low <= high: checked by the parser)
PORT_RANGE_PATTERN = "^(?:[*]|(?:0|[1-9][0-9]{0,4})(?:-(?:0|[1-9][0-9]{0,4}))?)$"
BOOLEAN_PATTERN = "^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"


def anycase_pattern(words: Iterable[str]) -> str:
    """``("All", "TCP")`` -> ``^(?:[Aa][Ll][Ll]|[Tt][Cc][Pp])$``: the words in any ASCII case."""
    alternatives = [
        "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else _escape(c) for c in word)
        for word in words
    ]
    return "^(?:" + "|".join(alternatives) + ")$"


def _escape(char: str) -> str:
    return char if char.isalnum() else f"[{char}]"


def range_pattern(low: int, high: int) -> str:
    """The decimal numbers ``low..high`` (no sign, no leading zero) as a regex."""
    if not 0 <= low <= high:
        raise ValueError(f"bad range {low}..{high}")
    parts: list[str] = []
    for length in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        last = min(high, 10**length - 1)
        if first <= last:
            parts += _same_length(str(first), str(last))
    return "^(?:" + "|".join(parts) + ")$"


def _digits(low: str, high: str) -> str:
    return low if low == high else f"[{low}-{high}]"


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives matching low..high, both of the same number of digits."""
    if len(low) == 1:
        return [_digits(low, high)]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _same_length(low[1:], high[1:])]
    width = len(low) - 1
    parts: list[str] = []
    start, end = int(low[0]), int(high[0])
    if low[1:] != "0" * width:
        parts += [low[0] + rest for rest in _same_length(low[1:], "9" * width)]
        start += 1
    tail: list[str] = []
    if high[1:] != "9" * width:
        tail = [high[0] + rest for rest in _same_length("0" * width, high[1:])]
        end -= 1
    if start <= end:
        parts.append(_digits(str(start), str(end)) + f"[0-9]{{{width}}}")
    return parts + tail
