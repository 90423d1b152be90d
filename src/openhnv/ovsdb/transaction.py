"""One IDL transaction from a list of ``RowChange``s, checked before anything is sent.

Rows are found by key in the database's mirror; an insert of an existing key updates
it, a delete of a missing key does nothing, an update of a missing key fails, and a
``Ref`` resolves to an existing row or to one inserted by the same changes. Every value
is checked against the schema here, so a bad one fails naming its table, key and
column instead of being dropped by the IDL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import ovs.db.idl

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.mirror import DatabaseMirror
from openhnv.ovsdb.rows import Ref, RowChange
from openhnv.ovsdb.values import to_idl

OPS = ("insert", "update", "delete")


def build_transaction(idl: Any, db: DatabaseMirror, changes: Sequence[RowChange]) -> Any:
    """An uncommitted ``ovs.db.idl.Transaction`` for ``changes``; aborted if this raises."""
    txn = ovs.db.idl.Transaction(idl)
    try:
        builder = _Builder(idl, db, txn)
        targets: list[tuple[RowChange, Any]] = []
        for change in changes:
            row = builder.place(change)
            if row is not None:
                targets.append((change, row))
        for change, row in targets:  # every row placed first: a Ref may name a later insert
            builder.fill(change, row)
    except Exception:
        txn.abort()
        raise
    return txn


def _error(change: RowChange, message: str) -> OvsdbError:
    return OvsdbError(message, table=change.table, key=change.key)


class _Builder:
    """The rows of one transaction: found by key, inserted, or deleted, then filled."""

    def __init__(self, idl: Any, db: DatabaseMirror, txn: Any) -> None:
        self.idl = idl
        self.db = db
        self.txn = txn
        self.inserted: dict[tuple[str, str], Any] = {}
        self.deleted: set[tuple[str, str]] = set()

    def place(self, change: RowChange) -> Any:
        """The IDL row ``change`` writes to (None for a delete, done here)."""
        if change.op not in OPS:
            raise _error(
                change,
                f"{change.table} {change.key!r}: bad operation {change.op!r}, "
                f"expected one of {', '.join(OPS)}",
            )
        name = (change.table, change.key)
        existing = self.db.by_key[change.table].get(change.key)
        row = self.inserted.get(name)
        if row is None and existing is not None:
            row = self.idl.tables[change.table].rows.get(uuid.UUID(existing))
        if change.op == "delete":
            if row is not None and name not in self.inserted:
                row.delete()
                self.deleted.add(name)
            return None
        if change.op == "insert":
            self.db.check_insert(change)
        elif existing is not None and row is not None:
            self.db.check_update(change, existing)
        if row is not None:
            return row
        if change.op != "insert":
            raise _error(change, f"cannot update {change.table} {change.key!r}: no such row")
        return self._insert(change)

    def _insert(self, change: RowChange) -> Any:
        missing = [c for c in self.db.required[change.table] if c not in change.columns]
        if missing:
            raise _error(
                change,
                f"cannot insert {change.table} {change.key!r}: missing required "
                f"column(s) {', '.join(missing)}",
            )
        row = self.txn.insert(self.idl.tables[change.table])
        self.inserted[(change.table, change.key)] = row
        return row

    def resolve(self, ref: Ref) -> Any:
        """A row inserted by these changes, or the UUID of an existing one."""
        if (ref.table, ref.key) in self.inserted:
            return self.inserted[(ref.table, ref.key)]
        if (ref.table, ref.key) in self.deleted:
            raise OvsdbError(f"refers to {ref.table} {ref.key!r}, deleted by the same changes")
        target = self.db.by_key.get(ref.table, {}).get(ref.key)
        if target is None:
            raise OvsdbError(f"refers to missing {ref.table} {ref.key!r}")
        return uuid.UUID(target)

    def fill(self, change: RowChange, row: Any) -> None:
        """Set the columns of ``change`` on ``row``, each checked against the schema."""
        for column, value in change.columns.items():
            schema = self.idl.tables[change.table].columns.get(column)
            if schema is None:
                where = f"{change.table} {change.key!r}"
                raise _error(change, f"{where}: no column {column!r} in {self.db.name}")
            try:
                setattr(row, column, to_idl(schema.type, value, self.resolve))
            except OvsdbError as err:
                raise _error(
                    change, f"{change.table} {change.key!r} column {column}: {err}"
                ) from None
