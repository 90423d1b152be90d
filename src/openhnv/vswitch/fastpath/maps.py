"""Typed access to the fast path's maps, by file descriptor (libbpf's map calls).

- ``FlowTable[K]``: ``hnv_port_flows`` (``PortKey``) or ``hnv_up_flows``
  (``UplinkKey``) -> ``FlowEntry``. ``set`` replaces a whole entry (its statistics
  start again from zero), ``get``/``delete``, ``items`` (every entry) and ``stats``
  (every entry's ``FlowStats``, read in batches of ``BATCH`` entries per system call).
- ``Generations``: ``hnv_port_gens``, one u32 per slot.
- ``Counters``: ``hnv_counters``, summed over the CPUs, by ``layout.Counter`` name.
- ``QosBuckets``: ``hnv_qos_buckets``, a policer's bucket per capped VM port and
  direction (bpf/qos.h).

A hash map update is atomic for the programs (they see the old entry or the new
one, never half of each); an array slot is one aligned u32 store.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Iterator
from typing import Generic, TypeVar

from openhnv.vswitch.fastpath import libbpf
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import (
    STATS_OFFSET,
    Counter,
    FlowEntry,
    FlowStats,
    PortKey,
    QosBucket,
    QosKey,
    UplinkKey,
)

BPF_ANY = 0
BPF_NOEXIST = 1
BATCH = 1024
_MAX_BATCH = 1 << 16
_U32 = ctypes.c_uint32
_U64 = ctypes.c_uint64
_VALUE_ALIGN = 8  # per-CPU values are 8-byte aligned, one per possible CPU
_STATS = struct.Struct("=QQQ")  # struct hnv_stats: packets, bytes, last_used_ns

K = TypeVar("K", PortKey, UplinkKey)


class FlowTable(Generic[K]):
    """One flow map (see the module docstring); ``key_type`` unpacks its keys."""

    def __init__(self, name: str, fd: int, key_type: type[K], capacity: int) -> None:
        self.name = name
        self.fd = fd
        self.key_type: type[K] = key_type
        self.capacity = capacity
        self._key_size = key_type.size()
        self._value_size = FlowEntry.size()
        bpf = libbpf.lib()
        self._update = bpf.bpf_map_update_elem
        self._delete = bpf.bpf_map_delete_elem

    def set(self, key: K, entry: FlowEntry, *, only_new: bool = False) -> None:
        """Install ``entry`` under ``key`` (``only_new``: fail if one is there)."""
        result = libbpf.lib().bpf_map_update_elem(
            self.fd, key.pack(), entry.pack(), BPF_NOEXIST if only_new else BPF_ANY
        )
        code = libbpf.errno_of(result)
        if code == errno.E2BIG:
            raise FastPathError(f"{self.name}: full ({self.capacity} entries)")
        if code == errno.EEXIST:
            raise FastPathError(f"{self.name}: {key} already has an entry")
        libbpf.check(result, f"{self.name}: update of {key}")

    def get(self, key: K) -> FlowEntry | None:
        """The entry of ``key`` (statistics included), or None."""
        value = ctypes.create_string_buffer(self._value_size)
        result = libbpf.lib().bpf_map_lookup_elem(self.fd, key.pack(), value)
        if libbpf.errno_of(result) == errno.ENOENT:
            return None
        libbpf.check(result, f"{self.name}: lookup of {key}")
        return FlowEntry.unpack(value.raw)

    def delete(self, key: K) -> bool:
        """Remove the entry of ``key``; whether there was one."""
        result = libbpf.lib().bpf_map_delete_elem(self.fd, key.pack())
        if libbpf.errno_of(result) == errno.ENOENT:
            return False
        libbpf.check(result, f"{self.name}: delete of {key}")
        return True

    def items(self) -> Iterator[tuple[K, FlowEntry]]:
        """Every (key, entry), read in batches."""
        unpack = self.key_type.unpack
        for key, value in self._raw():
            yield unpack(key), FlowEntry.unpack(value)

    def stats(self) -> dict[K, FlowStats]:
        """Every entry's statistics, by key."""
        unpack_key = self.key_type.unpack
        unpack_stats = FlowStats.unpack
        end = STATS_OFFSET + FlowStats.size()
        return {unpack_key(k): unpack_stats(v[STATS_OFFSET:end]) for k, v in self._raw()}

    def raw_stats(self) -> Iterator[tuple[bytes, int, int, int]]:
        """(packed key, packets, bytes, last_used_ns) of every entry: what an expiry pass
        reads, without unpacking keys."""
        unpack = _STATS.unpack_from
        for key, value in self._raw():
            packets, size, last_used = unpack(value, STATS_OFFSET)
            yield key, packets, size, last_used

    def set_raw(self, key: bytes, entry: bytes) -> None:
        """``set`` of a packed key and a packed entry (a new flow's write: the message of
        a failure is made only then)."""
        result = self._update(self.fd, key, entry, BPF_ANY)
        if result < 0:
            if libbpf.errno_of(result) == errno.E2BIG:
                raise FastPathError(f"{self.name}: full ({self.capacity} entries)")
            libbpf.check(result, f"{self.name}: update of {key.hex()}")

    def delete_raw(self, key: bytes) -> bool:
        """``delete`` of a packed key."""
        result = self._delete(self.fd, key)
        if result < 0:
            if libbpf.errno_of(result) == errno.ENOENT:
                return False
            libbpf.check(result, f"{self.name}: delete of {key.hex()}")
        return True

    def __len__(self) -> int:
        return sum(1 for _ in self._raw())

    def _raw(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) bytes of every entry, ``BATCH`` per bpf(2) call."""
        bpf = libbpf.lib()
        count = BATCH
        token_in = ctypes.create_string_buffer(max(self._key_size, 8))
        token_out = ctypes.create_string_buffer(max(self._key_size, 8))
        first = True
        while True:
            keys = ctypes.create_string_buffer(self._key_size * count)
            values = ctypes.create_string_buffer(self._value_size * count)
            n = _U32(count)
            result = bpf.bpf_map_lookup_batch(
                self.fd, None if first else token_in, token_out, keys, values,
                ctypes.byref(n), None,
            )  # fmt: skip
            code = libbpf.errno_of(result)
            if code == errno.ENOSPC and count < _MAX_BATCH:  # a bucket holds more: grow
                count *= 2
                continue
            if code not in (0, errno.ENOENT):
                libbpf.check(result, f"{self.name}: batch lookup")
            kb, vb = keys.raw, values.raw
            ks, vs = self._key_size, self._value_size
            for i in range(n.value):
                yield kb[i * ks : (i + 1) * ks], vb[i * vs : (i + 1) * vs]
            if code == errno.ENOENT:
                return
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False


class Generations:
    """``hnv_port_gens``: the current generation of each slot."""

    def __init__(self, fd: int, slots: int) -> None:
        self.fd = fd
        self.slots = slots

    def _slot(self, slot: int) -> _U32:
        if not 0 <= slot < self.slots:
            raise FastPathError(f"hnv_port_gens: slot {slot!r} is not 0..{self.slots - 1}")
        return _U32(slot)

    def set(self, slot: int, generation: int) -> None:
        """Make ``generation`` current in ``slot``: entries naming another one miss."""
        value = _U32(generation & 0xFFFFFFFF)
        result = libbpf.lib().bpf_map_update_elem(
            self.fd, ctypes.byref(self._slot(slot)), ctypes.byref(value), BPF_ANY
        )
        libbpf.check(result, f"hnv_port_gens: slot {slot} := {generation}")

    def get(self, slot: int) -> int:
        value = _U32()
        result = libbpf.lib().bpf_map_lookup_elem(
            self.fd, ctypes.byref(self._slot(slot)), ctypes.byref(value)
        )
        libbpf.check(result, f"hnv_port_gens: slot {slot}")
        return int(value.value)

    def bump(self, slot: int) -> int:
        """Move ``slot`` to its next generation (wrapping at 2**32); returns it."""
        generation = (self.get(slot) + 1) & 0xFFFFFFFF
        self.set(slot, generation)
        return generation


class Counters:
    """``hnv_counters``: per-CPU u64 per ``Counter``, summed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._cpus = libbpf.possible_cpus()

    def read(self) -> dict[str, int]:
        """counter name (``hit_encap``, ``miss_no_entry`` ...) -> total over CPUs."""
        bpf = libbpf.lib()
        values = (_U64 * self._cpus)()
        totals: dict[str, int] = {}
        for counter in Counter:
            index = _U32(counter.value)
            result = bpf.bpf_map_lookup_elem(self.fd, ctypes.byref(index), values)
            libbpf.check(result, f"hnv_counters: {counter.name.lower()}")
            totals[counter.name.lower()] = sum(values)
        return totals


NANOSECONDS = 1_000_000_000


class QosBuckets:
    """``hnv_qos_buckets``: (ifindex, direction) -> the bucket of that cap."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def set(self, ifindex: int, direction: int, rate: int, burst: int, priority: int = 0) -> None:
        """A full-to-be bucket of ``rate`` bytes a second and ``burst`` bytes (the first
        frame fills it; a bucket already there is replaced, its drops restart), and the
        ``skb->priority`` of the port's htb class (0: none)."""
        if rate < 1 or burst < 1:
            raise FastPathError(f"hnv_qos_buckets: rate {rate} and burst {burst} must be >= 1")
        fill_ns = -(-burst * NANOSECONDS // rate)
        bucket = QosBucket(0, priority, rate, burst, fill_ns, 0, 0, 0, 0)
        key = QosKey(ifindex, direction)
        result = libbpf.lib().bpf_map_update_elem(self.fd, key.pack(), bucket.pack(), BPF_ANY)
        libbpf.check(result, f"hnv_qos_buckets: update of {key}")

    def get(self, ifindex: int, direction: int) -> QosBucket | None:
        value = ctypes.create_string_buffer(QosBucket.size())
        key = QosKey(ifindex, direction)
        result = libbpf.lib().bpf_map_lookup_elem(self.fd, key.pack(), value)
        if libbpf.errno_of(result) == errno.ENOENT:
            return None
        libbpf.check(result, f"hnv_qos_buckets: lookup of {key}")
        return QosBucket.unpack(value.raw)

    def delete(self, ifindex: int, direction: int) -> bool:
        key = QosKey(ifindex, direction)
        result = libbpf.lib().bpf_map_delete_elem(self.fd, key.pack())
        if libbpf.errno_of(result) == errno.ENOENT:
            return False
        libbpf.check(result, f"hnv_qos_buckets: delete of {key}")
        return True

    def items(self) -> dict[tuple[int, int], QosBucket]:
        """Every bucket by (ifindex, direction) (a few per capped port: read one by one)."""
        bpf = libbpf.lib()
        size = QosKey.size()
        found: dict[tuple[int, int], QosBucket] = {}
        previous: ctypes.Array[ctypes.c_char] | None = None
        while True:
            key = ctypes.create_string_buffer(size)
            if libbpf.errno_of(bpf.bpf_map_get_next_key(self.fd, previous, key)) == errno.ENOENT:
                return found
            parsed = QosKey.unpack(key.raw)
            bucket = self.get(parsed.ifindex, parsed.direction)
            if bucket is not None:
                found[(parsed.ifindex, parsed.direction)] = bucket
            previous = key
