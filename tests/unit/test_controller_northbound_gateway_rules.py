"""Gateway pools, gateways and virtual gateways: placement, the compartment's NIC, refusals."""

from __future__ import annotations

import copy

import gateway_dc as dc
import pytest

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.service import ControllerService

Body = dc.Body


def refused(service: ControllerService, path: str, body: Body, status: int, *words: str) -> None:
    before = service.snapshot()
    with pytest.raises(ApiError) as info:
        service.put(path, body)
    assert info.value.status == status, info.value.message
    for word in words:
        assert word in info.value.message, info.value.message
    assert service.snapshot() == before  # a rejected request changes nothing


def compartment(service: ControllerService, name: str) -> Body:
    found: Body = service.get(f"/virtualGateways/{name}")["properties"]["compartment"]
    return found


def test_a_virtual_gateway_gets_a_compartment_on_a_gateway_of_its_pool() -> None:
    service = dc.with_gateways()
    contoso, fabrikam = compartment(service, "Contoso-gw"), compartment(service, "Fabrikam-gw")
    assert contoso["gateway"] == dc.ref("/gateways/gw1")
    assert contoso["server"] == dc.ref("/servers/gw1")
    assert contoso["subnet"] == dc.subnet_ref("Contoso", "GatewaySubnet")
    # Same customer space, each in its own VNet: the same first usable address.
    assert contoso["ipAddress"] == fabrikam["ipAddress"] == "10.1.254.2"
    assert contoso["macAddress"] != fabrikam["macAddress"]
    assert contoso["instanceId"] != fabrikam["instanceId"]


def test_the_compartment_keeps_its_values_across_replaces() -> None:
    service = dc.with_gateways()
    before = compartment(service, "Contoso-gw")
    body = dc.virtual_gateway("Contoso", dc.nat_connection("contoso-pip"))
    service.put("/virtualGateways/Contoso-gw", body)
    assert compartment(service, "Contoso-gw") == before


def test_a_nic_cannot_take_a_compartments_address_or_mac_and_allocation_skips_them() -> None:
    service = dc.with_gateways()
    taken = compartment(service, "Contoso-gw")
    nic = dc.vm_nic("Contoso", taken["ipAddress"])
    nic["properties"]["ipConfigurations"][0]["properties"]["subnet"] = dc.subnet_ref(
        "Contoso", "GatewaySubnet"
    )
    refused(service, "/networkInterfaces/x", nic, 409, "already")
    mac = dc.vm_nic("Contoso", "10.1.1.30")
    mac["properties"]["privateMacAddress"] = taken["macAddress"]
    refused(service, "/networkInterfaces/x", mac, 409, "already used by /virtualGateways")
    dynamic = dc.vm_nic("Contoso", "10.1.1.31")
    dynamic["properties"]["ipConfigurations"][0]["properties"].pop("privateIPAddress")
    dynamic["properties"]["ipConfigurations"][0]["properties"]["subnet"] = dc.subnet_ref(
        "Contoso", "GatewaySubnet"
    )
    _, doc = service.put("/networkInterfaces/y", dynamic)
    config = doc["properties"]["ipConfigurations"][0]["properties"]
    assert config["privateIPAddress"] == "10.1.254.3"
    assert doc["properties"]["privateMacAddress"] not in (
        compartment(service, "Contoso-gw")["macAddress"],
        compartment(service, "Fabrikam-gw")["macAddress"],
    )


def test_a_vnet_has_one_virtual_gateway_serving_one_vnet() -> None:
    service = dc.with_gateways()
    refused(
        service,
        "/virtualGateways/second",
        dc.virtual_gateway("Contoso"),
        409,
        "already has /virtualGateways/Contoso-gw",
    )
    both = dc.virtual_gateway("Contoso")
    both["properties"]["gatewaySubnets"].append(dc.subnet_ref("Fabrikam", "GatewaySubnet"))
    refused(service, "/virtualGateways/both", both, 400, "serves one VNet")


def test_bgp_two_pools_and_no_pool_are_refused() -> None:
    service = dc.datacenter()
    bgp = dc.virtual_gateway("Contoso")
    bgp["properties"]["bgpRouters"] = [
        {"resourceId": "r1", "properties": {"extAsNumber": "0.64512"}}
    ]
    refused(service, "/virtualGateways/v", bgp, 400, "BGP")
    nopool = dc.virtual_gateway("Contoso")
    del nopool["properties"]["gatewayPool"]
    refused(service, "/virtualGateways/v", nopool, 400, "gatewayPool", "required")
    plural = dc.virtual_gateway("Contoso")
    del plural["properties"]["gatewayPool"]
    plural["properties"]["gatewayPools"] = [dc.ref("/gatewayPools/default")]
    _, doc = service.put("/virtualGateways/v", plural)
    assert doc["properties"]["compartment"]["gateway"] == dc.ref("/gateways/gw1")


def test_placement_needs_a_gateway_with_the_legs_the_connections_use() -> None:
    service = dc.datacenter()
    service.put("/servers/gw2", dc.server("gw2"))
    service.put("/gatewayPools/bare", {"properties": {}})
    service.put(
        "/gateways/gw2",
        {"properties": {"pool": dc.ref("/gatewayPools/bare"), "server": dc.ref("/servers/gw2")}},
    )
    body = dc.virtual_gateway("Contoso", dc.l3_connection())
    body["properties"]["gatewayPool"] = dc.ref("/gatewayPools/bare")
    refused(service, "/virtualGateways/v", body, 409, "no leg on /logicalNetworks/PhysNet")
    empty = dc.virtual_gateway("Contoso")
    service.put("/gatewayPools/empty", {"properties": {}})
    empty["properties"]["gatewayPool"] = dc.ref("/gatewayPools/empty")
    refused(service, "/virtualGateways/v", empty, 409, "no gateway")


def test_a_gateway_is_one_server_with_external_legs_only() -> None:
    service = dc.datacenter()
    twice = {
        "properties": {"pool": dc.ref("/gatewayPools/default"), "server": dc.ref("/servers/gw1")}
    }
    refused(service, "/gateways/again", twice, 409, "already gateway /gateways/gw1")
    service.put("/servers/gw2", dc.server("gw2"))
    pa_leg = {
        "properties": {
            "pool": dc.ref("/gatewayPools/default"),
            "server": dc.ref("/servers/gw2"),
            "externalInterfaces": [dc.ref("/servers/gw2/networkInterfaces/pnic1")],
        }
    }
    refused(service, "/gateways/gw2", pa_leg, 400, "HNV provider subnet")
    elsewhere = copy.deepcopy(pa_leg)
    elsewhere["properties"]["externalInterfaces"] = [dc.ref("/servers/gw1/networkInterfaces/pnic2")]
    refused(service, "/gateways/gw2", elsewhere, 400, "not a network interface of /servers/gw2")
    missing = copy.deepcopy(pa_leg)
    missing["properties"]["server"] = dc.ref("/servers/nope")
    refused(service, "/gateways/gw2", missing, 400, "does not exist")


def test_deletes_respect_what_is_still_used() -> None:
    service = dc.with_gateways()
    for path in ("/gateways/gw1", "/gatewayPools/default", "/servers/gw1"):
        with pytest.raises(ApiError) as info:
            service.delete(path)
        assert info.value.status == 409, path
    service.delete("/virtualGateways/Contoso-gw")
    service.delete("/virtualGateways/Fabrikam-gw")
    service.delete("/gateways/gw1")
    service.delete("/gatewayPools/default")


def test_back_references_show_who_uses_what() -> None:
    service = dc.with_gateways()
    pool = service.get("/gatewayPools/default")["properties"]
    assert pool["gateways"] == [dc.ref("/gateways/gw1")]
    assert pool["virtualGateways"] == [
        dc.ref("/virtualGateways/Contoso-gw"),
        dc.ref("/virtualGateways/Fabrikam-gw"),
    ]
    gateway = service.get("/gateways/gw1")["properties"]
    assert len(gateway["virtualGateways"]) == 2
    vnet = service.get("/virtualNetworks/Contoso")["properties"]
    assert vnet["virtualGateway"] == dc.ref("/virtualGateways/Contoso-gw")


def test_a_pool_type_must_carry_the_connections_of_its_virtual_gateways() -> None:
    service = dc.with_gateways()
    refused(service, "/gatewayPools/default", {"properties": {"type": "S2sIPsec"}}, 409, "L3")
