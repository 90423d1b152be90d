"""A host link: full resync changes, why a remote gives no session, and retrying a
refused transaction (against a fake OVSDB server speaking JSON-RPC on a unix socket)."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.southbound import link as link_module
from openhnv.controller.southbound.link import HostLink
from openhnv.controller.southbound.loop import SouthboundLoop
from openhnv.controller.southbound.resync import resync_changes
from openhnv.controller.southbound.status import Remote
from openhnv.ovsdb.rows import DesiredState, Ref, RowChange
from openhnv.testing.polling import eventually

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


class FakeOvsdb:
    """A unix-socket JSON-RPC server in a thread: an empty host that may refuse writes."""

    def __init__(self, path: Path, refuse: bool = False, silent: bool = False) -> None:
        self.path = path
        self.refuse = refuse
        self.silent = silent
        self.writes = 0
        self.full_reads = 0  # selects of every table
        self.digest: str | None = None  # in its Global row
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_unix_server(self._client, str(self.path))
        )
        self.ready.set()
        self.loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        while data := await reader.read(65536):
            buffer += data.decode()
            while buffer:
                try:
                    message, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                buffer = buffer[end:]
                if not self.silent:
                    writer.write(json.dumps(self._answer(message)).encode())

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        method, params = message["method"], message["params"]
        result: Any = {}
        if method == "list_dbs":
            result = ["ms_vtep", "ms_firewall"]
        elif method == "transact":
            ops = params[1:]
            if all(op["op"] == "select" for op in ops):
                result = [{"rows": self._rows(op["table"])} for op in ops]
                self.full_reads += any(op["table"] == "Logical_Switch" for op in ops)
            else:
                self.writes += 1
                result = [{"uuid": ["uuid", "x"]}] * len(ops)
                if self.refuse:
                    result = [{"error": "constraint violation", "details": "refused by the test"}]
        return {"id": message["id"], "result": result, "error": None}

    def _rows(self, table: str) -> list[dict[str, Any]]:
        if table != "Global" or self.digest is None:
            return []
        config = ["map", [["openhnv-digest", self.digest]]]
        return [{"_uuid": ["uuid", "g"], "other_config": config}]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def southbound() -> Iterator[SouthboundLoop]:
    loop = SouthboundLoop().start()
    yield loop
    loop.stop()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hnv-link-") as tmp:  # unix paths stay < 108
        yield Path(tmp)


def error_of(link: HostLink) -> str:
    return str(link.status().error)


def test_why_a_remote_gives_no_session_is_explained(
    southbound: SouthboundLoop, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "HELLO_TIMEOUT", 0.3)
    links: list[HostLink] = []

    def link(remote: Remote) -> HostLink:
        made = HostLink("h", remote, loop=southbound, audit_every=None).start()
        links.append(made)
        return made

    try:
        gone = link(Remote("unix", path="/nonexistent/x.sock"))
        eventually(lambda: "no socket at /nonexistent" in error_of(gone), "missing socket")
        stale = short_dir / "stale.sock"
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(stale))  # bound, never listening: refused
        refused = link(Remote("unix", path=str(stale)))
        eventually(lambda: "refused" in error_of(refused), "refused")
        silent = FakeOvsdb(short_dir / "mute.sock", silent=True)
        try:
            mute = link(Remote("unix", path=str(short_dir / "mute.sock")))
            eventually(lambda: "no OVSDB session" in error_of(mute), "not an OVSDB server")
        finally:
            mute.close()
            silent.stop()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            tcp = link(Remote("tcp", ip="127.0.0.1", port=port))
            eventually(lambda: "refused" in error_of(tcp), "tcp refused")
    finally:
        for made in links:
            made.close()


def test_a_refused_transaction_is_retried_with_backoff_not_in_a_loop(
    southbound: SouthboundLoop, short_dir: Path
) -> None:
    host = FakeOvsdb(short_dir / "db.sock", refuse=True)
    link = HostLink("h", Remote("unix", path=str(host.path)), loop=southbound, audit_every=None)
    link.submit({"Logical_Switch": {"5001": {"name": "5001"}}}, 1)
    link.start()
    try:
        eventually(lambda: host.writes >= 1, "the first attempt")
        eventually(lambda: "refused by the test" in error_of(link), "the host's reason shown")
        first = host.writes
        threading.Event().wait(1.2)  # retries after 0.25, 0.5 and 1 s (backoff doubles)
        assert 1 <= host.writes - first <= 3, host.writes
        assert link.status().committed_seq == 0
        assert link.status().code == "PolicyConfigurationFailure"
    finally:
        link.close()
        host.stop()


def test_an_accepted_state_is_committed_with_its_sequence(
    southbound: SouthboundLoop, short_dir: Path
) -> None:
    host = FakeOvsdb(short_dir / "db.sock")
    link = HostLink("h", Remote("unix", path=str(host.path)), loop=southbound, audit_every=None)
    link.submit({"Logical_Switch": {"5001": {"name": "5001"}}}, 7)
    link.start()
    try:
        eventually(lambda: link.status().committed_seq == 7, "committed")
        assert link.status().connected
        assert link.status().error is None
        assert host.writes == 1
    finally:
        link.close()
        host.stop()


def test_a_host_whose_digest_matches_is_in_sync_without_a_read(
    southbound: SouthboundLoop, short_dir: Path
) -> None:
    host = FakeOvsdb(short_dir / "db.sock")
    host.digest = "d1"
    state: DesiredState = {"Global": {"global": {"other_config": {}}}}
    link = HostLink("h", Remote("unix", path=str(host.path)), loop=southbound, audit_every=None)
    link.submit(state, 3, None, "d1")
    link.start()
    try:
        eventually(lambda: link.status().committed_seq == 3, "in sync")
        assert (host.full_reads, host.writes) == (0, 0)
        assert not link.verified
        link.submit(state, 4, {}, "d2")  # a change: its rows' UUIDs are needed first
        eventually(lambda: link.status().committed_seq == 4, "the change committed")
        assert host.full_reads == 1
        assert host.writes == 1
        assert link.verified
    finally:
        link.close()
        host.stop()


def test_a_host_with_another_digest_is_read_in_full(
    southbound: SouthboundLoop, short_dir: Path
) -> None:
    host = FakeOvsdb(short_dir / "db.sock")
    host.digest = "old"
    link = HostLink("h", Remote("unix", path=str(host.path)), loop=southbound, audit_every=None)
    link.submit({"Global": {"global": {"other_config": {}}}}, 1, None, "new")
    link.start()
    try:
        eventually(lambda: link.status().committed_seq == 1, "in sync")
        assert host.full_reads == 1
        assert host.writes == 1
        assert link.verified
    finally:
        link.close()
        host.stop()


def test_resync_deletes_an_access_port_the_host_no_longer_needs() -> None:
    # An access port (a NIC on a VLAN subnet) has no vlan_bindings: its row is the
    # controller's all the same, unlike an agent's port that was never bound.
    actual: DesiredState = {
        "Physical_Port": {
            "vlan-gone": {
                "name": "vlan-gone",
                "vlan_bindings": {},
                "other_config": {"access_vlan": "12"},
            },
            "vm-new": {"name": "vm-new", "vlan_bindings": {}, "other_config": {}},
        }
    }
    assert resync_changes(actual, {}) == [RowChange("delete", "Physical_Port", "vlan-gone", {})]
