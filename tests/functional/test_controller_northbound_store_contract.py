"""The ``Store`` contract, one suite run against SqliteStore and EtcdStore (a real etcd).

What the service relies on: atomic commits with one revision each, compares that
refuse and change nothing, a listing at one revision with each key's mod revision, a
watch that replays whole commits in order (and waits for the next), and a history that
says when it is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.controller.northbound import store as store_module
from openhnv.controller.northbound.etcd_store import EtcdStore
from openhnv.controller.northbound.store import (
    HistoryLost,
    SqliteStore,
    Store,
    StoreConflict,
)
from openhnv.lab.etcd import EtcdCluster
from openhnv.testing.cluster import etcd_store


@pytest.fixture(params=["sqlite", "etcd"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    found: Store
    if request.param == "sqlite":
        found = SqliteStore(tmp_path / "store.db")
    else:
        cluster: EtcdCluster = request.getfixturevalue("etcd_one")
        found = etcd_store(cluster)
    yield found
    found.close()


def test_put_get_list_delete(store: Store) -> None:
    assert store.revision() == 0
    assert store.get("/r/a") is None
    first = store.put("/r/a", {"x": 1})
    assert first > 0
    assert store.revision() == first
    store.put("/r/b", {"x": 2})
    store.put("/s/c", {"x": 3})
    assert store.get("/r/a") == {"x": 1}
    assert store.list("/r/") == [("/r/a", {"x": 1}), ("/r/b", {"x": 2})]
    gone = store.delete("/r/a")
    assert gone > first
    assert store.revision() == gone
    assert store.list("/r/") == [("/r/b", {"x": 2})]


def test_commit_is_one_revision_and_empty_commit_changes_nothing(store: Store) -> None:
    before = store.put("/gone", {})
    revision = store.commit({"/a": {"v": 1}, "/b": {"v": 2}}, ["/gone"])
    changes = store.watch(before)
    assert sorted(c.key for c in changes) == ["/a", "/b", "/gone"]
    assert {c.revision for c in changes} == {revision}
    assert next(c for c in changes if c.key == "/gone").value is None
    assert store.commit({}) == revision
    with pytest.raises(ValueError, match="both put and deleted"):
        store.commit({"/a": {}}, ["/a"])


def test_if_revision_refuses_after_any_other_commit(store: Store) -> None:
    base = store.put("/counter", {"n": 0})
    store.put("/elsewhere", {"y": 1})  # another key: the compare is on the whole store
    with pytest.raises(StoreConflict):
        store.commit({"/counter": {"n": 1}}, if_revision=base)
    assert store.get("/counter") == {"n": 0}
    now = store.revision()
    assert store.commit({"/counter": {"n": 1}}, if_revision=now) > now
    assert store.get("/counter") == {"n": 1}


def test_expect_compares_each_keys_mod_revision(store: Store) -> None:
    a = store.put("/a", {"v": 1})
    store.put("/b", {"v": 1})
    store.commit({"/a": {"v": 2}}, expect={"/a": a, "/absent": 0})  # other keys may move
    with pytest.raises(StoreConflict):
        store.commit({"/a": {"v": 3}, "/c": {"v": 1}}, expect={"/a": a})
    with pytest.raises(StoreConflict):
        store.commit({"/b": {"v": 2}}, expect={"/b": 0})  # 0: must be absent
    assert store.get("/a") == {"v": 2}
    assert store.get("/c") is None
    assert store.get("/b") == {"v": 1}


def test_read_lists_everything_with_mod_revisions_at_one_revision(store: Store) -> None:
    first = store.commit({"/x/1": {"a": 1}, "/x/2": {"a": 2}})
    second = store.put("/x/2", {"a": 3})
    listing = store.read()
    assert listing.revision == second == store.revision()
    assert [(e.key, e.value, e.revision) for e in listing.entries] == [
        ("/x/1", {"a": 1}, first),
        ("/x/2", {"a": 3}, second),
    ]


def test_watch_replays_whole_commits_in_order(store: Store) -> None:
    one = store.commit({"/k/1": {"n": 1}, "/k/2": {"n": 2}})
    two = store.commit({"/k/1": {"n": 3}}, ["/k/2"])
    three = store.put("/k/3", {"n": 4})
    changes = store.watch(one)
    assert [(c.revision, c.key, c.value) for c in changes] == [
        (two, "/k/1", {"n": 3}),
        (two, "/k/2", None),
        (three, "/k/3", {"n": 4}),
    ]
    assert store.watch(three) == []


def test_watch_waits_for_the_next_commit(store: Store) -> None:
    now = store.put("/w", {"n": 0})
    assert store.watch(now, timeout=0.3) == []  # nothing within the wait
    timer = threading.Timer(0.2, lambda: store.put("/w", {"n": 1}))
    timer.start()
    try:
        changes = store.watch(now, timeout=10.0)
    finally:
        timer.join()
    assert [(c.key, c.value) for c in changes] == [("/w", {"n": 1})]


def test_history_lost_when_compacted(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.put("/h", {"n": 0})
    if isinstance(store, EtcdStore):
        for n in range(3):
            store.put("/h", {"n": n + 1})
        store.client.call("kv/compaction", {"revision": store.revision()})
    else:
        monkeypatch.setattr(store_module, "CHANGES_KEPT", 2)
        monkeypatch.setattr(store_module, "TRIM_EVERY", 1)
        for n in range(3):
            store.put("/h", {"n": n + 1})
    with pytest.raises(HistoryLost):
        store.watch(first)
    assert store.read().entries[0].value == {"n": 3}


def test_compare_and_swap_loses_no_update_under_concurrency(store: Store) -> None:
    """Two writers increment one counter with if_revision: every success counts once."""
    store.put("/count", {"n": 0})
    successes: list[int] = []

    def writer() -> None:
        done = 0
        while done < 15:
            revision = store.revision()
            current = store.get("/count") or {"n": 0}
            try:
                store.commit({"/count": {"n": current["n"] + 1}}, if_revision=revision)
            except StoreConflict:
                continue
            done += 1
        successes.append(done)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("/count") == {"n": sum(successes)} == {"n": 30}


def test_shared_says_whether_other_controllers_write(store: Store) -> None:
    assert store.shared is isinstance(store, EtcdStore)
