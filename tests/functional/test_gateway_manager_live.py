"""The compartment manager against a real ovsdb-server: broken Gateway_* rows are
problems naming the row and what is wrong, never a crash, and build nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openhnv.gateway.manager import CompartmentManager
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import RowChange
from openhnv.ovsdb.schema import MS_VTEP
from openhnv.ovsdb.server import OvsdbServer
from openhnv.testing.polling import eventually

PREFIX = "hnv-fnmgr-"  # no namespace is made: every row below is broken


def compartment(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": "vg",
        "description": "id",
        "port": "port-id",
        "mac": "00:1D:D8:07:00:02",
        "address": "10.1.254.2/24",
        "router": "10.1.254.1",
        "address_space": frozenset({"10.1.0.0/16"}),
    }
    row.update(changes)
    return row


def test_broken_rows_are_problems_naming_the_row_and_the_column(
    ovsdb_server: OvsdbServer, tmp_path: Path
) -> None:
    manager = CompartmentManager(ovsdb_server.unix_remote, tmp_path, PREFIX)
    manager.start()
    try:
        with OvsdbClient(ovsdb_server.unix_remote, (MS_VTEP,)) as writer:
            writer.wait_synced()
            writer.apply(
                [
                    RowChange("insert", "Gateway_Compartment", "bad-ip", compartment(
                        name="bad-ip", address="10.1.254.300/24")),
                    RowChange("insert", "Gateway_Connection", "orphan/nat", {
                        "name": "orphan/nat", "compartment": "orphan",
                        "connection_type": "Nat"}),
                ]
            )  # fmt: skip
            found: list[dict[str, str]] = eventually(
                lambda: manager.status()["problems"] if len(manager.status()["problems"]) == 2
                else [],
                "both rows reported",
            )  # fmt: skip
    finally:
        manager.stop()
    by_key = {p["key"]: p for p in found}
    assert by_key["bad-ip"]["table"] == "Gateway_Compartment"
    assert "address" in by_key["bad-ip"]["reason"]
    assert "10.1.254.300" in by_key["bad-ip"]["reason"]
    assert by_key["orphan/nat"]["reason"] == "compartment 'orphan' is missing"
    assert manager.status()["compartments"] == {}
