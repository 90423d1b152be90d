"""The publisher inside a real ``hnv controller`` process, and over SSL.

Hosts are real ovsdb-server processes; the controller is killed (SIGKILL) and
restarted, a host's server is killed and restarted, and both converge again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from publisher_dc import WAIT, FakeHost, hosts

import openhnv
from openhnv.controller.compiler.compile import compile_host
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.snapshot import SNAPSHOT_COLLECTIONS
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from openhnv.ovsdb.pki import init_ca, issue, ssl_files
from openhnv.ovsdb.rows import RowChange
from polling import eventually

SRC = Path(openhnv.__file__).resolve().parents[1]
CONTROLLER = (sys.executable, "-m", "openhnv", "controller")
COMPARED = ("Logical_Switch", "Ucast_Macs_Remote", "Physical_Port", "FW_Rules", "Physical_Locator")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Controller:
    """``hnv controller`` as a subprocess on loopback."""

    def __init__(self, db: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/networking/v1"
        self.process = subprocess.Popen(
            [*CONTROLLER, "--listen", f"127.0.0.1:{self.port}", "--db", str(db), *extra],
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + WAIT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"controller exited: {self.stderr()}")
            try:
                httpx.get(f"{self.base}/servers", timeout=1.0)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("controller did not start listening") from None
                time.sleep(0.1)

    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()

    def put(self, ref: str, properties: dict[str, Any]) -> dict[str, Any]:
        body = {"resourceId": ref.rsplit("/", 1)[1], "properties": properties}
        response = httpx.put(self.base + ref, json=body, timeout=10)
        assert response.status_code in (200, 201), response.text
        doc: dict[str, Any] = response.json()
        return doc

    def get(self, ref: str) -> dict[str, Any]:
        doc: dict[str, Any] = httpx.get(self.base + ref, timeout=10).json()
        return doc

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {c: self.get("/" + c)["value"] for c in SNAPSHOT_COLLECTIONS}


def build(nc: Controller, made: dict[str, FakeHost]) -> None:
    """The datacenter of publisher_dc, through REST."""
    pa = {
        "addressPrefix": "192.168.0.0/16",
        "defaultGateways": ["192.168.0.1"],
        "ipPools": [
            {
                "resourceId": "pool",
                "properties": {"startIpAddress": "192.168.1.1", "endIpAddress": "192.168.1.250"},
            }
        ],
    }
    nc.put(
        "/logicalNetworks/HNVPA",
        {
            "networkVirtualizationEnabled": "True",
            "subnets": [{"resourceId": "pa", "properties": pa}],
        },
    )
    nc.put(
        "/macPools/default",
        {"startMacAddress": "00-1D-D8-07-00-00", "endMacAddress": "00-1D-D8-07-FF-FF"},
    )
    pnic = {"logicalSubnets": [{"resourceRef": "/logicalNetworks/HNVPA/subnets/pa"}]}
    for name, host in made.items():
        nc.put(
            f"/servers/{name}",
            {
                "connections": [{"managementAddresses": [host.remote]}],
                "networkInterfaces": [{"resourceId": "pnic1", "properties": pnic}],
            },
        )
    subnet = {"addressPrefix": "10.1.0.0/16", "virtualSubnetId": 5001}
    nc.put(
        "/virtualNetworks/A",
        {
            "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
            "logicalNetwork": {"resourceRef": "/logicalNetworks/HNVPA"},
            "subnets": [{"resourceId": "s1", "properties": subnet}],
        },
    )
    for i, name in enumerate(made):
        add_nic(nc, f"n{i}", f"10.1.0.{10 + i}", name)


def add_nic(nc: Controller, name: str, ip: str, server: str) -> dict[str, Any]:
    config = {
        "privateIPAddress": ip,
        "privateIPAllocationMethod": "Static",
        "subnet": {"resourceRef": "/virtualNetworks/A/subnets/s1"},
    }
    return nc.put(
        f"/networkInterfaces/{name}",
        {
            "server": {"resourceRef": f"/servers/{server}"},
            "ipConfigurations": [{"resourceId": "ipconfig1", "properties": config}],
        },
    )


def all_succeeded(nc: Controller) -> bool:
    nics = nc.get("/networkInterfaces")["value"]
    return all(n["properties"]["provisioningState"] == "Succeeded" for n in nics)


def converged(nc: Controller, made: dict[str, FakeHost]) -> bool:
    snapshot = nc.snapshot()
    for name, host in made.items():
        desired = compile_host(snapshot, name)
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
def two() -> Iterator[dict[str, FakeHost]]:
    with hosts("p1", "p2") as made:
        yield made


def test_controller_and_host_restarts_converge(tmp_path: Path, two: dict[str, FakeHost]) -> None:
    db = tmp_path / "nc.db"
    nc = Controller(db)
    try:
        build(nc, two)
        eventually(lambda: all_succeeded(nc), "NICs Succeeded")
        assert converged(nc, two)
        server = nc.get("/servers/p1")["properties"]["configurationState"]
        assert server["status"] == "Success"
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
    nc = Controller(db)
    try:
        eventually(lambda: converged(nc, two), "hosts resynced after the controller restart")
        # A host's ovsdb-server is killed; a NIC arrives meanwhile; the server comes back.
        pid = two["p2"].server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        eventually(
            lambda: (
                nc.get("/servers/p2")["properties"]["configurationState"]["status"] == "Failure"
            ),
            "p2 reported down",
        )
        doc = add_nic(nc, "late", "10.1.0.99", "p1")
        assert doc["properties"]["provisioningState"] == "Updating"
        two["p2"].start()
        eventually(lambda: all_succeeded(nc), "NICs Succeeded after p2 came back")
        assert converged(nc, two)
    finally:
        nc.kill()


def test_controller_refuses_a_missing_pki(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CONTROLLER, "--pki", str(tmp_path / "none"), "--db", str(tmp_path / "db")],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "hnv pki issue" in result.stderr and "controller" in result.stderr


def test_ssl_host_accepts_the_controller_and_refuses_a_wrong_cert(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    init_ca(pki)
    host_files = issue(pki, "s1", "host")
    issue(pki, "nc", "controller")
    rogue = tmp_path / "rogue"
    init_ca(rogue, label="rogue")
    issue(rogue, "nc", "controller")
    port = free_port()
    host = FakeHost("s1", remotes=[f"pssl:{port}:127.0.0.1"], ssl=host_files).start()
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
    port = free_port()
    host = FakeHost("s1", remotes=[f"pssl:{port}:127.0.0.1"], ssl=host_files).start()
    nc = Controller(tmp_path / "nc.db", "--pki", str(pki))
    try:
        nc.put(
            "/servers/s1",
            {"connections": [{"managementAddresses": [f"ssl:127.0.0.1:{port}"]}]},
        )
        eventually(
            lambda: (
                nc.get("/servers/s1")["properties"]["configurationState"]["status"] == "Success"
            ),
            "the SSL host connected",
        )
        with host.client() as client:
            assert "s1" in client.snapshot(["Physical_Switch"])["Physical_Switch"]
    finally:
        nc.kill()
        host.remove()
