"""Traffic that a live migration must not break, for the root tier and bench/migration.py.

All of it opened by the migrating VM (``mover``) toward a ``peer`` VM, so that a
stateful ACL that denies inbound lets the peer's packets through only as replies:

- ``IdleConnection``: one TCP connection that carries nothing until ``exchange``, where
  the *peer* speaks first (its segment is the first of the connection to reach the
  moved port) and the mover answers;
- ``PacedStream``: the mover writes a small numbered message every ``interval`` over
  one TCP connection; the peer's thread notes when each byte arrives, so ``gap_ms`` is
  the longest silence at the receiver (the traffic gap a migration causes, TCP's
  retransmission included);
- ``Iperf3``: an ``iperf3`` server in the peer and a client in the mover for
  ``seconds``, child processes stopped by pid; ``result()`` is the client's JSON.

Sockets are made inside the namespaces (``netns.run_in``) and used from threads of this
process: nothing is left behind once closed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import subprocess
import threading
import time
from typing import Any

from openhnv.lab import netns
from openhnv.testing.processes import stop_process

MESSAGE = 64  # bytes per paced message
IPERF_CONNECTIONS = 2  # its control connection and one data stream
IPERF_BITRATE = "20M"  # enough to keep the connection busy, little enough for 2 cores
_RECV = 65536
_ACCEPT_SECONDS = 10.0


def _listen(address: str, port: int) -> socket.socket:
    return socket.create_server((address, port))


def _connect(address: str, port: int) -> socket.socket:
    return socket.create_connection((address, port), timeout=_ACCEPT_SECONDS)


def connected_pair(
    mover: str, peer: str, peer_address: str, port: int
) -> tuple[socket.socket, socket.socket]:
    """A TCP connection opened by namespace ``mover`` to ``peer_address:port`` in
    ``peer``: (the mover's socket, the peer's accepted socket)."""
    server = netns.run_in(peer, _listen, peer_address, port)
    try:
        server.settimeout(_ACCEPT_SECONDS)
        client = netns.run_in(mover, _connect, peer_address, port)
        accepted, _ = server.accept()
    finally:
        server.close()
    return client, accepted


class IdleConnection:
    """A connection the mover opened and nobody uses until ``exchange``."""

    def __init__(self, mover: str, peer: str, peer_address: str, port: int) -> None:
        self.mover, self.peer = connected_pair(mover, peer, peer_address, port)

    def exchange(self, timeout: float = 10.0) -> tuple[bytes, bytes]:
        """The peer sends first, the mover answers: (what the mover got, what the peer got)."""
        for s in (self.mover, self.peer):
            s.settimeout(timeout)
        self.peer.sendall(b"from-peer\n")
        got = self.mover.recv(_RECV)
        self.mover.sendall(b"from-mover\n")
        return got, self.peer.recv(_RECV)

    def close(self) -> None:
        for s in (self.mover, self.peer):
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> IdleConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PacedStream:
    """The mover sends ``MESSAGE`` bytes every ``interval`` s; the peer notes arrivals."""

    def __init__(
        self, mover: str, peer: str, peer_address: str, port: int, interval: float = 0.001
    ) -> None:
        self.interval = interval
        self.sender, self.receiver = connected_pair(mover, peer, peer_address, port)
        self.arrivals: list[float] = []
        self.received = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, name="paced-send", daemon=True),
            threading.Thread(target=self._receive, name="paced-receive", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        message = b"m" * MESSAGE
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                self.sender.sendall(message)
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except OSError as exc:
            self.error = f"send: {exc}"

    def _receive(self) -> None:
        self.receiver.settimeout(0.5)
        while not self._stop.is_set():
            try:
                data = self.receiver.recv(_RECV)
            except TimeoutError:
                continue
            except OSError as exc:
                self.error = f"receive: {exc}"
                return
            if not data:
                self.error = "receive: the connection closed"
                return
            self.received += len(data)
            self.arrivals.append(time.monotonic())

    def gap_ms(self, since: float, until: float) -> float:
        """The longest time without an arrival between ``since`` and ``until``."""
        times = [since, *(t for t in self.arrivals if since < t < until), until]
        return max(b - a for a, b in itertools.pairwise(times)) * 1000.0

    def first_after(self, moment: float) -> float | None:
        """When the first byte after ``moment`` arrived (None: none yet)."""
        return next((t for t in self.arrivals if t > moment), None)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for s in (self.sender, self.receiver):
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> PacedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Iperf3:
    """``iperf3 -s -1`` in ``peer``, ``iperf3 -c`` from ``mover`` for ``seconds``."""

    def __init__(self, mover: str, peer: str, peer_address: str, port: int, seconds: float) -> None:
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", peer, "iperf3", "-s", "-1", "-B", peer_address,
             "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_listening(peer, port)
        self.client = subprocess.Popen(
            ["ip", "netns", "exec", mover, "iperf3", "-c", peer_address, "-p", str(port),
             "-t", f"{seconds:g}", "-b", IPERF_BITRATE, "-J"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.seconds = seconds

    def wait_streaming(self, mover: str, port: int, timeout: float = _ACCEPT_SECONDS) -> None:
        """Until the client holds its two connections (control and data) to ``port``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = netns.exec_in(mover, ["ss", "-Htn", "state", "established", f"dport = :{port}"],
                                check=False)  # fmt: skip
            if len(out.stdout.strip().splitlines()) >= IPERF_CONNECTIONS:
                return
            time.sleep(0.05)
        raise TimeoutError(f"iperf3 in {mover} did not open its connections to port {port}")

    @staticmethod
    def _wait_listening(peer: str, port: int) -> None:
        deadline = time.monotonic() + _ACCEPT_SECONDS
        while time.monotonic() < deadline:
            out = netns.exec_in(peer, ["ss", "-Htln", f"sport = :{port}"], check=False)
            if out.stdout.strip():
                return
            time.sleep(0.05)

    def result(self) -> dict[str, Any]:
        """The client's JSON once it ended (it runs ``seconds``, plus a margin)."""
        try:
            out, _ = self.client.communicate(timeout=self.seconds + 30.0)
        except subprocess.TimeoutExpired:
            stop_process(self.client)
            return {"error": "iperf3 client did not end"}
        try:
            found: dict[str, Any] = json.loads(out)
        except ValueError:
            return {"error": f"iperf3 client printed no JSON: {out.strip()[-200:]}"}
        return found

    def close(self) -> None:
        for process in (self.client, self.server):
            stop_process(process, timeout=5.0)

    def __enter__(self) -> Iperf3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
