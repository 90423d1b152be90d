"""snapshot(store): the compiler's input, exactly the GET documents, from the store alone."""

from __future__ import annotations

import json
from pathlib import Path

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.snapshot import SNAPSHOT_COLLECTIONS, snapshot
from openhnv.controller.northbound.store import SqliteStore

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8"


def test_snapshot_is_every_get_document(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "nc.db")
    service = ControllerService(store)
    for file in sorted(FIGURE8.glob("*.json")):
        _, collection, resource_id = file.stem.split("-", 2)
        service.put(f"/{collection}/{resource_id}", json.loads(file.read_text()))
    found = snapshot(store)
    assert tuple(found) == SNAPSHOT_COLLECTIONS
    for collection in SNAPSHOT_COLLECTIONS:
        assert found[collection] == service.get(f"/{collection}")["value"]
    assert found == service.snapshot()
    (configuration,) = found["virtualNetworkManager"]
    assert configuration["resourceId"] == "configuration"
    assert configuration["properties"]["networkVirtualizationProtocol"] == "Vxlan"
    hosts = {
        s["resourceId"]: s["properties"]["providerAddresses"][0]["address"]
        for s in found["servers"]
    }
    assert hosts == {"host1": "192.168.1.10", "host2": "192.168.2.20"}
    vsids = {
        v["resourceId"]: v["properties"]["subnets"][0]["properties"]["virtualSubnetId"]
        for v in found["virtualNetworks"]
    }
    assert vsids == {"Contoso": 5001, "Fabrikam": 6001}
    nic = next(n for n in found["networkInterfaces"] if n["resourceId"] == "Fabrikam-Web")
    assert nic["properties"]["server"] == {"resourceRef": "/servers/host2"}
    assert nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.1.1.12"
    json.dumps(found)  # plain JSON all the way down
