"""The I/O edge of offloading: the engine's offload operations become kernel entries.

``KernelOffload`` applies what ``engine.offload`` decides (``Offload``, ``Withdraw``)
to the fast path's maps (``vswitch.fastpath``, docs/fastpath.md): it makes each
entry (``entrybuild.EntryBuilder``: the kernel key from the head flow's key, the entry
from the compiled decision) and the generation pairs of the ports the decision used.

Slots. Each VM port's generation lives in slot = the ifindex of its veth host end,
the uplink's in slot ``UPLINK_SLOT`` (0): a restarted process finds them again. The
kernel generation of a slot moves (``apply(..., bump=ports)``) when a port's own
policy changes; the entries that used it are written again with the new generation
first (their decision revalidated by the engine), then the slot moves, then the
withdrawn ones go: no packet uses the old decision once ``apply`` returns, and the
entries of other ports are never touched. Changes of the spaces (mappings, PAs,
neighbours) touch only the entries the engine found changed.

Several head flows may share one kernel key (the engine's key holds the TTL, the DF
bit and, from the PA network, the sender's UDP source port; the kernel's does not):
the entry stays while one of them is offered.

Adoption. A fast path adopted from an earlier process holds that process's entries
and generations; until ``finish_adoption`` nothing is deleted and no slot moves, an
entry re-offered with the same bytes is not written again (its counters go on), and
``finish_adoption`` deletes what was not re-offered. Statistics: ``read_stats``
(without the switch's lock) and ``apply_stats`` (with it) give the kernel's
last-used times back to the engine's flows, so expiry works from them.

Edge counters (``hnv host status``): ``entries_written`` and ``write_ns``, the time
spent in those map writes (the bpf(2) calls), among the others named where they move.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from openhnv.vfp.emits import UPLINK
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.offload import (
    Offload,
    OffloadEntry,
    Offloader,
    OffloadOp,
)
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.entrybuild import Built, EntryBuilder, KernelPlaces, Table
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import (
    GEN_UNUSED,
    MAX_GENERATIONS,
    NO_STATS,
    FlowEntry,
    PortKey,
    UplinkKey,
    c_layout,
)
from openhnv.vswitch.qoskernel import QosMap

log = logging.getLogger(__name__)

UPLINK_SLOT = 0
"""The generation slot of the uplink (no interface has ifindex 0)."""
GENERATION_MASK = 0xFFFFFFFF
_NS = 1e9
_LOGGED = 10


class Packed(Protocol):
    def pack(self) -> bytes: ...


class FlowMap(Protocol):
    """A flow map as the edge uses it (``maps.FlowTable``)."""

    def set_raw(self, key: bytes, entry: bytes) -> None: ...
    def delete_raw(self, key: bytes) -> bool: ...
    def raw_stats(self) -> Iterable[tuple[bytes, int, int, int]]: ...
    def items(self) -> Iterable[tuple[Packed, FlowEntry]]: ...


class GenerationMap(Protocol):
    """``maps.Generations`` as the edge uses it."""

    @property
    def slots(self) -> int: ...
    def get(self, slot: int) -> int: ...
    def set(self, slot: int, generation: int) -> None: ...


class CounterMap(Protocol):
    def read(self) -> dict[str, int]: ...


class FastPathMaps(Protocol):
    """What the edge writes: ``fastpath.FastPath`` (a fake in unit tests)."""

    @property
    def adopted(self) -> bool: ...
    @property
    def port_flows(self) -> FlowMap: ...
    @property
    def uplink_flows(self) -> FlowMap: ...
    @property
    def generations(self) -> GenerationMap: ...
    @property
    def counters(self) -> CounterMap: ...
    @property
    def qos(self) -> QosMap: ...


@runtime_checkable
class KernelDriver(KernelPlaces, Protocol):
    """A driver with a kernel fast path under it (``LinuxDriver``); ``fast_path`` is None
    when it runs without one."""

    @property
    def fast_path(self) -> FastPathMaps | None: ...

    def fastpath_status(self) -> dict[str, object]: ...


@dataclass(slots=True)
class _Written:
    """One kernel entry: its key, its entry (generations apart), the slots it names, the
    heads that share it (the first decided it), the bytes the kernel holds, and what the
    kernel last counted."""

    table: Table
    key: bytes
    entry: bytes  # packed, generations zero
    slots: tuple[int, ...]
    port: str
    heads: list[Flow] = field(default_factory=list)
    written: tuple[bytes, tuple[tuple[int, int], ...]] | None = None  # entry, generations
    packets: int = 0
    bytes: int = 0
    last_used_ns: int = 0


KernelStats = list[tuple[Table, bytes, int, int, int]]


class KernelOffload:
    """The kernel side of one switch's offloading (module docstring)."""

    def __init__(
        self,
        maps: FastPathMaps,
        places: KernelPlaces,
        pas: Callable[[], Mapping[str, PaConfig]],
        *,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.maps = maps
        self.places = places
        self.pas = pas
        self.monotonic_ns = monotonic_ns
        self.builder = EntryBuilder(places, pas, self.slot_of)
        self.counters: Counter[str] = Counter()
        self.adopting = maps.adopted
        self._written: dict[bytes, _Written] = {}
        self._of_head: dict[Flow, bytes] = {}
        self._built: dict[Flow, Built] = {}
        self._offered: dict[Flow, OffloadEntry] = {}  # what each written head was offered
        self._by_slot: dict[int, set[bytes]] = {}
        self._gens: dict[int, int] = {}
        self._slots: dict[str, int] = {}
        self._adopted: dict[bytes, tuple[Table, bytes]] = {}
        if self.adopting:
            for key, entry in maps.port_flows.items():
                self._adopted[key.pack()] = ("port", _without_stats(entry).pack())
            for ukey, entry in maps.uplink_flows.items():
                self._adopted[ukey.pack()] = ("uplink", _without_stats(entry).pack())
            log.info("fast path: adopting %d kernel entries", len(self._adopted))
        self.adopted_total = len(self._adopted)

    # -- slots and generations -------------------------------------------------------

    def slot_of(self, port: str) -> int | None:
        """The generation slot of ``port`` (``UPLINK`` too), None when it has none."""
        if port == UPLINK:
            return UPLINK_SLOT
        slot = self._slots.get(port)
        if slot is None:
            ifindex = self.places.port_ifindex(port)
            if ifindex is None or not 0 < ifindex < self.maps.generations.slots:
                return None
            slot = self._slots[port] = ifindex
        return slot

    def generation(self, slot: int) -> int:
        """The kernel's current generation of ``slot`` (read once, then kept)."""
        found = self._gens.get(slot)
        if found is None:
            found = self._gens[slot] = self.maps.generations.get(slot)
        return found

    def forget_port(self, port: str) -> None:
        """``port`` went: its slot may name another interface later."""
        self._slots.pop(port, None)
        self.builder.forget()

    # -- applying the engine's operations --------------------------------------------

    def apply(self, ops: Sequence[OffloadOp], bump: Iterable[str] = ()) -> None:
        """Install and withdraw entries; move the generations of ``bump``'s ports (their
        policy changed: every entry naming them is written again with the new one)."""
        slots = set()
        if not self.adopting:
            for port in bump:
                slot = self.slot_of(port)
                if slot is not None:
                    slots.add(slot)
                    self._gens[slot] = (self.generation(slot) + 1) & GENERATION_MASK
        withdrawn: list[Flow] = []
        for op in ops:
            if isinstance(op, Offload):
                self._install(op)
            else:
                withdrawn.append(op.head)
        for slot in sorted(slots):
            for key in list(self._by_slot.get(slot, ())):
                self._write(self._written[key])
            self._set_generation(slot)
        for head in withdrawn:
            self._withdraw(head)

    def _set_generation(self, slot: int) -> None:
        try:
            self.maps.generations.set(slot, self._gens[slot])
        except FastPathError as exc:
            self._failed("generation", exc)

    def _install(self, op: Offload) -> None:
        head = op.head
        try:
            built = self.builder.build(op.entry)
        except FastPathError as exc:
            self._failed("build", exc)
            built = None
        if built is None:
            self.counters["offload_unsupported"] += 1
            self._withdraw(head)
            return
        self._offered[head] = op.entry
        known = self._of_head.get(head)
        if known is not None and known != built.key:
            self._withdraw(head)
        self._built[head] = built
        self._of_head[head] = built.key
        w = self._written.get(built.key)
        if w is None:
            w = _Written(built.table, built.key, built.entry, built.slots, built.port, [head])
            self._written[built.key] = w
            for slot in built.slots:
                self._by_slot.setdefault(slot, set()).add(built.key)
        else:
            if head in w.heads:
                w.heads.remove(head)
            w.heads.insert(0, head)  # the newest decision is the one written
            self._reslot(w, built.slots)
            w.entry, w.port = built.entry, built.port
        self._write(w)

    def rehome(self, addresses: set[str]) -> int:
        """PAs ``addresses`` moved to another team member (the ``pas`` callable names
        it now): every entry that encapsulates from one of them is built again and
        written over the old one (same key: no frame finds it missing, and none goes
        to the old member's ifindex afterwards). Returns how many were."""
        self.builder.forget()
        heads = [h for h, e in self._offered.items()
                 if e.encap is not None and e.encap.source_pa in addresses]  # fmt: skip
        for head in heads:
            self._install(Offload(head, None, self._offered[head]))
        self.counters["entries_rehomed"] += len(heads)
        return len(heads)

    def _reslot(self, w: _Written, slots: tuple[int, ...]) -> None:
        for slot in w.slots:
            if slot not in slots:
                self._by_slot.get(slot, set()).discard(w.key)
        for slot in slots:
            self._by_slot.setdefault(slot, set()).add(w.key)
        w.slots = slots

    def _write(self, w: _Written) -> None:
        """Write ``w`` with the current generations of its slots (unless the kernel holds
        exactly that already, as after adoption)."""
        gens = tuple((s, self.generation(s)) for s in w.slots)
        written = (w.entry, gens)
        if written == w.written:
            return
        packed = _with_generations(w.entry, gens)
        adopted = self._adopted.pop(w.key, None)
        if adopted is not None:
            changed = _changed_fields(adopted, w.table, packed)
            if not changed:
                self.counters["adopted_kept"] += 1  # the kernel has it: its counters go on
                w.entry = _with_generations(adopted[1], ())  # the kept entropy
                w.written = (w.entry, gens)
                return
            self.counters["adopted_rewritten"] += 1
            if self.counters["adopted_rewritten"] <= _LOGGED:
                log.info("fast path: adopted entry decided otherwise (%s)", ", ".join(changed))
        table = self.maps.port_flows if w.table == "port" else self.maps.uplink_flows
        start = time.perf_counter_ns()
        try:
            table.set_raw(w.key, packed)
        except FastPathError as exc:
            self._failed("write", exc)
            return
        self.counters["write_ns"] += time.perf_counter_ns() - start  # the bpf(2) call's
        w.written = written
        self.counters["entries_written"] += 1

    def _withdraw(self, head: Flow) -> None:
        key = self._of_head.pop(head, None)
        self._built.pop(head, None)
        self._offered.pop(head, None)
        if key is None:
            return
        w = self._written.get(key)
        if w is None:
            return
        writer = w.heads[0] if w.heads else None
        if head in w.heads:
            w.heads.remove(head)
        if w.heads:
            if writer is head:  # another head of the same kernel key: its decision
                built = self._built[w.heads[0]]
                self._reslot(w, built.slots)
                w.entry, w.port = built.entry, built.port
                self._write(w)
            return
        del self._written[key]
        for slot in w.slots:
            self._by_slot.get(slot, set()).discard(key)
        self._delete(w.table, key)

    def _delete(self, table: Table, key: bytes) -> None:
        maps = self.maps.port_flows if table == "port" else self.maps.uplink_flows
        try:
            maps.delete_raw(key)
        except FastPathError as exc:
            self._failed("delete", exc)
            return
        self.counters["entries_deleted"] += 1

    def _failed(self, what: str, exc: FastPathError) -> None:
        self.counters[f"offload_{what}_failed"] += 1
        if self.counters[f"offload_{what}_failed"] <= _LOGGED:
            log.warning("fast path: %s failed: %s", what, exc)

    # -- building entries ------------------------------------------------------------

    # -- adoption --------------------------------------------------------------------

    def adopted_keys(self) -> tuple[list[PortKey], list[UplinkKey]]:
        """The keys an earlier process left that nothing re-offered yet."""
        ports = [PortKey.unpack(k) for k, (t, _) in self._adopted.items() if t == "port"]
        uplinks = [UplinkKey.unpack(k) for k, (t, _) in self._adopted.items() if t == "uplink"]
        return ports, uplinks

    def finish_adoption(self) -> int:
        """Delete what the earlier process left and the engine did not offer again; from
        now on slots move and withdrawals delete. Returns how many entries went."""
        gone = 0
        for key, (table, _) in list(self._adopted.items()):
            if key not in self._written:
                self._delete(table, key)
                gone += 1
        self.counters["adopted_deleted"] += gone
        self._adopted.clear()
        self.adopting = False
        return gone

    # -- statistics ------------------------------------------------------------------

    def read_stats(self) -> KernelStats:
        """What the kernel counted for every entry (no lock needed)."""
        found: KernelStats = []
        for name, table in (("port", self.maps.port_flows), ("uplink", self.maps.uplink_flows)):
            try:
                for key, packets, size, last in table.raw_stats():
                    found.append((name, key, packets, size, last))  # type: ignore[arg-type]
            except FastPathError as exc:
                self._failed("stats", exc)
        return found

    def apply_stats(self, stats: KernelStats, offload: Offloader, now: float) -> None:
        """Give the kernel's last-used times to the flows of the entries (``now`` is the
        engine's clock, which may be another than the kernel's monotonic one)."""
        mono = self.monotonic_ns()
        for _table, key, packets, size, last in stats:
            w = self._written.get(key)
            if w is None:
                continue
            w.packets, w.bytes = packets, size
            if last > w.last_used_ns:
                w.last_used_ns = last
                when = now - (mono - last) / _NS
                for head in w.heads:
                    offload.used(head, when)

    def flow_stats(self) -> dict[Flow, tuple[int, int]]:
        """(packets, bytes) the kernel counted for each offloaded head (last read)."""
        return {h: (w.packets, w.bytes) for w in self._written.values() for h in w.heads}

    def port_totals(self) -> dict[str, tuple[int, int]]:
        """(packets, bytes) the kernel counted per head port (last read)."""
        totals: dict[str, tuple[int, int]] = {}
        for w in self._written.values():
            p, b = totals.get(w.port, (0, 0))
            totals[w.port] = (p + w.packets, b + w.bytes)
        return totals

    def entries(self) -> dict[str, int]:
        """How many kernel entries this process wrote, per table."""
        counts = Counter(w.table for w in self._written.values())
        return {"port": counts["port"], "uplink": counts["uplink"]}

    def offloaded(self, head: Flow) -> bool:
        return head in self._of_head


def _without_stats(entry: FlowEntry) -> FlowEntry:
    return dataclasses.replace(entry, stats=NO_STATS)


_GENS_AT = next(f.offset for f in c_layout(FlowEntry) if f.name == "gens")
_GEN_REF = struct.Struct("=II")


def _with_generations(entry: bytes, pairs: Sequence[tuple[int, int]]) -> bytes:
    """The packed ``entry`` with its generation pairs set (the others unused)."""
    out = bytearray(entry)
    for i in range(MAX_GENERATIONS):
        slot, generation = pairs[i] if i < len(pairs) else (GEN_UNUSED, 0)
        _GEN_REF.pack_into(out, _GENS_AT + i * _GEN_REF.size, slot, generation)
    return bytes(out)


def _changed_fields(adopted: tuple[Table, bytes], table: Table, packed: bytes) -> list[str]:
    """What an adopted entry does otherwise than ``packed`` ([]: the same decision). The
    flow's entropy does not count: the engine hashes its own key of the flow, which holds
    fields the kernel's does not, so a revalidated flow may hash to another source port,
    which no receiver minds; the kept one goes on."""
    if adopted[0] != table:
        return ["table"]
    if adopted[1] == packed:
        return []
    old, new = FlowEntry.unpack(adopted[1]), FlowEntry.unpack(packed)
    return [
        f.name
        for f in dataclasses.fields(FlowEntry)
        if f.name not in ("entropy", "stats") and getattr(old, f.name) != getattr(new, f.name)
    ]
