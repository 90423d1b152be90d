"""A follower against a real ovsdb-server: its first sync sees every row before ``start``
returns, later rows reach its worker, a failed first sync leaves nothing running, and it
stops and starts again."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from openhnv.ovsdb.client import ConnectionState, OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.follower import Follower
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import RowChange
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing.polling import eventually

WAIT = 15.0
TABLE = "Logical_Switch"


def switch_row(vsid: str) -> RowChange:
    return RowChange("insert", TABLE, vsid, {"name": vsid, "description": "rdid"})


class Owner:
    """What a daemon keeps beside its follower: queued row keys, and what its worker saw."""

    def __init__(self, remote: str) -> None:
        self.follower: Follower[set[str]] = Follower(
            remote,
            name="hnv-test-follower",
            pending=lambda: bool(self.queued),
            take=self.take,
            work=self.work,
            interval=WAIT,
            on_batch=self.on_batch,
            on_state=self.on_state,
        )
        self.queued: set[str] = set()
        self.first_seen: set[str] = set()
        self.worked: set[str] = set()
        self.worker_threads: set[str] = set()

    def on_batch(self, events: list[RowEvent]) -> None:
        with self.follower.cond:
            self.queued |= {e.key for e in events if e.table == TABLE and e.key is not None}
            self.follower.cond.notify_all()

    def on_state(self, state: ConnectionState) -> None:
        pass

    def first(self, client: OvsdbClient) -> None:
        self.first_seen = set(client.snapshot([TABLE])[TABLE])
        with self.follower.cond:
            self.queued.clear()  # what came so far is in the first sync

    def take(self) -> set[str]:
        taken, self.queued = self.queued, set()
        return taken

    def work(self, keys: set[str]) -> None:
        self.worked |= keys
        self.worker_threads.add(threading.current_thread().name)


@pytest.fixture
def writer(ovsdb_server: OvsdbServer) -> Iterator[OvsdbClient]:
    with OvsdbClient(ovsdb_server.unix_remote) as c:
        c.wait_synced(WAIT)
        yield c


def test_the_first_sync_sees_every_row_and_later_rows_reach_the_worker(
    ovsdb_server: OvsdbServer, writer: OvsdbClient
) -> None:
    writer.apply([switch_row("5001")])
    owner = Owner(ovsdb_server.unix_remote)
    owner.follower.start(owner.first, WAIT)
    try:
        assert owner.first_seen == {"5001"}
        writer.apply([switch_row("6001")])
        eventually(lambda: owner.worked == {"6001"}, "the worker saw the new row")
        assert owner.worker_threads == {"hnv-test-follower"}
    finally:
        owner.follower.stop()
    assert owner.follower.client is None


def test_a_failed_first_sync_leaves_no_client_and_it_starts_again(
    ovsdb_server: OvsdbServer,
) -> None:
    owner = Owner(ovsdb_server.unix_remote)

    def refuse(client: OvsdbClient) -> None:
        raise OvsdbError("the first sync failed")

    with pytest.raises(OvsdbError, match="the first sync failed"):
        owner.follower.start(refuse, WAIT)
    assert owner.follower.client is None
    owner.follower.start(owner.first, WAIT)
    owner.follower.stop()


def test_twice_is_refused_and_a_stopped_follower_starts_again(
    ovsdb_server: OvsdbServer, writer: OvsdbClient
) -> None:
    owner = Owner(ovsdb_server.unix_remote)
    owner.follower.start(owner.first, WAIT)
    try:
        with pytest.raises(OvsdbError, match="called twice"):
            owner.follower.start(owner.first, WAIT)
    finally:
        owner.follower.stop()
    writer.apply([switch_row("7001")])  # while stopped: no worker sees it
    owner.follower.start(owner.first, WAIT)
    try:
        assert "7001" in owner.first_seen
        writer.apply([switch_row("8001")])
        eventually(lambda: "8001" in owner.worked, "the restarted worker saw the row")
        assert "7001" not in owner.worked
    finally:
        owner.follower.stop()
