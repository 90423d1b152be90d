"""ControllerService's hooks for the publisher, and documents handed out as deep copies."""

from __future__ import annotations

import pytest
from test_controller_northbound_service_rules import build

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

NIC = "/networkInterfaces/Contoso-SQL"


@pytest.fixture
def service() -> ControllerService:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    return svc


def test_get_returns_a_copy_the_caller_may_change(service: ControllerService) -> None:
    before = service.snapshot()
    doc = service.get(NIC)
    doc["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = "6.6.6.6"
    doc["properties"]["server"]["resourceRef"] = "/servers/nowhere"
    doc["properties"]["portSettings"]["macSpoofingEnabled"] = "Enabled"
    server = service.get("/servers/host1")
    server["properties"]["connections"][0]["managementAddresses"].append("9.9.9.9")
    server["properties"]["configurationState"]["detailedInfo"].clear()
    vnets = service.list("/virtualNetworks")
    vnets["value"][0]["properties"]["addressSpace"]["addressPrefixes"].append("1.0.0.0/8")
    snapshot = service.snapshot()
    snapshot["servers"][1]["properties"]["networkInterfaces"].clear()
    pool = service.get("/macPools/default")
    _, put_doc = service.put("/macPools/default", pool)
    put_doc["properties"]["usage"]["numberOfMacAddresses"] = -1
    assert service.snapshot() == before


def test_listeners_hear_every_committed_change(service: ControllerService) -> None:
    heard: list[list[str]] = []
    service.subscribe(heard.append)
    body = {"properties": {"type": "X509Certificate", "value": "thumb"}}
    service.put("/credentials/c1", body)
    service.put("/credentials/c1", body)  # unchanged: nothing to hear
    service.delete("/credentials/c1")
    assert heard == [["/credentials/c1"], ["/credentials/c1"]]


def test_tracked_nics_start_updating(service: ControllerService) -> None:
    service.track_provisioning = True
    doc = service.get(NIC)
    body = {"properties": {k: v for k, v in doc["properties"].items() if k != "server"}}
    _, changed = service.put(NIC, body)
    assert changed["properties"]["provisioningState"] == "Updating"
    _, vnet = service.put("/virtualNetworks/Contoso", service.get("/virtualNetworks/Contoso"))
    assert vnet["properties"]["provisioningState"] == "Succeeded"


def test_set_provisioning_state_only_for_the_compiled_etag(service: ControllerService) -> None:
    etag = service.get(NIC)["etag"]
    assert service.set_provisioning_state(NIC, "Updating", if_etag=etag)
    assert not service.set_provisioning_state(NIC, "Succeeded", if_etag='W/"stale"')
    assert service.get(NIC)["properties"]["provisioningState"] == "Updating"
    assert service.set_provisioning_state(NIC, "Succeeded", if_etag=etag)
    assert service.get(NIC)["properties"]["provisioningState"] == "Succeeded"


def test_configuration_state_is_runtime_only(service: ControllerService) -> None:
    state = {"status": "Success", "detailedInfo": [{"code": "Success"}]}
    service.set_configuration_state("/servers/HOST1", state)
    state["status"] = "mutated"
    assert service.get("/servers/host1")["properties"]["configurationState"]["status"] == "Success"
    assert "configurationState" not in service.get(NIC)["properties"]
    service.set_configuration_state(NIC, {"status": "Warning"})
    assert service.get(NIC)["properties"]["configurationState"] == {"status": "Warning"}
    service.set_configuration_state("/servers/host1", None)
    default = service.get("/servers/host1")["properties"]["configurationState"]
    assert default["detailedInfo"][0]["code"] == "HostNotConnected"
    assert ControllerService(service.store).get(NIC)["properties"].get("configurationState") is None


def test_bind_server_only_binds_an_unplaced_nic(service: ControllerService) -> None:
    heard: list[list[str]] = []
    service.subscribe(heard.append)
    assert not service.bind_server(NIC, "/servers/host2")  # has host1: kept
    assert service.get(NIC)["properties"]["server"] == {"resourceRef": "/servers/host1"}
    doc = service.get(NIC)
    body = {"properties": {k: v for k, v in doc["properties"].items() if k != "server"}}
    service.put(NIC, body)
    etag = service.get(NIC)["etag"]
    assert service.bind_server(NIC.lower(), "/servers/HOST2")
    bound = service.get(NIC)
    assert bound["properties"]["server"] == {"resourceRef": "/servers/host2"}
    assert bound["etag"] != etag
    assert heard[-1] == [NIC]
    assert not service.bind_server("/networkInterfaces/absent", "/servers/host2")
