"""Rows on the OVSDB wire without the ``ovs`` IDL: the schema's types and select results in.

For a client that keeps no mirror of the server (the controller's southbound: it knows
what it wants each host to hold and asks the host only on a resync):

- ``Schema``: every column's type, read once from the shipped schemas;
- ``keyed_snapshot(schema, selected)``: the rows of a ``select`` on every table, in
  desired-state form (``Ref(table, key)`` references, plain values as
  ``OvsdbClient.snapshot`` gives them), with each key's row UUID and the UUIDs of rows
  that share a key with another (strays to delete);
- writing (``transactions``) is ``openhnv.ovsdb.transact``.

JSON values follow RFC 7047 §5.1: an atom, ``["uuid", U]``, ``["named-uuid", N]``,
``["set", [...]]`` or ``["map", [[k, v], ...]]``. Pure functions, no I/O.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import TABLE_KEYS, TableKey
from openhnv.ovsdb.rows import Ref, Row, Value
from openhnv.ovsdb.schema import DATABASES, load_schema
from openhnv.ovsdb.values import PlainRow, PlainValue

UNLIMITED = sys.maxsize
ATOM_TYPES: dict[str, tuple[type, ...]] = {
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
