"""Digests of compiled rows: what a host holds, named in 32 hex digits.

The southbound writes the digest of the state it committed into the host's own
``Global`` row; a controller that restarts, or a replica that takes over, compares
that digest with the one of the state it compiled and, when they agree, knows the host
is up to date without reading every row back (it still reads them later, paced, to
catch changes made behind its back).

A host's state is merged from pieces (its virtual networks, its NICs, itself), most of
them shared by many hosts, so a digest is computed per piece (once per piece object)
and a host's digest combines its pieces' in merge order. The encoding is canonical:
tables, keys, columns and set members sorted, references as ``[table, key]``; the same
rows give the same digest in every process. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from openhnv.ovsdb.rows import Ref

DIGEST_BYTES = 16
_PLAIN = (str, int, bool)  # already canonical


def _canonical(value: Any) -> Any:
    """``value`` as nested tuples whose ``repr`` is the same in every process: sets and
    maps sorted, references as ``("@", table, key)``."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    if kind is Ref:
        return ("@", value.table, value.key)
    if isinstance(value, frozenset | set):
        members = [_canonical(member) for member in value]
        members.sort(key=repr)
        return ("{", *members)
    if isinstance(value, Mapping):
        pairs = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        pairs.sort(key=repr)
        return ("[", *pairs)
    raise TypeError(f"cannot digest {kind.__name__}")


def piece_digest(piece: Mapping[str, Mapping[str, Any]]) -> str:
    """The digest of one piece: every table, key and row of it."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for table in sorted(piece):
        rows = piece[table]
        for key in sorted(rows):
            row = rows[key]
            encoded = (
                table,
                key,
                tuple(
                    (c, v if type(v) in _PLAIN else _canonical(v)) for c, v in sorted(row.items())
                ),
            )
            digest.update(repr(encoded).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def state_digest(pieces: Iterable[tuple[str, str]]) -> str:
    """A host's digest from its (source, piece digest) pairs in merge order."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for source, piece in pieces:
        digest.update(f"{source}={piece}\n".encode())
    return digest.hexdigest()
