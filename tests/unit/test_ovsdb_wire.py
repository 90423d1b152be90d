"""Rows on the OVSDB wire: select results to keyed rows, RowChanges to transact operations."""

from __future__ import annotations

from typing import Any

import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Ref, RowChange
from openhnv.ovsdb.wire import (
    ColumnType,
    Schema,
    column_type,
    explain,
    json_value,
    keyed_snapshot,
    plain_value,
    transactions,
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


def test_json_values_check_types_and_resolve_references() -> None:
    def resolve(ref: Ref) -> list[str]:
        return ["uuid", f"u-{ref.key}"]

    scalar = ColumnType("integer")
    assert json_value(scalar, 7, resolve, "t") == 7
    assert json_value(scalar, frozenset({7}), resolve, "t") == 7
    with pytest.raises(OvsdbError, match="t: True is not a integer"):
        json_value(scalar, True, resolve, "t")
    with pytest.raises(OvsdbError, match="single value"):
        json_value(scalar, frozenset(), resolve, "t")
    refs = ColumnType("uuid", "Physical_Locator", n_min=1, n_max=2**31)
    assert json_value(refs, frozenset({Ref("Physical_Locator", "a")}), resolve, "t") == [
        "set",
        [["uuid", "u-a"]],
    ]
    bindings = SCHEMA.columns("Physical_Port")["vlan_bindings"]
    assert json_value(bindings, {0: Ref("Logical_Switch", "5001")}, resolve, "t") == [
        "map",
        [[0, ["uuid", "u-5001"]]],
    ]
    with pytest.raises(OvsdbError, match="expected a map"):
        json_value(bindings, frozenset(), resolve, "t")


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


def test_transactions_insert_update_delete_by_key() -> None:
    uuids = {"Logical_Switch": {"5001": LS_UUID}, "FW_Rules": {"old": "f-old"}}
    changes = [
        RowChange("insert", "Logical_Switch", "5002", {"name": "5002", "tunnel_key": 5002}),
        RowChange("insert", "Logical_Switch", "5001", {"description": "again"}),  # exists
        RowChange(
            "insert",
            "Ucast_Macs_Remote",
            "5002/m/ip",
            {
                "MAC": "m",
                "ipaddr": "ip",
                "logical_switch": Ref("Logical_Switch", "5002"),
                "locator": Ref("Physical_Locator", "x"),
                "mapping_type": "vm",
            },
        ),
        RowChange("insert", "Physical_Locator", "x", {"encapsulation_type": "e", "dst_ip": "1"}),
        RowChange("delete", "FW_Rules", "old", {}),
        RowChange("delete", "FW_Rules", "never-there", {}),
    ]
    vtep, firewall = transactions(SCHEMA, changes, uuids, [("Logical_Switch", "stray-uuid")])
    assert vtep.database == "ms_vtep"
    assert firewall.database == "ms_firewall"
    assert [(op["op"], op["table"]) for op in vtep.ops] == [
        ("insert", "Logical_Switch"),
        ("update", "Logical_Switch"),
        ("insert", "Ucast_Macs_Remote"),
        ("insert", "Physical_Locator"),
        ("delete", "Logical_Switch"),
    ]
    assert vtep.ops[1]["where"] == [["_uuid", "==", ["uuid", LS_UUID]]]
    mapping = vtep.ops[2]["row"]
    assert mapping["logical_switch"] == ["named-uuid", vtep.ops[0]["uuid-name"]]
    assert mapping["locator"] == ["named-uuid", vtep.ops[3]["uuid-name"]]
    assert vtep.inserted[vtep.ops[0]["uuid-name"]] == ("Logical_Switch", "5002")
    assert firewall.ops == [
        {"op": "delete", "table": "FW_Rules", "where": [["_uuid", "==", ["uuid", "f-old"]]]}
    ]


def test_transactions_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(OvsdbError, match="cannot update Logical_Switch '9'"):
        transactions(SCHEMA, [RowChange("update", "Logical_Switch", "9", {"name": "9"})], {})
    missing = RowChange(
        "insert",
        "Physical_Locator_Set",
        "ls:1",
        {"locators": frozenset({Ref("Physical_Locator", "y")})},
    )
    with pytest.raises(OvsdbError, match="refers to missing Physical_Locator 'y'"):
        transactions(SCHEMA, [missing], {})
    with pytest.raises(OvsdbError, match="no such column"):
        transactions(SCHEMA, [RowChange("insert", "Logical_Switch", "1", {"nope": 1})], {})


def test_explain_names_the_change_a_reply_refused() -> None:
    change = RowChange("insert", "Logical_Switch", "5001", {"name": "5001"})
    (txn,) = transactions(SCHEMA, [change], {})
    assert explain(txn, [{"uuid": ["uuid", "x"]}]) is None
    reply = [{"error": "constraint violation", "details": "duplicate name"}]
    assert explain(txn, reply) == (
        "insert Logical_Switch '5001': constraint violation: duplicate name"
    )
