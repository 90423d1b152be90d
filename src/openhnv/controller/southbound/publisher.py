"""The southbound publisher: northbound changes -> compiled rows -> every host that needs them.

``Publisher(service)`` subscribes to the ``ControllerService``; REST requests only queue
the refs they changed, so they never wait for a host. One publisher thread then:

- compiles: NICs-only changes through ``Index.replace_nic`` and the compiler's
  incremental ``update``; anything else from a fresh snapshot (still recompiling only
  the affected hosts). Changes queued meanwhile are compiled together.
- hands each affected host's new state, numbered by a sequence, to its ``HostLink``
  (``hosts.HostLinks``: one link per server, at its management address, all on one
  ``SouthboundLoop``).
- binds NICs: a host agent's ``Physical_Port`` row named by a NIC's instanceId with
  ``status:attached=true`` binds a NIC without ``server`` to that host (stored); a NIC
  whose ``server`` names another host keeps it (northbound wins) and shows a ``Warning``.
- reports each server's ``configurationState`` (a ``Warning`` / ``ProviderAddressMoved``
  while the host's team member rows say a member has no carrier or a PA moved), a NIC's
  ``Warning`` / ``ReservationScaled`` while its port row says its host scaled its
  reservation down (the uplink is oversubscribed), and each NIC's ``provisioningState``:
  ``Updating`` after its PUT, ``Succeeded`` once every host that needs its rows has
  committed them, ``Failed`` (the compiler's reason in ``configurationState``); the
  states are queued and written once per step by ``reports.Reports``.

At start it compiles everything and every link resyncs its host in full, so a restarted
controller converges every host to the stored northbound state. See docs/publisher.md.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from openhnv.controller.compiler.compile import Compiler, affected_hosts, collector_paused
from openhnv.controller.compiler.documents import ref_key
from openhnv.controller.compiler.index import Index
from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.service import FAILED, SUCCEEDED, ControllerService
from openhnv.controller.southbound.binding import PortBinding
from openhnv.controller.southbound.hosts import HostLinks
from openhnv.controller.southbound.link import AUDIT_EVERY, LinkStatus
from openhnv.controller.southbound.loop import SouthboundLoop
from openhnv.controller.southbound.provisioning import Pending, Waiting
from openhnv.controller.southbound.reports import Reports
from openhnv.controller.southbound.status import (
    FAILURE,
    POLICY_COMPILE_FAILURE,
    PROVIDER_ADDRESS_MOVED,
    SUCCESS,
    WARNING,
    configuration_state,
    host_state,
    is_team_report,
    team_warning,
)
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import DesiredState, RowChange
from openhnv.ovsdb.server import SslFiles

log = logging.getLogger(__name__)

NIC_COLLECTION = "networkinterfaces"
TICK = 1.0  # seconds; the publisher thread also wakes on every event
COMPILE_DUTY = 2.0  # pause after a compile, in multiples of its duration


def _collection(ref: str) -> str:
    return ref.strip("/").split("/", 1)[0].casefold()


def changed_keys(changes: Iterable[RowChange]) -> dict[str, set[str]]:
    """Table -> keys touched by ``changes``."""
    out: dict[str, set[str]] = {}
    for change in changes:
        out.setdefault(change.table, set()).add(change.key)
    return out


def _nic_etags(docs: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """NIC key -> (ref, etag) of NIC GET documents."""
    out: dict[str, tuple[str, str | None]] = {}
    for doc in docs:
        ref = str(doc.get("resourceRef", ""))
        etag = doc.get("etag")
        out[ref_key(ref)] = (ref, etag if isinstance(etag, str) else None)
    return out


class Publisher:
    """Publishes the service's northbound state to every host over OVSDB."""

    def __init__(
        self,
        service: ControllerService,
        *,
        ssl: SslFiles | None = None,
        clock: Callable[[], float] = time.time,
        audit_every: float | None = AUDIT_EVERY,
    ) -> None:
        self.service = service
        self.clock = clock
        self._cond = threading.Condition()
        self._stopping = False
        self._refs: dict[str, str] = {}  # casefolded ref -> ref, queued NB changes
        self._ports: list[tuple[str, RowEvent]] = []
        self._statuses: set[str] = set()
        self._teams: dict[str, dict[str, dict[str, Any]]] = {}  # server -> member -> status
        self._loop = SouthboundLoop()
        self._hosts = HostLinks(
            self._loop,
            ssl=ssl,
            audit_every=audit_every,
            on_status=self._link_changed,
            on_port=self._port_changed,
        )
        self._index: Index | None = None
        self._compiler: Compiler | None = None
        self._seq = 0
        self._pending = Waiting()  # NIC key -> the host commits it waits for
        self._binding = PortBinding(service)
        self._reports = Reports(service, self._binding, clock)
        self._idle = True
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Publisher:
        """Subscribe to the service and start publishing (returns at once)."""
        self.service.track_provisioning = True
        self.service.subscribe(self._nb_changed)
        self._loop.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the publisher thread and close every host link."""
        self.service.unsubscribe(self._nb_changed)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._hosts.close()
        self._loop.stop()

    def links(self) -> dict[str, LinkStatus]:
        """The status of every host link, by server resourceId."""
        return self._hosts.statuses()

    def summary(self) -> dict[str, int]:
        """Counts for diagnostics: hosts, connected, in sync (committed their latest state),
        and transactions sent to hosts since this publisher started."""
        seqs = self._hosts.sequences()
        links = list(self._hosts.links.items())
        statuses = [(server_id, link.status()) for server_id, link in links]
        return {
            "hosts": len(links),
            "connected": sum(1 for _, st in statuses if st.connected),
            "inSync": sum(
                1
                for server_id, st in statuses
                if st.connected and st.committed_seq >= seqs.get(server_id, 0) > 0
            ),
            "verified": sum(1 for _, link in links if link.verified),
            "transactions": sum(link.transactions for _, link in links),
        }

    def wait_converged(self, timeout: float = 10.0) -> bool:
        """True once nothing is queued and every connected host committed its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                queued = bool(self._refs or self._ports) or not self._idle
            seqs = self._hosts.sequences()
            if not queued and all(
                link.status().committed_seq >= seqs.get(server_id, 0)
                for server_id, link in list(self._hosts.links.items())
            ):
                return True
            time.sleep(0.02)
        return False

    # -- events (other threads) --------------------------------------------------------
    def _nb_changed(self, refs: list[str]) -> None:
        with self._cond:
            for ref in refs:
                self._refs[ref_key(ref)] = ref
            self._idle = False
            self._cond.notify_all()

    def _port_changed(self, server_id: str, event: RowEvent) -> None:
        with self._cond:
            team = self._teams.setdefault(server_id, {})
            status = None if event.new is None else event.new.get("status")
            if is_team_report(event.new) and event.key is not None and isinstance(status, dict):
                team[event.key] = {str(k): v for k, v in status.items()}
                self._statuses.add(server_id)  # its configurationState may change
            elif event.key in team:
                del team[event.key]
                self._statuses.add(server_id)
            else:
                self._ports.append((server_id, event))
            self._cond.notify_all()

    def _link_changed(self, server_id: str) -> None:
        with self._cond:
            self._statuses.add(server_id)
            self._cond.notify_all()

    # -- the publisher thread ----------------------------------------------------------
    def _run(self) -> None:
        self._start()
        compile_after = 0.0  # monotonic time before which queued refs wait (duty cycle)
        while (taken := self._take(compile_after)) is not None:
            refs, ports, statuses = taken
            started = time.monotonic()
            try:
                if refs:
                    self._compile(refs)
                    # Under a stream of changes, leave the interpreter to the REST service
                    # for COMPILE_DUTY times as long as this compile took: later changes
                    # queue meanwhile and compile together.
                    compile_after = time.monotonic() + (time.monotonic() - started) * COMPILE_DUTY
                if ports:
                    for ref, message in self._binding.bind(ports, self._get):
                        self._reports.warn(ref, message)
                    for ref in self._binding.scale(ports):
                        self._reports.rescale(ref)
                self._progress(statuses if not refs else set(self._hosts.links))
                self._reports.flush()
            except Exception:  # never let a bug stop publishing for good
                log.exception("publisher: step failed; recompiling everything")
                try:
                    self._full()
                except Exception:
                    log.exception("publisher: full compile failed")

    def _start(self) -> None:
        """The first full compile, after learning what a previous leader showed."""
        try:
            self._reports.learn()
            self._full()
        except Exception:
            log.exception("publisher: first compile failed")

    def _take(
        self, compile_after: float
    ) -> tuple[list[str], list[tuple[str, RowEvent]], set[str]] | None:
        """Wait for work; the refs to compile (none before ``compile_after``), the port
        events and the hosts whose status changed. None once stopping."""
        with self._cond:
            self._idle = not (self._refs or self._ports or self._statuses)
            while not self._stopping:
                wait = compile_after - time.monotonic() if self._refs else TICK
                if self._ports or self._statuses or (self._refs and wait <= 0):
                    break
                if not self._cond.wait(min(max(wait, 0.001), TICK)) and self._reports.unflushed:
                    break  # states the store refused earlier: try them again
            if self._stopping:
                return None
            compiling = time.monotonic() >= compile_after
            refs = list(self._refs.values()) if compiling else []
            if compiling:
                self._refs = {}
            ports, statuses = self._ports, self._statuses
            self._ports, self._statuses = [], set()
            self._idle = False
        return refs, ports, statuses

    def _full(self) -> None:
        """Compile everything and give every host its whole state (start, recovery).

        The collector is paused throughout: this builds millions of long-lived, acyclic
        objects, and its scans of them cost a third of the time (100,000 NICs).
        """
        with collector_paused():
            snapshot = self.service.snapshot(read_only=True)
            index = Index.build(snapshot)
            compiler = Compiler(index)
            compiled = compiler.datacenter()
            self._index, self._compiler = index, compiler
            self._seq += 1
            self._servers(snapshot.get("servers", []))
            self._binding.learn(snapshot.get("networkInterfaces", []))
            for server_id, state in compiled.hosts.items():
                self._give(server_id, state, None)
            self._evaluate(_nic_etags(snapshot.get("networkInterfaces", [])), None)
        gc.freeze()  # the compiled rows live long: keep them out of later collections
        self._progress(set(self._hosts.links))
        self._reports.flush()

    def _compile(self, refs: Sequence[str]) -> None:
        assert self._index is not None
        assert self._compiler is not None
        old = self._index
        etags: dict[str, tuple[str, str | None]] = {}
        if all(_collection(ref) == NIC_COLLECTION for ref in refs):
            index = old
            for ref in refs:
                doc = self._get(ref)
                index = index.replace_nic(ref, doc)
                if doc is None:
                    self._pending.drop(ref_key(ref))
                    self._binding.conflicts.pop(ref_key(ref), None)
                    self._binding.scaled.pop(ref_key(ref), None)
                else:
                    self._binding.learn([doc])
                    etags[ref_key(ref)] = (ref, doc.get("etag"))
            servers_changed = False
        else:
            snapshot = self.service.snapshot(consistent=False, read_only=True)
            index = Index.build(snapshot)
            self._binding.learn(snapshot.get("networkInterfaces", []))
            etags = _nic_etags(snapshot.get("networkInterfaces", []))
            for key in set(self._pending.keys()) - etags.keys():
                self._pending.drop(key)
            servers_changed = True
        update = self._compiler.update(index, refs)
        self._index, self._compiler = index, update.compiler
        self._seq += 1
        if servers_changed:
            self._servers(snapshot.get("servers", []))
        for server_id, state in update.states.items():
            if server_id in index.hosts:
                self._give(server_id, state, changed_keys(update.changes.get(server_id, [])))
        if servers_changed:  # new servers, and links re-created for a new address
            for server_id in index.hosts:
                if server_id not in update.states and not self._hosts.has_state(server_id):
                    self._give(server_id, update.compiler.host_state(server_id), None)
            # Only NICs whose fate this change can alter: changed ones, ones with a
            # problem before or now, ones still waiting, ones on a host it touched.
            touched = set(update.states)
            keys = {ref_key(r) for r in refs if _collection(r) == NIC_COLLECTION}
            keys |= index.nic_problems.keys() | old.nic_problems.keys() | self._pending.keys()
            keys |= {k for k, nic in index.nics.items() if nic.server_id in touched}
            nic_refs = {ref_key(r) for r in refs if _collection(r) == NIC_COLLECTION}
            self._evaluate({k: etags[k] for k in keys if k in etags}, None, nic_refs)
        else:
            self._evaluate(etags, old, etags.keys())

    def _get(self, ref: str) -> dict[str, Any] | None:
        try:
            return self.service.get(ref, consistent=False)
        except ApiError:
            return None

    def _give(
        self, server_id: str, state: DesiredState, changed: dict[str, set[str]] | None
    ) -> None:
        """Record ``state`` as the host's desired state at the current sequence."""
        digest = self._compiler.host_digest(server_id) if self._compiler is not None else None
        self._hosts.give(server_id, state, self._seq, changed, digest)

    def _servers(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """Open, keep, re-open or close one link per server (``hosts.HostLinks``)."""
        for server_id in self._hosts.servers(docs):
            self._reports.forget(f"/servers/{server_id}".casefold())

    # -- provisioning ------------------------------------------------------------------
    def _evaluate(
        self,
        nics: Mapping[str, tuple[str, str | None]],
        old: Index | None,
        changed: Collection[str] = (),
    ) -> None:
        """Decide each NIC's fate after a compile: Failed, Succeeded now, or pending.

        ``old`` (the index before a NICs-only change) widens each NIC's hosts to those it
        left; ``changed`` are the NICs a PUT changed (their old configurationState goes).
        """
        index = self._index
        assert index is not None
        vnet_hosts: dict[str, set[str]] = {}
        seqs = self._hosts.sequences()
        for key, (ref, etag) in nics.items():
            self._pending.drop(key)
            problems = index.nic_problems.get(key)
            if problems:
                message = "; ".join(p.message for p in problems)
                self._reports.set_nic(ref, etag, FAILED, FAILURE, POLICY_COMPILE_FAILURE, message)
                continue
            nic = index.nics.get(key)
            conflict = self._binding.conflicts.get(key)
            if conflict is not None and (nic is None or nic.server_id == conflict[0]):
                del self._binding.conflicts[key]  # the NIC now lives where its port is
            if nic is None:  # on no host: nothing to publish
                self._reports.set_nic(ref, etag, SUCCEEDED, None, "", "")
                continue
            if old is not None:
                hosts = affected_hosts(old, index, [ref]) & index.hosts.keys()
            else:
                if nic.vnet_id not in vnet_hosts:
                    vnet_hosts[nic.vnet_id] = index.hosts_of_vnet(nic.vnet_id)
                hosts = vnet_hosts[nic.vnet_id] | ({nic.server_id} if nic.server_id else set())
            said = self._reports.reported.get(key)
            if (
                said is not None
                and key not in self._binding.conflicts
                and (key in changed or said[0] == FAILURE)
            ):
                self._reports.withdraw(key, ref)  # "committed", or the old failure no longer holds
            need = {h: seqs.get(h, self._seq) for h in hosts}
            if need:
                self._pending.add(key, Pending(ref, etag, need))
            else:  # no host needs its rows (cannot happen for a placed NIC; be safe)
                self._reports.set_nic(ref, etag, SUCCEEDED, None, "", "")

    def _progress(self, servers: set[str]) -> None:
        """Report the servers' states and finish the NICs their commits complete."""
        statuses = self._hosts.statuses()
        for server_id in servers | set(self._hosts.address_errors):
            self._report_server(server_id, statuses.get(server_id))
        committed = {s: st.committed_seq for s, st in statuses.items()}
        for pending in self._pending.done(servers, committed):
            hosts = len(pending.need)
            self._reports.set_nic(
                pending.ref,
                pending.etag,
                SUCCEEDED,
                SUCCESS,
                "Success",
                f"Committed on {hosts} host{'s' if hosts != 1 else ''}.",
            )

    def _report_server(self, server_id: str, status: LinkStatus | None) -> None:
        ref = f"/servers/{server_id}"
        index = self._index
        problems = [  # a server's own problems are among the index's base problems
            p.message
            for p in (index.base_problems if index is not None else ())
            if ref_key(p.resource_ref) == ref_key(ref)
        ]
        now = self.clock()
        if problems:
            doc = configuration_state(FAILURE, POLICY_COMPILE_FAILURE, "; ".join(problems), now)
        elif server_id in self._hosts.address_errors:
            err = self._hosts.address_errors[server_id]
            doc = configuration_state(FAILURE, err.code, str(err), now)
        elif status is not None:
            doc = host_state(status.remote, status.connected, status.error, status.code, now)
            with self._cond:
                warning = team_warning(self._teams.get(server_id, {}))
            if warning is not None and status.connected and status.error is None:
                doc = configuration_state(WARNING, PROVIDER_ADDRESS_MOVED, warning, now)
        else:
            return
        self._reports.show(ref, doc)
