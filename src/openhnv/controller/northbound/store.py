"""The controller's state store: JSON documents by key, committed in transactions.

The interface is deliberately narrow (``get``, ``list`` by prefix, ``commit`` of puts and
deletes as one transaction, ``put``/``delete`` for one key, ``revision``, ``watch``) so
that an etcd-backed store for several controllers can replace the embedded one.

``SqliteStore`` keeps everything in one SQLite file (WAL journal): a ``kv`` table of the
current documents and a ``changes`` log of every committed put/delete with its revision,
which ``watch(after)`` replays for a publisher that wants to catch up.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from openhnv.controller.errors import StoreError

Document = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, value TEXT NOT NULL, revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (revision INTEGER NOT NULL, key TEXT NOT NULL, value TEXT);
CREATE INDEX IF NOT EXISTS changes_by_revision ON changes (revision);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
"""
CHANGES_KEPT = 100_000  # the log is trimmed to roughly this many entries


@dataclass(frozen=True, slots=True)
class Change:
    """One committed put (``value`` set) or delete (``value`` None)."""

    revision: int
    key: str
    value: Document | None


class Store(Protocol):
    """What the controller needs of a store."""

    def get(self, key: str) -> Document | None: ...

    def list(self, prefix: str) -> list[tuple[str, Document]]: ...

    def commit(self, puts: Mapping[str, Document], deletes: Collection[str] = ()) -> int: ...

    def put(self, key: str, value: Document) -> int: ...

    def delete(self, key: str) -> int: ...

    def revision(self) -> int: ...

    def watch(self, after: int) -> builtins.list[Change]: ...

    def close(self) -> None: ...


def _prefix_end(prefix: str) -> str:
    return prefix + "\U0010ffff"


class SqliteStore:
    """An embedded store in one SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open store {self.path}: {err}") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> Document | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else _decode(row[0])

    def list(self, prefix: str) -> list[tuple[str, Document]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                (prefix, _prefix_end(prefix)),
            ).fetchall()
        return [(key, _decode(value)) for key, value in rows]

    def commit(self, puts: Mapping[str, Document], deletes: Collection[str] = ()) -> int:
        """Apply every put and delete atomically; the new revision (unchanged if empty)."""
        overlap = set(puts) & set(deletes)
        if overlap:
            raise ValueError(f"keys both put and deleted: {sorted(overlap)}")
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                (revision,) = cur.execute("SELECT value FROM meta WHERE name='revision'").fetchone()
                if not puts and not deletes:
                    cur.execute("COMMIT")
                    return int(revision)
                revision += 1
                for key, value in puts.items():
                    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
                    cur.execute(
                        "INSERT INTO kv (key, value, revision) VALUES (?, ?, ?) ON CONFLICT(key)"
                        " DO UPDATE SET value = excluded.value, revision = excluded.revision",
                        (key, text, revision),
                    )
                    cur.execute("INSERT INTO changes VALUES (?, ?, ?)", (revision, key, text))
                for key in deletes:
                    cur.execute("DELETE FROM kv WHERE key = ?", (key,))
                    cur.execute("INSERT INTO changes VALUES (?, ?, NULL)", (revision, key))
                cur.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
                if revision % 1000 == 0:
                    cur.execute(
                        "DELETE FROM changes WHERE revision <= ?", (revision - CHANGES_KEPT,)
                    )
                cur.execute("COMMIT")
            except sqlite3.Error as err:
                cur.execute("ROLLBACK")
                raise StoreError(f"store {self.path}: {err}") from None
            return int(revision)

    def put(self, key: str, value: Document) -> int:
        return self.commit({key: value})

    def delete(self, key: str) -> int:
        return self.commit({}, (key,))

    def revision(self) -> int:
        with self._lock:
            (revision,) = self._db.execute(
                "SELECT value FROM meta WHERE name='revision'"
            ).fetchone()
        return int(revision)

    def watch(self, after: int) -> builtins.list[Change]:
        """Every change committed after revision ``after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT revision, key, value FROM changes WHERE revision > ? ORDER BY rowid",
                (after,),
            ).fetchall()
        return [Change(int(r), k, None if v is None else _decode(v)) for r, k, v in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _decode(text: str) -> Document:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"stored value is not an object: {text[:80]}")
    return value
