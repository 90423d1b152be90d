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
from collections.abc import Sequence, Set

from openhnv.controller.models import VSID_MAX, VSID_MIN
from openhnv.controller.paths import ResourcePath

VSID_ALLOCATOR = "/allocators/vsid"
NEXT = "next"


def mac_allocator(pool: ResourcePath) -> str:
    return "/allocators/mac" + pool.key


def pa_allocator(subnet: ResourcePath) -> str:
    return "/allocators/pa" + subnet.key


def allocate(ranges: Sequence[tuple[int, int]], in_use: Set[int], hint: int | None) -> int | None:
    """The first value at or after ``hint`` in ``ranges`` not in ``in_use`` (wrapping).

    ``ranges`` are inclusive ``(low, high)`` pairs in ascending order. None when every
    value is in use.
    """
    sizes = [high - low + 1 for low, high in ranges if high >= low]
    ranges = [(low, high) for low, high in ranges if high >= low]
    total = sum(sizes)
    used = sum(1 for value in in_use if any(low <= value <= high for low, high in ranges))
    if total <= used:
        return None
    start = 0
    if hint is not None:
        offset = 0
        for (low, high), size in zip(ranges, sizes, strict=True):
            if hint <= high:
                start = offset + max(0, hint - low)
                break
            offset += size
    for step in range(total):
        index = (start + step) % total
        for (low, _), size in zip(ranges, sizes, strict=True):
            if index < size:
                value = low + index
                break
            index -= size
        if value not in in_use:
            return value
    return None  # unreachable: the count above found a free value


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
