"""The QoS layer's caps in the kernel: each capped VM port's buckets in ``hnv_qos_buckets``.

The engine's QoS layer (``vfp.qos``) polices what the Python switch carries; the kernel
fast path polices what it executes with the same caps (bpf/qos.h), so an offloaded
flow cannot outrun its port. ``KernelQos.sync(ports)`` makes the map hold exactly one
bucket per capped direction of each port whose veth is known (keyed by the ifindex of
its host end, as the generation slots are):

- a new or changed cap writes its bucket (the first frame fills it);
- a lifted cap, or a port gone, deletes it;
- after a restart the map is adopted with the others: a bucket whose rate and burst
  are the caps' is kept as it is (its tokens and drops go on), any other is rewritten
  or deleted, so a stale bucket never caps a port whose ifindex came back to another.

``sync`` runs after the agent's commands and after each expiry pass (a port whose veth
appeared since gets its buckets then). ``drops()`` reads what the kernel dropped, by
port, for ``hnv vfp counters``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from openhnv.vfp.qos import BYTES_PER_MBIT, QOS_INBOUND, QOS_OUTBOUND, QosSettings, burst_of
from openhnv.vswitch.fastpath.layout import QOS_INBOUND as KERNEL_INBOUND
from openhnv.vswitch.fastpath.layout import QOS_OUTBOUND as KERNEL_OUTBOUND
from openhnv.vswitch.fastpath.layout import QosBucket

BucketKey = tuple[int, int]  # (ifindex, direction)
Caps = tuple[int, int]  # (rate in bytes a second, burst in bytes)
REASONS = {KERNEL_OUTBOUND: QOS_OUTBOUND, KERNEL_INBOUND: QOS_INBOUND}


class QosMap(Protocol):
    """``fastpath.maps.QosBuckets`` as the switch uses it."""

    def set(self, ifindex: int, direction: int, rate: int, burst: int) -> None: ...
    def delete(self, ifindex: int, direction: int) -> bool: ...
    def items(self) -> Mapping[BucketKey, QosBucket]: ...


def caps_of(settings: QosSettings) -> dict[int, Caps]:
    """Kernel direction -> (rate, burst) of each capped direction of ``settings``."""
    found: dict[int, Caps] = {}
    for direction, mbps in ((KERNEL_OUTBOUND, settings.outbound_max_mbps),
                            (KERNEL_INBOUND, settings.inbound_max_mbps)):  # fmt: skip
        if mbps:
            found[direction] = (mbps * BYTES_PER_MBIT, burst_of(mbps))
    return found


class KernelQos:
    """The buckets this switch keeps in one fast path's ``hnv_qos_buckets``."""

    def __init__(self, buckets: QosMap, ifindex_of: Callable[[str], int | None]) -> None:
        self.buckets = buckets
        self.ifindex_of = ifindex_of
        self._written: dict[BucketKey, Caps] | None = None  # None: the map not read yet
        self._ports: dict[int, str] = {}  # ifindex -> port, of the buckets written

    def sync(self, ports: Iterable[tuple[str, QosSettings]]) -> None:
        """Make the map hold the buckets of ``ports`` (port name, caps), and only them."""
        wanted: dict[BucketKey, Caps] = {}
        names: dict[int, str] = {}
        for name, settings in ports:
            caps = caps_of(settings)
            ifindex = self.ifindex_of(name) if caps else None
            if ifindex is None:
                continue
            names[ifindex] = name
            for direction, cap in caps.items():
                wanted[(ifindex, direction)] = cap
        written = self._written
        if written is None:  # first sync: what the map holds (adopted, or empty)
            written = {k: (b.rate, b.burst) for k, b in self.buckets.items().items()}
        for key in written.keys() - wanted.keys():
            self.buckets.delete(*key)
        for key, (rate, burst) in wanted.items():
            if written.get(key) != (rate, burst):
                self.buckets.set(key[0], key[1], rate, burst)
        self._written, self._ports = wanted, names

    def drops(self) -> dict[str, dict[str, int]]:
        """Port -> {``qos_outbound``/``qos_inbound``: frames the kernel dropped}."""
        found: dict[str, dict[str, int]] = {}
        for (ifindex, direction), bucket in self.buckets.items().items():
            port = self._ports.get(ifindex)
            if port is not None and bucket.drops:
                found.setdefault(port, {})[REASONS[direction]] = bucket.drops
        return found
