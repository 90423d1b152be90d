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
import json
from collections.abc import Iterable, Mapping
from typing import Any

from openhnv.ovsdb.rows import Ref

DIGEST_BYTES = 16
_REF = "@ref"
_SET = "@set"
_SETS: dict[int, tuple[Any, list[Any]]] = {}  # id(set) -> (the set, its canonical form)
_SETS_KEPT = 100_000


def _plain(value: Any) -> Any:
    """``json.dumps``' fallback: references and sets in a canonical plain form.

    A set's form is remembered by identity: many rows share one set object (a virtual
    network's address space, the empty set), so each is sorted once.
    """
    if type(value) is Ref:
        return [_REF, value.table, value.key]
    if isinstance(value, frozenset | set):
        cached = _SETS.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        members = [_plain(m) if type(m) is Ref else m for m in value]
        members.sort(key=repr)
        plain = [_SET, *members]
        if len(_SETS) >= _SETS_KEPT:
            _SETS.clear()
        _SETS[id(value)] = (value, plain)
        return plain
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot digest {type(value).__name__}")


def piece_digest(piece: Mapping[str, Mapping[str, Any]]) -> str:
    """The digest of one piece: every table, key and row of it (one canonical JSON text)."""
    text = json.dumps(piece, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.blake2b(text.encode(), digest_size=DIGEST_BYTES).hexdigest()


def state_digest(pieces: Iterable[tuple[str, str]]) -> str:
    """A host's digest from its (source, piece digest) pairs in merge order."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for source, piece in pieces:
        digest.update(f"{source}={piece}\n".encode())
    return digest.hexdigest()
