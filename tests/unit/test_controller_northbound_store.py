"""SqliteStore: documents by key, atomic commits, revisions, the change log, reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.controller.errors import StoreError
from openhnv.controller.northbound.store import SqliteStore


def test_put_get_list_delete() -> None:
    store = SqliteStore(":memory:")
    assert store.revision() == 0
    assert store.get("/a") is None
    assert store.put("/r/a", {"x": 1}) == 1
    store.put("/r/b", {"x": 2})
    store.put("/s/c", {"x": 3})
    assert store.get("/r/a") == {"x": 1}
    assert store.list("/r/") == [("/r/a", {"x": 1}), ("/r/b", {"x": 2})]
    assert store.delete("/r/a") == 4
    assert store.list("/r/") == [("/r/b", {"x": 2})]


def test_commit_is_one_revision_and_empty_commit_changes_nothing() -> None:
    store = SqliteStore(":memory:")
    store.put("/gone", {})
    revision = store.commit({"/a": {"v": 1}, "/b": {"v": 2}}, ["/gone"])
    assert revision == 2
    assert [c.key for c in store.watch(1)] == ["/a", "/b", "/gone"]
    assert {c.revision for c in store.watch(1)} == {2}
    assert store.watch(1)[-1].value is None
    assert store.commit({}) == 2
    with pytest.raises(ValueError, match="both put and deleted"):
        store.commit({"/a": {}}, ["/a"])


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = SqliteStore(db)
    store.commit({"/a": {"etag": 'W/"1"'}})
    store.close()
    again = SqliteStore(db)
    assert again.get("/a") == {"etag": 'W/"1"'}
    assert again.revision() == 1
    assert [c.key for c in again.watch(0)] == ["/a"]


def test_unopenable_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open store"):
        SqliteStore(tmp_path / "no" / "such" / "dir.db")
