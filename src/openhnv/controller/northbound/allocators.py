"""Allocators for VSIDs, MACs, provider addresses and customer addresses (pure functions).

Each allocator walks its ranges from a high-water mark (the value after the last one it
handed out, kept in the store in the same transaction as the resource), skips values in
use, and wraps around only when it reaches the end. So a value freed by a delete is not
handed out again until the whole range has been used once, and never while in use.
RDIDs are random GUIDs (uuid4), unique without a record.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Collection, Sequence, Set

from openhnv.controller.northbound.models import VSID_MAX, VSID_MIN
from openhnv.controller.northbound.paths import ResourcePath

VSID_ALLOCATOR = "/allocators/vsid"
NEXT = "next"


def mac_allocator(pool: ResourcePath) -> str:
    return "/allocators/mac" + pool.key


def pa_allocator(subnet: ResourcePath) -> str:
    return "/allocators/pa" + subnet.key


def allocate(
    ranges: Sequence[tuple[int, int]], in_use: Collection[int], hint: int | None
) -> int | None:
    """The first value at or after ``hint`` in ``ranges`` not in ``in_use`` (wrapping).

    ``ranges`` are inclusive ``(low, high)`` pairs in ascending order. None when every
    value is in use. Among ``len(in_use) + 1`` distinct candidates one is free, so the
    walk is bounded by the number of values in use, not by the size of the range.
    """
    ranges = [(low, high) for low, high in ranges if high >= low]
    sizes = [high - low + 1 for low, high in ranges]
    total = sum(sizes)
    start = 0
    if hint is not None:
        offset = 0
        for (low, high), size in zip(ranges, sizes, strict=True):
            if hint <= high:
                start = offset + max(0, hint - low)
                break
            offset += size
    for step in range(min(total, len(in_use) + 1)):
        index = (start + step) % total
        value = ranges[-1][0]
        for (low, _), size in zip(ranges, sizes, strict=True):
            if index < size:
                value = low + index
                break
            index -= size
        if value not in in_use:
            return value
    return None


def allocate_vsid(in_use: Set[int], hint: int | None) -> int | None:
    """A VSID in 4096..2^24-2 not in ``in_use``."""
    return allocate([(VSID_MIN, VSID_MAX)], in_use, hint)


def new_routing_domain_id() -> str:
    """An RDID: a GUID, unique per datacenter."""
    return str(uuid.uuid4())


def usable_hosts(prefix: str) -> tuple[int, int]:
    """The lowest and highest customer address of a virtual subnet, as integers.

    The network address, the IPv4 broadcast address and the distributed router (the
    lowest usable address) are never given to a NIC.
    """
    network = ipaddress.ip_network(prefix)
    low = int(network.network_address) + 2
    high = int(network.broadcast_address) - (1 if network.version == 4 else 0)
    return low, high


def address_text(value: int, version: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))
