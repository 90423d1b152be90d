"""Fuzz target of the southbound rows a host agent reads: hostile values on the wire.

The rows are what the compiler writes for host1 of figure 8. An input is JSON: a list of
edits ``[table, row, column, value]`` (indexes into the schema's tables, the table's
rows (past the end: a new row), the table's columns) with ``value`` in the OVSDB wire
form of RFC 7047 (``["set", [...]]``, ``["map", [...]]``, ``["uuid", "..."]``). Each value
is converted as the IDL converts an update (``Datum.from_json`` against the column's
type: the schema's own check, which may refuse with ``ovs.db.error.Error``), then to the
agent's form (``from_datum``, ``keyed_value``: a UUID of a known row becomes its ``Ref``)
and written into the rows. Then the agent's work: ``read_catalog``, ``plan`` and the
programming of a switch. None of it may raise: a bad row is a ``Problem`` naming its
table and key, and the rows it leaves alone are planned as before.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

import ovs.db.data
import ovs.db.error
import ovs.db.types

from openhnv.agent.planner import plan
from openhnv.agent.rows import TABLES, read_catalog
from openhnv.ovsdb.rows import DesiredState, Ref, Row
from openhnv.ovsdb.schema import DATABASES, load_schema
from openhnv.ovsdb.values import from_datum, keyed_value
from openhnv.testing import snapshots as nb
from openhnv.testing.fuzz import FuzzFailure, Target
from openhnv.testing.fuzz.world import program
from openhnv.testing.southbound import host_rows
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.null import NullDriver
from openhnv.vswitch.switch import HostSwitch

MAX_EDITS = 16
EDIT_LEN = 4
HOST = "host1"
Column = tuple[str, Any]  # name, ovs.db.types.Type


@functools.cache
def _tables() -> tuple[tuple[str, tuple[Column, ...]], ...]:
    """(table, ((column, its type), ...)) of both databases, in a stable order."""
    out = []
    for db in DATABASES:
        for table, spec in sorted(load_schema(db)["tables"].items()):
            columns = tuple(
                (name, ovs.db.types.Type.from_json(column["type"]))
                for name, column in sorted(spec["columns"].items())
            )
            out.append((table, columns))
    return tuple(out)


@functools.cache
def _rows() -> DesiredState:
    return host_rows(nb.figure8(), HOST)


def _uuid_of(table: str, key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{table}/{key}"))


def _key_of(rows: DesiredState) -> dict[str, tuple[str, str]]:
    return {_uuid_of(t, k): (t, k) for t, by_key in rows.items() for k in by_key}


def edited_rows(data: bytes) -> DesiredState | None:
    """The figure 8 rows with the edits of ``data`` (None: ``data`` is no edit list, or
    the schema refuses a value, as ovsdb-server and the IDL would)."""
    try:
        edits = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(edits, list) or len(edits) > MAX_EDITS:
        return None
    rows = {t: {k: dict(r) for k, r in by_key.items()} for t, by_key in _rows().items()}
    known = _key_of(rows)
    tables = _tables()
    for edit in edits:
        if not (isinstance(edit, list) and len(edit) == EDIT_LEN):
            return None
        t, k, c, value = edit
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in (t, k, c)):
            return None
        table, columns = tables[t % len(tables)]
        column, type_ = columns[c % len(columns)]
        by_key = rows.setdefault(table, {})
        keys = sorted(by_key)
        key = keys[k] if 0 <= k < len(keys) else f"fuzz-{k}"
        try:
            datum = ovs.db.data.Datum.from_json(type_, value)
        except ovs.db.error.Error:
            return None  # the schema refuses it: it never reaches the agent
        refs = (type_.key.ref_table_name, type_.value.ref_table_name if type_.value else None)
        plain = from_datum(datum)
        by_key.setdefault(key, {})[column] = keyed_value(
            plain, refs, lambda table, u: known.get(u, ("", None))[1]
        )
    return rows


def rows_target(data: bytes) -> None:
    rows = edited_rows(data)
    if rows is None:
        return
    catalog = read_catalog(rows)
    for problem in catalog.problems:
        if problem.table not in TABLES or problem.key not in rows.get(problem.table, {}):
            raise FuzzFailure(f"a problem names no row of the input: {problem}")
        if not problem.reason:
            raise FuzzFailure(f"a problem without a reason: {problem}")
    new = plan(catalog)
    switch = HostSwitch(VfpEngine(), NullDriver(), expire_interval=None)
    switch.start()
    try:
        program(switch, new)
    except Exception as err:
        raise FuzzFailure(f"programming a plan of hostile rows raised {err!r}") from err
    finally:
        switch.stop()


def _ref_json(ref: Ref) -> list[str]:
    return ["uuid", _uuid_of(ref.table, ref.key)]


def _wire(value: Any) -> Any:
    """A row value in RFC 7047 wire form."""
    if isinstance(value, Ref):
        return _ref_json(value)
    if isinstance(value, frozenset):
        return ["set", [_wire(a) for a in sorted(value, key=str)]]
    if isinstance(value, dict):
        return ["map", [[_wire(k), _wire(v)] for k, v in sorted(value.items(), key=str)]]
    return value


def seeds() -> tuple[bytes, ...]:
    """One edit per column of every row: the row's own value, on the wire."""
    rows = _rows()
    tables = _tables()
    out = []
    for t, (table, columns) in enumerate(tables):
        keys = sorted(rows.get(table, {}))
        for k, key in enumerate(keys):
            row: Row = rows[table][key]
            for c, (column, _) in enumerate(columns):
                if column in row:
                    out.append(json.dumps([[t, k, c, _wire(row[column])]]).encode())
    return tuple(out)


TARGETS = (Target("southbound-rows", rows_target, seeds),)
