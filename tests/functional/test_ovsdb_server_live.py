"""A real ovsdb-server in a temp dir: created, converted, stopped by PID, restarted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.ovsdb.schema import load_schema
from openhnv.ovsdb.server import OvsdbServer, Supervisor, prepare_database
from openhnv.testing.polling import eventually

WAIT = 15.0


def ovsdb_client(*args: str) -> str:
    tool = shutil.which("ovsdb-client")
    assert tool is not None
    done = subprocess.run([tool, *args], check=True, capture_output=True, text=True, timeout=10)
    return done.stdout


def insert_switch(remote: str, name: str) -> None:
    op = {"op": "insert", "table": "Logical_Switch", "row": {"name": name, "tunnel_key": 5001}}
    ovsdb_client("transact", remote, json.dumps(["ms_vtep", op]))


def switch_names(remote: str) -> set[str]:
    query = [
        "ms_vtep",
        {"op": "select", "table": "Logical_Switch", "where": [], "columns": ["name"]},
    ]
    result = json.loads(ovsdb_client("transact", remote, json.dumps(query)))
    return {row["name"] for row in result[0]["rows"]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OvsdbServer]:
    """An ovsdb-server not started yet (each test starts it), stopped afterwards."""
    srv = OvsdbServer(tmp_path / "state")
    yield srv
    srv.stop()


def test_start_creates_both_databases_and_stop_cleans_up(server: OvsdbServer) -> None:
    server.start()
    assert server.running
    assert server.pid is not None
    assert ovsdb_client("list-dbs", server.unix_remote).split() == [
        "_Server",
        "ms_firewall",
        "ms_vtep",
    ]
    server.stop()
    assert not server.running
    assert not server.pidfile.exists()
    assert not server.socket_path.exists()
    assert server.db_path("ms_vtep").exists()
    assert server.db_path("ms_firewall").exists()


def test_a_running_server_is_adopted_not_started_twice(server: OvsdbServer) -> None:
    server.start()
    pid = server.pid
    again = OvsdbServer(server.state_dir)
    again.start()
    assert again.pid == pid
    assert again.running


def test_killed_server_is_restarted_with_its_data(server: OvsdbServer) -> None:
    supervisor = Supervisor(server, interval=0.05)
    supervisor.start()
    try:
        insert_switch(server.unix_remote, "5001")
        old_pid = server.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        eventually(lambda: supervisor.restarts == 1 and server.running, "the restart")
        assert server.pid != old_pid
        eventually(lambda: server.socket_path.exists(), "the socket")
        assert switch_names(server.unix_remote) == {"5001"}
    finally:
        supervisor.stop()
    assert not server.running


def test_a_changed_schema_converts_the_database_and_keeps_rows(tmp_path: Path) -> None:
    old_schema = load_schema("ms_firewall")
    old_schema = json.loads(json.dumps(old_schema))
    old_schema["version"] = "0.9.0"
    del old_schema["tables"]["FW_Rules"]["columns"]["logging_state"]
    old_file = tmp_path / "old.ovsschema"
    old_file.write_text(json.dumps(old_schema), encoding="utf-8")
    db = tmp_path / "state" / "ms_firewall.db"
    db.parent.mkdir()
    assert prepare_database(db, old_file) == "created"
    row = {
        "rule_id": "r1",
        "action": "deny",
        "direction": "in",
        "acl_layer": "nic",
        "rule_type": "user",
        "rule_state": "enabled",
    }
    tool = shutil.which("ovsdb-tool")
    assert tool is not None
    op = ["ms_firewall", {"op": "insert", "table": "FW_Rules", "row": row}]
    subprocess.run([tool, "transact", str(db), json.dumps(op)], check=True, capture_output=True)

    server = OvsdbServer(tmp_path / "state")
    assert server.prepare() == {"ms_vtep": "created", "ms_firewall": "converted"}
    assert server.prepare() == {"ms_vtep": "current", "ms_firewall": "current"}
    query = ["ms_firewall", {"op": "select", "table": "FW_Rules", "where": []}]
    out = subprocess.run(
        [tool, "query", str(db), json.dumps(query)], check=True, capture_output=True, text=True
    ).stdout
    (kept,) = json.loads(out)[0]["rows"]
    assert kept["rule_id"] == "r1"
    assert kept["action"] == "deny"
    assert kept["logging_state"] == ""  # the new column, at its default
