"""One host's southbound link: one OVSDB connection that keeps a host's rows equal to its
desired state, as a task on the southbound's event loop (``SouthboundLoop``).

``HostLink`` is handed each new desired state of its host with a sequence number and
the (table, key) pairs that may have changed (``submit``, from any thread). It sends
only the rows that differ, as one transaction per database (changes submitted while a
transaction is in flight are coalesced into the next), and reports every commit with
the sequence number it reached. After each (re)connect, after any refused transaction
and at each audit, it resyncs in full: it reads the host's rows (one ``select`` of every
table) and sends the difference (``resync_changes``). Rows the host agent owns are left
alone: ``Physical_Port`` rows the controller never bound (``vlan_bindings`` empty) and
every ``status`` column.

No mirror of the host is kept: the link knows what it last committed (its desired
state) and the UUID of each row by key (from the last resync, its own inserts, and the
``Physical_Port`` monitor, which also feeds ``on_port`` for the publisher's binding).

Every state is handed over with its digest (``openhnv.controller.compiler.digest``);
the link writes it into the host's ``Global`` row (``other_config:openhnv-digest``) in
the same transaction as the rows, after the ``ms_firewall`` part. On (re)connect it
first reads that one value: when it equals the digest of the state to send, the host
is in sync at once (a restarted controller, or a new leader, costs one small read per
host, and nothing is written); the rows are read in full later (the first audit comes
0.2 to 0.7 audit intervals later), or before the first change that needs their UUIDs.
Otherwise, and after a refused transaction, it resyncs in full right away.

Connections are retried with exponential backoff (0.25 s doubling to 4 s); while none
comes up, the server's ``configurationState`` says why (no socket, refused, the SSL
handshake, not an OVSDB server). A refused transaction is retried as a full resync
after 0.25 s doubling to 8 s. A dead host is noticed by the connection's probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openhnv.controller.compiler.compile import diff_keys
from openhnv.controller.compiler.host_rows import TABLES
from openhnv.controller.southbound.loop import SouthboundLoop
from openhnv.controller.southbound.resync import (
    DIGEST_KEY,
    GLOBAL_KEY,
    GLOBAL_TABLE,
    PORT_TABLE,
    NotOvsdb,
    explain_failure,
    resync_changes,
    with_digest,
)
from openhnv.controller.southbound.status import (
    HOST_NOT_CONNECTED,
    INVALID_MANAGEMENT_ADDRESS,
    POLICY_CONFIGURATION_FAILURE,
    Remote,
)
from openhnv.ovsdb.aio import ConnectionLost, OvsdbConnection, connect
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import DesiredState, RowChange
from openhnv.ovsdb.schema import DATABASES, MS_FIREWALL, MS_VTEP
from openhnv.ovsdb.server import SslFiles
from openhnv.ovsdb.transact import explain, transactions
from openhnv.ovsdb.wire import Schema, Snapshot, keyed_snapshot, plain_row, select_all

log = logging.getLogger(__name__)

PORT_MONITOR = "ports"
Changed = Mapping[str, set[str]]  # table -> keys whose row may differ
CONNECT_MIN, CONNECT_MAX = 0.25, 4.0  # reconnect backoff, seconds
RETRY_MIN, RETRY_MAX = 0.25, 8.0  # backoff after a refused transaction, seconds
HELLO_TIMEOUT = 5.0  # seconds for a fresh connection to answer list_dbs
AUDIT_EVERY = 30.0  # seconds between full comparisons of a connected host with its state
AUDIT_JITTER = 0.5  # of the interval, added at random to a link's first audit
AUDIT_AFTER_TRUST = 0.2  # of the interval, at least, between a digest's "in sync" and a read
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What a link reports: connection, the last committed sequence, the last error."""

    server_id: str
    remote: str
    connected: bool
    committed_seq: int
    error: str | None
    code: str  # what ``error`` is about (status.HOST_NOT_CONNECTED, ...)


class _Refused(OvsdbError):
    """The host refused a transaction (its reason)."""


class HostLink:
    """Keeps one host's OVSDB equal to the desired state it is given."""

    def __init__(
        self,
        server_id: str,
        remote: Remote,
        *,
        loop: SouthboundLoop,
        ssl: SslFiles | None = None,
        on_status: Callable[[str], None] | None = None,
        on_port: Callable[[str, RowEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit_every: float | None = AUDIT_EVERY,
        schema: Schema | None = None,
        resyncs: asyncio.Semaphore | None = None,
    ) -> None:
        self.server_id = server_id
        self.remote = remote
        self.loop = loop
        self.ssl = ssl
        self.on_status = on_status
        self.on_port = on_port
        self.clock = clock
        self.audit_every = audit_every
        self.schema = schema or Schema()
        self.resyncs = resyncs
        self._lock = threading.Lock()
        self._desired: DesiredState | None = None
        self._desired_seq = 0
        self._dirty: dict[str, set[str]] = {}
        self._resync = True
        self._applied: DesiredState = {}
        self._committed_seq = 0
        self._connected = False
        self._error: str | None = None
        self._code = HOST_NOT_CONNECTED
        self._uuids: dict[str, dict[str, str]] = {}
        self._ports: dict[str, str] = {}  # Physical_Port UUID -> name
        self._wake: asyncio.Event | None = None
        self._future: Any = None
        self._digest: str | None = None  # of the desired state
        self._uuids_loaded = False  # the rows were read since the connection came up
        self.transactions = 0  # transactions sent to the host (for benchmarks and tests)

    # -- the publisher's side (any thread) ---------------------------------------------
    def start(self) -> HostLink:
        self._future = self.loop.spawn(self._run())
        return self

    def close(self) -> None:
        """Stop the link and its connection (a transaction in flight is abandoned)."""
        future = self._future
        if future is None:
            return
        self.loop.call(future.cancel)
        if not self.loop.in_loop:
            # cancelled, or the loop is gone: either way it is over
            with contextlib.suppress(BaseException):
                future.result(CLOSE_TIMEOUT)
        with self._lock:
            self._connected = False

    def submit(
        self,
        state: DesiredState,
        seq: int,
        changed: Changed | None = None,
        digest: str | None = None,
    ) -> None:
        """Make ``state`` (numbered ``seq``, with ``digest``) the host's desired state.

        ``changed`` names the keys that may differ from the previous state; None means
        anything may have changed (a full resync follows).
        """
        state = with_digest(state, digest)
        with self._lock:
            self._desired = state
            self._desired_seq = seq
            moved = digest != self._digest
            self._digest = digest
            if changed is None:
                self._resync = True
            else:
                for table, keys in changed.items():
                    self._dirty.setdefault(table, set()).update(keys)
                if moved:
                    self._dirty.setdefault(GLOBAL_TABLE, set()).add(GLOBAL_KEY)
        self.loop.call(self._poke)

    @property
    def verified(self) -> bool:
        """The host's rows were read and compared since the connection came up."""
        return self._uuids_loaded

    def status(self) -> LinkStatus:
        with self._lock:
            return LinkStatus(
                server_id=self.server_id,
                remote=str(self.remote),
                connected=self._connected,
                committed_seq=self._committed_seq,
                error=self._error,
                code=self._code,
            )

    # -- reporting ---------------------------------------------------------------------
    def _report(self) -> None:
        if self.on_status is not None:
            try:
                self.on_status(self.server_id)
            except Exception:
                log.exception("link %s: status listener failed", self.server_id)

    def _set_error(self, error: str | None, code: str = HOST_NOT_CONNECTED) -> None:
        with self._lock:
            changed = (error, code) != (self._error, self._code)
            self._error, self._code = error, code
        if changed:
            self._report()

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            changed = connected != self._connected
            self._connected = connected
            if connected:
                self._resync = True
        if changed:
            self._report()

    # -- the task ----------------------------------------------------------------------
    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        if self.remote.kind == "ssl" and self.ssl is None:
            self._set_error(
                f"{self.remote} needs SSL: start hnv controller with --pki DIR",
                INVALID_MANAGEMENT_ADDRESS,
            )
            return
        backoff = CONNECT_MIN
        try:
            while True:
                connection: OvsdbConnection | None = None
                try:
                    connection = await connect(str(self.remote), self.ssl, on_update=self._updated)
                    await self._hello(connection)
                except (OSError, ssl.SSLError, TimeoutError, OvsdbError) as err:
                    if connection is not None:
                        connection.close()
                    self._set_error(explain_failure(self.remote, err))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, CONNECT_MAX)
                    continue
                backoff = CONNECT_MIN
                try:
                    await self._serve(connection)
                except (ConnectionLost, OSError) as err:
                    log.info("host %s: %s", self.server_id, err)
                finally:
                    connection.close()
                    self._set_connected(False)
                    self._set_error(f"not connected to {self.remote}: the connection was lost")
                await asyncio.sleep(CONNECT_MIN)
        except asyncio.CancelledError:
            with self._lock:
                self._connected = False
            raise

    async def _hello(self, connection: OvsdbConnection) -> None:
        """Check the databases and start the Physical_Port monitor."""
        try:
            found = await asyncio.wait_for(connection.call("list_dbs", []), HELLO_TIMEOUT)
        except TimeoutError:
            raise NotOvsdb(f"{self.remote} does not answer list_dbs") from None
        if not isinstance(found, list) or not set(DATABASES) <= set(found):
            raise NotOvsdb(f"{self.remote} serves {found!r}, not {', '.join(DATABASES)}")
        self._ports = {}
        self._uuids = {}
        initial = await connection.call("monitor", [MS_VTEP, PORT_MONITOR, {PORT_TABLE: {}}])
        self._port_updates(initial)

    def _updated(self, method: str, params: list[Any]) -> None:
        if method == "update" and len(params) == 2 and params[0] == PORT_MONITOR:
            self._port_updates(params[1])

    def _port_updates(self, updates: Any) -> None:
        """Physical_Port rows came, changed or went: remember their UUIDs, tell the publisher."""
        rows = updates.get(PORT_TABLE, {}) if isinstance(updates, dict) else {}
        columns = self.schema.columns(PORT_TABLE)
        known = self._uuids.setdefault(PORT_TABLE, {})
        for row_uuid, change in rows.items():
            old_name = self._ports.get(row_uuid)
            new = change.get("new")
            new_row = plain_row(columns, new) if isinstance(new, dict) else None
            old_row: dict[str, Any] | None = None
            if old_name is not None:
                old_row = {"name": old_name}
            if new_row is None:
                self._ports.pop(row_uuid, None)
                if old_name is not None and known.get(old_name) == row_uuid:
                    del known[old_name]
            else:
                name = str(new_row.get("name", ""))
                self._ports[row_uuid] = name
                known[name] = row_uuid
            if self.on_port is not None:
                key = str(new_row["name"]) if new_row is not None else old_name
                event = RowEvent(MS_VTEP, PORT_TABLE, row_uuid, key, old_row, new_row)
                try:
                    self.on_port(self.server_id, event)
                except Exception:
                    log.exception("link %s: port listener failed", self.server_id)

    async def _serve(self, connection: OvsdbConnection) -> None:
        """Send the host what differs, for as long as the connection lasts."""
        self._set_connected(True)
        self._set_error(None)
        self._uuids_loaded = False
        # Spread the audits of hosts that connected together over the audit interval.
        audited_at = self.clock() + random.uniform(0, (self.audit_every or 0) * AUDIT_JITTER)
        trust = True  # the first full resync may be answered by the host's digest
        retry_at = 0.0
        backoff = RETRY_MIN
        assert self._wake is not None
        while connection.is_open:
            now = self.clock()
            if self.audit_every is not None and now - audited_at >= self.audit_every:
                with self._lock:
                    self._resync = True  # repair rows changed behind the controller's back
            work = self._take() if now >= retry_at else None
            if work is None:
                due = [retry_at - now] if now < retry_at else []
                if self.audit_every is not None:
                    due.append(audited_at + self.audit_every - now)
                await self._idle(connection, min(due) if due else None)
                continue
            state, seq, dirty, full = work
            try:
                if full and trust and await self._digest_matches(connection):
                    # Up to date: read the rows in full at the first audit, which now
                    # comes within half an interval (or at the first change).
                    trust = False
                    if self.audit_every is not None:  # not all at once, nor right away
                        later = random.uniform(AUDIT_AFTER_TRUST, AUDIT_JITTER + AUDIT_AFTER_TRUST)
                        audited_at = self.clock() - self.audit_every * (1 - later)
                elif full or not self._uuids_loaded:
                    trust = False
                    await self._resync_host(connection, state)
                    audited_at = self.clock()
                else:
                    changes = diff_keys(self._applied, state, dirty)
                    await self._send(connection, changes, ())
            except OvsdbError as err:
                if isinstance(err, ConnectionLost):
                    raise
                with self._lock:
                    self._resync = True
                log.warning("host %s refused a transaction: %s", self.server_id, err)
                self._set_error(
                    f"{self.remote} refused the controller's rows: {err}",
                    POLICY_CONFIGURATION_FAILURE,
                )
                retry_at = self.clock() + backoff
                backoff = min(backoff * 2, RETRY_MAX)
                continue
            with self._lock:
                self._applied = state
                self._committed_seq = seq
                self._error = None
            backoff = RETRY_MIN
            self._report()

    def _take(self) -> tuple[DesiredState, int, dict[str, set[str]], bool] | None:
        """The work to do now, if any: (state, seq, dirty keys, full resync)."""
        with self._lock:
            if self._desired is None:
                return None
            full = self._resync
            if not full and not self._dirty and self._desired_seq == self._committed_seq:
                return None
            work = (self._desired, self._desired_seq, self._dirty, full)
            self._dirty = {}
            self._resync = False
            return work

    async def _idle(self, connection: OvsdbConnection, timeout: float | None) -> None:
        """Wait for a submit, the connection's end, or ``timeout`` seconds."""
        assert self._wake is not None
        self._wake.clear()
        if self._take_peek():
            return
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(connection.closed()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _take_peek(self) -> bool:
        with self._lock:
            return self._desired is not None and (
                self._resync or bool(self._dirty) or self._desired_seq != self._committed_seq
            )

    async def _digest_matches(self, connection: OvsdbConnection) -> bool:
        """The host's Global row names the digest of the state to send."""
        if self._digest is None:
            return False
        query = {"op": "select", "table": GLOBAL_TABLE, "where": [], "columns": ["other_config"]}
        result = await connection.call("transact", [MS_VTEP, query])
        rows = result[0].get("rows", []) if isinstance(result, list) and result else []
        if len(rows) != 1:
            return False
        pairs = rows[0].get("other_config", ["map", []])[1]
        return dict(pairs).get(DIGEST_KEY) == self._digest

    async def _resync_host(self, connection: OvsdbConnection, state: DesiredState) -> None:
        """Read every row of the host and send what differs from ``state``."""
        if self.resyncs is not None:
            async with self.resyncs:
                snapshot = await self._read(connection)
        else:
            snapshot = await self._read(connection)
        self._uuids = snapshot.uuids
        self._uuids_loaded = True
        for row_uuid, name in self._ports.items():  # the monitor may know newer ports
            self._uuids.setdefault(PORT_TABLE, {}).setdefault(name, row_uuid)
        changes = resync_changes(snapshot.rows, state)
        if changes or snapshot.strays:
            log.info(
                "host %s: full resync sends %d changes, %d stray rows",
                self.server_id,
                len(changes),
                len(snapshot.strays),
            )
        await self._send(connection, changes, snapshot.strays)

    async def _read(self, connection: OvsdbConnection) -> Snapshot:
        selected: dict[str, list[dict[str, Any]]] = {}
        for database in DATABASES:
            tables = [t for t in TABLES if self.schema.database_of.get(t) == database]
            result = await connection.call("transact", select_all(self.schema, database, tables))
            for table, outcome in zip(tables, result, strict=False):
                if not isinstance(outcome, dict) or "rows" not in outcome:
                    raise _Refused(f"select of {table} failed: {outcome!r}")
                selected[table] = outcome["rows"]
        return keyed_snapshot(self.schema, selected)

    async def _send(
        self,
        connection: OvsdbConnection,
        changes: list[RowChange],
        strays: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    ) -> None:
        """Commit ``changes`` (one transaction per database) and learn the new UUIDs."""
        if not changes and not strays:
            return
        try:
            plan = transactions(self.schema, changes, self._uuids, strays)
        except OvsdbError as err:
            raise _Refused(str(err)) from None
        # ms_firewall first: the digest in ms_vtep's Global row then never names rows
        # that are not all there.
        plan.sort(key=lambda txn: txn.database != MS_FIREWALL)
        for txn in plan:
            self.transactions += 1
            result = await connection.call("transact", txn.params())
            problem = explain(txn, result)
            if problem is not None:
                raise _Refused(f"transaction on {txn.database}: {problem}")
            stale = False
            for index, op in enumerate(txn.ops):
                outcome = result[index] if index < len(result) else {}
                source = txn.sources[index]
                if op["op"] == "insert" and source is not None:
                    found = outcome.get("uuid", [None, None])[1]
                    if found:
                        self._uuids.setdefault(source.table, {})[source.key] = found
                elif op["op"] == "delete" and source is not None:
                    self._uuids.get(source.table, {}).pop(source.key, None)
                elif op["op"] == "update" and outcome.get("count") == 0:
                    stale = True  # the row went behind our back
            if stale:
                raise _Refused(f"transaction on {txn.database}: a row to update was gone")
