"""ARP resolution of next hops on one PA link, as a state machine without I/O.

The uplink asks ``lookup`` for a next hop's MAC. On a miss it ``enqueue``s the frame
it wanted to send; the first frame for a next hop (or the first after a retry is due)
tells the caller to send an ARP request. ``learn`` records a MAC and releases the
frames waiting for it. ``expire`` is called with the clock now and then: it returns
the next hops to ask again and drops the queues of those that never answered, counting
what it dropped. Time is always an argument (seconds, any monotonic origin).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

REACHABLE_SECONDS = 300.0
RETRY_SECONDS = 1.0
ATTEMPTS = 3
QUEUE_LIMIT = 64


@dataclass(frozen=True, slots=True)
class ArpTimers:
    """How long an answer stays valid and how hard to ask for one."""

    reachable: float = REACHABLE_SECONDS
    retry: float = RETRY_SECONDS
    attempts: int = ATTEMPTS
    queue_limit: int = QUEUE_LIMIT


@dataclass(slots=True)
class _Entry:
    mac: bytes
    expires: float


@dataclass(slots=True)
class _Pending:
    frames: deque[bytes]
    attempts: int
    next_retry: float


@dataclass(slots=True)
class ArpCounters:
    requests: int = 0
    learned: int = 0
    released: int = 0
    dropped_unresolved: int = 0
    dropped_queue_full: int = 0


@dataclass(slots=True)
class ArpResolver:
    """Cache of IPv4 -> MAC with a bounded queue of frames per unresolved next hop."""

    timers: ArpTimers = field(default_factory=ArpTimers)
    counters: ArpCounters = field(default_factory=ArpCounters)
    _cache: dict[bytes, _Entry] = field(default_factory=dict)
    _pending: dict[bytes, _Pending] = field(default_factory=dict)

    def lookup(self, ip: bytes, now: float) -> bytes | None:
        """The MAC of ``ip`` if known and not expired."""
        entry = self._cache.get(ip)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._cache[ip]
            return None
        return entry.mac

    def is_pending(self, ip: bytes) -> bool:
        return ip in self._pending

    def enqueue(self, ip: bytes, frame: bytes, now: float) -> bool:
        """Hold ``frame`` until ``ip`` resolves; True when an ARP request must go out now."""
        pending = self._pending.get(ip)
        if pending is None:
            self._pending[ip] = _Pending(deque([frame]), 1, now + self.timers.retry)
            self.counters.requests += 1
            return True
        if len(pending.frames) >= self.timers.queue_limit:
            pending.frames.popleft()
            self.counters.dropped_queue_full += 1
        pending.frames.append(frame)
        return False

    def watch(self, ip: bytes, now: float) -> None:
        """Await an answer for ``ip`` with nothing queued (a request is going out now)."""
        if ip not in self._pending:
            self._pending[ip] = _Pending(deque(), 1, now + self.timers.retry)
            self.counters.requests += 1

    def learn(self, ip: bytes, mac: bytes, now: float) -> list[bytes]:
        """Record ``ip`` at ``mac``; returns the frames that were waiting for it, in order."""
        self._cache[ip] = _Entry(mac, now + self.timers.reachable)
        self.counters.learned += 1
        pending = self._pending.pop(ip, None)
        if pending is None:
            return []
        self.counters.released += len(pending.frames)
        return list(pending.frames)

    def knows(self, ip: bytes) -> bool:
        """True if ``ip`` is cached (even expired) or awaited: worth updating from traffic."""
        return ip in self._cache or ip in self._pending

    def expire(self, now: float) -> list[bytes]:
        """Drop stale entries and hopeless queues; returns next hops to ask again now."""
        for ip in [ip for ip, e in self._cache.items() if e.expires <= now]:
            del self._cache[ip]
        ask: list[bytes] = []
        for ip, pending in list(self._pending.items()):
            if pending.next_retry > now:
                continue
            if pending.attempts >= self.timers.attempts:
                self.counters.dropped_unresolved += len(pending.frames)
                del self._pending[ip]
                continue
            pending.attempts += 1
            pending.next_retry = now + self.timers.retry
            self.counters.requests += 1
            ask.append(ip)
        return ask

    def entries(self, now: float) -> dict[bytes, bytes]:
        """The valid cache entries: next hop -> MAC."""
        return {ip: e.mac for ip, e in self._cache.items() if e.expires > now}
