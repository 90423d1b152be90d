"""The chaos suite's relay: carries a unix-socket conversation, and cuts it like a cable."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.testing.chaos.relay import UnixRelay
from openhnv.testing.polling import eventually

QUIET = 0.5  # seconds a cut relay must stay silent


@pytest.fixture
def echo() -> Iterator[Path]:
    """A unix-socket echo server in a short temp dir (a socket path is < 108 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="hnv-relay-"))
    path = directory / "target.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the relay drops it after a cut
            while data := conn.recv(1024):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield path
    server.close()
    path.unlink(missing_ok=True)
    for leftover in directory.iterdir():
        leftover.unlink()
    directory.rmdir()


def client(relay: UnixRelay) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(QUIET)
    sock.connect(str(relay.path))
    return sock


def ended(sock: socket.socket) -> bool:
    """The peer closed: end of file, or a reset (it closed with our bytes unread)."""
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def test_relay_carries_cuts_and_restores(echo: Path) -> None:
    with UnixRelay(echo.parent / "relay.sock", echo) as relay:
        before = client(relay)
        before.sendall(b"one")
        assert before.recv(16) == b"one"
        relay.cut()
        before.sendall(b"two")
        with pytest.raises(TimeoutError):
            before.recv(16)  # nothing crosses a cut relay
        relay.restore()
        eventually(lambda: relay.connections == 0, "the connections of the cut dropped")
        assert ended(before)  # the controller sees its old connection end
        after = client(relay)
        after.sendall(b"three")
        assert after.recv(16) == b"three"
        before.close()
        after.close()
    assert not (echo.parent / "relay.sock").exists()
