"""Column values between the ``ovs`` IDL and plain Python data.

Plain values, as ``OvsdbClient.rows()`` returns them: a scalar column is its atom; an
optional column (0 or 1 value) is the atom or ``None``; a set is a ``frozenset``; a map
is a ``dict``; a reference is the referenced row's UUID as a string. In the keyed form
(``OvsdbClient.snapshot()``, the desired-state form of ``openhnv.ovsdb.rows``) a
reference is ``Ref(table, key)`` instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import ovs.db.data
import ovs.db.error

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Atom, Ref, Row, Value

PlainAtom: TypeAlias = str | int | float | bool
PlainValue: TypeAlias = PlainAtom | frozenset[PlainAtom] | dict[PlainAtom, PlainAtom] | None
PlainRow: TypeAlias = dict[str, PlainValue]

_DEFAULTS: dict[str, Any] = {"integer": 0, "real": 0.0, "boolean": False, "string": ""}

# Refs of one table: column -> (table the key refers to, table the value refers to).
ColumnRefs: TypeAlias = Mapping[str, tuple[str | None, str | None]]


def column_refs(table_schema: Any) -> dict[str, tuple[str | None, str | None]]:
    """Which columns of an ``ovs.db.schema.TableSchema`` hold references, and to what."""
    refs: dict[str, tuple[str | None, str | None]] = {}
    for name, column in table_schema.columns.items():
        key_ref = column.type.key.ref_table_name
        value_ref = column.type.value.ref_table_name if column.type.value is not None else None
        if key_ref or value_ref:
            refs[name] = (key_ref, value_ref)
    return refs


def _plain_atom(atom: Any) -> PlainAtom:
    value = atom.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str | int | float | bool):
        return value
    raise OvsdbError(f"unexpected OVSDB atom {value!r}")


def from_datum(datum: Any) -> PlainValue:
    """A plain value from an ``ovs.db.data.Datum``."""
    type_ = datum.type
    if type_.value is not None:
        return {_plain_atom(k): _plain_atom(v) for k, v in datum.values.items()}
    atoms = [_plain_atom(k) for k in datum.values]
    if type_.n_max == 1:
        if type_.n_min == 1:
            return atoms[0] if atoms else _plain_atom(type_.key.default_atom())
        return atoms[0] if atoms else None
    return frozenset(atoms)


def default_value(type_: Any) -> PlainValue:
    """The plain value of a column that holds its type's default (OVSDB §3.2)."""
    if type_.value is not None:
        return {}
    if type_.n_max == 1:
        if type_.n_min == 1:
            default: PlainAtom = _DEFAULTS.get(type_.key.type.name, "")
            return str(uuid.UUID(int=0)) if type_.key.type.name == "uuid" else default
        return None
    return frozenset()


def keyed_value(
    value: PlainValue, refs: tuple[str | None, str | None], key_of: Callable[[str, str], str | None]
) -> Value:
    """A plain value with its UUID references replaced by ``Ref(table, key)``.

    A reference whose row has no key (yet) stays a UUID string.
    """
    key_table, value_table = refs

    def conv(atom: PlainAtom, table: str | None) -> Atom:
        if table is None or not isinstance(atom, str):
            return atom  # type: ignore[return-value]
        key = key_of(table, atom)
        return atom if key is None else Ref(table, key)

    if isinstance(value, dict):
        return {conv(k, key_table): conv(v, value_table) for k, v in value.items()}
    if isinstance(value, frozenset):
        return frozenset(conv(a, key_table) for a in value)
    if value is None:
        return frozenset()
    return conv(value, key_table)


def keyed_row(
    row: Mapping[str, PlainValue], refs: ColumnRefs, key_of: Callable[[str, str], str | None]
) -> Row:
    """A plain row in desired-state form (references as ``Ref``)."""
    out: dict[str, Value] = {}
    for column, value in row.items():
        if column in refs:
            out[column] = keyed_value(value, refs[column], key_of)
        elif value is None:
            out[column] = frozenset()
        else:
            out[column] = value  # type: ignore[assignment]
    return out


def _row_to_uuid(value: Any) -> Any:
    row_uuid = getattr(value, "uuid", None)
    return row_uuid if isinstance(row_uuid, uuid.UUID) else value


def to_idl(column_type: Any, value: Value | None, resolve: Callable[[Ref], Any]) -> Any:
    """The IDL's Python value for a desired-state ``value``, checked against the type.

    ``resolve`` turns a ``Ref`` into a ``uuid.UUID`` or an IDL row. Raises
    ``OvsdbError`` with the schema's reason when the value does not fit the column.
    """

    def conv(atom: Any) -> Any:
        return resolve(atom) if isinstance(atom, Ref) else atom

    result: Any
    if column_type.value is not None:
        if not isinstance(value, Mapping):
            raise OvsdbError(f"expected a map, got {value!r}")
        result = {conv(k): conv(v) for k, v in value.items()}
    elif column_type.n_max == 1 and column_type.n_min == 1:
        if isinstance(value, frozenset | set | list | tuple | Mapping) or value is None:
            raise OvsdbError(f"expected a single value, got {value!r}")
        result = conv(value)
    elif value is None:
        result = []
    elif isinstance(value, frozenset | set | list | tuple):
        result = [conv(a) for a in value]
    elif isinstance(value, Mapping):
        raise OvsdbError(f"expected a set, got the map {value!r}")
    else:
        result = [conv(value)]
    try:
        ovs.db.data.Datum.from_python(column_type, result, _row_to_uuid)
    except ovs.db.error.Error as err:
        raise OvsdbError(str(err)) from None
    return result


def required_columns(table_schema: Any) -> list[str]:
    """Columns an inserted row must set: their default breaks the schema's constraints."""
    required = []
    for name, column in table_schema.columns.items():
        type_ = column.type
        if type_.n_min < 1 or type_.value is not None:
            continue
        try:
            ovs.db.data.Atom.from_python(type_.key, _DEFAULTS.get(type_.key.type.name, ""))
        except ovs.db.error.Error:
            required.append(name)
            continue
        if type_.key.ref_table_name is not None:
            required.append(name)
    return sorted(required)
