"""``hnv controller`` as a real process: figure 8 over HTTP, killed, restarted, same state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import openhnv

ROOT = Path(__file__).resolve().parents[2]
FIGURE8 = ROOT / "examples" / "figure8"
SRC = Path(openhnv.__file__).resolve().parents[1]
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Controller:
    """One ``hnv controller`` subprocess on loopback."""

    def __init__(self, db: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/networking/v1"
        env = dict(os.environ, PYTHONPATH=str(SRC))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openhnv",
                "controller",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--db",
                str(db),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                output = self.process.stderr.read() if self.process.stderr else ""
                raise RuntimeError(f"controller exited: {output}")
            try:
                httpx.get(f"{self.base}/servers", timeout=1.0)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("controller did not start listening") from None
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "controller.db"


@pytest.fixture
def controller(db: Path) -> Iterator[Controller]:
    running = Controller(db)
    try:
        yield running
    finally:
        running.kill()


def everything(base: str) -> dict[str, object]:
    collections = [
        "logicalNetworks",
        "macPools",
        "credentials",
        "servers",
        "accessControlLists",
        "virtualNetworks",
        "networkInterfaces",
        "virtualNetworkManager",
    ]
    found = {}
    for collection in collections:
        response = httpx.get(f"{base}/{collection}")
        assert response.status_code == 200, response.text
        found[collection] = without_runtime(response.json())
    return found


def without_runtime(value: object) -> object:
    """``value`` without ``configurationState``: runtime state (connections, times)."""
    if isinstance(value, dict):
        return {k: without_runtime(v) for k, v in value.items() if k != "configurationState"}
    if isinstance(value, list):
        return [without_runtime(v) for v in value]
    return value


def test_figure8_survives_a_kill_and_restart(controller: Controller, db: Path) -> None:
    etags = {}
    for file in sorted(FIGURE8.glob("*.json")):
        _, collection, resource_id = file.stem.split("-", 2)
        url = f"{controller.base}/{collection}/{resource_id}"
        response = httpx.put(
            url, content=file.read_bytes(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text
        etags[url] = response.headers["ETag"]
    host2 = httpx.get(f"{controller.base}/servers/host2").json()
    assert [pa["address"] for pa in host2["properties"]["providerAddresses"]] == ["192.168.2.20"]
    before = everything(controller.base)
    controller.kill()

    restarted = Controller(db)
    try:
        after = everything(restarted.base)
        assert after == before
        for url, etag in etags.items():  # no PUT changed an earlier resource
            moved = url.replace(controller.base, restarted.base)
            assert httpx.get(moved).headers["ETag"] == etag
        created = httpx.put(
            f"{restarted.base}/virtualNetworks/Later",
            json={
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                    "subnets": [
                        {"resourceId": "a", "properties": {"addressPrefix": "10.9.1.0/24"}}
                    ],
                }
            },
        )
        assert created.status_code == 201
        vsid = created.json()["properties"]["subnets"][0]["properties"]["virtualSubnetId"]
        assert vsid not in (5001, 6001)
    finally:
        restarted.kill()


def test_create_script_with_curl(controller: Controller) -> None:
    script = FIGURE8 / "create.sh"
    result = subprocess.run(
        [str(script), controller.base], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" 201") == 11
    nics = httpx.get(f"{controller.base}/networkInterfaces").json()["value"]
    assert sorted(n["resourceId"] for n in nics) == [
        "Contoso-SQL",
        "Contoso-Web",
        "Fabrikam-SQL",
        "Fabrikam-Web",
    ]
    # No host runs at the example's unix sockets: no host has committed the NICs' rows,
    # and the servers say why (test_readme_walkthrough runs the same bodies with hosts).
    assert {n["properties"]["provisioningState"] for n in nics} == {"Updating"}
    for server in httpx.get(f"{controller.base}/servers").json()["value"]:
        state = server["properties"]["configurationState"]
        assert state["status"] == "Failure"
        assert state["detailedInfo"][0]["code"] == "HostNotConnected"
        assert "/tmp/hnv-fig8/" in state["detailedInfo"][0]["message"]
