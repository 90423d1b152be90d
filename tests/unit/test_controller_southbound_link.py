"""A host link: full resync changes, the remote probe, and retrying a refused transaction."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

from openhnv.controller.southbound.link import HostLink, probe, resync_changes
from openhnv.controller.southbound.status import Remote
from openhnv.ovsdb.client import ConnectionState
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.rows import DesiredState, Ref, Row, RowChange

LS = Ref("Logical_Switch", "5001")


def test_resync_keeps_agent_rows_and_columns() -> None:
    actual: DesiredState = {
        "Logical_Switch": {
            "5001": {"name": "5001", "tunnel_key": 5001, "description": "x"},
            "9999": {"name": "9999", "tunnel_key": 9999, "description": ""},
        },
        "Physical_Port": {
            # the agent's port, never bound: stays
            "vm-new": {"name": "vm-new", "vlan_bindings": {}, "status": {"attached": "true"}},
            # bound by the controller once, no longer wanted: goes
            "vm-gone": {"name": "vm-gone", "vlan_bindings": {0: LS}, "status": {}},
            # wanted: bound now, its status untouched
            "vm-here": {"name": "vm-here", "vlan_bindings": {}, "status": {"attached": "true"}},
        },
    }
    desired: DesiredState = {
        "Logical_Switch": {"5001": {"name": "5001", "tunnel_key": 5001, "description": "x"}},
        "Physical_Port": {"vm-here": {"name": "vm-here", "vlan_bindings": {0: LS}}},
    }
    changes = resync_changes(actual, desired)
    assert changes == [
        RowChange("update", "Physical_Port", "vm-here", {"vlan_bindings": {0: LS}}),
        RowChange("delete", "Logical_Switch", "9999", {}),
        RowChange("delete", "Physical_Port", "vm-gone", {}),
    ]
    assert resync_changes(desired, desired) == []


def test_resync_of_an_empty_host_inserts_everything() -> None:
    desired: DesiredState = {"Logical_Switch": {"5001": {"name": "5001"}}}
    assert resync_changes({}, desired) == [
        RowChange("insert", "Logical_Switch", "5001", {"name": "5001"})
    ]


def test_probe_explains_unix_and_tcp_failures() -> None:
    assert "no socket at /nonexistent" in probe(Remote("unix", path="/nonexistent/x.sock"))
    with tempfile.TemporaryDirectory(prefix="hnv-pub-") as tmp:
        path = Path(tmp) / "s.sock"
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
            listener.listen()
            assert "no OVSDB session" in probe(Remote("unix", path=str(path)))
        assert "refused" in probe(Remote("unix", path=str(path)))  # closed: stale socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        assert "refused" in probe(Remote("tcp", ip="127.0.0.1", port=port))
        sock.listen()
        assert "SSL" in probe(Remote("ssl", ip="127.0.0.1", port=port))


class RefusingHost:
    """A connected host whose ovsdb-server refuses every transaction."""

    state = ConnectionState.SYNCED
    generation = 1

    def __init__(self) -> None:
        self.applies = 0

    def snapshot(self, tables: object) -> dict[str, dict[str, Row]]:
        return {}

    def apply(self, changes: object, timeout: float) -> None:
        self.applies += 1
        raise OvsdbError("constraint violation")


def test_a_refused_transaction_is_retried_with_backoff_not_in_a_loop() -> None:
    looks = [0]

    def clock() -> float:
        looks[0] += 1  # the link reads its clock on every pass of its loop
        return time.monotonic()

    link = HostLink(
        "host1", Remote("unix", "/nonexistent/ovsdb.sock"), clock=clock, audit_every=None
    )
    link.submit({"Logical_Switch": {"5001": {"name": "5001"}}}, 1)
    link._state_changed(ConnectionState.SYNCED)  # as the OVSDB client reports it
    host = RefusingHost()
    worker = threading.Thread(target=link._loop, args=(host,), daemon=True)
    worker.start()
    time.sleep(1.2)  # retries at 0, 0.25 and 0.75 s (backoff 0.25, 0.5, 1 s)
    link.close()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert 2 <= host.applies <= 4, host.applies
    assert looks[0] < 100, f"the link spun {looks[0]} times while waiting to retry"
