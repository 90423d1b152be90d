"""One OVSDB JSON-RPC connection (RFC 7047) on an asyncio event loop, without the ``ovs`` IDL.

Many of these share one thread: the controller's southbound keeps one connection per
host on a single event loop instead of two threads per host. A connection

- frames the server's messages (concatenated JSON objects) and parses them with the
  standard library's C JSON decoder, so a host's whole table costs little to read;
- matches replies to requests (``call`` returns a future's result or raises
  ``OvsdbError``), answers the server's ``echo`` probes and hands ``update``
  notifications to ``on_update``;
- probes an idle server itself: when nothing arrived for ``probe_interval`` seconds it
  sends an ``echo`` and closes the connection if nothing comes back within another
  interval, so a hung host is noticed even while a transaction waits for its reply.

``connect(remote, ssl)`` dials ``unix:PATH``, ``tcp:IP:PORT`` or ``ssl:IP:PORT`` (the PEM
files of ``openhnv.ovsdb.pki``; the peer's certificate must come from the given CA, host
names are not checked, as Open vSwitch does). A refused or failed connection raises
``OSError``/``ssl.SSLError`` for the caller to explain.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.server import SslFiles

log = logging.getLogger(__name__)

PROBE_INTERVAL = 5.0  # seconds without traffic before probing the server
CONNECT_TIMEOUT = 5.0
_DECODER = json.JSONDecoder()

Notify = Callable[[str, list[Any]], None]


class ConnectionLost(OvsdbError):
    """The connection closed (or was found dead) before a reply came."""


def ssl_context(files: SslFiles) -> ssl.SSLContext:
    """A client context presenting ``files``' certificate and trusting only its CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # OVS PKI certificates name no host
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(files.certificate), str(files.private_key))
    context.load_verify_locations(str(files.ca_cert))
    return context


class OvsdbConnection(asyncio.Protocol):
    """The protocol of one connection; use ``connect`` to make one."""

    def __init__(self, remote: str, on_update: Notify | None, probe_interval: float) -> None:
        self.remote = remote
        self.on_update = on_update
        self.probe_interval = probe_interval
        self.transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._closed = asyncio.get_running_loop().create_future()
        self._heard = asyncio.get_running_loop().time()
        self._watchdog: asyncio.Task[None] | None = None
        self.received_bytes = 0

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.probe_interval > 0:
            self._watchdog = asyncio.get_running_loop().create_task(self._probe())

    def data_received(self, data: bytes) -> None:
        self._heard = asyncio.get_running_loop().time()
        self.received_bytes += len(data)
        self._chunks.append(data)
        if not data.rstrip().endswith(b"}"):
            return  # mid-message: decoding now would only find it incomplete
        text = b"".join(self._chunks).decode("utf-8")
        self._chunks = []
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return
            try:
                message, position = _DECODER.raw_decode(text, position)
            except json.JSONDecodeError:
                self._chunks = [text[position:].encode("utf-8")]
                return
            self._dispatch(message)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection to {self.remote} lost" + (f": {exc}" if exc else "")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        self._pending.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        if self._watchdog is not None:
            self._watchdog.cancel()

    # -- messages ----------------------------------------------------------------------
    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            log.warning("%s sent a non-object: %.200r", self.remote, message)
            return
        method = message.get("method")
        if method is None:  # a reply
            future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is None or future.done():
                return
            error = message.get("error")
            if error is not None:
                future.set_exception(OvsdbError(f"{self.remote} answered: {error}"))
            else:
                future.set_result(message.get("result"))
        elif method == "echo":
            self._send(
                {"id": message.get("id"), "result": message.get("params", []), "error": None}
            )
        elif self.on_update is not None and method in ("update", "update2"):
            try:
                self.on_update(method, message.get("params", []))
            except Exception:  # a listener's bug must not kill the connection
                log.exception("%s: update listener failed", self.remote)

    def _send(self, message: dict[str, Any]) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionLost(f"connection to {self.remote} is closed")
        self.transport.write(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    async def call(self, method: str, params: list[Any]) -> Any:
        """Send a request and wait for its result; ``OvsdbError`` if it fails."""
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._send({"method": method, "params": params, "id": request_id})
        except ConnectionLost:
            self._pending.pop(request_id, None)
            raise
        return await future

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            quiet = loop.time() - self._heard
            if quiet < self.probe_interval:
                await asyncio.sleep(self.probe_interval - quiet)
                continue
            try:
                await asyncio.wait_for(self.call("echo", []), self.probe_interval)
            except (TimeoutError, OvsdbError):
                log.info("%s did not answer a probe: closing", self.remote)
                self.close()
                return

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def closed(self) -> None:
        """Wait until the connection is closed (by either side)."""
        await asyncio.shield(self._closed)

    @property
    def is_open(self) -> bool:
        return not self._closed.done()


async def connect(
    remote: str,
    ssl_files: SslFiles | None = None,
    *,
    on_update: Notify | None = None,
    probe_interval: float = PROBE_INTERVAL,
    timeout: float = CONNECT_TIMEOUT,
) -> OvsdbConnection:
    """An open connection to ``remote``; raises OSError/ssl.SSLError/TimeoutError."""
    loop = asyncio.get_running_loop()
    kind, _, rest = remote.partition(":")

    def factory() -> OvsdbConnection:
        return OvsdbConnection(remote, on_update, probe_interval)

    if kind == "unix":
        made = loop.create_unix_connection(factory, rest)
    elif kind in ("tcp", "ssl"):
        host, _, port = rest.rpartition(":")
        context = None
        if kind == "ssl":
            if ssl_files is None:
                raise OvsdbError(f"remote {remote!r} needs SSL key, certificate and CA files")
            context = ssl_context(ssl_files)
        made = loop.create_connection(
            factory,
            host.strip("[]"),
            int(port),
            ssl=context,
            server_hostname=None if context is None else "",
        )
    else:
        raise OvsdbError(f"bad OVSDB remote {remote!r}: expected unix:, tcp: or ssl:")
    _, protocol = await asyncio.wait_for(made, timeout)
    return protocol
