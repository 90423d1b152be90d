"""The Physical_Port writes for VM ports that come and go."""

from __future__ import annotations

from openhnv.agent.port_rows import (
    port_row_changes,
    reservation_row_changes,
    scaled_reservations,
)
from openhnv.ovsdb.rows import Atom, Ref, Row, RowChange


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


SCALED = {
    "qos_reserved_mbps": "100",
    "qos_granted_mbps": "62.5",
    "qos_uplink": "up0",
}


def test_a_scaled_reservation_is_read_from_the_switchs_qos_status() -> None:
    qos: dict[str, object] = {
        "uplinks": {"up0": {"link_mbps": 100}},
        "ports": {
            "full": {"class": "1:5", "rate_mbps": 30.0, "ceil_mbps": 100.0, "uplink": "up0"},
            "cut": {"class": "1:6", "rate_mbps": 62.5, "ceil_mbps": 100.0, "uplink": "up0",
                    "reserved_mbps": 100, "warning": "reservation 100 Mbit/s scaled to 62.5"},
        },
    }  # fmt: skip
    assert scaled_reservations(qos) == {"cut": SCALED}
    assert scaled_reservations({}) == {}  # no shaping at all


def test_a_scaled_reservation_comes_onto_the_ports_row_and_goes_again() -> None:
    attached: dict[Atom, Atom] = {"attached": "true", "reported_mac": "00:1d:d8:07:00:11"}
    scaled: dict[Atom, Atom] = {**attached, **{k: v for k, v in SCALED.items()}}
    rows: dict[str, Row] = {
        "cut": {"name": "cut", "status": dict(attached)},
        "gone": {"name": "gone", "status": {"attached": "false", "reported_mac": "x"}},
        "up0": {"name": "up0", "status": {"team_member": "true", "carrier": "up"}},
    }
    writes = reservation_row_changes({"cut": SCALED, "gone": SCALED}, rows)
    # only the attached port's row, its other keys kept; a detached row is left alone
    assert writes == [RowChange("update", "Physical_Port", "cut", {"status": scaled})]
    rows["cut"] = {"name": "cut", "status": scaled}
    assert reservation_row_changes({"cut": SCALED}, rows) == []  # as wanted already
    # the port came again (its MAC reported): the reservation's keys stay
    assert port_row_changes({"cut": "00:1d:d8:07:00:11"}, rows) == []
    # granted in full again: the keys go
    assert reservation_row_changes({}, rows) == [
        RowChange("update", "Physical_Port", "cut", {"status": attached})
    ]
