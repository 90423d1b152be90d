"""Traffic across a fault: a probe stream of our own, and iperf3 as the load.

``ProbeStream`` sends one numbered UDP datagram every ``PROBE_INTERVAL`` from one VM to
another (sockets opened inside the VMs' namespaces, used from threads of this process)
and records when each arrives; the traffic gap of a fault is the longest silence
between two arrivals, in milliseconds, at the resolution of the probe interval.
``Iperf`` runs ``iperf3`` (server in one VM, client in the other, TCP paced at
``IPERF_RATE``) and reads its per-interval bytes from ``--json``; its gap is the longest
run of intervals that carried nothing (TCP's retransmission backoff included, which is
what an application sees).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from openhnv.lab import netns

PROBE_PORT = 47000
PROBE_INTERVAL = 0.01  # seconds between probes: the gap's resolution
IPERF_PORT = 5201
IPERF_RATE = "20M"  # paced, so the load leaves the 2-core machine room for the faults
IPERF_INTERVAL = 0.1  # iperf3's smallest reporting interval
_PROBE = struct.Struct("!Qd")
_RECV_TIMEOUT = 0.2
_IPERF_CONNECT_ATTEMPTS = 10
_IPERF_STARTUP = 1.0  # a client still running after this is connected
_IPERF_STOP = 30.0
IPERF_LONGEST = 3600  # seconds; the run is interrupted long before
_SECONDS_TO_MS = 1000.0


def _udp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    return sock


def longest_gap(arrivals: list[float], start: float, end: float) -> float:
    """The longest time in [start, end] with no arrival, in seconds."""
    points = [start, *(t for t in arrivals if start < t < end), end]
    return max((b - a for a, b in itertools.pairwise(points)), default=end - start)


@dataclass(slots=True)
class ProbeStream:
    """Numbered datagrams from ``source`` (a VM namespace) to ``address`` in ``sink``."""

    source: str
    sink: str
    address: str
    port: int = PROBE_PORT
    arrivals: list[float] = field(default_factory=list)
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)

    def __enter__(self) -> ProbeStream:
        receiver = netns.run_in(self.sink, _udp, self.port)
        receiver.settimeout(_RECV_TIMEOUT)
        sender = netns.run_in(self.source, _udp, 0)
        self._sockets = [receiver, sender]
        self._threads = [
            threading.Thread(target=self._receive, args=(receiver,), daemon=True),
            threading.Thread(target=self._send, args=(sender,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for sock in self._sockets:
            sock.close()

    def _send(self, sock: socket.socket) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            self.sent += 1
            with contextlib.suppress(OSError):  # no route while the VM's link is rebuilt
                sock.sendto(_PROBE.pack(self.sent, time.monotonic()), (self.address, self.port))
            deadline += PROBE_INTERVAL
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _receive(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) == _PROBE.size:
                self.arrivals.append(time.monotonic())

    def gap_ms(self, start: float, end: float) -> float:
        return round(longest_gap(list(self.arrivals), start, end) * _SECONDS_TO_MS, 1)

    def received_after(self, moment: float) -> int:
        return sum(1 for t in list(self.arrivals) if t > moment)


@dataclass(slots=True)
class Iperf:
    """``iperf3`` from ``client`` to ``address`` (served in ``server``) until ``stop()``.

    Both run as our children inside the VM namespaces (``ip netns exec`` execs, so the
    pid is iperf3's); ``stop()`` interrupts the client, which still prints its JSON.
    """

    server: str
    client: str
    address: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    _server: subprocess.Popen[bytes] | None = None
    _client: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Iperf:
        argv = ["ip", "netns", "exec", self.server, "iperf3", "--server"]
        argv += ["--port", str(IPERF_PORT)]
        self._server = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        argv = ["ip", "netns", "exec", self.client, "iperf3", "--client", self.address]
        argv += ["--port", str(IPERF_PORT), "--json", "--time", str(IPERF_LONGEST)]
        argv += ["--interval", f"{IPERF_INTERVAL:g}", "--bitrate", IPERF_RATE]
        for _ in range(_IPERF_CONNECT_ATTEMPTS):  # the server may not listen yet
            self._client = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
            try:
                self._client.wait(timeout=_IPERF_STARTUP)
            except subprocess.TimeoutExpired:
                return self  # connected and sending
            self._collect()
            if "unable to connect" not in self.error:
                return self
        return self

    def _collect(self) -> None:
        if self._client is None:
            return
        out, err = self._client.communicate(timeout=_IPERF_STOP)
        self._client = None
        try:
            self.result = json.loads(out)
        except ValueError:
            self.error = err.decode(errors="replace").strip() or "no output"
            return
        self.error = str(self.result.get("error", ""))

    def stop(self) -> None:
        """Interrupt the client (it reports what it measured) and stop the server."""
        if self._client is not None:
            if self._client.poll() is None:
                self._client.send_signal(signal.SIGINT)
            self._collect()
        if self._server is not None:
            if self._server.poll() is None:
                self._server.kill()
            self._server.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def intervals(self) -> list[float]:
        """Bytes sent in each reporting interval."""
        return [float(i["sum"]["bytes"]) for i in self.result.get("intervals", [])]

    def gap_ms(self) -> float:
        """The longest run of intervals that carried nothing, in milliseconds."""
        longest = run = 0
        for sent in self.intervals():
            run = run + 1 if sent == 0 else 0
            longest = max(longest, run)
        return round(longest * IPERF_INTERVAL * _SECONDS_TO_MS, 1)

    def mbit_per_s(self) -> float:
        end = self.result.get("end", {}).get("sum_sent", {})
        return round(float(end.get("bits_per_second", 0.0)) / 1e6, 1)
