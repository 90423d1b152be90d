"""The host agent: the host's OVSDB in, VFP programming and Physical_Port rows out.

``HostAgent(switch, remote, host_name=...)`` is the thin edge around the pure planner
(docs/host.md). ``start()`` connects (``ovsdb.follower``) to the host's own ovsdb-server
(``ms_vtep``, ``ms_firewall``), reconciles the switch with a full plan of the rows
(against what the engine already holds, so a restarted agent flushes nothing) and
returns once that is programmed; afterwards one worker thread re-plans after each
batch of row changes and applies only the difference: a batch of mapping, port or
FW_Rules rows patches the last plan (``agent.incremental``), anything else (or what
cannot be patched exactly) re-plans every row (the units go to the switch through
``agent.apply``). As the switch's ``PortListener`` it writes ``Physical_Port`` rows when
VM ports come and go (``agent.port_rows``, ``agent.team_rows``; docs/southbound.md
"Ownership"), notes on them the reservations the switch scaled down (checked at each
wake of the worker, at least once a second), and hands the frames the engine punts
(ARP, DHCP, ND) to ``agent.responder``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from openhnv.agent.apply import apply_units
from openhnv.agent.incremental import PlanState, TableKey, touched_rows
from openhnv.agent.planner import (
    EMPTY_PLAN,
    ROUTES_TABLE,
    Plan,
    Unit,
    changes,
    plan,
    plan_of_engine,
    without,
)
from openhnv.agent.port_rows import (
    PORT_TABLE,
    port_row_changes,
    reservation_row_changes,
    scaled_reservations,
)
from openhnv.agent.responder import Responder
from openhnv.agent.rows import TABLES, Problem, clipped, read_catalog
from openhnv.agent.team_rows import team_row_changes
from openhnv.ovsdb.client import ConnectionState, OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.follower import Follower
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.server import SslFiles
from openhnv.vfp.errors import PolicyError
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.switch import HostSwitch

log = logging.getLogger(__name__)

RETRY_INTERVAL = 1.0  # seconds between retries of Physical_Port writes that failed
REFUSED_RETRY = 5.0  # seconds before units the switch refused are tried again
WRITE_TIMEOUT = 5.0
KEYLESS_EXEMPT = frozenset({"Physical_Locator_Set"})  # keyless until referred to: normal


@dataclasses.dataclass(frozen=True, slots=True)
class _Work:
    """What the worker takes at once: a full re-plan, rows to patch in, VM ports that
    came or went, team members' rows to write."""

    dirty: bool
    touched: set[TableKey]
    ports: dict[str, str | None]
    team: bool


class HostAgent:
    """Programs ``switch`` from the OVSDB at ``remote``; see the module docstring."""

    def __init__(
        self,
        switch: HostSwitch,
        remote: str,
        *,
        host_name: str,
        ssl: SslFiles | None = None,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.switch = switch
        self.remote = remote
        self.host_name = host_name
        self.write_timeout = write_timeout
        self._follower: Follower[_Work] = Follower(
            remote,
            name="hnv-agent",
            pending=self._pending,
            take=self._take,
            work=self._work,
            interval=RETRY_INTERVAL,
            on_batch=self._on_batch,
            on_state=self._on_state,
            ssl=ssl,
        )
        self._cond = self._follower.cond
        self._dirty = False  # every row must be re-planned
        self._touched: set[TableKey] = set()  # rows to patch in (agent.incremental)
        self._state: PlanState | None = None  # the worker's, from the last full plan
        self._pending_ports: dict[str, str | None] = {}  # port -> reported MAC, None = gone
        self._team_dirty = False  # the team members' rows to write again (agent.team_rows)
        self._scaled: dict[str, dict[str, str]] | None = None  # on the rows (port_rows)
        self._programmed: Plan = EMPTY_PLAN
        self._plan: Plan = EMPTY_PLAN  # the last plan (ARP answers from it)
        self._apply_problems: dict[tuple[str, str], Problem] = {}
        self._row_problems: list[Problem] = []
        self._counts: dict[str, int] = {}
        self._syncs = 0
        self._last_sync: float | None = None
        self._connected = False
        self._retry_at: float | None = None  # when to re-plan for refused units
        self._counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._responder = Responder(switch, lambda: self._plan, self._count)

    # -- life cycle --------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Connect, program the full state of the rows, then follow changes."""
        self._follower.start(self._first_sync, timeout)
        log.info("host agent %s: programmed from %s", self.host_name, self.remote)

    def stop(self) -> None:
        """Stop following the OVSDB (the switch keeps what it was programmed with)."""
        self._follower.stop()

    def _first_sync(self, client: OvsdbClient) -> None:
        held = self.switch.inspect(plan_of_engine)  # reconcile, never flush
        pas = tuple(self.switch.provider_addresses())
        self._programmed = dataclasses.replace(held, provider_addresses=pas)
        with self._cond:  # what came so far is in the rows planned next
            self._dirty, self._touched = False, set()
            self._connected = True  # a late SYNCED callback is not a reconnect
        self._reconcile()
        self.switch.set_listener(self)
        self._detach_missing_ports()
        self.team_changed()  # what the driver reported before the listener was set

    # -- reports -----------------------------------------------------------------------
    def problems(self) -> list[dict[str, str]]:
        """Rows skipped (table, uuid, key, reason), and rows the engine refused."""
        with self._cond:
            found = [*self._row_problems, *self._apply_problems.values()]
        return [p.as_dict() for p in found]

    def status(self) -> dict[str, Any]:
        """Connection, rows per table, ports, syncs and the time of the last one."""
        reported = self.switch.ports()
        with self._cond:
            programmed = set(self._programmed.ports)
            return {
                "host": self.host_name,
                "remote": self.remote,
                "connected": self._connected,
                "rows": dict(self._counts),
                "ports": {
                    p: {"programmed": p in programmed, "attached": p in reported}
                    for p in sorted(programmed | set(reported))
                },
                "mappings": len(self._programmed.mappings),
                "provider_addresses": [pa.address for pa in self._programmed.provider_addresses],
                "syncs": self._syncs,
                "last_sync": self._last_sync,
                "problems": len(self._row_problems) + len(self._apply_problems),
                "counters": self.counters(),
            }

    def counters(self) -> dict[str, int]:
        """ARP, DHCP and ND requests, replies, unanswered; unsolicited RAs; Physical_Port
        rows written; other punts."""
        with self._counter_lock:
            return dict(self._counters)

    def _count(self, name: str, n: int = 1) -> None:
        with self._counter_lock:
            self._counters[name] += n

    @property
    def syncs(self) -> int:
        """How many times the rows were planned and programmed."""
        with self._cond:
            return self._syncs

    def plan(self) -> Plan:
        """The last plan made from the rows."""
        with self._cond:
            return self._plan

    # -- OvsdbClient callbacks (client thread: only hand work over) ----------------------
    def _on_batch(self, events: list[RowEvent]) -> None:
        touched = touched_rows(events)
        if touched == set():
            return  # only tables the agent does not read
        with self._cond:
            if touched is None:
                self._dirty = True
            else:
                self._touched |= touched
            self._cond.notify_all()

    def _on_state(self, state: ConnectionState) -> None:
        with self._cond:
            was, self._connected = self._connected, state is ConnectionState.SYNCED
            if self._connected and not was:
                self._dirty = True  # a reconnect: look again (the mirror reports changes)
            self._cond.notify_all()

    # -- PortListener (driver / packet threads) ----------------------------------------
    def port_added(self, port: str, mac: str) -> None:
        with self._cond:
            self._pending_ports[port] = mac
            self._cond.notify_all()
        self._responder.port_added(port)  # a VM that came gets a router advertisement

    def port_removed(self, port: str) -> None:
        with self._cond:
            self._pending_ports[port] = None
            self._cond.notify_all()

    def team_changed(self) -> None:
        with self._cond:
            self._team_dirty = True
            self._cond.notify_all()

    def punted(self, port: str, frame: bytes, reason: str) -> None:
        self._responder.punted(port, frame, reason)

    # -- the worker --------------------------------------------------------------------
    def _pending(self) -> bool:
        return self._dirty or self._team_dirty or bool(self._touched or self._pending_ports)

    def _take(self) -> _Work:
        """The queued work, handed over (``cond`` held)."""
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._retry_at, self._dirty = None, True
        dirty, self._dirty = self._dirty, False
        touched, self._touched = self._touched, set()
        ports, self._pending_ports = self._pending_ports, {}
        team, self._team_dirty = self._team_dirty, False
        return _Work(dirty, touched, ports, team)

    def _work(self, work: _Work) -> None:
        try:
            if work.ports:
                self._write_ports(work.ports)
            if work.team:
                self._write_team()
            if work.dirty:
                self._reconcile()
            elif work.touched:
                self._reconcile_rows(work.touched)
            self._write_reservations(bool(work.ports) or work.dirty)
            self._responder.advertise_routers(time.monotonic())
        except Exception:  # never let bad data or a bug stop the agent
            log.exception("host agent %s: sync failed; retrying", self.host_name)
            with self._cond:
                self._dirty = True
            time.sleep(RETRY_INTERVAL)

    def _reconcile(self) -> None:
        """Plan the current rows and apply the difference with what is programmed."""
        self._state = None
        client = self._require_client()
        snapshot = client.snapshot(TABLES)
        catalog = read_catalog(snapshot)
        new = plan(catalog)
        problems = [self._named(client, p) for p in new.problems]
        problems += self._keyless_rows(client, snapshot)
        pas = new.provider_addresses
        if pas != self._programmed.provider_addresses:
            try:
                self.switch.set_provider_addresses(pas)
            except (VSwitchError, PolicyError) as err:
                problems.append(Problem("Provider_Address", "", "*", f"refused: {err}"))
                pas = self._programmed.provider_addresses
        units = changes(self._programmed, new)
        failed = self._apply(units)
        with self._cond:
            self._programmed = dataclasses.replace(without(new, failed), provider_addresses=pas)
            self._count("full_syncs")
            self._plan = new
            before, self._row_problems = self._row_problems, problems
            for unit in units:
                if unit not in failed:
                    self._apply_problems.pop((unit.table, unit.key), None)
            for gone in [k for k in self._apply_problems if not _still_wanted(new, k)]:
                del self._apply_problems[gone]
            self._counts = catalog.counts()
            self._retry_at = time.monotonic() + REFUSED_RETRY if failed else None
            self._syncs += 1
            self._last_sync = time.time()
        for p in set(problems) - set(before):
            log.warning("skipping %s %s (%s): %s", p.table, clipped(repr(p.key)), p.uuid, p.reason)
        for p in set(before) - set(problems):
            log.info("%s %s is usable again", p.table, clipped(repr(p.key)))
        if units:
            log.info("host agent %s: %d change(s) programmed", self.host_name, len(units))
        if not failed and pas == new.provider_addresses:
            self._state = PlanState(catalog, new)  # what later batches patch

    def _reconcile_rows(self, touched: set[TableKey]) -> None:
        """Re-plan only the ``touched`` rows when the last full plan is fully programmed
        and the batch can be patched exactly (``agent.incremental``); else every row."""
        state, self._state = self._state, None  # spoiled until update() succeeds
        if state is None or self._apply_problems:
            self._reconcile()
            return
        client = self._require_client()
        by_table: dict[str, list[str]] = {}
        for table, key in touched:
            by_table.setdefault(table, []).append(key)
        rows = {
            (table, key): row
            for table, keys in by_table.items()
            for key, row in client.keyed_rows(table, keys).items()
        }
        patch = state.update(rows)
        if patch is None:
            self._reconcile()
            return
        failed = self._apply(patch.units)
        pas = self._programmed.provider_addresses
        with self._cond:
            programmed = without(patch.plan, failed) if failed else patch.plan
            self._programmed = dataclasses.replace(programmed, provider_addresses=pas)
            self._plan = patch.plan
            self._count("incremental_syncs")
            self._counts = state.counts()
            self._retry_at = time.monotonic() + REFUSED_RETRY if failed else None
            self._syncs += 1
            self._last_sync = time.time()
        if patch.units:
            log.info("host agent %s: %d change(s) programmed", self.host_name, len(patch.units))
        if not failed:
            self._state = state

    def _apply(self, units: list[Unit]) -> list[Unit]:
        """Apply the units; record the refused ones as problems of their rows."""
        refused = apply_units(self.switch, units)
        for unit, reason in refused:
            problem = Problem(unit.table, self._uuid(unit.table, unit.key), unit.key, reason)
            log.warning("%s %s: %s", unit.table, clipped(repr(unit.key)), problem.reason)
            with self._cond:
                self._apply_problems[(unit.table, unit.key)] = problem
        return [unit for unit, _ in refused]

    # -- Physical_Port rows ------------------------------------------------------------
    def _write_ports(self, ports: Mapping[str, str | None]) -> None:
        client = self._require_client()
        writes = port_row_changes(ports, client.snapshot([PORT_TABLE])[PORT_TABLE])
        if not writes:
            return
        try:
            client.apply(writes, timeout=self.write_timeout)
        except OvsdbError as err:
            log.warning("Physical_Port rows not written (will retry): %s", err)
            with self._cond:
                for port, mac in ports.items():
                    self._pending_ports.setdefault(port, mac)
            return
        self._count("port_rows_written", len(writes))

    def _write_reservations(self, look: bool) -> None:
        """The scaled reservations onto the VM ports' rows (``reservation_row_changes``):
        the rows are read when what the switch says changed, or ``look`` (ports came or
        went, a reconnect)."""
        scaled = scaled_reservations(self.switch.qos_status())
        if scaled == self._scaled and not look:
            return
        client = self._require_client()
        writes = reservation_row_changes(scaled, client.snapshot([PORT_TABLE])[PORT_TABLE])
        if writes:
            try:
                client.apply(writes, timeout=self.write_timeout)
            except OvsdbError as err:
                log.warning("reservation status not written (will retry): %s", err)
                self._scaled = None
                return
            self._count("reservation_rows_written", len(writes))
        self._scaled = scaled

    def _write_team(self) -> None:
        """The team members' Physical_Port rows (agent.team_rows), retried on failure."""
        client = self._require_client()
        rows = client.snapshot([PORT_TABLE])[PORT_TABLE]
        writes = team_row_changes(self.switch.team_status(), rows)
        if not writes:
            return
        try:
            client.apply(writes, timeout=self.write_timeout)
        except OvsdbError as err:
            log.warning("team member rows not written (will retry): %s", err)
            self.team_changed()
            return
        self._count("team_rows_written", len(writes))

    def _detach_missing_ports(self) -> None:
        """Rows that say attached for ports the switch does not have (host restarted)."""
        client = self._require_client()
        present = self.switch.ports()
        rows = client.snapshot([PORT_TABLE])[PORT_TABLE]
        with self._cond:
            for port, row in rows.items():
                status = row.get("status")
                attached = isinstance(status, Mapping) and status.get("attached") == "true"
                if attached and port not in present and port not in self._pending_ports:
                    self._pending_ports[port] = None
            self._cond.notify_all()

    # -- helpers -----------------------------------------------------------------------
    def _require_client(self) -> OvsdbClient:
        client = self._follower.client
        if client is None:
            raise OvsdbError("the host agent is not started")
        return client

    def _uuid(self, table: str, key: str) -> str:
        client = self._follower.client
        if client is None or table not in TABLES:
            return ""
        return client.uuid_of(table, key) or ""

    def _named(self, client: OvsdbClient, problem: Problem) -> Problem:
        if problem.uuid or problem.table not in TABLES:
            return problem
        found = client.uuid_of(problem.table, problem.key) or ""
        return Problem(problem.table, found, problem.key, problem.reason)

    @staticmethod
    def _keyless_rows(
        client: OvsdbClient, snapshot: Mapping[str, Mapping[str, object]]
    ) -> list[Problem]:
        """Rows the mirror could not name (no key): reported, never programmed."""
        out: list[Problem] = []
        for table in TABLES:
            if table in KEYLESS_EXEMPT:
                continue
            rows = client.rows(table)
            if len(rows) == len(snapshot.get(table, {})):
                continue
            for row_uuid in rows:
                if client.key_of(table, row_uuid) is None:
                    reason = "the row has no key (its key columns are empty or malformed)"
                    out.append(Problem(table, row_uuid, "", reason))
        return out


def _still_wanted(new: Plan, key: tuple[str, str]) -> bool:
    table, name = key
    if table == PORT_TABLE:
        return name in new.ports
    if table == ROUTES_TABLE:
        return name in new.routes
    return any(
        f"{m.vsid}/{m.customer_mac}/{m.customer_address}" == name for m in new.mappings.values()
    )
