"""A small mutation fuzzer for when atheris is absent: seeds, mutated by byte edits.

``mutations(seeds, rnd)`` yields inputs forever: a seed (or a random buffer) with one to
eight edits (bit flip, byte set to an interesting value, insert, delete, truncate, splice
of two seeds). Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x40, 0x08, 0x06, 0x11, 0x2F, 0x3A, 0x45, 0x60)
MAX_EDITS = 8
RANDOM_LEN = 96
FRESH_ONE_IN = 16  # one input in this many is random bytes, not a mutated seed


def _edit(buf: bytearray, rnd: random.Random, seeds: Sequence[bytes]) -> None:
    kind = rnd.randrange(6)
    at = rnd.randrange(len(buf) + 1)
    if kind == 0 and buf:
        buf[at % len(buf)] ^= 1 << rnd.randrange(8)
    elif kind == 1 and buf:
        buf[at % len(buf)] = rnd.choice(INTERESTING)
    elif kind == 2:
        buf[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 5)))
    elif kind == 3 and buf:
        del buf[at : at + rnd.randrange(1, 9)]
    elif kind == 4:
        del buf[at:]
    elif seeds:
        other = rnd.choice(seeds)
        start = rnd.randrange(len(other) + 1)
        buf[at:] = other[start:]


def mutations(seeds: Sequence[bytes], rnd: random.Random) -> Iterator[bytes]:
    """Inputs made from ``seeds``, forever."""
    while True:
        if not seeds or rnd.randrange(FRESH_ONE_IN) == 0:
            yield rnd.randbytes(rnd.randrange(RANDOM_LEN))
            continue
        buf = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randrange(1, MAX_EDITS + 1)):
            _edit(buf, rnd, seeds)
        yield bytes(buf)
