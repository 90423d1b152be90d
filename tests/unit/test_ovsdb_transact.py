"""RowChanges to transact operations, and the change a refused reply names."""

from __future__ import annotations

import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Ref, RowChange
from openhnv.ovsdb.transact import explain, json_value, transactions
from openhnv.ovsdb.wire import ColumnType, Schema

SCHEMA = Schema()
LS_UUID = "11111111-1111-1111-1111-111111111111"
PL_UUID = "22222222-2222-2222-2222-222222222222"
SET_UUID = "33333333-3333-3333-3333-333333333333"


def uuid(text: str) -> list[str]:
    return ["uuid", text]


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
