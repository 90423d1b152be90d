"""A plain-data mirror of one database that an IDL replicates, with every row's key.

The client thread owns it: after each ``Idl.run()``, ``sync`` copies the changed rows
(or, after a reconnect, every row) into plain Python values, recomputes the keys of
the rows concerned and returns one ``RowEvent`` per real difference, so a restart of
the server or a reconnect yields only what actually changed while we were away.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import TableKey
from openhnv.ovsdb.rows import Row, RowChange
from openhnv.ovsdb.values import (
    ColumnRefs,
    PlainRow,
    column_refs,
    default_value,
    from_datum,
    keyed_row,
    required_columns,
)

log = logging.getLogger(__name__)

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class RowEvent:
    """One row that appeared (``old`` is None), changed, or went (``new`` is None).

    ``key`` is the row's key (its old key for a deletion), or None if it has none.
    """

    database: str
    table: str
    uuid: str
    key: str | None
    old: PlainRow | None
    new: PlainRow | None


def plain_row(idl_row: Any) -> PlainRow:
    """Every column of an IDL row as plain values (defaults for columns not sent)."""
    data = idl_row._data
    row: PlainRow = {}
    for name, column in idl_row._table.columns.items():
        datum = data.get(name)
        row[name] = from_datum(datum) if datum is not None else default_value(column.type)
    return row


def _refers_to(value: object, target: str) -> bool:
    if isinstance(value, frozenset):
        return target in value
    return value == target


class DatabaseMirror:
    """Rows and keys of one database, as of the last ``sync``."""

    def __init__(self, name: str, idl_tables: Mapping[str, Any], keys: Mapping[str, TableKey]):
        self.name = name
        self.tables = list(idl_tables)
        self.specs = {t: spec for t, spec in keys.items() if t in idl_tables}
        missing = [t for t in self.tables if t not in self.specs]
        if missing:
            raise OvsdbError(f"no key function for table(s) {', '.join(missing)} of {name}")
        self.refs: dict[str, ColumnRefs] = {
            t: column_refs(table) for t, table in idl_tables.items()
        }
        self.required = {t: required_columns(table) for t, table in idl_tables.items()}
        self.rows: dict[str, dict[str, PlainRow]] = {t: {} for t in self.tables}
        self.keys: dict[str, dict[str, str]] = {t: {} for t in self.tables}
        self.by_key: dict[str, dict[str, str]] = {t: {} for t in self.tables}
        self.synced_seqno: int | None = None

    # -- keys --------------------------------------------------------------------------
    def _lookup(self, table: str, row_uuid: str) -> str | None:
        keys = self.keys.get(table)
        return keys.get(row_uuid) if keys is not None else None

    def keyed(self, table: str, row: PlainRow) -> Row:
        return keyed_row(row, self.refs[table], self._lookup)

    def _compute_key(self, table: str, row_uuid: str) -> str | None:
        row = self.rows[table].get(row_uuid)
        if row is None:
            return None
        spec = self.specs[table]
        try:
            if spec.referrer is None:
                return spec.key(self.keyed(table, row))
            ref_table, ref_column = spec.referrer
            for referrer in self.rows[ref_table].values():
                if _refers_to(referrer.get(ref_column), row_uuid):
                    return spec.key(self.keyed(ref_table, referrer))
            return None  # not referred to (yet): no key
        except OvsdbError as err:
            log.warning("%s row %s has no key: %s", table, row_uuid, err)
            return None

    def _set_key(self, table: str, row_uuid: str, key: str | None) -> None:
        old = self.keys[table].pop(row_uuid, None)
        if old is not None and self.by_key[table].get(old) == row_uuid:
            del self.by_key[table][old]
        if key is None:
            return
        other = self.by_key[table].get(key)
        if other is not None and other != row_uuid:
            log.warning("%s rows %s and %s share the key %r", table, other, row_uuid, key)
            return
        self.keys[table][row_uuid] = key
        self.by_key[table][key] = row_uuid

    def _recompute_all_keys(self) -> None:
        for table in self.specs:
            self.keys[table].clear()
            self.by_key[table].clear()
            for row_uuid in self.rows[table]:
                self._set_key(table, row_uuid, self._compute_key(table, row_uuid))

    def _recompute_keys(self, changed: list[tuple[str, str, PlainRow | None]]) -> None:
        affected: set[tuple[str, str]] = {(t, u) for t, u, _ in changed}
        for table, spec in self.specs.items():
            if spec.referrer is None:
                continue
            ref_table, ref_column = spec.referrer
            for t, u, old in changed:
                if t != ref_table:
                    continue
                for row in (old, self.rows[t].get(u)):
                    value = row.get(ref_column) if row is not None else None
                    targets = value if isinstance(value, frozenset) else {value}
                    affected |= {(table, str(v)) for v in targets if isinstance(v, str)}
        for table in self.specs:  # in key order: a table's keys may need earlier ones
            mine = sorted(u for t, u in affected if t == table)
            after: dict[str, str | None] = {}
            for u in mine:
                before = self.keys[table].get(u)
                after[u] = self._compute_key(table, u)
                if before is not None and after[u] != before and u in self.rows[table]:
                    self._recompute_all_keys()  # a renamed row renames its referrers
                    return
            # Release every old key of the table before claiming the new ones: a row
            # deleted and another inserted with the same key (one reconnect) must leave
            # the new row with the key, whatever order the two come in.
            for u in mine:
                self._set_key(table, u, None)
            for u in mine:
                self._set_key(table, u, after[u])

    # -- replication -------------------------------------------------------------------
    def sync(self, idl: Any) -> list[RowEvent]:
        """Take in what the IDL learnt since the last call; the differences as events."""
        session = idl._session
        if not session.is_connected():
            self.synced_seqno = None
            return []
        if idl.state != idl.IDL_S_MONITORING:
            self.synced_seqno = None  # (re)connected, the dump has not arrived yet
            return []
        seqno = session.get_seqno()
        full = self.synced_seqno != seqno
        if full:
            candidates = {(t, u) for t in self.tables for u in self.rows[t]}
            candidates |= {(t, str(u)) for t in self.tables for u in idl.tables[t].rows}
        else:
            candidates = {(t, str(u)) for t, u in idl.dirty}
        idl.dirty.clear()
        self.synced_seqno = seqno
        changed: list[tuple[str, str, PlainRow | None]] = []
        order = {t: i for i, t in enumerate(self.specs)}
        for table, row_uuid in sorted(candidates, key=lambda c: (order[c[0]], c[1])):
            idl_row = idl.tables[table].rows.get(uuid.UUID(row_uuid))
            new = plain_row(idl_row) if idl_row is not None else None
            old = self.rows[table].get(row_uuid)
            if old == new:
                continue
            if new is None:
                del self.rows[table][row_uuid]
            else:
                self.rows[table][row_uuid] = new
            changed.append((table, row_uuid, old))
        if not changed:
            return []
        old_keys = {(t, u): self.keys[t].get(u) for t, u, _ in changed}
        self._recompute_keys(changed)
        events = []
        for table, row_uuid, old in changed:
            new = self.rows[table].get(row_uuid)
            key = self.keys[table].get(row_uuid) if new is not None else None
            key = key if key is not None else old_keys[(table, row_uuid)]
            events.append(RowEvent(self.name, table, row_uuid, key, old, new))
        return events

    # -- helpers for the client --------------------------------------------------------
    def keyed_table(self, table: str) -> dict[str, Row]:
        """Rows of ``table`` that have a key: key -> row in desired-state form."""
        rows = self.rows[table]
        return {key: self.keyed(table, rows[u]) for u, key in self.keys[table].items()}

    def keyed_row_of(self, table: str, key: str) -> Row | None:
        """The row of ``table`` named ``key`` in desired-state form, or None."""
        row_uuid = self.by_key[table].get(key)
        row = self.rows[table].get(row_uuid) if row_uuid is not None else None
        return self.keyed(table, row) if row is not None else None

    def check_insert(self, change: RowChange) -> None:
        """Refuse an insert whose key does not match its own columns."""
        spec = self.specs[change.table]
        if spec.referrer is not None:
            return
        try:
            key = spec.key(change.columns)
        except OvsdbError as err:
            raise OvsdbError(
                f"cannot insert {change.table} {change.key!r}: {err}",
                table=change.table,
                key=change.key,
            ) from None
        if key != change.key:
            raise OvsdbError(
                f"cannot insert {change.table} {change.key!r}: its columns give the key {key!r}",
                table=change.table,
                key=change.key,
            )

    def check_update(self, change: RowChange, row_uuid: str) -> None:
        """Refuse an update that would change the row's key (delete and insert instead)."""
        spec = self.specs[change.table]
        row = self.rows[change.table].get(row_uuid)
        if spec.referrer is not None or row is None:
            return
        merged = dict(self.keyed(change.table, row))
        merged.update(change.columns)
        try:
            key = spec.key(merged)
        except OvsdbError as err:
            raise OvsdbError(
                f"cannot update {change.table} {change.key!r}: {err}",
                table=change.table,
                key=change.key,
            ) from None
        if key != change.key:
            raise OvsdbError(
                f"cannot update {change.table} {change.key!r}: it would rename the row to "
                f"{key!r} (delete it and insert the new key instead)",
                table=change.table,
                key=change.key,
            )

    def explain(self, error: str) -> str:
        """A server error with its UUIDs named by table and key where known."""
        try:
            parsed = json.loads(error)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "error" in parsed:
            error = parsed["error"] + (f": {parsed['details']}" if "details" in parsed else "")

        def name(match: re.Match[str]) -> str:
            found = match.group(0)
            for table, keys in self.keys.items():
                if found in keys:
                    return f"{table} {keys[found]!r} ({found})"
            return found

        return _UUID_RE.sub(name, error)
