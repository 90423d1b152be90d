"""publicIPAddresses: static in a public subnet or allocated from its pools, one user each."""

from __future__ import annotations

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


def test_a_dynamic_address_comes_from_the_public_pool_and_stays() -> None:
    service = dc.datacenter()
    _, first = service.put("/publicIPAddresses/a", dc.public_ip())
    _, second = service.put("/publicIPAddresses/b", dc.public_ip())
    assert first["properties"]["ipAddress"] == "203.0.113.10"
    assert first["properties"]["publicIPAllocationMethod"] == "Dynamic"
    assert first["properties"]["logicalSubnet"] == dc.ref(
        "/logicalNetworks/Internet/subnets/public"
    )
    assert second["properties"]["ipAddress"] == "203.0.113.11"
    _, again = service.put("/publicIPAddresses/a", dc.public_ip())
    assert again["properties"]["ipAddress"] == "203.0.113.10"  # kept across a replace


def test_a_static_address_must_be_a_usable_address_of_a_public_subnet() -> None:
    service = dc.datacenter()
    _, doc = service.put("/publicIPAddresses/s", dc.public_ip("203.0.113.200"))
    assert doc["properties"]["publicIPAllocationMethod"] == "Static"
    refused(
        service,
        "/publicIPAddresses/x",
        dc.public_ip("172.16.20.5"),
        400,
        "properties.ipAddress",
        "isPublic",
    )
    refused(service, "/publicIPAddresses/x", dc.public_ip("203.0.113.1"), 400, "gateway")
    refused(service, "/publicIPAddresses/x", dc.public_ip("203.0.113.200"), 409, "already")


def test_static_without_an_address_and_ipv6_are_refused() -> None:
    service = dc.datacenter()
    refused(
        service,
        "/publicIPAddresses/x",
        {"properties": {"publicIPAllocationMethod": "Static"}},
        400,
        "required",
    )
    refused(
        service,
        "/publicIPAddresses/x",
        {"properties": {"publicIPAddressVersion": "IPv6"}},
        400,
        "IPv4",
    )


def test_an_exhausted_pool_is_a_conflict() -> None:
    service = dc.datacenter()
    for i in range(90):
        service.put(f"/publicIPAddresses/p{i}", dc.public_ip())
    refused(service, "/publicIPAddresses/last", dc.public_ip(), 409, "free address")


def test_a_public_ip_serves_one_configuration_and_shows_it() -> None:
    service = dc.with_gateways()
    pip = service.get("/publicIPAddresses/contoso-pip")
    assert pip["properties"]["ipConfiguration"] == dc.ref(
        "/virtualGateways/Contoso-gw/networkConnections/internet"
    )
    nic = dc.vm_nic("Contoso", "10.1.1.20")
    nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = dc.ref(
        "/publicIPAddresses/contoso-pip"
    )
    refused(service, "/networkInterfaces/other", nic, 409, "already used by")


def test_a_public_ip_in_use_cannot_be_deleted() -> None:
    service = dc.with_gateways()
    with pytest.raises(ApiError) as info:
        service.delete("/publicIPAddresses/contoso-pip")
    assert info.value.status == 409
    service.delete("/virtualGateways/Contoso-gw")
    service.delete("/publicIPAddresses/contoso-pip")
