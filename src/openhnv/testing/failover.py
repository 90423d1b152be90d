"""Team failover on a lab fabric: a TCP stream across two hosts while a team member dies.

``TickStream`` is one TCP connection from a VM to a VM on another host that carries a
numbered 8-byte message every ``TICK_SECONDS``; the receiving side notes when each
arrives, so the traffic gap around an event is the longest interval between two
arrivals (``gap``). A reset or a number out of order is recorded as ``error``.

``failover_round`` pulls the cable of the team member that carries the VMs' PA on host
h1 (``ip link set DOWN`` on the fabric side of the veth, or on the host side), waits
until the switch moved the PA and the stream flows again, puts the cable back, waits
until the PA is home and the stream flows again; it returns both gaps. The root tier
(tests/integration/test_vswitch_team_root.py) and ``bench/failover.py`` share it.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Literal

from openhnv.lab import netns
from openhnv.testing.dataplane import DataplaneLab, wait_ready
from openhnv.testing.polling import eventually

TICK_SECONDS = 0.002
STREAM_PORT = 7011
SETTLE_SECONDS = 0.5  # of steady stream before an event and after the switch acted
STEADY_GAP = 0.1  # the longest pause a steady stream has (ticks every 2 ms, 2 busy cores)
_RECORD = struct.Struct("!Q")
_TIMEOUT = 10.0
Side = Literal["fabric", "host"]


class TickStream:
    """One TCP connection ``sender`` -> ``receiver`` carrying numbered ticks (module doc)."""

    def __init__(self, lab: DataplaneLab, sender: str, receiver: str) -> None:
        address = lab.vm_ip(receiver)
        with netns.in_namespace(lab.vm_ns(receiver)):
            self._server = socket.create_server((address, STREAM_PORT))
        self._server.settimeout(_TIMEOUT)
        with netns.in_namespace(lab.vm_ns(sender)):
            self._client = socket.create_connection((address, STREAM_PORT), timeout=_TIMEOUT)
        self._client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn, _ = self._server.accept()
        self._conn.settimeout(_TIMEOUT)
        self.arrivals: list[float] = []
        self.sent = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        try:
            while not self._stop.is_set():
                self._client.sendall(_RECORD.pack(self.sent))
                self.sent += 1
                time.sleep(TICK_SECONDS)
        except OSError as exc:
            self.error = self.error or f"sender: {exc}"

    def _receive(self) -> None:
        pending = b""
        expected = 0
        try:
            while not self._stop.is_set():
                chunk = self._conn.recv(65536)
                if not chunk:
                    if not self._stop.is_set():
                        self.error = self.error or "receiver: the connection was closed"
                    return
                now = time.monotonic()
                pending += chunk
                whole = len(pending) // _RECORD.size * _RECORD.size
                for (number,) in _RECORD.iter_unpack(pending[:whole]):
                    if number != expected:
                        self.error = f"receiver: tick {number} where {expected} was due"
                        return
                    expected += 1
                    self.arrivals.append(now)
                pending = pending[whole:]
        except OSError as exc:
            if not self._stop.is_set():
                self.error = self.error or f"receiver: {exc}"

    def received(self) -> int:
        return len(self.arrivals)

    def gap(self, since: float, until: float | None = None) -> float:
        """The longest interval without a tick arriving, from ``since`` (to ``until``)."""
        times = [since, *(t for t in self.arrivals if t > since and (until is None or t <= until))]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def steady(self, after: float = 0.0, seconds: float = SETTLE_SECONDS) -> bool:
        """Whether ticks arrived over the last ``seconds``, all of them later than
        ``after`` (an event), without a pause longer than ``STEADY_GAP`` (up to now)."""
        now = time.monotonic()
        since = now - seconds
        if since < after:
            return False
        recent = [t for t in self.arrivals[-int(4 * seconds / TICK_SECONDS) :] if t > since]
        times = [since, *recent, now]
        return max(b - a for a, b in itertools.pairwise(times)) < STEADY_GAP

    def close(self) -> None:
        self._stop.set()
        for sock in (self._client, self._conn, self._server):
            sock.close()
        for thread in self._threads:
            thread.join(_TIMEOUT)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """The stream's longest gaps (s) when the member went down and when it came back,
    and the ticks sent and received over the round."""

    down_gap: float
    up_gap: float
    sent: int
    received: int


def start_team_hosts(lab: DataplaneLab) -> None:
    """Switches on h1 and h2 (two members each, the VMs' PA on up0), next hops resolved."""
    s1, s2 = lab.start_switch("h1"), lab.start_switch("h2")
    wait_ready(s1, 1, [lab.pa("h2")])
    wait_ready(s2, 1, [lab.pa("h1")])


def pull_cable(lab: DataplaneLab, host: str, member: int, side: Side, up: bool) -> None:
    """Take member ``member`` of ``host`` down (``up`` False) or back up, on ``side``."""
    if side == "fabric":
        namespace, ifname = lab.names.fabric, lab.names.uplink_peer(host, member)
    else:
        namespace, ifname = lab.host_ns(host), lab.names.uplink(member)
    if up:
        netns.set_up(namespace, ifname)
    else:
        netns.set_down(namespace, ifname)


def failover_round(lab: DataplaneLab, stream: TickStream, side: Side = "fabric") -> RoundResult:
    """Member up0 of h1 (carrying the VMs' PA) down, then back up (module docstring)."""
    switch = lab.switches["h1"]
    pa = lab.pa("h1")
    eventually(stream.steady, "the stream flowing before the failover")
    sent_before, received_before = stream.sent, stream.received()
    down_at = time.monotonic()
    pull_cable(lab, "h1", 0, side, up=False)
    eventually(lambda: switch.placement()[pa].member == "up1", f"PA {pa} moved to up1")
    eventually(lambda: stream.steady(down_at), "the stream flowing again after the failover")
    up_at = time.monotonic()
    down_gap = stream.gap(down_at, up_at)
    pull_cable(lab, "h1", 0, side, up=True)
    eventually(lambda: not switch.placement()[pa].moved, f"PA {pa} home on up0")
    eventually(lambda: stream.steady(up_at), "the stream flowing again after the member came back")
    return RoundResult(down_gap, stream.gap(up_at), stream.sent - sent_before,
                       stream.received() - received_before)  # fmt: skip
