"""Desired OVSDB rows as plain data, and the minimal changes between two desired states.

A row refers to another by ``Ref(table, key)``: row UUIDs belong to each ovsdb-server,
so the controller names rows by the value of their index column (docs/southbound.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to the desired row ``key`` of ``table``."""

    table: str
    key: str


Atom: TypeAlias = str | int | bool | Ref
Value: TypeAlias = Atom | frozenset[Atom] | Mapping[Atom, Atom]
Row: TypeAlias = Mapping[str, Value]
TableRows: TypeAlias = Mapping[str, Row]
DesiredState: TypeAlias = Mapping[str, TableRows]


@dataclass(frozen=True, slots=True)
class RowChange:
    """One row to insert, update (only the changed columns) or delete."""

    op: Literal["insert", "update", "delete"]
    table: str
    key: str
    columns: Mapping[str, Value]


def diff(old: DesiredState, new: DesiredState) -> list[RowChange]:
    """The minimal row changes that turn ``old`` into ``new``.

    Inserts come in table order of ``new`` and deletes last, so a transaction built
    from the list never refers to a row it has already removed.
    """
    inserts: list[RowChange] = []
    updates: list[RowChange] = []
    deletes: list[RowChange] = []
    for table, new_rows in new.items():
        old_rows = old.get(table, {})
        for key, row in new_rows.items():
            before = old_rows.get(key)
            if before is None:
                inserts.append(RowChange("insert", table, key, dict(row)))
                continue
            if before == row:  # most rows of a resync: one comparison in C, no copy
                continue
            changed = {col: val for col, val in row.items() if before.get(col) != val}
            changed.update({col: _empty_like(before[col]) for col in before if col not in row})
            if changed:
                updates.append(RowChange("update", table, key, changed))
    for table, old_rows in old.items():
        new_rows = new.get(table, {})
        for key in old_rows:
            if key not in new_rows:
                deletes.append(RowChange("delete", table, key, {}))
    return inserts + updates + deletes


def _empty_like(value: Value) -> Value:
    """The value a column takes when a desired row no longer sets it."""
    if isinstance(value, frozenset):
        return frozenset()
    if isinstance(value, Mapping):
        return {}
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, Ref):
        return frozenset()
    return ""
