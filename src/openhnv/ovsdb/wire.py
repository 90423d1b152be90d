"""Rows on the OVSDB wire without the ``ovs`` IDL: select results in, transact operations out.

For a client that keeps no mirror of the server (the controller's southbound: it knows
what it wants each host to hold and asks the host only on a resync):

- ``Schema``: every column's type, read once from the shipped schemas;
- ``keyed_snapshot(schema, selected)``: the rows of a ``select`` on every table, in
  desired-state form (``Ref(table, key)`` references, plain values as
  ``OvsdbClient.snapshot`` gives them), with each key's row UUID and the UUIDs of rows
  that share a key with another (strays to delete);
- ``transactions(schema, changes, uuids)``: one ``transact`` per database for a list of
  ``RowChange``: rows found by key through ``uuids``, rows inserted by the same changes
  referred to by ``named-uuid``; an insert of an existing key updates it, a delete of a
  missing key does nothing, an update of a missing key fails (RFC 7047 §5.2).

JSON values follow RFC 7047 §5.1: an atom, ``["uuid", U]``, ``["named-uuid", N]``,
``["set", [...]]`` or ``["map", [[k, v], ...]]``. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import TABLE_KEYS, TableKey
from openhnv.ovsdb.rows import Ref, Row, RowChange, Value
from openhnv.ovsdb.schema import DATABASES, load_schema
from openhnv.ovsdb.values import PlainRow, PlainValue

UNLIMITED = sys.maxsize
_ATOM_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "real": (float, int),
    "uuid": (Ref,),
}


@dataclass(frozen=True, slots=True)
class ColumnType:
    """What a column holds: atoms of ``key`` (and ``value`` for a map), ``n_min..n_max``."""

    key: str
    key_ref: str | None = None
    value: str | None = None  # a map's value type
    value_ref: str | None = None
    n_min: int = 1
    n_max: int = 1

    @property
    def is_map(self) -> bool:
        return self.value is not None

    @property
    def scalar(self) -> bool:
        return self.n_min == 1 and self.n_max == 1 and not self.is_map


def _base(raw: Any) -> tuple[str, str | None]:
    if isinstance(raw, str):
        return raw, None
    return str(raw["type"]), raw.get("refTable")


def column_type(raw: Any) -> ColumnType:
    """A column's type from its schema JSON (``{"type": ...}``)."""
    spec = raw["type"]
    if isinstance(spec, str):
        return ColumnType(spec)
    key, key_ref = _base(spec["key"])
    value, value_ref = _base(spec["value"]) if "value" in spec else (None, None)
    n_max = spec.get("max", 1)
    return ColumnType(
        key,
        key_ref,
        value,
        value_ref,
        int(spec.get("min", 1)),
        UNLIMITED if n_max == "unlimited" else int(n_max),
    )


class Schema:
    """Column types of every table of the southbound databases."""

    def __init__(self, databases: Sequence[str] = DATABASES) -> None:
        self.tables: dict[str, dict[str, ColumnType]] = {}
        self.database_of: dict[str, str] = {}
        for database in databases:
            for table, raw in load_schema(database)["tables"].items():
                self.tables[table] = {c: column_type(t) for c, t in raw["columns"].items()}
                self.database_of[table] = database
        self.refs: dict[str, dict[str, tuple[str | None, str | None]]] = {
            table: {
                c: (t.key_ref, t.value_ref) for c, t in cols.items() if t.key_ref or t.value_ref
            }
            for table, cols in self.tables.items()
        }

    def columns(self, table: str) -> dict[str, ColumnType]:
        found = self.tables.get(table)
        if found is None:
            raise OvsdbError(f"unknown table {table!r}", table=table)
        return found


# -- reading -----------------------------------------------------------------------------


def _atom(raw: Any) -> Any:
    if isinstance(raw, list) and len(raw) == 2 and raw[0] == "uuid":
        return raw[1]
    return raw


def plain_value(ctype: ColumnType, raw: Any) -> PlainValue:
    """A column's JSON value as a plain value (``openhnv.ovsdb.values``' conventions)."""
    if ctype.is_map:
        pairs = raw[1] if isinstance(raw, list) and raw and raw[0] == "map" else []
        return {_atom(k): _atom(v) for k, v in pairs}
    if isinstance(raw, list) and raw and raw[0] == "set":
        atoms = [_atom(a) for a in raw[1]]
    else:
        atoms = [_atom(raw)]
    if ctype.n_max == 1:
        return atoms[0] if atoms else None
    return frozenset(atoms)


def plain_row(columns: Mapping[str, ColumnType], raw: Mapping[str, Any]) -> PlainRow:
    """A selected row (``_uuid``/``_version`` left out) as plain values."""
    return {
        name: plain_value(columns[name], value) for name, value in raw.items() if name in columns
    }


@dataclass
class Snapshot:
    """A host's rows in desired-state form, with the UUID behind every key."""

    rows: dict[str, dict[str, Row]] = field(default_factory=dict)  # table -> key -> row
    uuids: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> key -> UUID
    strays: list[tuple[str, str]] = field(default_factory=list)  # (table, UUID) sharing a key


Convert = Callable[[Any], Value]


def _atom_of(raw: Any, refs: Mapping[str, Ref] | None) -> Any:
    """A JSON atom in desired-state form: a UUID becomes the Ref of its row when known."""
    if type(raw) is list:  # ["uuid", U]
        found = raw[1]
        return refs.get(found, found) if refs is not None else found
    return raw


def keyed_value(
    ctype: ColumnType,
    raw: Any,
    key_refs: Mapping[str, Ref] | None,
    value_refs: Mapping[str, Ref] | None = None,
) -> Value:
    """A column's JSON value straight to desired-state form (as ``keyed_row`` of
    ``plain_row`` gives it: an empty optional value is ``frozenset()``)."""
    return converter(ctype, key_refs, value_refs)(raw)


def converter(
    ctype: ColumnType, key_refs: Mapping[str, Ref] | None, value_refs: Mapping[str, Ref] | None
) -> Convert:
    """A function of one column's JSON value to its desired-state form, specialised to
    the column's type (a resync converts every row of every host: this is its loop)."""
    if ctype.value is not None:
        return _map_converter(key_refs, value_refs)
    if ctype.n_max == 1:
        if ctype.n_min == 1 and ctype.key != "uuid":
            return _same  # a scalar comes as its atom
        return _optional_converter(key_refs)
    if key_refs is None and ctype.key != "uuid":  # atoms are plain JSON values
        return _plain_set
    return _set_converter(key_refs)


def _map_converter(
    key_refs: Mapping[str, Ref] | None, value_refs: Mapping[str, Ref] | None
) -> Convert:
    def a_map(raw: Any) -> Value:
        pairs = raw[1] if type(raw) is list and raw[0] == "map" else []
        return {_atom_of(k, key_refs): _atom_of(v, value_refs) for k, v in pairs}

    return a_map


def _atom_converter(refs: Mapping[str, Ref] | None) -> Callable[[Any], Any]:
    def atom(raw: Any) -> Any:
        if type(raw) is list:  # ["uuid", U]
            return refs.get(raw[1], raw[1]) if refs is not None else raw[1]
        return raw

    return atom


def _optional_converter(refs: Mapping[str, Ref] | None) -> Convert:
    atom = _atom_converter(refs)

    def optional(raw: Any) -> Value:
        if type(raw) is list and raw[0] == "set":
            return atom(raw[1][0]) if raw[1] else frozenset()
        value: Value = atom(raw)
        return value

    return optional


def _plain_set(raw: Any) -> Value:
    if type(raw) is list and raw[0] == "set":
        return frozenset(raw[1])
    return frozenset((raw,))


def _set_converter(refs: Mapping[str, Ref] | None) -> Convert:
    atom = _atom_converter(refs)

    def a_set(raw: Any) -> Value:
        if type(raw) is list and raw[0] == "set":
            return frozenset([atom(a) for a in raw[1]])
        return frozenset((atom(raw),))

    return a_set


def _same(raw: Any) -> Value:
    value: Value = raw
    return value


def keyed_snapshot(
    schema: Schema,
    selected: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: Mapping[str, TableKey] = TABLE_KEYS,
) -> Snapshot:
    """The rows of ``selected`` (table -> rows as ``select`` returns them) by key.

    Each row is converted once, in key order (a key may need the keys of the rows it
    refers to); rows that refer to tables keyed after them are converted again at the
    end. Rows whose key cannot be computed (a reference to a row without a key) are
    left out, as ``OvsdbClient.snapshot`` does; a row whose key another row already has
    is a stray.
    """
    ref_of: dict[str, dict[str, Ref]] = {table: {} for table in selected}
    converted: dict[str, dict[str, Row]] = {}  # table -> UUID -> row
    order = [t for t in keys if t in selected]
    position = {t: i for i, t in enumerate(order)}

    converters: dict[str, dict[str, Convert]] = {
        table: {
            name: converter(
                ctype,
                ref_of.get(ctype.key_ref) if ctype.key_ref else None,
                ref_of.get(ctype.value_ref) if ctype.value_ref else None,
            )
            for name, ctype in schema.columns(table).items()
        }
        for table in selected
    }

    def convert(table: str, raw: Mapping[str, Any]) -> Row:
        columns = converters[table]
        return {name: columns[name](value) for name, value in raw.items() if name in columns}

    late: set[str] = set()  # tables that refer to tables keyed after them
    snapshot = Snapshot()
    for table in order:
        spec = keys[table]
        found: dict[str, Row] = {}
        uuids: dict[str, str] = {}
        rows = {str(_atom_of(r["_uuid"], None)): r for r in selected[table]}
        if _refers_forward(schema, table, position):
            late.add(table)
        key_by_uuid = _keys_by_referrer(spec, converted)
        converted[table] = {}
        for row_uuid, raw in rows.items():
            row = convert(table, raw)
            try:
                key = key_by_uuid[row_uuid] if key_by_uuid is not None else spec.key(row)
            except (OvsdbError, KeyError):
                continue
            if key in found:
                snapshot.strays.append((table, row_uuid))
                continue
            found[key] = row
            uuids[key] = row_uuid
            converted[table][row_uuid] = row
            ref_of[table][row_uuid] = Ref(table, key)
        snapshot.rows[table] = found
        snapshot.uuids[table] = uuids
    for table in late:  # now every key is known: resolve their references again
        raw_rows = {str(_atom_of(r["_uuid"], None)): r for r in selected[table]}
        snapshot.rows[table] = {
            key: convert(table, raw_rows[row_uuid])
            for key, row_uuid in snapshot.uuids[table].items()
        }
    return snapshot


def _refers_forward(schema: Schema, table: str, position: Mapping[str, int]) -> bool:
    """Whether ``table`` refers to a table keyed after it (its references resolve late)."""
    targets = [t for c in schema.columns(table).values() for t in (c.key_ref, c.value_ref)]
    return any(t is not None and position.get(t, -1) >= position[table] for t in targets)


def _keys_by_referrer(
    spec: TableKey, converted: Mapping[str, Mapping[str, Row]]
) -> dict[str, str] | None:
    """For a table keyed by the row that refers to it: row UUID -> key (the first
    referrer's); None for a table keyed by its own columns."""
    if spec.referrer is None:
        return None
    ref_table, ref_column = spec.referrer
    key_by_uuid: dict[str, str] = {}
    for referrer in converted.get(ref_table, {}).values():
        pointed = referrer.get(ref_column)
        targets = pointed if isinstance(pointed, frozenset) else (pointed,)
        try:
            key = spec.key(referrer)
        except OvsdbError:
            continue
        for target_uuid in targets:
            if isinstance(target_uuid, str):
                key_by_uuid.setdefault(target_uuid, key)
    return key_by_uuid


def select_all(schema: Schema, database: str, tables: Iterable[str]) -> list[Any]:
    """``transact`` params selecting every row of ``tables`` of ``database`` (the schema's
    columns and ``_uuid``; not ``_version``, which nobody here reads)."""
    return [
        database,
        *(
            {"op": "select", "table": t, "where": [], "columns": ["_uuid", *schema.columns(t)]}
            for t in tables
        ),
    ]


# -- writing -----------------------------------------------------------------------------

Resolve = Callable[[Ref], list[str]]


def _json_atom(kind: str, atom: Any, resolve: Resolve, where: str) -> Any:
    allowed = _ATOM_TYPES.get(kind, (object,))
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
