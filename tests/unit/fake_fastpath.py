"""A kernel fast path without a kernel: its maps as dicts, for the edge's unit tests.

``FakeFastPath`` has the maps ``vswitch.offload.KernelOffload`` writes (packed keys to
packed entries, the generation array, the counters); ``entry(key)`` reads one back,
``executes(key)`` says whether the kernel would run it now (present and every
generation pair current, as ``hnv_check_entry`` decides) and ``hit(key, ...)`` plays the
kernel counting a packet. ``KernelNullDriver`` is the ``NullDriver`` with such a fast
path and the ifindexes and MTUs of its ports and uplinks.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator

from openhnv.vswitch.fastpath.layout import (
    ENCAP_VXLAN,
    F_VLAN,
    GEN_UNUSED,
    STATS_OFFSET,
    FlowEntry,
    FlowStats,
    PortKey,
    QosBucket,
    UplinkKey,
)
from openhnv.vswitch.null import NullDriver

_STATS = struct.Struct("=QQQ")
ETH = 14
SLOTS = 65536


class FakeFlowMap:
    def __init__(self, key_type: type[PortKey] | type[UplinkKey]) -> None:
        self.key_type = key_type
        self.entries: dict[bytes, bytes] = {}
        self.writes = 0

    def set_raw(self, key: bytes, entry: bytes) -> None:
        self.writes += 1
        self.entries[key] = entry

    def delete_raw(self, key: bytes) -> bool:
        return self.entries.pop(key, None) is not None

    def raw_stats(self) -> Iterator[tuple[bytes, int, int, int]]:
        for key, value in self.entries.items():
            yield (key, *_STATS.unpack_from(value, STATS_OFFSET))

    def items(self) -> Iterator[tuple[PortKey | UplinkKey, FlowEntry]]:
        for key, value in self.entries.items():
            yield self.key_type.unpack(key), FlowEntry.unpack(value)

    def hit(self, key: bytes, packets: int, size: int, last_used_ns: int) -> None:
        entry = FlowEntry.unpack(self.entries[key])
        stats = FlowStats(entry.stats.packets + packets, entry.stats.bytes + size, last_used_ns)
        self.entries[key] = dataclasses.replace(entry, stats=stats).pack()


class FakeGenerations:
    slots = SLOTS

    def __init__(self) -> None:
        self.values: dict[int, int] = {}

    def get(self, slot: int) -> int:
        return self.values.get(slot, 0)

    def set(self, slot: int, generation: int) -> None:
        self.values[slot] = generation


class FakeCounters:
    def read(self) -> dict[str, int]:
        return {"hit_encap": 0}


class FakeQos:
    """``hnv_qos_buckets`` as a dict: (ifindex, direction) -> bucket."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[int, int], QosBucket] = {}

    def set(self, ifindex: int, direction: int, rate: int, burst: int, priority: int = 0) -> None:
        self.buckets[(ifindex, direction)] = QosBucket(0, priority, rate, burst, 0, 0, 0, 0, 0)

    def delete(self, ifindex: int, direction: int) -> bool:
        return self.buckets.pop((ifindex, direction), None) is not None

    def items(self) -> dict[tuple[int, int], QosBucket]:
        return dict(self.buckets)


class FakeFastPath:
    def __init__(self, adopted: bool = False) -> None:
        self.adopted = adopted
        self.port_flows = FakeFlowMap(PortKey)
        self.uplink_flows = FakeFlowMap(UplinkKey)
        self.generations = FakeGenerations()
        self.counters = FakeCounters()
        self.qos = FakeQos()

    def all_entries(self) -> dict[bytes, FlowEntry]:
        maps = (self.port_flows.entries, self.uplink_flows.entries)
        return {k: FlowEntry.unpack(v) for m in maps for k, v in m.items()}

    def executes(self, key: PortKey | UplinkKey) -> FlowEntry | None:
        """The entry the kernel would run for ``key`` now, or None (absent or stale)."""
        table = self.port_flows if isinstance(key, PortKey) else self.uplink_flows
        raw = table.entries.get(key.pack())
        if raw is None:
            return None
        entry = FlowEntry.unpack(raw)
        for ref in entry.gens:
            if ref.slot != GEN_UNUSED and self.generations.get(ref.slot) != ref.generation:
                return None
        return entry


class KernelNullDriver(NullDriver):
    """A ``NullDriver`` with a fake fast path: port ifindexes from 10 up, uplinks 2, 3."""

    def __init__(self, fast_path: FakeFastPath | None = None) -> None:
        super().__init__()
        self.fast_path = fast_path or FakeFastPath()
        self.ifindexes: dict[str, int] = {}
        self.uplinks = {"up0": 2, "up1": 3}
        self.mtus = {"up0": 1600, "up1": 1600}

    def port_ifindex(self, port: str) -> int | None:
        if port not in self.ifindexes:
            self.ifindexes[port] = 10 + len(self.ifindexes)
        return self.ifindexes[port]

    def uplink_ifindex(self, interface: str) -> int | None:
        return self.uplinks.get(interface)

    def uplink_mtu(self, interface: str) -> int | None:
        return self.mtus.get(interface)

    def fastpath_status(self) -> dict[str, object]:
        return {"mode": "on", "state": "on", "adopted": self.fast_path.adopted}


def kernel_outer(entry: FlowEntry, inner_length: int) -> bytes:
    """The outer headers ``hnv_encapsulate`` pushes in front of an inner frame of
    ``inner_length`` bytes (``hnv_patch_outer``: total length, checksum from the partial
    sum, UDP length and source port or FlowID; the 802.1Q tag of ``vlan_tci``)."""
    header = bytearray(entry.header[: entry.header_len])
    total = len(header) - ETH + inner_length
    checksum = entry.csum_partial + total
    checksum = (checksum & 0xFFFF) + (checksum >> 16)
    checksum = (checksum & 0xFFFF) + (checksum >> 16)
    struct.pack_into("!H", header, ETH + 2, total)
    struct.pack_into("!H", header, ETH + 10, ~checksum & 0xFFFF)
    if entry.encap == ENCAP_VXLAN:
        struct.pack_into("!H", header, ETH + 20, entry.entropy)
        struct.pack_into("!H", header, ETH + 24, total - 20)
    else:
        header[ETH + 27] = entry.entropy & 0xFF
    if entry.flags & F_VLAN:
        header[12:12] = struct.pack("!HH", 0x8100, entry.vlan_tci)
    return bytes(header)
