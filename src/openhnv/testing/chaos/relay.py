"""A unix-socket relay between the controller and one host's OVSDB, which can be cut.

The lab's controller reaches a host over the unix socket of its ovsdb-server; a unix
socket knows no network namespace, so a firewall rule cannot cut it, and the chaos
suite never touches the root namespace's firewall anyway. Instead the server's
management address points at this relay (``unix:<run_dir>/relay-<host>.sock``), a
thread of the test process that copies bytes both ways. ``cut()`` is a partition: the
relay stops reading from both sides and accepts nobody, so the controller's messages
go unanswered until its inactivity probe gives up (nothing is closed, as when a cable
is pulled). ``restore()`` drops the stale connections and accepts new ones again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from pathlib import Path

_TICK = 0.05
_CHUNK = 65536
_BACKLOG = 16


class UnixRelay:
    """Listens on ``path`` and joins each connection to the unix socket ``target``."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path = path
        self.target = target
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._drop_all = False
        path.unlink(missing_ok=True)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(_BACKLOG)
        self._server.setblocking(False)
        self._thread = threading.Thread(target=self._run, name=f"relay-{path.name}", daemon=True)
        self._thread.start()

    @property
    def remote(self) -> str:
        return f"unix:{self.path}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs) // 2

    def cut(self) -> None:
        """Stop carrying anything, in either direction; connections stay open."""
        self._cut.set()

    def restore(self) -> None:
        """Close what was open during the cut and carry new connections again."""
        with self._lock:
            self._drop_all = True
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._server.close()
        for sock in list(self._pairs):
            sock.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> UnixRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            while not self._stop.is_set():
                if self._cut.is_set():
                    self._stop.wait(_TICK)
                    continue
                self._drop_stale(selector)
                for key, _ in selector.select(_TICK):
                    if key.fileobj is self._server:
                        self._accept(selector)
                    elif isinstance(key.fileobj, socket.socket):
                        self._pump(selector, key.fileobj)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            client, _ = self._server.accept()
        except BlockingIOError:
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(str(self.target))
        except OSError:  # the host's ovsdb-server is down: refuse as it would
            upstream.close()
            client.close()
            return
        with self._lock:
            self._pairs[client] = upstream
            self._pairs[upstream] = client
        selector.register(client, selectors.EVENT_READ)
        selector.register(upstream, selectors.EVENT_READ)

    def _pump(self, selector: selectors.BaseSelector, source: socket.socket) -> None:
        peer = self._pairs.get(source)
        if peer is None:
            return
        try:
            data = source.recv(_CHUNK)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close_pair(selector, source)

    def _close_pair(self, selector: selectors.BaseSelector, sock: socket.socket) -> None:
        with self._lock:
            peer = self._pairs.pop(sock, None)
            if peer is not None:
                self._pairs.pop(peer, None)
        for each in (sock, peer):
            if each is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(each)
            each.close()

    def _drop_stale(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            drop, self._drop_all = self._drop_all, False
        if drop:
            for sock in list(self._pairs):
                self._close_pair(selector, sock)
