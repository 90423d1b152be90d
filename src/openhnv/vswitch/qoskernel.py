"""The QoS layer's outbound caps in the fast path: a bucket per capped port in ``hnv_qos_buckets``.

The engine's QoS layer (``vfp.qos``) polices what the Python switch sends; the kernel
fast path enforces the same outbound caps on what it executes (bpf/qos.h), so an
offloaded flow cannot outrun its port: an encapsulated frame goes to its port's htb
class on the uplink (``qdisc.class_priority``, the class the driver made), a frame
delivered to a local VM is policed by the bucket. Inbound caps are the port's tbf
(``vswitch.qdisc``), which redirected frames cross too: no bucket. ``KernelQos.sync(ports)``
makes the map hold exactly one bucket per port with an outbound cap whose veth is
known (keyed by the ifindex of its host end, as the generation slots are):

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

from openhnv.vfp.qos import BYTES_PER_MBIT, MAX_MBPS, QOS_OUTBOUND, QosSettings, burst_of
from openhnv.vswitch.fastpath.layout import QOS_OUTBOUND as KERNEL_OUTBOUND
from openhnv.vswitch.fastpath.layout import QosBucket
from openhnv.vswitch.qdisc import class_priority

BucketKey = tuple[int, int]  # (ifindex, direction)
Caps = tuple[int, int, int]  # (rate in bytes a second, burst in bytes, htb priority)


class QosMap(Protocol):
    """``fastpath.maps.QosBuckets`` as the switch uses it."""

    def set(
        self, ifindex: int, direction: int, rate: int, burst: int, priority: int = 0
    ) -> None: ...
    def delete(self, ifindex: int, direction: int) -> bool: ...
    def items(self) -> Mapping[BucketKey, QosBucket]: ...


def caps_of(settings: QosSettings, ifindex: int) -> Caps | None:
    """The outbound bucket of port ``ifindex`` under ``settings`` (None: no cap and no
    reservation). A reservation without a cap still needs the bucket's class, so that
    encapsulated frames take the port's htb class: its bucket is ``MAX_MBPS`` wide."""
    mbps = settings.outbound_max_mbps or (MAX_MBPS if settings.outbound_reserved_mbps else 0)
    if not mbps:
        return None
    return mbps * BYTES_PER_MBIT, burst_of(mbps), class_priority(ifindex)


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
            ifindex = self.ifindex_of(name) if settings.scheduled else None
            caps = None if ifindex is None else caps_of(settings, ifindex)
            if ifindex is None or caps is None:
                continue
            names[ifindex] = name
            wanted[(ifindex, KERNEL_OUTBOUND)] = caps
        written = self._written
        if written is None:  # first sync: what the map holds (adopted, or empty)
            written = {k: (b.rate, b.burst, b.priority) for k, b in self.buckets.items().items()}
        for key in written.keys() - wanted.keys():
            self.buckets.delete(*key)
        for key, (rate, burst, priority) in wanted.items():
            if written.get(key) != (rate, burst, priority):
                self.buckets.set(key[0], key[1], rate, burst, priority)
        self._written, self._ports = wanted, names

    def drops(self) -> dict[str, dict[str, int]]:
        """Port -> {``qos_outbound``: frames the kernel's buckets dropped}."""
        found: dict[str, dict[str, int]] = {}
        for (ifindex, _), bucket in self.buckets.items().items():
            port = self._ports.get(ifindex)
            if port is not None and bucket.drops:
                found[port] = {QOS_OUTBOUND: bucket.drops}
        return found
