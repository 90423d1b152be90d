"""An OVSDB client of one remote over the ``ovs`` IDL, shared by the publisher and the agent.

One ``OvsdbClient`` owns the connections to one remote (one IDL per database) in its
own thread; every public method is thread-safe. The thread reconnects with backoff,
keeps a plain-data mirror of every row, names rows by their keys (``openhnv.ovsdb.keys``),
reports row changes and connection state through callbacks, and runs transactions that
other threads hand it. See docs/ovsdb.md.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ovs.db.idl
import ovs.poller
import ovs.stream

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import TABLE_KEYS, TableKey
from openhnv.ovsdb.mirror import DatabaseMirror, RowEvent
from openhnv.ovsdb.rows import DesiredState, Row, RowChange, diff
from openhnv.ovsdb.schema import DATABASES, schema_path, table_database
from openhnv.ovsdb.server import SslFiles
from openhnv.ovsdb.transaction import build_transaction
from openhnv.ovsdb.values import PlainRow

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
MIN_BACKOFF_MS = 250
MAX_BACKOFF_MS = 4000
PROBE_INTERVAL_MS = 5000
LOOP_TICK_MS = 200
JOB_GRACE = 5.0  # beyond a job's own deadline, in case the client thread is stuck


class ConnectionState(enum.StrEnum):
    """Where a client stands with its remote."""

    CONNECTING = "connecting"  # not (yet, or no longer) connected and synced
    SYNCED = "synced"  # connected, every database mirrored
    CLOSED = "closed"  # close() was called


def set_ssl_files(ssl: SslFiles) -> None:
    """Use these PEM files for every ``ssl:`` remote of this process.

    The ``ovs`` library keeps one SSL identity per process.
    """
    for path in (ssl.private_key, ssl.certificate, ssl.ca_cert):
        if not path.is_file():
            raise OvsdbError(f"SSL file {path} does not exist")
    ovs.stream.Stream.ssl_set_private_key_file(str(ssl.private_key))
    ovs.stream.Stream.ssl_set_certificate_file(str(ssl.certificate))
    ovs.stream.Stream.ssl_set_ca_cert_file(str(ssl.ca_cert))


class _Idl(ovs.db.idl.Idl):  # type: ignore[misc]
    """An IDL that remembers which rows changed since the last look."""

    def __init__(self, remote: str, helper: Any) -> None:
        super().__init__(remote, helper, probe_interval=PROBE_INTERVAL_MS)
        self.dirty: set[tuple[str, uuid.UUID]] = set()

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        self.dirty.add((row._table.name, row.uuid))


@dataclass
class _Job:
    """A transaction request handed to the client thread.

    ``pending`` lists the databases still to commit, in order, with their changes.
    """

    pending: list[tuple[str, list[RowChange]]]
    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    error: OvsdbError | None = None
    txn: Any = None
    validated: bool = False
    committed: list[str] = field(default_factory=list)


class OvsdbClient:
    """A client of ``remote`` (``unix:PATH``, ``tcp:IP:PORT`` or ``ssl:IP:PORT``).

    ``on_change(event)`` gets each row change; ``on_batch(events)`` then gets every
    change of one batch from the server at once (a whole transaction, or a whole resync).
    ``on_change``, ``on_batch`` and ``on_state(state)`` run in the client thread: keep them
    short and never call ``apply``/``replace_all`` from them (that raises). Events
    for a database come after its rows and keys are updated, so ``rows()`` inside a
    callback already shows the new state; and they come before the state that they
    complete, so once ``wait_synced`` returns the listeners have had every row it
    mirrored (``on_state`` itself may still be on its way).
    """

    def __init__(
        self,
        remote: str,
        databases: Sequence[str] = DATABASES,
        *,
        ssl: SslFiles | None = None,
        keys: Mapping[str, TableKey] = TABLE_KEYS,
        on_change: Callable[[RowEvent], None] | None = None,
        on_batch: Callable[[list[RowEvent]], None] | None = None,
        on_state: Callable[[ConnectionState], None] | None = None,
        max_backoff_ms: int = MAX_BACKOFF_MS,
    ) -> None:
        kind = remote.split(":", 1)[0]
        if kind not in ("unix", "tcp", "ssl"):
            raise OvsdbError(
                f"bad OVSDB remote {remote!r}: expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT"
            )
        if kind == "ssl":
            if ssl is None:
                raise OvsdbError(f"remote {remote!r} needs SSL key, certificate and CA files")
            set_ssl_files(ssl)
        self.remote = remote
        self.on_change = on_change
        self.on_batch = on_batch
        self.on_state = on_state
        self._lock = threading.Condition()
        self._dbs: dict[str, DatabaseMirror] = {}
        self._idls: dict[str, _Idl] = {}
        for name in databases:
            helper = ovs.db.idl.SchemaHelper(str(schema_path(name)))
            helper.register_all()
            idl = _Idl(remote, helper)
            idl._session.reconnect.set_backoff(MIN_BACKOFF_MS, max_backoff_ms)
            self._idls[name] = idl
            self._dbs[name] = DatabaseMirror(name, idl.tables, keys)
        self._state = ConnectionState.CONNECTING
        self._generation = 0
        self._jobs: list[_Job] = []
        self._current: _Job | None = None
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread = threading.Thread(target=self._run, name=f"ovsdb {remote}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> OvsdbClient:
        """Start the client thread (it connects, and reconnects, on its own)."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Disconnect and stop the thread; pending transactions fail. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        for idl in self._idls.values():
            idl.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> OvsdbClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        with self._lock:
            return self._state

    @property
    def generation(self) -> int:
        """Counts the times the client became synced; a change means "resync now"."""
        with self._lock:
            return self._generation

    def wait_synced(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Block until every database is mirrored; ``OvsdbError`` after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._state is not ConnectionState.CONNECTING, timeout
            ):
                raise OvsdbError(f"OVSDB {self.remote} not synced within {timeout} s")
            if self._state is ConnectionState.CLOSED:
                raise OvsdbError(f"OVSDB client of {self.remote} is closed")

    # -- reads -------------------------------------------------------------------------
    def _db_of(self, table: str) -> DatabaseMirror:
        db = self._dbs.get(table_database().get(table, ""))
        if db is None:
            raise OvsdbError(f"unknown table {table!r} for OVSDB {self.remote}", table=table)
        return db

    def rows(self, table: str) -> dict[str, PlainRow]:
        """Current rows of ``table``: UUID -> plain row (references as UUID strings).

        The row dicts are shared snapshots: read them, do not modify them.
        """
        db = self._db_of(table)
        with self._lock:
            return dict(db.rows[table])

    def key_of(self, table: str, row_uuid: str) -> str | None:
        """The key of the row ``row_uuid`` of ``table``, if it has one."""
        db = self._db_of(table)
        with self._lock:
            return db.keys[table].get(row_uuid)

    def uuid_of(self, table: str, key: str) -> str | None:
        """The UUID of the row of ``table`` named ``key``, if it exists."""
        db = self._db_of(table)
        with self._lock:
            return db.by_key[table].get(key)

    def snapshot(self, tables: Iterable[str] | None = None) -> dict[str, dict[str, Row]]:
        """Current rows in desired-state form: table -> key -> row (references as ``Ref``).

        Rows without a key (malformed, or not referred to yet) are left out. By default
        every table of the client's databases.
        """
        if tables is None:
            wanted = [t for db in self._dbs.values() for t in db.tables]
        else:
            wanted = list(tables)
        out: dict[str, dict[str, Row]] = {}
        with self._lock:
            for table in wanted:
                db = self._dbs.get(table_database().get(table, ""))
                if db is None:
                    raise OvsdbError(f"unknown table {table!r}", table=table)
                out[table] = db.keyed_table(table)
        return out

    def keyed_rows(self, table: str, keys: Iterable[str]) -> dict[str, Row | None]:
        """The rows of ``table`` named ``keys`` as ``snapshot`` gives them (None: no such
        row), without copying the whole table."""
        db = self._db_of(table)
        with self._lock:
            return {key: db.keyed_row_of(table, key) for key in keys}

    # -- writes ------------------------------------------------------------------------
    def apply(self, changes: Sequence[RowChange], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Commit ``changes`` as one OVSDB transaction per database, and wait for it.

        An insert of an existing key updates that row; a delete of a missing key does
        nothing; an update of a missing key fails. References (``Ref``) resolve to
        existing rows or rows inserted by the same changes. Every database's part is
        checked before any is sent, and each database's transaction is all or nothing;
        on failure ``OvsdbError`` names the table, the key and the (server's) reason.
        Waits for the connection up to ``timeout`` seconds, then fails.
        """
        if threading.current_thread() is self._thread:
            raise OvsdbError("apply() called from an OvsdbClient callback would deadlock")
        if not self._thread.is_alive():
            raise OvsdbError(f"OVSDB client of {self.remote} is not running: call start()")
        by_db: dict[str, list[RowChange]] = {}
        for change in changes:
            by_db.setdefault(self._db_of(change.table).name, []).append(change)
        if not by_db:
            return
        pending = [(name, by_db[name]) for name in self._dbs if name in by_db]
        job = _Job(pending, time.monotonic() + timeout)
        with self._lock:
            if self._closing:
                raise OvsdbError(f"OVSDB client of {self.remote} is closed")
            self._jobs.append(job)
        self._wake()
        if not job.done.wait(timeout + JOB_GRACE):
            raise OvsdbError(f"OVSDB client of {self.remote} did not answer within {timeout} s")
        if job.error is not None:
            raise job.error

    def replace_all(
        self,
        desired: DesiredState,
        tables: Iterable[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[RowChange]:
        """Make the server hold exactly ``desired`` in ``tables`` (default: its tables).

        Rows are matched by key; only the columns a desired row names are compared,
        so columns owned by another writer (``Physical_Port.status``) are kept. Rows
        of those tables absent from ``desired`` are deleted. Returns the changes made.
        """
        self.wait_synced(timeout)
        managed = list(tables) if tables is not None else list(desired)
        current = self.snapshot(managed)
        projected: dict[str, dict[str, Row]] = {}
        for table in managed:
            want = desired.get(table, {})
            projected[table] = {
                key: {c: v for c, v in row.items() if key not in want or c in want[key]}
                for key, row in current[table].items()
            }
        target = {table: dict(desired.get(table, {})) for table in managed}
        changes = diff(projected, target)
        if changes:
            self.apply(changes, timeout)
        return changes

    # -- the client thread -------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    break
            try:
                self._iterate()
            except Exception:  # never let the owner of the connection die silently
                log.exception("OVSDB %s: client loop failed; going on", self.remote)
                time.sleep(LOOP_TICK_MS / 1000)
        self._fail_all(OvsdbError(f"OVSDB client of {self.remote} is closed"))
        with self._lock:
            self._state = ConnectionState.CLOSED
            self._lock.notify_all()
        self._notify_state(ConnectionState.CLOSED)

    def _iterate(self) -> None:
        """One pass: read from the servers, report, advance the transaction, sleep.

        The rows' events go out before the state: ``wait_synced`` returns only once the
        listeners have had every row it mirrored, so an owner that reads the rows after
        it gets no late batch of what it already read.
        """
        events: list[RowEvent] = []
        for name, idl in self._idls.items():
            idl.run()
            with self._lock:
                events += self._dbs[name].sync(idl)
        for event in events:
            self._deliver(event)
        if events and self.on_batch is not None:
            try:
                self.on_batch(events)
            except Exception:  # a listener's bug must not stop the client
                log.exception("on_batch listener failed on %d events", len(events))
        self._update_state()
        try:
            self._step_job()
        except Exception as exc:  # a bug here must fail the caller, not hang it
            log.exception("OVSDB %s: transaction step failed", self.remote)
            if self._current is not None:
                self._finish(self._current, OvsdbError(f"internal error: {exc!r}"))
        poller = ovs.poller.Poller()
        for idl in self._idls.values():
            idl.wait(poller)
        if self._current is not None and self._current.txn is not None:
            self._current.txn.wait(poller)
        poller.fd_wait(self._wake_r, select.POLLIN)
        poller.timer_wait(LOOP_TICK_MS)
        poller.block()
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def _deliver(self, event: RowEvent) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(event)
        except Exception:  # a listener's bug must not stop the client
            log.exception("on_change listener failed on %s %s", event.table, event.uuid)

    def _notify_state(self, state: ConnectionState) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(state)
        except Exception:
            log.exception("on_state listener failed")

    def _update_state(self) -> None:
        synced = all(
            idl._session.is_connected() and self._dbs[name].synced_seqno is not None
            for name, idl in self._idls.items()
        )
        new = ConnectionState.SYNCED if synced else ConnectionState.CONNECTING
        with self._lock:
            if new is self._state:
                return
            self._state = new
            if new is ConnectionState.SYNCED:
                self._generation += 1
            self._lock.notify_all()
        log.info("OVSDB %s: %s", self.remote, new)
        self._notify_state(new)

    def _fail_all(self, error: OvsdbError) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, []
            current, self._current = self._current, None
        for job in ([current] if current else []) + jobs:
            job.error = error
            job.done.set()

    def _finish(self, job: _Job, error: OvsdbError | None) -> None:
        job.error = error
        self._current = None
        job.done.set()

    def _step_job(self) -> None:
        """Advance the current transaction, or start the next one."""
        job = self._current
        if job is None:
            with self._lock:
                if not self._jobs:
                    return
                job = self._current = self._jobs.pop(0)
        while job.pending:
            if time.monotonic() > job.deadline:
                what = "commit of" if job.txn is not None else "connection for"
                self._finish(
                    job, OvsdbError(f"timed out waiting for the {what} {self._describe(job)}")
                )
                return
            if not self._transaction_ready(job) or not self._commit_one(job):
                return
        self._finish(job, None)

    def _transaction_ready(self, job: _Job) -> bool:
        """Build the first pending database's transaction unless built; False when it
        cannot be now (not connected: the deadline still runs) or failed (job finished)."""
        if job.txn is not None:
            return True
        if self.state is not ConnectionState.SYNCED:
            return False
        database, changes = job.pending[0]
        try:
            if not job.validated:  # check every database before sending any
                for other, other_changes in job.pending[1:]:
                    self._build(other, other_changes).abort()
                job.validated = True
            job.txn = self._build(database, changes)
        except OvsdbError as err:
            self._finish(job, err)
            return False
        return True

    def _commit_one(self, job: _Job) -> bool:
        """Commit the first pending database's transaction; True once it is committed."""
        database = job.pending[0][0]
        status = job.txn.commit()
        if status == ovs.db.idl.Transaction.INCOMPLETE:
            return False
        if status == ovs.db.idl.Transaction.TRY_AGAIN:
            job.txn = None  # rebuilt against the resynced rows on a later pass
            return False
        if status not in (ovs.db.idl.Transaction.SUCCESS, ovs.db.idl.Transaction.UNCHANGED):
            reason = self._dbs[database].explain(job.txn.get_error())
            self._finish(job, OvsdbError(f"{self._describe(job)} failed: {reason}"))
            return False
        job.txn = None
        job.committed.append(database)
        job.pending.pop(0)
        return True

    def _describe(self, job: _Job) -> str:
        database, changes = job.pending[0]
        first = changes[0]
        more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
        done = f" ({', '.join(job.committed)} already committed)" if job.committed else ""
        return (
            f"transaction on {database} at {self.remote} "
            f"({first.op} {first.table} {first.key!r}{more}){done}"
        )

    def _build(self, database: str, changes: list[RowChange]) -> Any:
        return build_transaction(self._idls[database], self._dbs[database], changes)
