"""Live traffic between lab VMs: tiny TCP/UDP servers and clients inside VM namespaces.

Sockets are created inside a VM's namespace (``netns.run_in``) and then used from
ordinary threads, so a server is a thread of the calling process — nothing to leave
behind when it stops. ``TcpResponder`` answers every connection with a fixed line
naming who answered; ``tcp_request`` connects, sends, and returns the answer;
``UdpCollector`` records datagrams (broadcast included); ``ping`` runs the system
``ping`` in the VM and returns the TTL of the reply.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from openhnv.lab import netns
from openhnv.lab.errors import LabError

_ACCEPT_POLL = 0.2
_TTL = re.compile(r"ttl=(\d+)")


def family_of(address: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address, else AF_INET."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _tcp_server(address: str, port: int) -> socket.socket:
    return socket.create_server((address, port), family=family_of(address), reuse_port=False)


class TcpResponder:
    """A TCP server in ``namespace`` that answers each connection with ``answer``."""

    def __init__(self, namespace: str, address: str, port: int, answer: bytes) -> None:
        self.namespace = namespace
        self.answer = answer
        self.peers: list[tuple[str, int]] = []
        self.received: list[bytes] = []
        try:
            self._server = netns.run_in(namespace, _tcp_server, address, port)
        except OSError as exc:
            raise LabError(f"{namespace}: cannot listen on {address}:{port}: {exc}") from exc
        self._server.settimeout(_ACCEPT_POLL)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"tcp-{namespace}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                with contextlib.suppress(OSError):
                    self.received.append(conn.recv(1024))
                    self.peers.append((str(peer[0]), int(peer[1])))
                    conn.sendall(self.answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._server.close()

    def __enter__(self) -> TcpResponder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tcp_client(family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    return socket.socket(family, socket.SOCK_STREAM)


def tcp_request(
    namespace: str, address: str, port: int, payload: bytes, timeout: float = 5.0
) -> bytes:
    """Connect from ``namespace`` to ``address:port``, send ``payload``, return the answer.

    Raises OSError (timeout, refused, unreachable) when no answer comes.
    """
    sock = netns.run_in(namespace, _tcp_client, family_of(address))
    with sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.sendall(payload)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def tcp_answer(
    namespace: str, address: str, port: int, payload: bytes, attempts: int = 3
) -> bytes | None:
    """``tcp_request`` tried a few times (the first SYN may wait for ARP); None on failure."""
    for _ in range(attempts):
        try:
            return tcp_request(namespace, address, port, payload, timeout=3.0)
        except OSError:
            time.sleep(0.2)
    return None


def _udp_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    return sock


@dataclass(slots=True)
class UdpCollector:
    """Records every datagram that reaches ``port`` in a VM (broadcasts included)."""

    namespace: str
    port: int
    datagrams: list[tuple[bytes, str]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> UdpCollector:
        self._sock = netns.run_in(self.namespace, _udp_socket, self.port)
        self._sock.settimeout(_ACCEPT_POLL)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams.append((data, str(peer[0])))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()


def udp_send(namespace: str, address: str, port: int, payload: bytes) -> None:
    """Send one datagram from ``namespace`` (broadcast addresses allowed)."""
    sock = netns.run_in(namespace, _udp_socket, 0)
    with sock:
        sock.sendto(payload, (address, port))


def ping(namespace: str, address: str, count: int = 3, wait: float = 2.0) -> int | None:
    """TTL of the first echo reply of ``count`` echoes to ``address``, or None when none came.

    Several echoes, so that one lost while ARP or the first flow is set up does not count.
    """
    result = netns.exec_in(
        namespace,
        ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", f"{wait:g}", address],
        check=False,
        timeout=wait * count + 5,
    )
    found = _TTL.search(result.stdout)
    return int(found.group(1)) if found else None


def set_neighbor(namespace: str, address: str, mac: str, device: str = "eth0") -> None:
    """Pin ``address`` to ``mac`` in the VM's ARP table (to aim a frame at a MAC)."""
    argv = ["ip", "neigh", "replace", address, "lladdr", mac, "dev", device, "nud", "permanent"]
    netns.exec_in(namespace, argv)


def flush_neighbor(namespace: str, address: str, device: str = "eth0") -> None:
    netns.exec_in(namespace, ["ip", "neigh", "del", address, "dev", device], check=False)
