"""The shipped schemas: valid for ovsdb-tool, and holding every table and column of
docs/southbound.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.keys import TABLE_KEYS
from openhnv.ovsdb.schema import DATABASES, load_schema, schema_path, table_database

DOC = Path(__file__).resolve().parents[2] / "docs" / "southbound.md"

# Transcribed from docs/southbound.md, "ms_vtep columns" and "ms_firewall.FW_Rules columns".
DOCUMENTED_COLUMNS: dict[str, set[str]] = {
    "Global": {"switches", "managers", "other_config"},
    "Physical_Switch": {
        "name",
        "description",
        "management_ips",
        "tunnel_ips",
        "provider_addresses",
        "ports",
    },
    "Provider_Address": {"address", "prefix_length", "vlan", "default_gateway", "interface"},
    "Logical_Switch": {"name", "description", "tunnel_key", "other_config"},
    "Logical_Router": {
        "name",
        "description",
        "enable_logical_router",
        "switch_binding",
        "static_routes",
        "other_config",
    },
    "Physical_Locator": {"dst_ip", "encapsulation_type"},
    "Physical_Locator_Set": {"locators"},
    "Ucast_Macs_Remote": {"MAC", "ipaddr", "logical_switch", "locator", "mapping_type"},
    "Mcast_Macs_Remote": {"MAC", "logical_switch", "locator_set", "ipaddr"},
    "Physical_Port": {"name", "description", "vlan_bindings", "other_config", "status"},
    "Manager": {"target", "is_connected", "status", "other_config"},
}


def _doc_fw_rules_columns() -> set[str]:
    text = DOC.read_text(encoding="utf-8").split("## ms_firewall.FW_Rules columns", 1)[1]
    columns: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            columns |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    return columns


def _doc_key_tables() -> set[str]:
    text = DOC.read_text(encoding="utf-8").split("## ms_vtep columns", 1)[0]
    return {m for m in re.findall(r"^\| `(\w+)`", text, re.MULTILINE) if m != "table"}


def _doc_bullet_tables() -> set[str]:
    text = DOC.read_text(encoding="utf-8").split("## ms_vtep columns", 1)[1]
    text = text.split("## ms_firewall", 1)[0]
    return set(re.findall(r"^- `(\w+)`", text, re.MULTILINE))


@pytest.mark.parametrize("name", DATABASES)
def test_schema_is_valid_for_ovsdb_tool(name: str, tmp_path: Path) -> None:
    tool = shutil.which("ovsdb-tool")
    assert tool is not None, "ovsdb-tool missing: install openvswitch-common"
    db = tmp_path / f"{name}.db"
    subprocess.run([tool, "create", str(db), str(schema_path(name))], check=True)
    done = subprocess.run([tool, "db-name", str(db)], check=True, capture_output=True, text=True)
    assert done.stdout.strip() == name


def test_every_documented_table_exists_and_has_a_key() -> None:
    documented = _doc_key_tables() | _doc_bullet_tables() | {"FW_Rules"}
    assert documented >= set(DOCUMENTED_COLUMNS) - {"Manager"}
    tables = table_database()
    for table in documented:
        assert table in tables, f"{table} is documented but not in any schema"
        assert table in TABLE_KEYS, f"{table} has no key function"
    assert set(tables) == set(TABLE_KEYS)


@pytest.mark.parametrize("table", sorted(DOCUMENTED_COLUMNS))
def test_documented_ms_vtep_columns_exist(table: str) -> None:
    columns = set(load_schema("ms_vtep")["tables"][table]["columns"])
    assert DOCUMENTED_COLUMNS[table] <= columns


def test_documented_fw_rules_columns_exist() -> None:
    documented = _doc_fw_rules_columns()
    assert {"rule_id", "vnic_id", "priority", "logging_state", "src_port"} <= documented
    assert documented <= set(load_schema("ms_firewall")["tables"]["FW_Rules"]["columns"])


def test_encapsulation_type_says_vxlan_and_nvgre() -> None:
    column = load_schema("ms_vtep")["tables"]["Physical_Locator"]["columns"]["encapsulation_type"]
    assert column["type"]["key"]["enum"] == ["set", ["vxlan_over_ipv4", "nvgre_over_ipv4"]]


def test_locators_are_garbage_collected_and_keyed_tables_indexed() -> None:
    tables = load_schema("ms_vtep")["tables"]
    assert not tables["Physical_Locator"].get("isRoot", False)
    assert not tables["Physical_Locator_Set"].get("isRoot", False)
    assert tables["Global"]["maxRows"] == 1
    assert tables["Physical_Locator"]["indexes"] == [["encapsulation_type", "dst_ip"]]
    for table in ("Logical_Switch", "Logical_Router", "Physical_Switch", "Physical_Port"):
        assert tables[table]["indexes"] == [["name"]]
        assert tables[table]["isRoot"]
    fw = load_schema("ms_firewall")["tables"]["FW_Rules"]
    assert fw["indexes"] == [["rule_id"]]


def test_unknown_schema_is_refused() -> None:
    with pytest.raises(OvsdbError, match="unknown database 'vtep'"):
        schema_path("vtep")
