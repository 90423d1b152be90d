"""The minimal changes between two desired southbound states."""

from __future__ import annotations

from openhnv.ovsdb.rows import DesiredState, Ref, RowChange, TableRows, diff

LS: TableRows = {"5001": {"name": "5001", "tunnel_key": 5001, "description": "rd-1"}}


def test_same_state_needs_no_change() -> None:
    assert diff({"Logical_Switch": LS}, {"Logical_Switch": LS}) == []


def test_insert_update_delete_in_that_order() -> None:
    old: DesiredState = {
        "Logical_Switch": LS,
        "Ucast_Macs_Remote": {"5001/m/10.1.1.11": {"MAC": "m", "ipaddr": "10.1.1.11"}},
    }
    new: DesiredState = {
        "Logical_Switch": {"5001": {"name": "5001", "tunnel_key": 5001, "description": "rd-2"}},
        "Physical_Locator": {"vxlan_over_ipv4:192.168.1.10": {"dst_ip": "192.168.1.10"}},
        "Ucast_Macs_Remote": {},
    }
    assert diff(old, new) == [
        RowChange(
            "insert",
            "Physical_Locator",
            "vxlan_over_ipv4:192.168.1.10",
            {"dst_ip": "192.168.1.10"},
        ),
        RowChange("update", "Logical_Switch", "5001", {"description": "rd-2"}),
        RowChange("delete", "Ucast_Macs_Remote", "5001/m/10.1.1.11", {}),
    ]


def test_a_column_no_longer_set_is_cleared() -> None:
    old: DesiredState = {
        "Physical_Port": {"p": {"name": "p", "vlan_bindings": {0: Ref("Logical_Switch", "1")}}}
    }
    new: DesiredState = {"Physical_Port": {"p": {"name": "p"}}}
    assert diff(old, new) == [RowChange("update", "Physical_Port", "p", {"vlan_bindings": {}})]
