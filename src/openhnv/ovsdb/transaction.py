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
    inserted: dict[tuple[str, str], Any] = {}
    deleted: set[tuple[str, str]] = set()
    targets: list[tuple[RowChange, Any]] = []
    try:
        for change in changes:
            if change.op not in OPS:
                raise OvsdbError(
                    f"{change.table} {change.key!r}: bad operation {change.op!r}, "
                    f"expected one of {', '.join(OPS)}",
                    table=change.table,
                    key=change.key,
                )
            table = idl.tables[change.table]
            existing = db.by_key[change.table].get(change.key)
            row = inserted.get((change.table, change.key))
            if row is None and existing is not None:
                row = table.rows.get(uuid.UUID(existing))
            if change.op == "delete":
                if row is not None and (change.table, change.key) not in inserted:
                    row.delete()
                    deleted.add((change.table, change.key))
                continue
            if change.op == "insert":
                db.check_insert(change)
            elif existing is not None and row is not None:
                db.check_update(change, existing)
            if change.op == "insert" and row is None:
                missing = [c for c in db.required[change.table] if c not in change.columns]
                if missing:
                    raise OvsdbError(
                        f"cannot insert {change.table} {change.key!r}: missing required "
                        f"column(s) {', '.join(missing)}",
                        table=change.table,
                        key=change.key,
                    )
                row = txn.insert(table)
                inserted[(change.table, change.key)] = row
            elif row is None:
                raise OvsdbError(
                    f"cannot update {change.table} {change.key!r}: no such row",
                    table=change.table,
                    key=change.key,
                )
            targets.append((change, row))

        def resolve(ref: Ref) -> Any:
            if (ref.table, ref.key) in inserted:
                return inserted[(ref.table, ref.key)]
            if (ref.table, ref.key) in deleted:
                raise OvsdbError(f"refers to {ref.table} {ref.key!r}, deleted by the same changes")
            target = db.by_key.get(ref.table, {}).get(ref.key)
            if target is None:
                raise OvsdbError(f"refers to missing {ref.table} {ref.key!r}")
            return uuid.UUID(target)

        for change, row in targets:
            for column, value in change.columns.items():
                schema = idl.tables[change.table].columns.get(column)
                if schema is None:
                    raise OvsdbError(
                        f"{change.table} {change.key!r}: no column {column!r} in {db.name}",
                        table=change.table,
                        key=change.key,
                    )
                try:
                    setattr(row, column, to_idl(schema.type, value, resolve))
                except OvsdbError as err:
                    raise OvsdbError(
                        f"{change.table} {change.key!r} column {column}: {err}",
                        table=change.table,
                        key=change.key,
                    ) from None
    except Exception:
        txn.abort()
        raise
    return txn
