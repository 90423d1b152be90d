"""Column values between the ovs IDL's types and plain Python data."""

from __future__ import annotations

import uuid
from typing import Any

import ovs.db.data
import ovs.db.schema
import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import Ref
from openhnv.ovsdb.schema import load_schema
from openhnv.ovsdb.values import (
    column_refs,
    default_value,
    from_datum,
    keyed_row,
    required_columns,
    to_idl,
)

VTEP = ovs.db.schema.DbSchema.from_json(load_schema("ms_vtep"))
FIREWALL = ovs.db.schema.DbSchema.from_json(load_schema("ms_firewall"))
U1 = uuid.UUID("2b768e40-b83f-466b-94ad-8a829f62821e")


def col(table: str, column: str, db: Any = VTEP) -> Any:
    return db.tables[table].columns[column].type


def datum(type_: Any, value: Any) -> Any:
    return ovs.db.data.Datum.from_python(type_, value, lambda v: v)


def test_scalar_set_map_and_ref_become_plain_values() -> None:
    assert from_datum(datum(col("Logical_Switch", "tunnel_key"), 5001)) == 5001
    tunnel_ips = datum(col("Physical_Switch", "tunnel_ips"), ["192.168.1.10", "192.168.2.10"])
    assert from_datum(tunnel_ips) == frozenset({"192.168.1.10", "192.168.2.10"})
    other = datum(col("Logical_Switch", "other_config"), {"gateway_ip": "10.1.1.1"})
    assert from_datum(other) == {"gateway_ip": "10.1.1.1"}
    assert from_datum(datum(col("Ucast_Macs_Remote", "locator"), U1)) == str(U1)
    bindings = datum(col("Physical_Port", "vlan_bindings"), {0: U1})
    assert from_datum(bindings) == {0: str(U1)}


def test_an_absent_optional_value_is_none() -> None:
    assert from_datum(datum(col("Manager", "max_backoff"), [])) is None
    assert from_datum(datum(col("Manager", "max_backoff"), [2000])) == 2000


def test_references_become_refs_by_key() -> None:
    refs = column_refs(VTEP.tables["Ucast_Macs_Remote"])
    assert refs == {
        "logical_switch": ("Logical_Switch", None),
        "locator": ("Physical_Locator", None),
    }
    keys = {("Logical_Switch", str(U1)): "5001"}
    row = {"MAC": "m", "logical_switch": str(U1), "locator": "aaaa"}
    keyed = keyed_row(row, refs, lambda table, u: keys.get((table, u)))
    # A reference to a row without a key stays a UUID string.
    assert keyed == {"MAC": "m", "logical_switch": Ref("Logical_Switch", "5001"), "locator": "aaaa"}


def test_desired_values_become_idl_values() -> None:
    def resolve(ref: Ref) -> uuid.UUID:
        return U1

    ls = Ref("Logical_Switch", "5001")
    assert to_idl(col("Physical_Port", "vlan_bindings"), {0: ls}, resolve) == {0: U1}
    assert sorted(to_idl(col("Physical_Switch", "tunnel_ips"), frozenset({"b", "a"}), resolve)) == [
        "a",
        "b",
    ]
    assert to_idl(col("Ucast_Macs_Remote", "locator"), Ref("Physical_Locator", "x"), resolve) == U1
    assert to_idl(col("Manager", "max_backoff"), None, resolve) == []
    assert to_idl(col("Logical_Router", "enable_logical_router"), True, resolve) is True


@pytest.mark.parametrize(
    ("table", "column", "value", "reason"),
    [
        ("Physical_Locator", "encapsulation_type", "gre", "gre is not one of the allowed values"),
        ("Provider_Address", "vlan", 4095, "4095 is not in the valid range 0 to 4094"),
        ("Logical_Switch", "name", 5001, "expected string"),
        ("Logical_Switch", "other_config", frozenset({"a"}), "expected a map"),
        ("Physical_Switch", "tunnel_ips", {"a": "b"}, "expected a set"),
        ("Logical_Switch", "name", frozenset({"a"}), "expected a single value"),
    ],
)
def test_values_that_do_not_fit_are_refused(
    table: str, column: str, value: Any, reason: str
) -> None:
    with pytest.raises(OvsdbError, match=reason):
        to_idl(col(table, column), value, lambda ref: U1)


def test_required_columns_are_enums_and_references() -> None:
    assert required_columns(VTEP.tables["Ucast_Macs_Remote"]) == [
        "locator",
        "logical_switch",
        "mapping_type",
    ]
    assert required_columns(VTEP.tables["Physical_Locator"]) == ["encapsulation_type"]
    assert required_columns(FIREWALL.tables["FW_Rules"]) == [
        "acl_layer",
        "action",
        "direction",
        "logging_state",
        "rule_state",
        "rule_type",
    ]


def test_defaults_of_columns_not_sent() -> None:
    assert default_value(col("Logical_Switch", "description")) == ""
    assert default_value(col("Logical_Switch", "tunnel_key")) == 0
    assert default_value(col("Logical_Router", "enable_logical_router")) is False
    assert default_value(col("Logical_Switch", "other_config")) == {}
    assert default_value(col("Physical_Switch", "tunnel_ips")) == frozenset()
    assert default_value(col("Manager", "max_backoff")) is None
