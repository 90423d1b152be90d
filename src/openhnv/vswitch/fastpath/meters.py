"""The abuse limits in the kernel: ``hnv_port_meters``, one ``Meter`` per VM port.

The port socket filters (``hnv_sk_port`` with the fast path, ``hnv_sk_meter`` without
it) meter a port's TCP SYNs (without ACK: always a new flow), broadcasts and ARP frames
before they reach the Python switch's ring, with the rates of ``vfp.limits``; a frame
over its rate is dropped there and counted in the port's ``Meter.dropped`` and in
``hnv_counters`` (``drop_new_flow_rate``, ``drop_broadcast_rate``, ``drop_arp_rate``).
The Python meter stays where it was, behind the kernel's: it judges every other miss
and whatever the kernel let through.

Each rate is a generic cell rate algorithm, the token bucket in virtual time
(``interval_ns`` = 1 s / rate, ``tolerance_ns`` = (burst - 1) x interval: ``burst``
frames back to back from rest, then one per interval), so that the socket filters,
which may not take a spin lock, update one word with a compare and swap.

- ``meter_of(limits)``: the packed parameters of ``PortLimits`` (pure);
- ``MeterTable``: ``set(ifindex, limits)`` (no write when the kernel holds the same
  parameters: a restarted switch keeps the counts; a change carries them over),
  ``delete``, ``drops(ifindex)``.
"""

from __future__ import annotations

import ctypes
import errno

from openhnv.vfp.limits import ARP_RATE, BROADCAST_RATE, NEW_FLOW_RATE, PortLimits
from openhnv.vswitch.fastpath import libbpf
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.layout import Bucket, Meter, MeterDrops, MeterKind

NS_PER_SECOND = 1_000_000_000
BPF_ANY = 0
OFF = Bucket(0, 0, 0)
REASONS = {MeterKind.NEW_FLOW: NEW_FLOW_RATE, MeterKind.BROADCAST: BROADCAST_RATE,
           MeterKind.ARP: ARP_RATE}  # fmt: skip
"""The ``vfp.limits`` drop reason of each kind."""
_KEY = ctypes.c_uint32


def bucket_of(rate: float, burst: int) -> Bucket:
    """The kernel bucket of ``rate`` frames a second, ``burst`` back to back (off at 0)."""
    if rate <= 0:
        return OFF
    interval = max(1, round(NS_PER_SECOND / rate))
    return Bucket(interval, (max(1, burst) - 1) * interval, 0)


def meter_of(limits: PortLimits) -> Meter:
    """The meter a VM port gets under ``limits``, nothing dropped yet."""
    buckets = (
        bucket_of(limits.new_flow_rate, limits.new_flow_burst),
        bucket_of(limits.broadcast_rate, limits.broadcast_burst),
        bucket_of(limits.arp_rate, limits.arp_burst),
    )
    return Meter(buckets, MeterDrops(0, 0, 0))


def metered(limits: PortLimits) -> bool:
    """Whether ``limits`` meter anything in the kernel (a rate is on)."""
    return any(b.interval_ns for b in meter_of(limits).buckets)


def _parameters(meter: Meter) -> tuple[tuple[int, int], ...]:
    return tuple((b.interval_ns, b.tolerance_ns) for b in meter.buckets)


class MeterTable:
    """``hnv_port_meters``, by the ifindex of each VM port's veth host end."""

    def __init__(self, fd: int, capacity: int) -> None:
        self.fd = fd
        self.capacity = capacity

    def get(self, ifindex: int) -> Meter | None:
        """The meter of ``ifindex`` as the kernel holds it, or None."""
        value = ctypes.create_string_buffer(Meter.size())
        result = libbpf.lib().bpf_map_lookup_elem(self.fd, ctypes.byref(_KEY(ifindex)), value)
        if libbpf.errno_of(result) == errno.ENOENT:
            return None
        libbpf.check(result, f"hnv_port_meters: lookup of ifindex {ifindex}")
        return Meter.unpack(value.raw)

    def set(self, ifindex: int, limits: PortLimits) -> bool:
        """Meter ``ifindex`` under ``limits``; whether anything was written. The counts
        of a meter already there are kept (a change of limits restarts its buckets)."""
        wanted = meter_of(limits)
        held = self.get(ifindex)
        if held is not None:
            if _parameters(held) == _parameters(wanted):
                return False
            wanted = Meter(wanted.buckets, held.dropped)
        result = libbpf.lib().bpf_map_update_elem(
            self.fd, ctypes.byref(_KEY(ifindex)), wanted.pack(), BPF_ANY
        )
        if libbpf.errno_of(result) == errno.E2BIG:
            raise FastPathError(f"hnv_port_meters: full ({self.capacity} ports)")
        libbpf.check(result, f"hnv_port_meters: update of ifindex {ifindex}")
        return True

    def delete(self, ifindex: int) -> bool:
        """Stop metering ``ifindex``; whether it was metered."""
        result = libbpf.lib().bpf_map_delete_elem(self.fd, ctypes.byref(_KEY(ifindex)))
        if libbpf.errno_of(result) == errno.ENOENT:
            return False
        libbpf.check(result, f"hnv_port_meters: delete of ifindex {ifindex}")
        return True

    def drops(self, ifindex: int) -> dict[str, int]:
        """``vfp.limits`` reason -> frames the kernel dropped for ``ifindex`` (0s left
        out; {} when it is not metered)."""
        meter = self.get(ifindex)
        if meter is None:
            return {}
        return drops_of(meter)


def drops_of(meter: Meter) -> dict[str, int]:
    """``vfp.limits`` reason -> frames ``meter`` dropped (0s left out)."""
    dropped = meter.dropped
    counts = {MeterKind.NEW_FLOW: dropped.new_flow, MeterKind.BROADCAST: dropped.broadcast,
              MeterKind.ARP: dropped.arp}  # fmt: skip
    return {REASONS[kind]: n for kind, n in counts.items() if n}
