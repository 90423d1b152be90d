"""One host's southbound link: the OVSDB client that keeps a host's rows equal to its
desired state, in a thread of its own.

``HostLink`` is handed each new desired state of its host with a sequence number and
the (table, key) pairs that may have changed (``submit``). Its thread sends only the
rows that differ, as one transaction per batch (changes submitted while a transaction
is in flight are coalesced into the next), and reports every commit with the sequence
number it reached. After each (re)connect, and after any refused transaction, it
resyncs in full: it reads the host's actual rows and sends the difference
(``resync_changes``). Rows the host agent owns are left alone: ``Physical_Port`` rows
the controller never bound (``vlan_bindings`` empty) and every ``status`` column.

The OVSDB client reconnects on its own with exponential backoff; while it is not
connected the link probes the remote itself (socket exists? TCP connect?) so the
server's ``configurationState`` can say why. While connected and idle it compares the
host's rows with its state in full every ``audit_every`` seconds (30 by default) and
repairs what someone else changed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from openhnv.controller.compiler.compile import diff_keys
from openhnv.controller.compiler.host_rows import TABLES
from openhnv.controller.southbound.status import (
    HOST_NOT_CONNECTED,
    INVALID_MANAGEMENT_ADDRESS,
    POLICY_CONFIGURATION_FAILURE,
    Remote,
)
from openhnv.ovsdb.client import ConnectionState, OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import DesiredState, Row, RowChange, diff
from openhnv.ovsdb.server import SslFiles

log = logging.getLogger(__name__)

PORT_TABLE = "Physical_Port"
Changed = Mapping[str, set[str]]  # table -> keys whose row may differ
TICK = 0.5  # seconds between looks at the connection while it is down
IDLE_TICK = 5.0  # while connected: every change, commit and state change wakes the link
PROBE_AFTER = 1.0  # seconds without a connection before probing the remote
PROBE_EVERY = 2.0
PROBE_TIMEOUT = 1.0
APPLY_TIMEOUT = 10.0
RETRY_MIN, RETRY_MAX = 0.25, 8.0  # backoff after a refused transaction, seconds
AUDIT_EVERY = 30.0  # seconds between full comparisons of a connected host with its state


def resync_changes(actual: DesiredState, desired: DesiredState) -> list[RowChange]:
    """The changes that make a host holding ``actual`` hold ``desired`` (every table).

    Rows match by key; only the columns a desired row names are compared, so columns
    another writer owns survive. Rows absent from ``desired`` are deleted, except the
    host agent's unbound ``Physical_Port`` rows.
    """
    projected: dict[str, dict[str, Row]] = {}
    target: dict[str, dict[str, Row]] = {}
    for table in TABLES:
        want = desired.get(table, {})
        rows: dict[str, Row] = {}
        for key, row in actual.get(table, {}).items():
            if key in want:
                rows[key] = {c: v for c, v in row.items() if c in want[key]}
            elif table == PORT_TABLE and not row.get("vlan_bindings"):
                continue  # the agent's port, not bound by the controller yet
            else:
                rows[key] = row
        projected[table] = rows
        target[table] = dict(want)
    return diff(projected, target)


def probe(remote: Remote, timeout: float = PROBE_TIMEOUT) -> str:
    """Why ``remote`` gives no OVSDB session, as one sentence (a small socket probe)."""
    if remote.kind == "unix":
        if not os.path.exists(remote.path):
            return f"not connected to {remote}: no socket at {remote.path} (is the host running?)"
        address: str | tuple[str, int] = remote.path
        family = socket.AF_UNIX
    else:
        address = (remote.ip, remote.port)
        family = socket.AF_INET6 if ":" in remote.ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        return f"not connected to {remote}: {reason.lower()}"
    if remote.kind == "ssl":
        return (
            f"{remote} accepts TCP connections but no OVSDB session comes up: the SSL "
            "handshake is refused (is the host's certificate from the PKI given to "
            "hnv controller --pki, and does it trust this controller's CA?)"
        )
    return (
        f"{remote} accepts connections but no OVSDB session comes up (is it an "
        "ovsdb-server holding ms_vtep and ms_firewall?)"
    )


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What a link reports: connection, the last committed sequence, the last error."""

    server_id: str
    remote: str
    connected: bool
    committed_seq: int
    error: str | None
    code: str  # what ``error`` is about (status.HOST_NOT_CONNECTED, ...)


@dataclass
class _Pacing:
    """When the link may send again after a refusal, and when it last probed."""

    retry_at: float = 0.0
    backoff: float = RETRY_MIN
    last_probe: float = 0.0

    def refused(self, now: float) -> None:
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, RETRY_MAX)


@dataclass(frozen=True, slots=True)
class _Work:
    """One send: the desired state (numbered), its dirty keys, and whether in full."""

    state: DesiredState
    seq: int
    dirty: dict[str, set[str]]
    full: bool
    generation: int


class HostLink:
    """Keeps one host's OVSDB equal to the desired state it is given."""

    def __init__(
        self,
        server_id: str,
        remote: Remote,
        *,
        ssl: SslFiles | None = None,
        on_status: Callable[[str], None] | None = None,
        on_port: Callable[[str, RowEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit_every: float | None = AUDIT_EVERY,
    ) -> None:
        self.server_id = server_id
        self.audit_every = audit_every
        self.remote = remote
        self.ssl = ssl
        self.on_status = on_status
        self.on_port = on_port
        self.clock = clock
        self._cond = threading.Condition()
        self._closing = False
        self._desired: DesiredState | None = None
        self._desired_seq = 0
        self._dirty: dict[str, set[str]] = {}
        self._resync = True
        self._applied: DesiredState = {}
        self._committed_seq = 0
        self._synced_generation = 0
        self._audited_at = clock()
        self._connected = False
        self._disconnected_at = clock()
        self._error: str | None = None
        self._code = HOST_NOT_CONNECTED
        self._client: OvsdbClient | None = None
        self._thread = threading.Thread(target=self._run, name=f"link {server_id}", daemon=True)

    # -- the publisher's side ----------------------------------------------------------
    def start(self) -> HostLink:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and the OVSDB client (failing a transaction in flight); idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        client = self._client
        if client is not None:
            client.close()
        if self._thread.is_alive():
            self._thread.join()

    def submit(self, state: DesiredState, seq: int, changed: Changed | None = None) -> None:
        """Make ``state`` (numbered ``seq``) the host's desired state.

        ``changed`` names the keys that may differ from the previous state; None means
        anything may have changed (a full resync follows).
        """
        with self._cond:
            self._desired = state
            self._desired_seq = seq
            if changed is None:
                self._resync = True
            else:
                for table, keys in changed.items():
                    self._dirty.setdefault(table, set()).update(keys)
            self._cond.notify_all()

    def status(self) -> LinkStatus:
        with self._cond:
            return LinkStatus(
                server_id=self.server_id,
                remote=str(self.remote),
                connected=self._connected,
                committed_seq=self._committed_seq,
                error=self._error,
                code=self._code,
            )

    # -- callbacks from the OVSDB client thread ----------------------------------------
    def _state_changed(self, state: ConnectionState) -> None:
        with self._cond:
            self._connected = state is ConnectionState.SYNCED
            if not self._connected:
                self._disconnected_at = self.clock()
            self._cond.notify_all()
        self._report()

    def _row_changed(self, event: RowEvent) -> None:
        if event.table == PORT_TABLE and self.on_port is not None:
            self.on_port(self.server_id, event)

    def _report(self) -> None:
        if self.on_status is not None:
            try:
                self.on_status(self.server_id)
            except Exception:
                log.exception("link %s: status listener failed", self.server_id)

    def _set_error(self, error: str | None, code: str = HOST_NOT_CONNECTED) -> None:
        with self._cond:
            changed = (error, code) != (self._error, self._code)
            self._error, self._code = error, code
        if changed:
            self._report()

    # -- the link thread ---------------------------------------------------------------
    def _run(self) -> None:
        if self.remote.kind == "ssl" and self.ssl is None:
            self._set_error(
                f"{self.remote} needs SSL: start hnv controller with --pki DIR",
                INVALID_MANAGEMENT_ADDRESS,
            )
            return
        try:
            client = OvsdbClient(
                str(self.remote),
                ssl=self.ssl,
                on_change=self._row_changed,
                on_state=self._state_changed,
            )
        except OvsdbError as err:
            self._set_error(str(err), INVALID_MANAGEMENT_ADDRESS)
            return
        self._client = client
        client.start()
        try:
            self._loop(client)
        finally:
            client.close()
            with self._cond:
                self._connected = False

    def _has_work(self, client: OvsdbClient) -> bool:
        """Something to send (call with the lock held)."""
        return (
            self._connected
            and self._desired is not None
            and (
                bool(self._dirty)
                or self._resync
                or self._desired_seq != self._committed_seq
                or client.generation != self._synced_generation
            )
        )

    def _loop(self, client: OvsdbClient) -> None:
        pacing = _Pacing()
        while self._wait_for_work(client, pacing):
            now = self.clock()
            if client.state is not ConnectionState.SYNCED:
                self._probe_if_down(now, pacing)
                continue
            if now < pacing.retry_at:
                continue
            work = self._take_work(client, now)
            if work is not None:
                self._send(client, work, pacing)

    def _wait_for_work(self, client: OvsdbClient, pacing: _Pacing) -> bool:
        """Sleep until there is something to do; False once the link is closing."""
        with self._cond:
            # Connected and idle, only an audit is due; otherwise probe/retry each TICK.
            idle = IDLE_TICK if self._connected and not self._resync else TICK
            if self.audit_every is not None:
                due = self._audited_at + self.audit_every - self.clock()
                idle = min(idle, max(due, TICK))
            pause = pacing.retry_at - self.clock()
            if pause > 0:  # after a refusal nothing is sent before retry_at
                self._cond.wait_for(lambda: self._closing, timeout=pause)
            else:
                self._cond.wait_for(lambda: self._closing or self._has_work(client), timeout=idle)
            return not self._closing

    def _probe_if_down(self, now: float, pacing: _Pacing) -> None:
        """Down for a while: say why the remote does not answer (every PROBE_EVERY)."""
        with self._cond:
            down_for = now - self._disconnected_at
        if down_for >= PROBE_AFTER and now - pacing.last_probe >= PROBE_EVERY:
            pacing.last_probe = now
            self._set_error(probe(self.remote))

    def _take_work(self, client: OvsdbClient, now: float) -> _Work | None:
        """What to send now (the dirty keys and resync flag are taken), or None."""
        if self.audit_every is not None and now - self._audited_at >= self.audit_every:
            with self._cond:
                self._resync = True  # repair rows changed behind the controller's back
        generation = client.generation
        with self._cond:
            if self._desired is None:
                return None
            state, seq, dirty = self._desired, self._desired_seq, self._dirty
            full = self._resync or generation != self._synced_generation
            if not full and not dirty and seq == self._committed_seq:
                return None
            self._dirty = {}
            self._resync = False
        return _Work(state, seq, dirty, full, generation)

    def _send(self, client: OvsdbClient, work: _Work, pacing: _Pacing) -> None:
        """Send ``work``'s changes; a refusal is reported and retried after a backoff."""
        try:
            if work.full:
                changes = resync_changes(client.snapshot(TABLES), work.state)
            else:
                changes = diff_keys(self._applied, work.state, work.dirty)
            if changes:
                client.apply(changes, APPLY_TIMEOUT)
        except OvsdbError as err:
            with self._cond:
                self._resync = True
            if client.state is ConnectionState.SYNCED:
                log.warning("host %s refused a transaction: %s", self.server_id, err)
                self._set_error(
                    f"{self.remote} refused the controller's rows: {err}",
                    POLICY_CONFIGURATION_FAILURE,
                )
                pacing.refused(self.clock())
            return
        with self._cond:
            self._applied = work.state
            self._committed_seq = work.seq
            if work.full:
                self._synced_generation = work.generation
        if work.full:
            self._audited_at = self.clock()
            if changes and work.generation == self._synced_generation:
                log.info("host %s: full resync sent %d changes", self.server_id, len(changes))
        pacing.backoff = RETRY_MIN
        log.debug("host %s: seq %d committed (%d changes)", self.server_id, work.seq, len(changes))
        with self._cond:
            self._error = None
        self._report()
