"""Leader election on etcd: one replica at a time holds the leader key under its lease.

A candidate creates ``<root>/leader`` in a transaction that requires the key to be
absent (create revision 0), attached to a lease of ``ttl`` seconds, and keeps the lease
alive every ``ttl / 3``. When the leader dies its lease expires and etcd deletes the
key; the other candidates, polling every ``POLL`` seconds, race to create it again and
exactly one wins. A leader that resigns (a clean stop) revokes its lease, so another
takes over at once.

A leader that cannot renew its lease steps down on its own before etcd could hand the
key to anyone else: it counts its lease from the moment it *sent* the last renewal that
succeeded, minus ``MARGIN``, so two replicas never both believe they lead (as long as
their clocks run at the same rate, which a lease assumes anyway).

Each replica also keeps ``<root>/replicas/<id>`` alive under a lease of its own, so any
replica can list the live ones. ``SoleLeader`` is the election of a controller alone
on its store (SQLite): it always leads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.etcd import EtcdClient, key_bytes

log = logging.getLogger(__name__)

LEASE_TTL = 3  # seconds; etcd refuses less than 1.5 election timeouts
POLL = 0.25  # seconds between a candidate's looks at the leader key
MARGIN = 0.5  # seconds a leader steps down before its lease could have expired
LEADER = "/leader"
REPLICAS = "/replicas/"

Listener = Callable[[bool], None]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A replica as the others see it: its id and its REST URL."""

    replica_id: str
    url: str

    def value(self) -> str:
        return json.dumps({"id": self.replica_id, "url": self.url})


def _candidate(raw: bytes) -> Candidate | None:
    try:
        found: Any = json.loads(raw)
        return Candidate(str(found["id"]), str(found.get("url", "")))
    except (ValueError, KeyError, TypeError):
        return None


class Leadership(Protocol):
    """Who publishes southbound."""

    me: Candidate

    @property
    def leading(self) -> bool: ...

    def leader(self) -> Candidate | None: ...

    def replicas(self) -> list[Candidate]: ...

    def start(self, on_change: Listener) -> None: ...

    def stop(self) -> None: ...


class SoleLeader:
    """The only controller of its store: leads from start to stop."""

    def __init__(self, me: Candidate) -> None:
        self.me = me
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    def leader(self) -> Candidate | None:
        return self.me if self._leading else None

    def replicas(self) -> list[Candidate]:
        return [self.me]

    def start(self, on_change: Listener) -> None:
        self._leading = True
        on_change(True)

    def stop(self) -> None:
        self._leading = False


class Election:
    """A candidate for ``<root>/leader``; ``on_change(leading)`` when that changes."""

    def __init__(
        self,
        client: EtcdClient,
        me: Candidate,
        *,
        root: str = "/openhnv",
        ttl: int = LEASE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.me = me
        self.ttl = ttl
        self.clock = clock
        self._key = root.rstrip("/") + LEADER
        self._replicas = root.rstrip("/") + REPLICAS
        self._on_change: Listener = lambda _: None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._leading = False
        self._lease = 0  # the leader key's lease while leading
        self._valid_until = 0.0
        self._seen: Candidate | None = None
        self._presence = 0  # this replica's own registration lease
        self._presence_until = 0.0
        self._thread = threading.Thread(target=self._run, name="election", daemon=True)

    @property
    def leading(self) -> bool:
        with self._lock:
            return self._leading and self.clock() < self._valid_until

    def leader(self) -> Candidate | None:
        """The leader as last seen (this replica while it leads)."""
        with self._lock:
            return self.me if self._leading else self._seen

    def replicas(self) -> list[Candidate]:
        """The replicas whose registration is alive (an etcd read; StoreError if down)."""
        _, kvs = self.client.range_all(self._replicas)
        return sorted(
            (c for c in (_candidate(kv.value) for kv in kvs) if c is not None),
            key=lambda c: c.replica_id,
        )

    def start(self, on_change: Listener) -> None:
        self._on_change = on_change
        self._thread.start()

    def stop(self) -> None:
        """Stop campaigning; a leader resigns (revokes its lease: another takes over now)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        for lease in (self._lease, self._presence):
            if lease:
                try:
                    self.client.lease_revoke(lease)
                except StoreError as err:
                    log.info("could not revoke lease %x: %s", lease, err)
        self._set_leading(False)

    # -- the election thread -----------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._register()
                if self.leading:
                    self._renew()
                    pause = self.ttl / 3
                else:
                    self._campaign()
                    pause = self.ttl / 3 if self.leading else POLL
            except StoreError as err:
                log.debug("election: %s", err)
                pause = POLL
            except Exception:  # a bug must not end the election thread
                log.exception("election step failed")
                pause = POLL
            if self._leading and self.clock() >= self._valid_until - MARGIN:
                log.warning("replica %s: lease not renewed in time: stepping down", self.me)
                self._set_leading(False)
            self._stopping.wait(pause)

    def _register(self) -> None:
        """Keep this replica's own key alive (granting a new lease when it lapsed)."""
        now = self.clock()
        if self._presence and now < self._presence_until - self.ttl * 2 / 3:
            return
        if self._presence and self.client.lease_keepalive(self._presence) > 0:
            self._presence_until = now + self.ttl
            return
        self._presence = self.client.lease_grant(self.ttl)
        self._presence_until = now + self.ttl
        key = key_bytes(self._replicas + self.me.replica_id)
        put = {"key": key, "value": key_bytes(self.me.value()), "lease": self._presence}
        self.client.txn([], [{"request_put": put}])

    def _campaign(self) -> None:
        _, kvs, _ = self.client.range(self._key)
        with self._lock:
            self._seen = _candidate(kvs[0].value) if kvs else None
        if kvs:
            return
        sent = self.clock()
        lease = self.client.lease_grant(self.ttl)
        compare = [
            {
                "key": key_bytes(self._key),
                "result": "EQUAL",
                "target": "CREATE",
                "create_revision": 0,
            }
        ]
        put = {"key": key_bytes(self._key), "value": key_bytes(self.me.value()), "lease": lease}
        won, _ = self.client.txn(compare, [{"request_put": put}])
        if not won:
            self.client.lease_revoke(lease)
            return
        with self._lock:
            self._lease = lease
            self._valid_until = sent + self.ttl
        log.info(
            "replica %s holds the leader key (lease %x, %d s)", self.me.replica_id, lease, self.ttl
        )
        self._set_leading(True)

    def _renew(self) -> None:
        sent = self.clock()
        left = self.client.lease_keepalive(self._lease)
        if left <= 0:
            log.warning("replica %s: leader lease expired: stepping down", self.me.replica_id)
            self._set_leading(False)
            return
        with self._lock:
            self._valid_until = sent + left

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            changed = leading != self._leading
            self._leading = leading
            if not leading:
                self._lease = 0
        if changed:
            try:
                self._on_change(leading)
            except Exception:
                log.exception("leadership listener failed")
