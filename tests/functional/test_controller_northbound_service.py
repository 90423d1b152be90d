"""``hnv controller`` as a real process: figure 8 over HTTP, killed, restarted, same state."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from openhnv.testing.processes import ControllerProcess

ROOT = Path(__file__).resolve().parents[2]
FIGURE8 = ROOT / "examples" / "figure8"


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


def test_figure8_survives_a_kill_and_restart(controller_process: ControllerProcess) -> None:
    controller = controller_process
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

    restarted = ControllerProcess(controller.db)
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


def test_create_script_with_curl(controller_process: ControllerProcess) -> None:
    controller = controller_process
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
