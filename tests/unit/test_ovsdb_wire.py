"""Rows on the OVSDB wire: select results to keyed rows, RowChanges to transact operations."""

from __future__ import annotations

from typing import Any

import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Ref
from openhnv.ovsdb.wire import (
    ColumnType,
    Schema,
    column_type,
    keyed_snapshot,
    plain_value,
)

SCHEMA = Schema()
LS_UUID = "11111111-1111-1111-1111-111111111111"
PL_UUID = "22222222-2222-2222-2222-222222222222"
SET_UUID = "33333333-3333-3333-3333-333333333333"


def uuid(text: str) -> list[str]:
    return ["uuid", text]


def test_column_types_come_from_the_schema() -> None:
    ucast = SCHEMA.columns("Ucast_Macs_Remote")
    assert ucast["logical_switch"] == ColumnType("uuid", "Logical_Switch")
    bindings = SCHEMA.columns("Physical_Port")["vlan_bindings"]
    assert bindings.is_map
    assert bindings.value_ref == "Logical_Switch"
    assert bindings.n_min == 0
    assert column_type({"type": {"key": "string", "min": 0, "max": 1}}).n_max == 1
    assert SCHEMA.database_of["FW_Rules"] == "ms_firewall"
    with pytest.raises(OvsdbError, match="unknown table"):
        SCHEMA.columns("Nope")


def test_plain_values_follow_the_column_type() -> None:
    optional = ColumnType("string", n_min=0, n_max=1)
    assert plain_value(optional, ["set", []]) is None
    assert plain_value(optional, "x") == "x"
    many = ColumnType("uuid", "Physical_Locator", n_min=0, n_max=2**31)
    assert plain_value(many, ["set", [uuid("a"), uuid("b")]]) == frozenset({"a", "b"})
    assert plain_value(many, uuid("a")) == frozenset({"a"})  # one atom stands for a set
    status = ColumnType("string", value="string", n_min=0, n_max=2**31)
    assert plain_value(status, ["map", [["attached", "true"]]]) == {"attached": "true"}


def selected() -> dict[str, list[dict[str, Any]]]:
    """A host holding one switch, one locator, one mapping and the switch's flood set."""
    return {
        "Logical_Switch": [{"_uuid": uuid(LS_UUID), "name": "5001", "tunnel_key": 5001}],
        "Physical_Locator": [
            {
                "_uuid": uuid(PL_UUID),
                "encapsulation_type": "vxlan_over_ipv4",
                "dst_ip": "192.168.1.10",
            }
        ],
        "Physical_Locator_Set": [{"_uuid": uuid(SET_UUID), "locators": uuid(PL_UUID)}],
        "Ucast_Macs_Remote": [
            {
                "_uuid": uuid("44444444-4444-4444-4444-444444444444"),
                "MAC": "00:1d:d8:07:00:01",
                "ipaddr": "10.1.1.11",
                "logical_switch": uuid(LS_UUID),
                "locator": uuid(PL_UUID),
                "mapping_type": "vm",
            },
            {  # a second row with the same key: a stray to delete
                "_uuid": uuid("55555555-5555-5555-5555-555555555555"),
                "MAC": "00:1d:d8:07:00:01",
                "ipaddr": "10.1.1.11",
                "logical_switch": uuid(LS_UUID),
                "locator": uuid(PL_UUID),
                "mapping_type": "vm",
            },
        ],
        "Mcast_Macs_Remote": [
            {
                "_uuid": uuid("66666666-6666-6666-6666-666666666666"),
                "MAC": "unknown-dst",
                "ipaddr": "",
                "logical_switch": uuid(LS_UUID),
                "locator_set": uuid(SET_UUID),
            }
        ],
    }


def test_keyed_snapshot_names_rows_by_key_and_finds_strays() -> None:
    snapshot = keyed_snapshot(SCHEMA, selected())
    ls = Ref("Logical_Switch", "5001")
    locator = Ref("Physical_Locator", "vxlan_over_ipv4:192.168.1.10")
    assert snapshot.rows["Ucast_Macs_Remote"] == {
        "5001/00:1d:d8:07:00:01/10.1.1.11": {
            "MAC": "00:1d:d8:07:00:01",
            "ipaddr": "10.1.1.11",
            "logical_switch": ls,
            "locator": locator,
            "mapping_type": "vm",
        }
    }
    assert snapshot.rows["Physical_Locator_Set"] == {"ls:5001": {"locators": frozenset({locator})}}
    assert snapshot.rows["Mcast_Macs_Remote"]["5001/unknown-dst"]["locator_set"] == Ref(
        "Physical_Locator_Set", "ls:5001"
    )
    assert snapshot.uuids["Logical_Switch"] == {"5001": LS_UUID}
    assert snapshot.strays == [("Ucast_Macs_Remote", "55555555-5555-5555-5555-555555555555")]


def test_rows_referring_to_tables_keyed_later_are_resolved_too() -> None:
    rows = selected()
    switch = "77777777-7777-7777-7777-777777777777"
    port = "88888888-8888-8888-8888-888888888888"
    rows["Global"] = [{"_uuid": uuid("g"), "switches": uuid(switch), "other_config": ["map", []]}]
    rows["Physical_Switch"] = [
        {
            "_uuid": uuid(switch),
            "name": "h1",
            "ports": ["set", [uuid(port)]],
            "tunnel_ips": ["set", []],
        }
    ]
    rows["Physical_Port"] = [
        {"_uuid": uuid(port), "name": "nic", "vlan_bindings": ["map", [[0, uuid(LS_UUID)]]]}
    ]
    snapshot = keyed_snapshot(SCHEMA, rows)
    assert snapshot.rows["Global"]["global"] == {
        "switches": frozenset({Ref("Physical_Switch", "h1")}),
        "other_config": {},
    }
    assert snapshot.rows["Physical_Switch"]["h1"] == {
        "name": "h1",
        "ports": frozenset({Ref("Physical_Port", "nic")}),
        "tunnel_ips": frozenset(),
    }
    assert snapshot.rows["Physical_Port"]["nic"]["vlan_bindings"] == {
        0: Ref("Logical_Switch", "5001")
    }
