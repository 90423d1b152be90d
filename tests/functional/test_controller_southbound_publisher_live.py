"""The publisher inside a real ``hnv controller`` process, and over SSL.

Hosts are real ovsdb-server processes; the controller is killed (SIGKILL) and
restarted, a host's server is killed and restarted, and both converge again.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.compiler.compile import compile_host
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.snapshot import SNAPSHOT_COLLECTIONS
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from openhnv.lab import daemons
from openhnv.ovsdb.pki import init_ca, issue, ssl_files
from openhnv.ovsdb.rows import RowChange
from openhnv.testing.datacenter import fabric, nic, server, vnet
from openhnv.testing.ovsdb import HostDatabase, host_databases
from openhnv.testing.polling import eventually
from openhnv.testing.processes import ControllerProcess

COMPARED = ("Logical_Switch", "Ucast_Macs_Remote", "Physical_Port", "FW_Rules", "Physical_Locator")


def build(nc: ControllerProcess, made: dict[str, HostDatabase]) -> None:
    """VNet A (10.1.0.0/16, VSID 5001) with one NIC on each host, through REST."""
    fabric(nc)
    for name, host in made.items():
        server(nc, name, host.remote)
    vnet(nc, "A", "10.1.0.0/16", 5001)
    for i, name in enumerate(made):
        nic(nc, f"n{i}", "A", f"10.1.0.{10 + i}", name)


def snapshot(nc: ControllerProcess) -> dict[str, list[dict[str, Any]]]:
    return {c: nc.get("/" + c)["value"] for c in SNAPSHOT_COLLECTIONS}


def configuration_status(nc: ControllerProcess, ref: str) -> str:
    return str(nc.get(ref)["properties"].get("configurationState", {}).get("status", ""))


def all_succeeded(nc: ControllerProcess) -> bool:
    nics = nc.get("/networkInterfaces")["value"]
    return all(n["properties"]["provisioningState"] == "Succeeded" for n in nics)


def converged(nc: ControllerProcess, made: dict[str, HostDatabase]) -> bool:
    desired_of = snapshot(nc)
    for name, host in made.items():
        desired = compile_host(desired_of, name)
        with host.client() as client:
            actual = client.snapshot(COMPARED)
        for table in COMPARED:
            want = {k: dict(r) for k, r in desired[table].items()}
            have = {
                k: {c: v for c, v in row.items() if k not in want or c in want[k]}
                for k, row in actual[table].items()
            }
            if have != want:
                return False
    return True


@pytest.fixture
def two() -> Iterator[dict[str, HostDatabase]]:
    with host_databases("p1", "p2") as made:
        yield made


def test_controller_and_host_restarts_converge(
    tmp_path: Path, two: dict[str, HostDatabase]
) -> None:
    db = tmp_path / "nc.db"
    nc = ControllerProcess(db)
    try:
        build(nc, two)
        eventually(lambda: all_succeeded(nc), "NICs Succeeded")
        assert converged(nc, two)
        eventually(lambda: configuration_status(nc, "/servers/p1") == "Success", "p1 Success")
    finally:
        nc.kill()
    # Controller down: a host loses a mapping and gains a stray one.
    with two["p1"].client() as client:
        ucast = sorted(client.snapshot(["Ucast_Macs_Remote"])["Ucast_Macs_Remote"])
        client.apply(
            [
                RowChange("delete", "Ucast_Macs_Remote", ucast[0], {}),
                RowChange("insert", "Logical_Switch", "9999", {"name": "9999"}),
            ]
        )
    nc = ControllerProcess(db)
    try:
        eventually(lambda: converged(nc, two), "hosts resynced after the controller restart")
        # A host's ovsdb-server is killed; a NIC arrives meanwhile; the server comes back.
        pid = two["p2"].server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: configuration_status(nc, "/servers/p2") == "Failure", "p2 down")
        doc = nic(nc, "late", "A", "10.1.0.99", "p1")
        assert doc["properties"]["provisioningState"] == "Updating"
        two["p2"].start()
        eventually(lambda: all_succeeded(nc), "NICs Succeeded after p2 came back")
        assert converged(nc, two)
    finally:
        nc.kill()


def test_controller_refuses_a_missing_pki(tmp_path: Path) -> None:
    result = subprocess.run(
        daemons.hnv_argv(
            "controller",
            "--pki",
            str(tmp_path / "none"),
            "--db",
            str(tmp_path / "db"),
            "--auth",
            "none",
        ),
        env=daemons.python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "hnv pki issue" in result.stderr
    assert "controller" in result.stderr


def test_ssl_host_accepts_the_controller_and_refuses_a_wrong_cert(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init_ca(pki)
    host_files = issue(pki, "s1", "host")
    issue(pki, "nc", "controller")
    rogue = tmp_path / "rogue"
    init_ca(rogue, label="rogue")
    issue(rogue, "nc", "controller")
    port = daemons.free_port()
    host = HostDatabase("s1", remotes=[f"pssl:{port}:127.0.0.1"], ssl=host_files).start()
    try:
        service = ControllerService(SqliteStore(":memory:"))
        wrong = Publisher(service, ssl=ssl_files(rogue, "nc", "controller")).start()
        try:
            service.put(
                "/servers/s1",
                {
                    "properties": {
                        "connections": [{"managementAddresses": [f"ssl:127.0.0.1:{port}"]}]
                    }
                },
            )
            eventually(
                lambda: (
                    "SSL" in str(service.get("/servers/s1")["properties"]["configurationState"])
                ),
                "the refused handshake explained",
            )
            state = service.get("/servers/s1")["properties"]["configurationState"]
            assert state["status"] == "Failure"
            assert state["detailedInfo"][0]["code"] == "HostNotConnected"
            with host.client() as client:
                assert client.snapshot(["Physical_Switch"])["Physical_Switch"] == {}
        finally:
            wrong.stop()
        right = Publisher(service, ssl=ssl_files(pki, "nc", "controller")).start()
        try:
            eventually(
                lambda: (
                    service.get("/servers/s1")["properties"]["configurationState"]["status"]
                    == "Success"
                ),
                "the controller's certificate accepted",
            )
            with host.client() as client:
                eventually(
                    lambda: "s1" in client.snapshot(["Physical_Switch"])["Physical_Switch"],
                    "rows written over SSL",
                )
        finally:
            right.stop()
    finally:
        host.remove()


def test_controller_process_with_pki_reaches_an_ssl_host(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init_ca(pki)
    host_files = issue(pki, "s1", "host")
    issue(pki, "controller", "controller")
    port = daemons.free_port()
    host = HostDatabase("s1", remotes=[f"pssl:{port}:127.0.0.1"], ssl=host_files).start()
    nc = ControllerProcess(tmp_path / "nc.db", "--pki", str(pki))
    try:
        server(nc, "s1", f"ssl:127.0.0.1:{port}", pa=False)
        eventually(
            lambda: configuration_status(nc, "/servers/s1") == "Success", "the SSL host connected"
        )
        with host.client() as client:
            assert "s1" in client.snapshot(["Physical_Switch"])["Physical_Switch"]
    finally:
        nc.kill()
        host.remove()
