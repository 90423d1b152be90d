"""The Physical_Port writes for VM ports that come and go."""

from __future__ import annotations

from openhnv.agent.port_rows import port_row_changes
from openhnv.ovsdb.rows import Ref, Row, RowChange


def test_port_rows_for_ports_that_come_and_go() -> None:
    bound: Row = {
        "name": "bound",
        "vlan_bindings": {0: Ref("Logical_Switch", "5001")},
        "status": {"attached": "true", "reported_mac": "00:1d:d8:07:00:11"},
    }
    rows: dict[str, Row] = {
        "bound": bound,
        "mine": {"name": "mine", "vlan_bindings": {}, "status": {}},
    }
    writes = port_row_changes(
        {"new": "00:1d:d8:07:00:33", "bound": None, "mine": None, "absent": None}, rows
    )
    assert writes == [
        RowChange(
            "update",
            "Physical_Port",
            "bound",
            {"status": {"attached": "false", "reported_mac": "00:1d:d8:07:00:11"}},
        ),
        RowChange("delete", "Physical_Port", "mine", {}),
        RowChange(
            "insert",
            "Physical_Port",
            "new",
            {"name": "new", "status": {"attached": "true", "reported_mac": "00:1d:d8:07:00:33"}},
        ),
    ]
    # already as wanted: nothing to write
    assert port_row_changes({"bound": "00:1d:d8:07:00:11"}, rows) == []
