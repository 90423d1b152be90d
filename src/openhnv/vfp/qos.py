"""The QoS layer of a VM port: bandwidth caps as byte token buckets (no I/O; time passed in).

NC's ``portSettings.qosSettings`` caps what a VM may send (``outboundMaximumMbps``,
VM -> network) and receive (``inboundMaximumMbps``, network -> VM). Each cap is a
policer: a bucket of bytes filled at the cap's rate up to a burst; a frame passes when
the bucket holds its length (and spends it), else it is dropped and counted
(``drop:qos_outbound`` / ``drop:qos_inbound``). A policer never queues, so it adds no
latency and no state beyond the bucket; TCP finds the cap through the drops. The
bytes are those of the VM's Ethernet frame (the inner frame: the encapsulation the
host adds is not the tenant's).

The layer runs before every other one: outbound, on every frame the VM sends (the
flow table's hits too, so a cached flow cannot outrun it); inbound, on every frame
about to enter the VM. The kernel fast path enforces the same caps on the frames it
executes (docs/vfp.md, "QoS"); each frame is metered by exactly one of them.

A cap of 0 is no cap (NC's default). ``outboundReservedValue`` (a minimum share of
the uplink under contention, Mbit/s) is carried here but is no policer: the host's
uplink scheduler gives it (``vswitch.htb``). ``enableHardwareLimits`` is refused by
the controller: there is no NIC offload to give caps to.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import TokenBucket

QOS = "QOS"  # the layer's name in listings
QOS_OUTBOUND = "qos_outbound"
QOS_INBOUND = "qos_inbound"
QOS_REASONS = (QOS_OUTBOUND, QOS_INBOUND)
"""The drop reasons of the QoS layer (``drop:<reason>`` in a port's counters)."""

BYTES_PER_MBIT = 125_000  # 10**6 bits / 8: the caps are in Mbit/s (10**6, as NC's)
MAX_MBPS = 400_000
"""The largest cap, 400 Gbit/s: keeps the kernel bucket's refill (elapsed ns times
bytes a second, below burst * 10**9) within 64 bits."""
BURST_SECONDS = 0.25
"""A policer's bucket holds this much of its rate: TCP keeps most of its rate through a
policer with a deep bucket (a tenth of a second gave 86-92 % of a 50 Mbit/s cap, a
quarter 99 %), at the cost of one burst of a quarter second over the cap."""
SHAPER_BURST_SECONDS = 0.004
"""A shaper (a kernel qdisc, vswitch.qdisc) needs only what its timer may release at
once: a queue absorbs the rest."""
MIN_BURST_BYTES = 131_072
"""At least two of the largest frames the kernel hands over at once (a 64 KiB GSO
frame): a burst below one of them would never let it through."""
NANOSECONDS = 1_000_000_000


def burst_of(mbps: int) -> int:
    """The burst, in bytes, of a policer of ``mbps``."""
    return max(MIN_BURST_BYTES, int(mbps * BYTES_PER_MBIT * BURST_SECONDS))


def shaper_burst_of(mbps: int) -> int:
    """The burst, in bytes, of a shaper of ``mbps``."""
    return max(MIN_BURST_BYTES, int(mbps * BYTES_PER_MBIT * SHAPER_BURST_SECONDS))


@dataclass(frozen=True, slots=True)
class QosSettings:
    """A port's caps in Mbit/s (0: none), as the controller sent them."""

    outbound_max_mbps: int = 0
    inbound_max_mbps: int = 0
    outbound_reserved_mbps: int = 0  # a minimum share of the uplink (vswitch.htb), 0: none

    def __post_init__(self) -> None:
        for name in ("outbound_max_mbps", "inbound_max_mbps", "outbound_reserved_mbps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MBPS:
                raise PolicyError(name, value, f"must be an int in 0..{MAX_MBPS} (0: none)")
        if self.outbound_max_mbps and self.outbound_reserved_mbps > self.outbound_max_mbps:
            raise PolicyError("outbound_reserved_mbps", self.outbound_reserved_mbps,
                              f"exceeds outbound_max_mbps {self.outbound_max_mbps}")  # fmt: skip

    @property
    def enabled(self) -> bool:
        """A cap in either direction: the port has a QoS layer (policers)."""
        return bool(self.outbound_max_mbps or self.inbound_max_mbps)

    @property
    def scheduled(self) -> bool:
        """A cap or a reservation: the kernel shapes or schedules the port."""
        return self.enabled or bool(self.outbound_reserved_mbps)


NO_QOS = QosSettings()


def bucket_of(mbps: int, now: float) -> TokenBucket | None:
    """The bucket of a cap of ``mbps`` (None: no cap)."""
    if mbps == 0:
        return None
    return TokenBucket(mbps * BYTES_PER_MBIT, burst_of(mbps), now)  # tokens are bytes


class PortQos:
    """One port's QoS layer: its settings and a bucket per capped direction."""

    __slots__ = ("inbound", "outbound", "settings")

    def __init__(self, settings: QosSettings, now: float) -> None:
        self.settings = settings
        self.outbound = bucket_of(settings.outbound_max_mbps, now)
        self.inbound = bucket_of(settings.inbound_max_mbps, now)
