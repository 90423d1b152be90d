"""What a change under validation carries: the state, the old and new document, and the
allocator records it advanced; plus small helpers the rule modules share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from openhnv.controller.errors import not_found
from openhnv.controller.northbound import allocators
from openhnv.controller.northbound.paths import ResourcePath
from openhnv.controller.northbound.state import State
from openhnv.controller.northbound.store import Document

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Admission:
    """One candidate change of the top-level resource at ``path``."""

    state: State
    path: ResourcePath
    old: Document | None
    new: Document
    allocator_updates: dict[str, Document] = field(default_factory=dict)

    def hint(self, key: str) -> int | None:
        record = self.allocator_updates.get(key) or self.state.allocators.get(key)
        return None if record is None else int(record[allocators.NEXT])

    def advance(self, key: str, value: int) -> None:
        self.allocator_updates[key] = {allocators.NEXT: value + 1}


def overlapping(nets: list[tuple[str, IpNetwork]], net: IpNetwork) -> str | None:
    """The name of the first network in ``nets`` that overlaps ``net``."""
    for name, other in nets:
        if other.version == net.version and other.overlaps(net):
            return name
    return None


def resolved(state: State, path: ResourcePath) -> Document:
    doc = state.resolve(path)
    if doc is None:  # check_references has resolved every reference before this runs
        raise not_found(path.ref)
    return doc
