"""The controller's state store: JSON documents by key, committed in transactions.

The interface is deliberately narrow, so that one controller on an embedded file and
several controllers on etcd run the same service code:

- ``get``, ``list`` by prefix, ``read`` (every document with its mod revision, at one
  revision: what a controller loads at start);
- ``commit`` of puts and deletes as one transaction, optionally compared first:
  ``if_revision`` (nothing at all was committed since that revision: what a write whose
  validation read the whole state needs) and ``expect`` (these keys still have these
  mod revisions, 0 for absent); a failed compare raises ``StoreConflict`` and changes
  nothing;
- ``revision`` (the newest committed revision; in a cluster a linearizable read),
  ``watch(after)`` (every change committed after a revision, oldest first, waiting up to
  ``timeout`` for one) and ``follow(after)`` (the same as a stream: whole commits as they
  come, until the store wants the caller to start again), so that a controller's memory
  follows the store.

Revisions count commits: every commit gets one revision, shared by all its changes, and
a key's mod revision is the revision of the commit that last wrote it. ``shared`` says
whether other controllers may write the store too (etcd), so that the service knows it
must catch up before answering.

``SqliteStore`` keeps everything in one SQLite file (WAL journal): a ``kv`` table of the
current documents with their mod revisions and a ``changes`` log of every committed
put/delete, which ``watch`` replays. ``openhnv.controller.northbound.etcd_store`` is the
cluster's store.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
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
INSERT OR IGNORE INTO meta (name, value) VALUES ('trimmed', 0);
"""
CHANGES_KEPT = 100_000  # the log is trimmed to roughly this many revisions
TRIM_EVERY = 1000  # revisions between trims
FOLLOW_QUIET = 1.0  # seconds without a commit that end a follow()


class StoreConflict(StoreError):
    """A compared commit found the store changed since; nothing was written."""


class StoreUnavailable(StoreError):
    """The store cannot answer now (no quorum, unreachable, timed out); retry later."""


class HistoryLost(StoreError):
    """``watch(after)`` cannot replay from ``after``: the store no longer has that history
    (compacted); the caller reloads everything with ``read``."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed put (``value`` set) or delete (``value`` None)."""

    revision: int
    key: str
    value: Document | None


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored document with the revision of the commit that last wrote it."""

    key: str
    value: Document
    revision: int


@dataclass(frozen=True, slots=True)
class Listing:
    """Every stored document at one store revision, sorted by key."""

    revision: int
    entries: tuple[Entry, ...]


class Store(Protocol):
    """What the controller needs of a store."""

    @property
    def shared(self) -> bool: ...

    def get(self, key: str) -> Document | None: ...

    def list(self, prefix: str) -> list[tuple[str, Document]]: ...

    def read(self) -> Listing: ...

    def commit(
        self,
        puts: Mapping[str, Document],
        deletes: Collection[str] = (),
        *,
        if_revision: int | None = None,
        expect: Mapping[str, int] | None = None,
    ) -> int: ...

    def put(self, key: str, value: Document) -> int: ...

    def delete(self, key: str) -> int: ...

    def revision(self) -> int: ...

    def watch(self, after: int, timeout: float = 0.0) -> builtins.list[Change]: ...

    def follow(self, after: int) -> Iterator[builtins.list[Change]]: ...

    def close(self) -> None: ...


def prefix_end(prefix: str) -> str:
    """The first key after every key that starts with ``prefix``."""
    return prefix + "\U0010ffff"


def check_disjoint(puts: Collection[str], deletes: Collection[str]) -> None:
    overlap = set(puts) & set(deletes)
    if overlap:
        raise ValueError(f"keys both put and deleted: {sorted(overlap)}")


def encode(value: Document) -> str:
    """The stored text of a document (compact, keys sorted: equal documents, equal text)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def decode(text: str | bytes) -> Document:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"stored value is not an object: {str(text)[:80]}")
    return value


class SqliteStore:
    """An embedded store in one SQLite file (``":memory:"`` for tests), one writer process."""

    shared = False

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
        self._committed = threading.Condition(self._lock)

    def get(self, key: str) -> Document | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else decode(row[0])

    def list(self, prefix: str) -> list[tuple[str, Document]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                (prefix, prefix_end(prefix)),
            ).fetchall()
        return [(key, decode(value)) for key, value in rows]

    def read(self) -> Listing:
        with self._lock:
            rows = self._db.execute("SELECT key, value, revision FROM kv ORDER BY key").fetchall()
            revision = self._meta("revision")
        return Listing(revision, tuple(Entry(k, decode(v), int(r)) for k, v, r in rows))

    def commit(
        self,
        puts: Mapping[str, Document],
        deletes: Collection[str] = (),
        *,
        if_revision: int | None = None,
        expect: Mapping[str, int] | None = None,
    ) -> int:
        """Apply every put and delete atomically; the new revision (unchanged if empty).

        ``StoreConflict`` when the store's revision is not ``if_revision``, or a key of
        ``expect`` does not have its mod revision there (0: the key must be absent).
        """
        check_disjoint(puts, deletes)
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                revision = self._meta("revision")
                if not puts and not deletes:
                    cur.execute("COMMIT")
                    return revision
                problem = self._compare(revision, if_revision, expect or {})
                if problem:
                    cur.execute("ROLLBACK")
                    raise StoreConflict(f"store {self.path}: {problem}")
                revision += 1
                for key, value in puts.items():
                    text = encode(value)
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
                if revision % TRIM_EVERY == 0 and revision > CHANGES_KEPT:
                    trimmed = revision - CHANGES_KEPT
                    cur.execute("DELETE FROM changes WHERE revision <= ?", (trimmed,))
                    cur.execute("UPDATE meta SET value = ? WHERE name = 'trimmed'", (trimmed,))
                cur.execute("COMMIT")
            except sqlite3.Error as err:
                cur.execute("ROLLBACK")
                raise StoreError(f"store {self.path}: {err}") from None
            self._committed.notify_all()
            return revision

    def _compare(self, revision: int, if_revision: int | None, expect: Mapping[str, int]) -> str:
        if if_revision is not None and revision != if_revision:
            return f"revision is {revision}, not {if_revision}"
        for key, wanted in expect.items():
            row = self._db.execute("SELECT revision FROM kv WHERE key = ?", (key,)).fetchone()
            found = 0 if row is None else int(row[0])
            if found != wanted:
                return f"{key} is at revision {found}, not {wanted}"
        return ""

    def put(self, key: str, value: Document) -> int:
        return self.commit({key: value})

    def delete(self, key: str) -> int:
        return self.commit({}, (key,))

    def revision(self) -> int:
        with self._lock:
            return self._meta("revision")

    def _meta(self, name: str) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(value)

    def watch(self, after: int, timeout: float = 0.0) -> builtins.list[Change]:
        """Every change committed after revision ``after``, oldest first.

        Waits up to ``timeout`` seconds for a commit when there is none yet (commits of
        this process wake it). ``HistoryLost`` when the log no longer reaches back there.
        """
        with self._lock:
            if timeout > 0:
                self._committed.wait_for(lambda: self._meta("revision") > after, timeout)
            if after < self._meta("trimmed"):
                raise HistoryLost(f"store {self.path}: changes after {after} were trimmed")
            rows = self._db.execute(
                "SELECT revision, key, value FROM changes WHERE revision > ? ORDER BY rowid",
                (after,),
            ).fetchall()
        return [Change(int(r), k, None if v is None else decode(v)) for r, k, v in rows]

    def follow(self, after: int) -> Iterator[builtins.list[Change]]:
        """Batches of changes after ``after`` as commits come; ends after a quiet second."""
        while True:
            changes = self.watch(after, FOLLOW_QUIET)
            if not changes:
                return
            yield changes
            after = changes[-1].revision

    def close(self) -> None:
        with self._lock:
            self._db.close()
