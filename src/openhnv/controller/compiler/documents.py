"""Reading northbound resource documents defensively.

The compiler reads documents as the REST GET returns them (envelope, ``properties``,
children inline). These helpers pull typed values out of them and raise
``DocumentError`` with a message naming the field and the value when a document is not
usable; the compiler turns that into a ``CompileProblem`` and leaves the document out.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from openhnv.controller.errors import DocumentError

Snapshot: TypeAlias = Mapping[str, Sequence[Mapping[str, Any]]]
"""Collection name -> resource documents as the REST GET returns them."""

MAC_HEX_DIGITS = 12


@dataclass(frozen=True, slots=True)
class CompileProblem:
    """A document the compiler had to leave out, and why."""

    resource_ref: str
    message: str


def ref_key(ref: str) -> str:
    """References compare case-insensitively, like the REST paths."""
    return ref.rstrip("/").casefold()


def mac_with_colons(raw: object, what: str) -> str:
    """``"001DD8070001"`` (or with ``-``/``:``) -> ``"00:1d:d8:07:00:01"``."""
    if not isinstance(raw, str):
        raise DocumentError(f"{what} must be 12 hex digits, got {raw!r}")
    digits = raw.replace("-", "").replace(":", "").lower()
    if len(digits) != MAC_HEX_DIGITS or any(c not in "0123456789abcdef" for c in digits):
        raise DocumentError(f"{what} must be 12 hex digits, got {raw!r}")
    return ":".join(digits[i : i + 2] for i in range(0, MAC_HEX_DIGITS, 2))


def properties(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    props = doc.get("properties", {})
    if not isinstance(props, Mapping):
        raise DocumentError(f"properties must be an object, got {props!r}")
    return props


def ref_of(value: object, what: str) -> str | None:
    """The ``resourceRef`` of a reference object, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise DocumentError(f"{what} must be {{'resourceRef': ...}}, got {value!r}")
    ref = value.get("resourceRef")
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str) or not ref.startswith("/"):
        raise DocumentError(f"{what}.resourceRef must be a path like /servers/host1, got {ref!r}")
    return ref


def text(props: Mapping[str, Any], name: str, what: str) -> str:
    value = props.get(name)
    if not isinstance(value, str) or not value:
        raise DocumentError(f"{what}.{name} is missing or not a string: {value!r}")
    return value


def integer(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DocumentError(f"{what} must be an integer, got {value!r}")
    return value


def items(value: object, what: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise DocumentError(f"{what} must be a list, got {value!r}")
    return value


def children(parent_ref: str, props: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    """Inline child documents with their refs, sorted by ref for a stable order."""
    out: list[tuple[str, Any]] = []
    for child in items(props.get(name), f"{parent_ref} properties.{name}"):
        if not isinstance(child, Mapping):
            raise DocumentError(f"{parent_ref} properties.{name} holds a non-object {child!r}")
        ref = child.get("resourceRef")
        if not isinstance(ref, str) or not ref:
            child_id = child.get("resourceId")
            if not isinstance(child_id, str) or not child_id:
                raise DocumentError(
                    f"{parent_ref} properties.{name} has a child without resourceId"
                )
            ref = f"{parent_ref}/{name}/{child_id}"
        out.append((ref, child))
    return sorted(out, key=lambda pair: ref_key(pair[0]))


def address_in(prefix: str, address: str, what: str) -> str:
    """``address`` normalised, if it is an IP inside ``prefix``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise DocumentError(f"{what} {address!r} is not an IP") from None
    if ip not in _network(prefix):
        raise DocumentError(f"{what} {address} is outside {prefix}")
    return str(ip)


@functools.lru_cache(maxsize=65536)
def _network(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A subnet's prefix, parsed once (every NIC of the subnet is checked against it)."""
    return ipaddress.ip_network(prefix)


def flag(value: object) -> bool:
    """portSettings flags come as ``"Enabled"``/``"Disabled"`` or as booleans."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.casefold() in ("enabled", "true")


def documents(
    snapshot: Snapshot, collection: str, problems: list[CompileProblem]
) -> list[tuple[str, Mapping[str, Any]]]:
    """A collection's documents sorted by ref; duplicates of one ref keep one, reported."""
    grouped: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    found = snapshot.get(collection) or ()
    if not isinstance(found, list | tuple):
        problems.append(CompileProblem(f"/{collection}", f"not a list of documents: {found!r}"))
        found = ()
    for doc in found:
        if not isinstance(doc, Mapping):
            problems.append(CompileProblem(f"/{collection}", f"not a document: {doc!r}"))
            continue
        ref = doc.get("resourceRef")
        if not isinstance(ref, str) or not ref:
            rid = doc.get("resourceId")
            if not isinstance(rid, str) or not rid:
                problems.append(CompileProblem(f"/{collection}", "document without resourceId"))
                continue
            ref = f"/{collection}/{rid}"
        grouped.setdefault(ref_key(ref), []).append((ref, doc))
    out: list[tuple[str, Mapping[str, Any]]] = []
    for key in sorted(grouped):
        docs = grouped[key]
        if len(docs) > 1:
            docs.sort(key=lambda pair: json.dumps(pair[1], sort_keys=True, default=str))
            problems.append(
                CompileProblem(docs[0][0], f"{len(docs)} documents share this resourceRef")
            )
        out.append(docs[0])
    return out


def resource_id(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1]
