"""The cluster's store: the ``Store`` interface on etcd, shared by every controller replica.

Layout under a root (default ``/openhnv``):

- ``<root>/store/<key>``: each document, JSON; its etcd mod revision is its revision;
- ``<root>/store``: the store's revision key, written by every commit, so its mod revision
  is the revision of the newest commit (``revision()``) and a commit can compare it.

Every ``commit`` is one etcd transaction: it compares what the caller asked
(``if_revision`` -> the revision key's mod revision; ``expect`` -> each key's mod
revision, 0 for absent) and, only if all hold, writes the documents and the revision
key. So two replicas that validated against the same revision can never both commit:
the second finds the revision key moved and gets ``StoreConflict``, catches up and
validates again (as Kubernetes' apiserver does with ``resourceVersion``).

``revision()`` is a linearizable read of the revision key; ``watch(after)`` replays the
changes from etcd's history with a watch starting at ``after + 1``, up to the newest
commit (or, with ``timeout``, waits for the next). ``read()`` is one paged range at one
etcd revision. Revisions are etcd's own: they grow by more than one per commit when
other keys (the leader's lease key) change in between, which the interface allows.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from openhnv.controller.northbound.etcd import EtcdClient, Event, key_bytes
from openhnv.controller.northbound.store import (
    Change,
    Document,
    Entry,
    Listing,
    StoreConflict,
    StoreUnavailable,
    check_disjoint,
    decode,
    encode,
)

DEFAULT_ROOT = "/openhnv"
STORE = "/store"
FOLLOW_QUIET = 2.0  # seconds a quiet watch stream stays open (and a stop waits) before reopening


class EtcdStore:
    """Documents in etcd under ``root``; several controllers may share one."""

    shared = True

    def __init__(self, client: EtcdClient, root: str = DEFAULT_ROOT) -> None:
        self.client = client
        self.root = root.rstrip("/")
        self._revision_key = self.root + STORE
        self._data = self._revision_key  # a document's etcd key is this + its key ("/...")

    def __str__(self) -> str:
        return f"{self.client}{self.root}"

    def _key(self, key: str) -> str:
        if not key.startswith("/"):
            raise ValueError(f"store keys start with '/': {key!r}")
        return self._data + key

    def _ours(self, etcd_key: str) -> str:
        return etcd_key[len(self._data) :]

    def get(self, key: str) -> Document | None:
        _, kvs, _ = self.client.range(self._key(key))
        return decode(kvs[0].value) if kvs else None

    def list(self, prefix: str) -> list[tuple[str, Document]]:
        _, kvs = self.client.range_all(self._key(prefix))
        return [(self._ours(kv.key), decode(kv.value)) for kv in kvs]

    def read(self) -> Listing:
        _, kvs = self.client.range_all(self._revision_key)
        revision = 0
        entries: list[Entry] = []
        for kv in kvs:
            if kv.key == self._revision_key:
                revision = kv.mod_revision
            elif kv.key.startswith(self._data + "/"):
                entries.append(Entry(self._ours(kv.key), decode(kv.value), kv.mod_revision))
        return Listing(revision, tuple(entries))

    def commit(
        self,
        puts: Mapping[str, Document],
        deletes: Collection[str] = (),
        *,
        if_revision: int | None = None,
        expect: Mapping[str, int] | None = None,
    ) -> int:
        """One etcd transaction: compare, then write everything and the revision key."""
        check_disjoint(puts, deletes)
        if not puts and not deletes:
            return self.revision()
        compare: list[dict[str, Any]] = []
        if if_revision is not None:
            compare.append(_mod_equals(self._revision_key, if_revision))
        for key, revision in (expect or {}).items():
            compare.append(_mod_equals(self._key(key), revision))
        success: list[dict[str, Any]] = [
            {"request_put": {"key": key_bytes(self._key(k)), "value": _value(encode(v))}}
            for k, v in puts.items()
        ]
        success += [{"request_delete_range": {"key": key_bytes(self._key(k))}} for k in deletes]
        success.append({"request_put": {"key": key_bytes(self._revision_key), "value": ""}})
        succeeded, revision = self.client.txn(compare, success)
        if not succeeded:
            raise StoreConflict(f"{self}: the store changed since the compared revisions")
        return revision

    def put(self, key: str, value: Document) -> int:
        return self.commit({key: value})

    def delete(self, key: str) -> int:
        return self.commit({}, (key,))

    def revision(self) -> int:
        """The revision of the newest commit (a linearizable read: quorum needed)."""
        _, kvs, _ = self.client.range(self._revision_key)
        return kvs[0].mod_revision if kvs else 0

    def watch(self, after: int, timeout: float = 0.0) -> builtins.list[Change]:
        """Every change committed after ``after``: up to the newest commit, or with
        ``timeout`` > 0 and nothing newer yet, whatever the next ``timeout`` seconds bring.

        Whole commits only: a commit's changes are never split between two calls.
        """
        target = self.revision()
        if target <= after and timeout <= 0:
            return []
        wait = timeout if timeout > 0 else self.client.timeout
        changes: list[Change] = []
        seen = after
        for _, events in self.client.watch(self._revision_key, after + 1, wait):
            for event in events:
                seen = max(seen, event.kv.mod_revision)
                change = self._change(event)
                if change is not None:
                    changes.append(change)
            if seen >= target and (changes or target > after):
                return changes  # caught up (or, waiting, the next commit came)
        if target > seen:
            raise StoreUnavailable(f"{self}: the watch stalled at revision {seen}, before {target}")
        return changes

    def follow(self, after: int) -> Iterator[builtins.list[Change]]:
        """One watch stream from ``after + 1``: the changes of each response (whole
        commits) as they come; ends when the stream stays quiet for ``FOLLOW_QUIET``."""
        for _, events in self.client.watch(self._revision_key, after + 1, FOLLOW_QUIET):
            changes = [c for c in (self._change(e) for e in events) if c is not None]
            if changes:
                yield changes

    def _change(self, event: Event) -> Change | None:
        if not event.kv.key.startswith(self._data + "/"):
            return None  # the revision key itself
        key = self._ours(event.kv.key)
        value = None if event.deleted else decode(event.kv.value)
        return Change(event.kv.mod_revision, key, value)

    def close(self) -> None:
        self.client.close()


def _mod_equals(key: str, revision: int) -> dict[str, Any]:
    return {"key": key_bytes(key), "result": "EQUAL", "target": "MOD", "mod_revision": revision}


def _value(text: str) -> str:
    return key_bytes(text)
