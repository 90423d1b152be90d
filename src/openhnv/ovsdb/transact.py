"""Rows on the OVSDB wire, outwards: ``RowChange`` lists as ``transact`` operations.

``transactions(schema, changes, uuids)`` gives one ``transact`` per database for a list
of ``RowChange``: rows found by key through ``uuids`` (from ``wire.keyed_snapshot``),
rows inserted by the same changes referred to by ``named-uuid``; an insert of an
existing key updates it, a delete of a missing key does nothing, an update of a missing
key fails (RFC 7047 §5.2). ``explain`` names the change a reply refused. Values are
written as RFC 7047 §5.1 JSON. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Ref, RowChange, Value
from openhnv.ovsdb.schema import DATABASES
from openhnv.ovsdb.wire import ATOM_TYPES, ColumnType, Schema

Resolve = Callable[[Ref], list[str]]


def _json_atom(kind: str, atom: Any, resolve: Resolve, where: str) -> Any:
    allowed = ATOM_TYPES.get(kind, (object,))
    if not isinstance(atom, allowed) or (kind == "integer" and isinstance(atom, bool)):
        raise OvsdbError(f"{where}: {atom!r} is not a {kind}")
    return resolve(atom) if isinstance(atom, Ref) else atom


def json_value(ctype: ColumnType, value: Value | None, resolve: Resolve, where: str) -> Any:
    """A desired-state value as OVSDB JSON for a column of type ``ctype``."""
    if ctype.is_map:
        if not isinstance(value, Mapping):
            raise OvsdbError(f"{where}: expected a map, got {value!r}")
        pairs = [
            [
                _json_atom(ctype.key, k, resolve, where),
                _json_atom(ctype.value or "", v, resolve, where),
            ]
            for k, v in value.items()
        ]
        return ["map", pairs]
    if isinstance(value, Mapping):
        raise OvsdbError(f"{where}: expected {'an atom' if ctype.scalar else 'a set'}, got a map")
    atoms = list(value) if isinstance(value, frozenset | set | list | tuple) else [value]
    atoms = [a for a in atoms if a is not None]
    if ctype.scalar:
        if len(atoms) != 1:
            raise OvsdbError(f"{where}: expected a single value, got {value!r}")
        return _json_atom(ctype.key, atoms[0], resolve, where)
    if len(atoms) > ctype.n_max:
        raise OvsdbError(f"{where}: at most {ctype.n_max} value(s), got {len(atoms)}")
    return ["set", [_json_atom(ctype.key, a, resolve, where) for a in atoms]]


@dataclass
class Transaction:
    """One database's ``transact``: the operations and the change behind each one."""

    database: str
    ops: list[dict[str, Any]] = field(default_factory=list)
    sources: list[RowChange | None] = field(default_factory=list)  # None: a stray's delete
    inserted: dict[str, tuple[str, str]] = field(default_factory=dict)  # uuid-name -> (table, key)

    def params(self) -> list[Any]:
        return [self.database, *self.ops]


def transactions(
    schema: Schema,
    changes: Sequence[RowChange],
    uuids: Mapping[str, Mapping[str, str]],
    strays: Iterable[tuple[str, str]] = (),
) -> list[Transaction]:
    """The ``transact`` of each database for ``changes`` (databases in schema order)."""
    builder = _Builder(schema, uuids)
    builder.name_inserts(changes)
    for change in changes:
        builder.add(change)
    for table, row_uuid in strays:
        builder.delete_stray(table, row_uuid)
    return builder.done()


class _Builder:
    """``transactions``' work: the rows it inserts named, each change as one operation."""

    def __init__(self, schema: Schema, uuids: Mapping[str, Mapping[str, str]]) -> None:
        self.schema = schema
        self.uuids = uuids
        self.by_db: dict[str, Transaction] = {}
        self.names: dict[tuple[str, str], str] = {}  # rows inserted here -> uuid-name
        self.deleted: set[tuple[str, str]] = set()
        self.inserts: dict[tuple[str, str], dict[str, Any]] = {}

    def name_inserts(self, changes: Sequence[RowChange]) -> None:
        """Name every row the changes insert (references to it use the name)."""
        for change in changes:
            ident = (change.table, change.key)
            if change.op == "delete":
                self.deleted.add(ident)
            elif change.op == "insert" and change.key not in self.uuids.get(change.table, {}):
                self.names.setdefault(ident, f"row{len(self.names)}")
            elif change.op not in ("insert", "update"):
                raise OvsdbError(f"{change.table} {change.key!r}: bad operation {change.op!r}")

    def txn_of(self, table: str) -> Transaction:
        database = self.schema.database_of.get(table)
        if database is None:
            raise OvsdbError(f"unknown table {table!r}", table=table)
        return self.by_db.setdefault(database, Transaction(database))

    def resolve(self, ref: Ref) -> list[str]:
        ident = (ref.table, ref.key)
        if ident in self.names:
            return ["named-uuid", self.names[ident]]
        if ident in self.deleted:
            raise OvsdbError(f"refers to {ref.table} {ref.key!r}, deleted by the same changes")
        found = self.uuids.get(ref.table, {}).get(ref.key)
        if found is None:
            raise OvsdbError(f"refers to missing {ref.table} {ref.key!r}")
        return ["uuid", found]

    def row(self, change: RowChange) -> dict[str, Any]:
        """The change's columns as OVSDB JSON."""
        columns = self.schema.columns(change.table)
        row: dict[str, Any] = {}
        for column, value in change.columns.items():
            where = f"{change.table} {change.key!r} column {column}"
            ctype = columns.get(column)
            if ctype is None:
                raise OvsdbError(f"{where}: no such column", table=change.table, key=change.key)
            try:
                row[column] = json_value(ctype, value, self.resolve, where)
            except OvsdbError as err:
                raise OvsdbError(str(err), table=change.table, key=change.key) from None
        return row

    def add(self, change: RowChange) -> None:
        ident = (change.table, change.key)
        txn = self.txn_of(change.table)
        row = self.row(change)
        existing = self.uuids.get(change.table, {}).get(change.key)
        if change.op == "delete":
            if existing is not None and ident not in self.names:
                txn.ops.append({"op": "delete", "table": change.table, "where": _by_uuid(existing)})
                txn.sources.append(change)
        elif ident in self.names:
            self._insert(txn, change, row)
        elif existing is None:
            raise OvsdbError(
                f"cannot update {change.table} {change.key!r}: no such row",
                table=change.table,
                key=change.key,
            )
        elif row:
            txn.ops.append(
                {"op": "update", "table": change.table, "where": _by_uuid(existing), "row": row}
            )
            txn.sources.append(change)

    def _insert(self, txn: Transaction, change: RowChange, row: dict[str, Any]) -> None:
        ident = (change.table, change.key)
        if ident in self.inserts:  # a later change of a row inserted by these changes
            self.inserts[ident].update(row)
            return
        self.inserts[ident] = row
        name = self.names[ident]
        txn.ops.append({"op": "insert", "table": change.table, "row": row, "uuid-name": name})
        txn.sources.append(change)
        txn.inserted[name] = ident

    def delete_stray(self, table: str, row_uuid: str) -> None:
        txn = self.txn_of(table)
        txn.ops.append({"op": "delete", "table": table, "where": _by_uuid(row_uuid)})
        txn.sources.append(None)

    def done(self) -> list[Transaction]:
        order = {d: i for i, d in enumerate(DATABASES)}
        found = (t for t in self.by_db.values() if t.ops)
        return sorted(found, key=lambda t: order.get(t.database, len(order)))


def _by_uuid(row_uuid: str) -> list[list[Any]]:
    return [["_uuid", "==", ["uuid", row_uuid]]]


def explain(txn: Transaction, result: Any) -> str | None:
    """Why a ``transact`` reply failed, naming the change it failed on; None if it did not."""
    if not isinstance(result, list):
        return f"unexpected reply {json.dumps(result)[:200]}"
    for i, outcome in enumerate(result):
        if isinstance(outcome, dict) and outcome.get("error"):
            reason = str(outcome["error"]) + (
                f": {outcome['details']}" if outcome.get("details") else ""
            )
            source = txn.sources[i] if i < len(txn.sources) else None
            if source is not None:
                return f"{source.op} {source.table} {source.key!r}: {reason}"
            return reason
    return None
