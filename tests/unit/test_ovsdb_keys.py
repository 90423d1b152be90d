"""Every southbound row's key, from its desired-state columns."""

from __future__ import annotations

import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import TABLE_KEYS, key_of
from openhnv.ovsdb.rows import Ref

LS = Ref("Logical_Switch", "5001")


@pytest.mark.parametrize(
    ("table", "row", "key"),
    [
        ("Global", {"other_config": {"encapsulation": "vxlan"}}, "global"),
        ("Physical_Switch", {"name": "host1"}, "host1"),
        ("Provider_Address", {"address": "192.168.1.10", "vlan": 0}, "192.168.1.10"),
        ("Logical_Switch", {"name": "5001", "tunnel_key": 5001}, "5001"),
        ("Logical_Router", {"name": "contoso-vnet"}, "contoso-vnet"),
        (
            "Physical_Locator",
            {"encapsulation_type": "nvgre_over_ipv4", "dst_ip": "192.168.1.10"},
            "nvgre_over_ipv4:192.168.1.10",
        ),
        (
            "Ucast_Macs_Remote",
            {"MAC": "00:1d:d8:07:00:01", "ipaddr": "10.1.1.11", "logical_switch": LS},
            "5001/00:1d:d8:07:00:01/10.1.1.11",
        ),
        ("Mcast_Macs_Remote", {"MAC": "unknown-dst", "logical_switch": LS}, "5001/unknown-dst"),
        # A locator set is named by the Mcast_Macs_Remote row that uses it.
        ("Physical_Locator_Set", {"MAC": "unknown-dst", "logical_switch": LS}, "ls:5001"),
        ("Physical_Port", {"name": "{nic-guid}"}, "{nic-guid}"),
        ("Manager", {"target": "ssl:10.0.0.1:6640"}, "ssl:10.0.0.1:6640"),
        ("FW_Rules", {"rule_id": "6a1f", "priority": 100}, "6a1f"),
    ],
)
def test_key_of_each_table(table: str, row: dict[str, object], key: str) -> None:
    assert key_of(table, row) == key  # type: ignore[arg-type]


def test_locator_set_names_its_referrer() -> None:
    assert TABLE_KEYS["Physical_Locator_Set"].referrer == ("Mcast_Macs_Remote", "locator_set")


def test_a_missing_key_column_is_named() -> None:
    with pytest.raises(OvsdbError, match="Logical_Switch row lacks 'name'"):
        key_of("Logical_Switch", {"tunnel_key": 1})


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(OvsdbError, match="name=''"):
        key_of("Physical_Port", {"name": ""})


def test_an_unresolved_reference_is_refused() -> None:
    row = {"MAC": "m", "ipaddr": "10.1.1.1", "logical_switch": "2b76-uuid"}
    with pytest.raises(OvsdbError, match="logical_switch='2b76-uuid'"):
        key_of("Ucast_Macs_Remote", row)


def test_unknown_table() -> None:
    with pytest.raises(OvsdbError, match="no key function for table 'Tunnel'"):
        key_of("Tunnel", {})
