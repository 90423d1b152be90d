"""Plain-text tables and key/value blocks of the inspection commands."""

from __future__ import annotations

from openhnv.inspect.tables import (
    MAX_CELL,
    cell,
    render_fields,
    render_json,
    render_records,
    render_table,
)


def test_cells() -> None:
    assert [cell(None), cell(""), cell([]), cell({})] == ["-"] * 4
    assert (cell(True), cell(False), cell(0)) == ("yes", "no", "0")
    assert cell(["10.1.1.11", "10.1.1.12"]) == "10.1.1.11,10.1.1.12"
    assert cell({"a": 1, "b": None}) == "a=1,b=-"
    long = cell("x" * 200)
    assert len(long) == MAX_CELL
    assert long.endswith("...")


def test_table_aligns_columns_under_headers() -> None:
    rows = [{"name": "vm1", "vsid": 5001, "ips": ["10.1.1.11"]}, {"name": "vm-three", "vsid": 5002}]
    text = render_table(rows, [("name", "Port"), ("vsid", "VSID"), ("ips", "IPs")])
    assert text.splitlines() == [
        "Port      VSID  IPs",
        "--------  ----  ---------",
        "vm1       5001  10.1.1.11",
        "vm-three  5002  -",
    ]
    assert render_table([], [("name", "Port")]) == "(none)"


def test_fields_and_nested_fields() -> None:
    text = render_fields({"name": "hostA", "pid": 12, "ovsdb_server": {"pid": 13, "running": True}})
    assert text.splitlines() == [
        "name : hostA",
        "pid  : 12",
        "ovsdb_server:",
        "  pid     : 13",
        "  running : yes",
    ]


def test_records_and_json() -> None:
    rows = [{"a": 1, "b": 2}, {"a": 3}]
    assert render_records(rows, {"a": "A", "b": "Bee"}) == "A   : 1\nBee : 2\n\nA   : 3\nBee : -"
    assert render_records([], {"a": "A"}) == "(none)"
    assert render_json({"x": [1]}) == '{\n  "x": [\n    1\n  ]\n}'
