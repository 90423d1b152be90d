"""The OVSDB client against a real ovsdb-server: figure-8 rows in, read back, changed by
key, refused when malformed, and kept across a server restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from openhnv.ovsdb.client import ConnectionState, OvsdbClient
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import DesiredState, Ref, Row, RowChange, Value, diff
from openhnv.ovsdb.server import OvsdbServer, Supervisor
from openhnv.testing.polling import eventually

WAIT = 15.0
CONTOSO_RDID = "a1b2c3d4-0000-4000-8000-000000000001"
FABRIKAM_RDID = "a1b2c3d4-0000-4000-8000-000000000002"
HOST1_PA, HOST2_PA = "192.168.1.10", "192.168.1.11"
LISTENER_DELAY = 0.2  # seconds a slow listener spends on each batch
EditableRow = dict[str, Value]  # a row a test changes before it writes it


def locator(pa: str) -> Ref:
    return Ref("Physical_Locator", f"vxlan_over_ipv4:{pa}")


def ucast(vsid: str, mac: str, ip: str, pa: str, mapping_type: str) -> tuple[str, EditableRow]:
    row: EditableRow = {
        "MAC": mac,
        "ipaddr": ip,
        "logical_switch": Ref("Logical_Switch", vsid),
        "locator": locator(pa),
        "mapping_type": mapping_type,
    }
    return f"{vsid}/{mac}/{ip}", row


def fw_rule(rule_id: str, nic: str, priority: int, action: str) -> EditableRow:
    return {
        "rule_id": rule_id,
        "vnic_id": nic,
        "acl_layer": "nic",
        "rule_name": f"rule-{priority}",
        "direction": "in",
        "action": action,
        "protocols": frozenset({"6"}),
        "src_ip_addresses": frozenset({"10.1.1.0/24"}),
        "dst_ip_addresses": frozenset(),
        "src_port": "0-65535",
        "dst_port": "1433-1433",
        "priority": priority,
        "rule_type": "user",
        "rule_state": "enabled",
        "logging_state": "disabled",
    }


def figure8() -> dict[str, dict[str, EditableRow]]:
    """Host 1 of the seed's figure 8: Contoso and Fabrikam both use 10.1.1.0/24."""
    switches: dict[str, EditableRow] = {
        vsid: {
            "name": vsid,
            "description": rdid,
            "tunnel_key": int(vsid),
            "other_config": {"address_prefix": "10.1.1.0/24", "gateway_ip": "10.1.1.1"},
        }
        for vsid, rdid in (("5001", CONTOSO_RDID), ("6001", FABRIKAM_RDID))
    }
    macs = dict(
        [
            ucast("5001", "00:1d:d8:07:00:01", "10.1.1.11", HOST1_PA, "local"),
            ucast("5001", "00:1d:d8:07:00:02", "10.1.1.12", HOST2_PA, "remote"),
            ucast("6001", "00:1d:d8:07:00:11", "10.1.1.11", HOST2_PA, "remote"),
            ucast("6001", "00:1d:d8:07:00:12", "10.1.1.12", HOST1_PA, "local"),
        ]
    )
    return {
        "Logical_Switch": switches,
        "Physical_Locator": {
            f"vxlan_over_ipv4:{pa}": {"dst_ip": pa, "encapsulation_type": "vxlan_over_ipv4"}
            for pa in (HOST1_PA, HOST2_PA)
        },
        "Ucast_Macs_Remote": macs,
        "Logical_Router": {
            "contoso": {
                "name": "contoso",
                "description": CONTOSO_RDID,
                "enable_logical_router": True,
                "switch_binding": {"10.1.1.0/24": Ref("Logical_Switch", "5001")},
            }
        },
        "FW_Rules": {"r-100": fw_rule("r-100", "nic-1", 100, "allow")},
    }


def project(actual: Mapping[str, Mapping[str, Row]], desired: DesiredState) -> DesiredState:
    """The server's rows cut down to the tables, rows and columns ``desired`` names."""
    return {
        table: {
            key: {c: row[c] for c in desired[table].get(key, row) if c in row}
            for key, row in actual.get(table, {}).items()
        }
        for table in desired
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[RowEvent] = []
        self.batches: list[int] = []
        self.states: list[ConnectionState] = []
        self._lock = threading.Lock()

    def event(self, event: RowEvent) -> None:
        with self._lock:
            self.events.append(event)

    def batch(self, events: list[RowEvent]) -> None:
        with self._lock:
            self.batches.append(len(events))

    def state(self, state: ConnectionState) -> None:
        with self._lock:
            self.states.append(state)

    def take(self) -> list[RowEvent]:
        with self._lock:
            events, self.events = self.events, []
        return events


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(ovsdb_server: OvsdbServer, recorder: Recorder) -> Iterator[OvsdbClient]:
    with OvsdbClient(
        ovsdb_server.unix_remote,
        on_change=recorder.event,
        on_batch=recorder.batch,
        on_state=recorder.state,
    ) as c:
        c.wait_synced(WAIT)
        yield c


def load(client: OvsdbClient, desired: DesiredState) -> None:
    client.apply(diff({}, desired))


def test_figure8_rows_go_in_and_read_back(client: OvsdbClient, recorder: Recorder) -> None:
    desired = figure8()
    load(client, desired)
    assert project(client.snapshot(desired), desired) == desired
    # Plain rows: references are UUID strings of the referenced rows.
    ls_uuid = client.uuid_of("Logical_Switch", "5001")
    ucasts = client.rows("Ucast_Macs_Remote")
    assert sum(row["logical_switch"] == ls_uuid for row in ucasts.values()) == 2
    assert client.key_of("Logical_Switch", ls_uuid or "") == "5001"
    inserted = {(e.table, e.key) for e in recorder.take() if e.old is None}
    assert inserted == {(t, k) for t, rows in desired.items() for k in rows}
    # One apply per database: the ms_vtep rows came as one batch, FW_Rules as another.
    assert sorted(recorder.batches) == [1, len(inserted) - 1]


class SlowRecorder(Recorder):
    """A listener that takes its time with each batch (a loaded machine)."""

    def batch(self, events: list[RowEvent]) -> None:
        time.sleep(LISTENER_DELAY)
        super().batch(events)


def test_wait_synced_returns_after_the_listeners_had_the_rows(client: OvsdbClient) -> None:
    """An owner that reads the rows once synced (the host agent) gets no late batch of
    what it already read: the listeners have every mirrored row before the state says
    synced, however slow they are."""
    desired = figure8()
    load(client, desired)
    recorder = SlowRecorder()
    with OvsdbClient(client.remote, on_change=recorder.event, on_batch=recorder.batch) as late:
        late.wait_synced(WAIT)
        mirrored = sum(len(rows) for rows in late.snapshot().values())
        assert sum(recorder.batches) == mirrored
        assert {(e.table, e.key) for e in recorder.take()} >= {
            (t, k) for t, rows in desired.items() for k in rows
        }


def test_keyed_rows_read_some_rows_as_the_snapshot_has_them(client: OvsdbClient) -> None:
    desired = figure8()
    load(client, desired)
    table = "Ucast_Macs_Remote"
    snapshot = client.snapshot([table])[table]
    keys = [*sorted(snapshot)[:2], "5001/00:00:00:00:00:01/10.9.9.9"]
    assert client.keyed_rows(table, keys) == {
        keys[0]: snapshot[keys[0]],
        keys[1]: snapshot[keys[1]],
        keys[2]: None,
    }


def test_update_and_delete_by_key(client: OvsdbClient, recorder: Recorder) -> None:
    load(client, figure8())
    recorder.take()
    moved_key = "5001/00:1d:d8:07:00:02/10.1.1.12"
    client.apply(
        [
            RowChange("update", "Ucast_Macs_Remote", moved_key, {"locator": locator(HOST1_PA)}),
            RowChange("update", "Logical_Switch", "6001", {"description": "rd-new"}),
            RowChange("delete", "Ucast_Macs_Remote", "6001/00:1d:d8:07:00:11/10.1.1.11", {}),
            RowChange("delete", "FW_Rules", "r-100", {}),
        ]
    )
    state = client.snapshot()
    assert state["Ucast_Macs_Remote"][moved_key]["locator"] == locator(HOST1_PA)
    assert state["Logical_Switch"]["6001"]["description"] == "rd-new"
    assert "6001/00:1d:d8:07:00:11/10.1.1.11" not in state["Ucast_Macs_Remote"]
    assert state["FW_Rules"] == {}
    # No mapping points at host 2 any more: its non-root locator was collected.
    assert set(state["Physical_Locator"]) == {f"vxlan_over_ipv4:{HOST1_PA}"}
    changed = {(e.table, e.key, e.new is None) for e in recorder.take()}
    assert changed == {
        ("Ucast_Macs_Remote", moved_key, False),
        ("Logical_Switch", "6001", False),
        ("Ucast_Macs_Remote", "6001/00:1d:d8:07:00:11/10.1.1.11", True),
        ("FW_Rules", "r-100", True),
        ("Physical_Locator", f"vxlan_over_ipv4:{HOST2_PA}", True),
    }
    # Deleting what is gone is a no-op; inserting what exists updates it.
    client.apply([RowChange("delete", "FW_Rules", "r-100", {})])
    ls = figure8()["Logical_Switch"]["6001"]
    client.apply([RowChange("insert", "Logical_Switch", "6001", ls)])
    assert client.snapshot(["Logical_Switch"])["Logical_Switch"]["6001"]["description"] == (
        FABRIKAM_RDID
    )


def test_locator_sets_are_named_by_their_multicast_row(client: OvsdbClient) -> None:
    load(client, figure8())
    pls = Ref("Physical_Locator_Set", "ls:5001")
    client.apply(
        [
            RowChange(
                "insert",
                "Physical_Locator_Set",
                pls.key,
                {"locators": frozenset({locator(HOST2_PA)})},
            ),
            RowChange(
                "insert",
                "Mcast_Macs_Remote",
                "5001/unknown-dst",
                {
                    "MAC": "unknown-dst",
                    "ipaddr": "",
                    "logical_switch": Ref("Logical_Switch", "5001"),
                    "locator_set": pls,
                },
            ),
        ]
    )
    both = frozenset({locator(HOST1_PA), locator(HOST2_PA)})
    client.apply([RowChange("update", "Physical_Locator_Set", pls.key, {"locators": both})])
    state = client.snapshot(["Physical_Locator_Set", "Mcast_Macs_Remote"])
    assert state["Physical_Locator_Set"] == {"ls:5001": {"locators": both}}
    assert state["Mcast_Macs_Remote"]["5001/unknown-dst"]["locator_set"] == pls


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            RowChange(
                "insert",
                "Physical_Locator",
                "gre_over_ipv4:192.168.1.12",
                {"dst_ip": "192.168.1.12", "encapsulation_type": "gre_over_ipv4"},
            ),
            "Physical_Locator 'gre_over_ipv4:192.168.1.12' column encapsulation_type: "
            'constraint violation: "gre_over_ipv4" is not one of the allowed values',
        ),
        (
            RowChange(
                "insert",
                "Ucast_Macs_Remote",
                "7001/00:1d:d8:07:00:99/10.1.1.99",
                dict(ucast("7001", "00:1d:d8:07:00:99", "10.1.1.99", HOST1_PA, "local")[1]),
            ),
            "Ucast_Macs_Remote '7001/00:1d:d8:07:00:99/10.1.1.99' column logical_switch: "
            "refers to missing Logical_Switch '7001'",
        ),
        (
            RowChange("update", "Logical_Switch", "9999", {"description": "x"}),
            "cannot update Logical_Switch '9999': no such row",
        ),
        (
            RowChange("insert", "Logical_Switch", "7001", {"name": "7002"}),
            "cannot insert Logical_Switch '7001': its columns give the key '7002'",
        ),
        (
            RowChange("update", "Logical_Switch", "6001", {"name": "6002"}),
            "cannot update Logical_Switch '6001': it would rename the row to '6002'",
        ),
        (
            RowChange("insert", "Logical_Switch", "6001", {"name": "6003"}),
            "cannot insert Logical_Switch '6001': its columns give the key '6003'",
        ),
        (
            RowChange("update", "Logical_Switch", "5001", {"colour": "blue"}),
            "Logical_Switch '5001': no column 'colour' in ms_vtep",
        ),
        (
            RowChange("insert", "FW_Rules", "r-1", {"rule_id": "r-1", "direction": "in"}),
            "cannot insert FW_Rules 'r-1': missing required column(s) acl_layer, action",
        ),
        (
            RowChange("delete", "Logical_Switch", "5001", {}),
            "referential integrity violation: cannot delete Logical_Switch row "
            "Logical_Switch '5001'",
        ),
    ],
)
def test_a_malformed_change_fails_clearly_and_changes_nothing(
    client: OvsdbClient, change: RowChange, reason: str
) -> None:
    load(client, figure8())
    before = client.snapshot()
    good = RowChange("insert", "Logical_Switch", "8001", {"name": "8001", "tunnel_key": 8001})
    with pytest.raises(OvsdbError) as caught:
        client.apply([good, change])
    assert reason in str(caught.value)
    assert client.snapshot() == before


def test_replace_all_converges_and_keeps_the_agents_columns(client: OvsdbClient) -> None:
    load(client, figure8())
    port: EditableRow = {
        "name": "nic-1",
        "description": "/networkInterfaces/vm1-nic",
        "vlan_bindings": {0: Ref("Logical_Switch", "5001")},
    }
    client.apply([RowChange("insert", "Physical_Port", "nic-1", port)])
    client.apply([RowChange("update", "Physical_Port", "nic-1", {"status": {"attached": "true"}})])
    desired = figure8()
    del desired["Ucast_Macs_Remote"]["5001/00:1d:d8:07:00:02/10.1.1.12"]
    desired["Logical_Switch"]["5001"]["description"] = "rd-changed"
    desired["Physical_Port"] = {"nic-1": dict(port, description="/networkInterfaces/other")}
    changes = client.replace_all(desired)
    assert {(c.op, c.table, c.key) for c in changes} == {
        ("update", "Logical_Switch", "5001"),
        ("update", "Physical_Port", "nic-1"),
        ("delete", "Ucast_Macs_Remote", "5001/00:1d:d8:07:00:02/10.1.1.12"),
    }
    assert project(client.snapshot(desired), desired) == desired
    assert client.snapshot(["Physical_Port"])["Physical_Port"]["nic-1"]["status"] == {
        "attached": "true"
    }
    assert client.replace_all(desired) == []


def _transact_offline(db: Path, op: object) -> None:
    tool = shutil.which("ovsdb-tool")
    assert tool is not None
    subprocess.run([tool, "transact", str(db), json.dumps(op)], check=True, capture_output=True)


def test_server_killed_restarted_keeps_data_and_client_resyncs(
    ovsdb_server: OvsdbServer, client: OvsdbClient, recorder: Recorder
) -> None:
    desired = figure8()
    load(client, desired)
    generation = client.generation
    recorder.take()
    supervisor = Supervisor(ovsdb_server, interval=0.05)
    supervisor.start()
    try:
        pid = ovsdb_server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: supervisor.restarts == 1, "the supervisor's restart")
        eventually(lambda: client.generation == generation + 1, "the client's resync")
        assert ConnectionState.CONNECTING in recorder.states
        assert client.state is ConnectionState.SYNCED
        assert project(client.snapshot(desired), desired) == desired
        # The same rows came back: a reconnect alone reports no change.
        assert recorder.take() == []
        client.apply([RowChange("update", "Logical_Switch", "5001", {"description": "after"})])
        assert client.snapshot(["Logical_Switch"])["Logical_Switch"]["5001"]["description"] == (
            "after"
        )
    finally:
        supervisor.stop(stop_server=False)


def test_changes_made_while_disconnected_arrive_as_differences(
    ovsdb_server: OvsdbServer, client: OvsdbClient, recorder: Recorder
) -> None:
    load(client, figure8())
    generation = client.generation
    recorder.take()
    ovsdb_server.stop()
    eventually(lambda: client.state is ConnectionState.CONNECTING, "the disconnect")
    fw = {
        k: ["set", sorted(v, key=str)] if isinstance(v, frozenset) else v
        for k, v in fw_rule("r-200", "nic-2", 200, "deny").items()
    }
    _transact_offline(
        ovsdb_server.db_path("ms_firewall"),
        ["ms_firewall", {"op": "insert", "table": "FW_Rules", "row": fw}],
    )
    # While the server is down an apply waits for it, within its timeout.
    result: list[BaseException | None] = []

    def late_apply() -> None:
        try:
            client.apply(
                [RowChange("update", "Logical_Switch", "6001", {"description": "late"})],
                timeout=WAIT,
            )
            result.append(None)
        except OvsdbError as err:
            result.append(err)

    worker = threading.Thread(target=late_apply)
    worker.start()
    ovsdb_server.start()
    worker.join(WAIT + 5)
    assert result == [None]
    assert client.generation > generation
    events = {(e.table, e.key, e.old is None) for e in recorder.take()}
    assert events == {("FW_Rules", "r-200", True), ("Logical_Switch", "6001", False)}


def test_apply_times_out_when_the_server_stays_down(ovsdb_server: OvsdbServer) -> None:
    with OvsdbClient(ovsdb_server.unix_remote) as c:
        c.wait_synced(WAIT)
        ovsdb_server.stop()
        eventually(lambda: c.state is ConnectionState.CONNECTING, "the disconnect")
        with pytest.raises(OvsdbError, match="timed out waiting for the connection"):
            c.apply([RowChange("update", "Logical_Switch", "1", {"description": "x"})], 0.3)


def test_bad_remotes_and_misuse_are_refused(ovsdb_server: OvsdbServer) -> None:
    with pytest.raises(OvsdbError, match="bad OVSDB remote 'http://x'"):
        OvsdbClient("http://x")
    with pytest.raises(OvsdbError, match="unknown database 'vtep'"):
        OvsdbClient(ovsdb_server.unix_remote, databases=["vtep"])
    idle = OvsdbClient(ovsdb_server.unix_remote)
    with pytest.raises(OvsdbError, match="not running: call start"):
        idle.apply([RowChange("delete", "Logical_Switch", "1", {})])
    idle.close()
    with OvsdbClient(ovsdb_server.unix_remote, databases=["ms_firewall"]) as c:
        c.wait_synced(WAIT)
        with pytest.raises(OvsdbError, match="unknown table 'Logical_Switch'"):
            c.rows("Logical_Switch")
        assert c.snapshot() == {"FW_Rules": {}}
        c.close()  # closing twice is harmless
    with pytest.raises(OvsdbError, match="is closed"):
        c.wait_synced(0.1)
