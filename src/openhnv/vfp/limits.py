"""Per-port abuse limits: how much of the host one VM port may take (no I/O; time passed in).

A VM can flood its host in three ways that established traffic never does, and each has
its limit here, checked only on the slow path (a frame that hits the unified flow table
pays nothing):

- new flows: ``max_flows``, the flows a port may hold in its outbound unified flow
  table; a new flow beyond it is dropped (``drop:flow_limit``) while the port's existing
  flows keep working, and new flows are admitted again once flows expire. The first
  flow of a reply (a connection another port opened toward this one) is always admitted:
  it is bounded by the opener's own limit, and refusing it would break a connection
  the limit already admitted;
- slow-path work: ``new_flow_rate`` / ``new_flow_burst``, a token bucket on the frames
  of a port that find no flow (new flows, and anything the flow table never caches)
  before they are decided (``drop:new_flow_rate``), so one port's flood cannot take the
  decisions of every other port's new flows;
- broadcast and multicast: ``broadcast_rate`` / ``broadcast_burst`` on frames to a
  group MAC (``drop:broadcast_rate``), each of which the switch copies to every port of
  the subnet; ARP (``arp_rate`` / ``arp_burst``, ``drop:arp_rate``) has its own bucket,
  ARP requests are broadcasts but answered by the host agent.

A limit of 0 (rates) or None (``max_flows``) is off. ``TokenBucket`` is the meter:
``rate`` tokens a second up to ``burst``, one token a frame.

Dropping a frame over a rate still costs reading and keying it. A port whose meter
dropped frames asks its driver, through ``PortMeter.pause``, to leave the port's queue
alone for ``OVER_RATE_PAUSE`` seconds: the frames the VM sends meanwhile wait in (and
overflow) that port's own receive ring, in the kernel, at no cost to the other ports.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhnv.vfp.errors import PolicyError

FLOW_LIMIT = "flow_limit"
NEW_FLOW_RATE = "new_flow_rate"
BROADCAST_RATE = "broadcast_rate"
ARP_RATE = "arp_rate"
LIMIT_REASONS = (FLOW_LIMIT, NEW_FLOW_RATE, BROADCAST_RATE, ARP_RATE)
"""The drop reasons of the abuse limits (``drop:<reason>`` in a port's counters)."""

DEFAULT_MAX_FLOWS = 50_000
"""Flows per port: about 11 MB of kernel entries (≈ 230 B each) and a few times that
in Python; far above what a VM's own connections need, far below the table's bound."""
DEFAULT_NEW_FLOW_RATE = 500.0
"""Slow-path frames a second and port: the Python slow path decides a few thousand new
flows a second in all (each costs a decision on both hosts and, with the kernel fast
path, map writes), so one port may take a small share of it."""
DEFAULT_NEW_FLOW_BURST = 1_000
DEFAULT_BROADCAST_RATE = 200.0  # each one is copied to every VM of the subnet
DEFAULT_BROADCAST_BURST = 400
DEFAULT_ARP_RATE = 50.0  # each one is answered by the host agent
DEFAULT_ARP_BURST = 100
OVER_RATE_PAUSE = 0.1
"""Seconds a driver leaves a port's queue unread once the port went over a rate."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held; starts full.

    ``take(now)`` spends one token when there is one (``take(now, cost)``: ``cost`` of
    them, as the QoS layer spends a frame's bytes). The clock is the caller's (any
    monotonic seconds); a clock that goes back adds nothing.
    """

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0:
            raise PolicyError("rate", rate, "must be positive")
        if burst < 1:
            raise PolicyError("burst", burst, "must be at least 1")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def take(self, now: float, cost: int = 1) -> bool:
        """Spend ``cost`` tokens; False (nothing spent) when the bucket holds fewer."""
        elapsed = now - self.last
        if elapsed > 0:
            self.last = now
            tokens = self.tokens + elapsed * self.rate
            self.tokens = tokens if tokens < self.burst else float(self.burst)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass(frozen=True, slots=True)
class PortLimits:
    """The abuse limits of every VM port of a host (see the module doc)."""

    max_flows: int | None = DEFAULT_MAX_FLOWS
    new_flow_rate: float = DEFAULT_NEW_FLOW_RATE
    new_flow_burst: int = DEFAULT_NEW_FLOW_BURST
    broadcast_rate: float = DEFAULT_BROADCAST_RATE
    broadcast_burst: int = DEFAULT_BROADCAST_BURST
    arp_rate: float = DEFAULT_ARP_RATE
    arp_burst: int = DEFAULT_ARP_BURST

    def __post_init__(self) -> None:
        if self.max_flows is not None and self.max_flows < 1:
            raise PolicyError("max_flows", self.max_flows, "must be at least 1 (None: off)")
        for name in ("new_flow", "broadcast", "arp"):
            rate, burst = getattr(self, f"{name}_rate"), getattr(self, f"{name}_burst")
            if rate < 0:
                raise PolicyError(f"{name}_rate", rate, "must be 0 (off) or positive")
            if rate > 0 and burst < 1:
                raise PolicyError(f"{name}_burst", burst, "must be at least 1")

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "max_flows": self.max_flows,
            "new_flow_rate": self.new_flow_rate,
            "new_flow_burst": self.new_flow_burst,
            "broadcast_rate": self.broadcast_rate,
            "broadcast_burst": self.broadcast_burst,
            "arp_rate": self.arp_rate,
            "arp_burst": self.arp_burst,
        }


DEFAULT_LIMITS = PortLimits()
"""The limits ``hnv host`` runs with unless told otherwise."""
NO_LIMITS = PortLimits(max_flows=None, new_flow_rate=0, broadcast_rate=0, arp_rate=0)
"""Every limit off: the engine's default (tests, fuzzing); ``hnv host`` sets its own."""


def _bucket(rate: float, burst: int, now: float) -> TokenBucket | None:
    return TokenBucket(rate, burst, now) if rate > 0 else None


class PortMeter:
    """One port's buckets under ``limits``; a bucket is None when its limit is off."""

    __slots__ = ("arp", "broadcast", "max_flows", "new_flows", "over_rate")

    def __init__(self, limits: PortLimits, now: float) -> None:
        self.max_flows = limits.max_flows
        self.new_flows = _bucket(limits.new_flow_rate, limits.new_flow_burst, now)
        self.broadcast = _bucket(limits.broadcast_rate, limits.broadcast_burst, now)
        self.arp = _bucket(limits.arp_rate, limits.arp_burst, now)
        self.over_rate = False  # a frame was dropped over a rate since the last pause()

    def admit_miss(self, group: bool, arp: bool, now: float) -> str | None:
        """Whether a frame without a flow may go to the slow path: None, or the reason
        it is dropped. ``group``: sent to a group MAC; ``arp``: an ARP frame."""
        if arp:
            bucket, reason = self.arp, ARP_RATE
        elif group:
            bucket, reason = self.broadcast, BROADCAST_RATE
        else:
            bucket, reason = self.new_flows, NEW_FLOW_RATE
        if bucket is None or bucket.take(now):
            return None
        self.over_rate = True
        return reason

    def pause(self) -> float:
        """Seconds the port's queue may stay unread: ``OVER_RATE_PAUSE`` when it went
        over a rate since the last call, else 0.0."""
        if self.over_rate:
            self.over_rate = False
            return OVER_RATE_PAUSE
        return 0.0

    def admits_flow(self, flows: int) -> bool:
        """Whether a port holding ``flows`` outbound flows may add one more."""
        return self.max_flows is None or flows < self.max_flows
