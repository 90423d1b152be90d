"""The northbound builder's documents, as the controller takes them."""

from __future__ import annotations

import ipaddress

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.lab import documents as nb
from openhnv.testing import datacenter as dc

PREFIX = "10.7.0.0/16"


def test_an_ip_configuration_without_an_address_gets_one_from_its_subnet() -> None:
    service = ControllerService(SqliteStore(":memory:"))
    dc.fabric(service)
    dc.vnet(service, "Blue", PREFIX, 5001)
    config = nb.ip_configuration(None, "Blue", dc.VIRTUAL_SUBNET)
    assert config["properties"]["privateIPAllocationMethod"] == "Dynamic"
    nic = dc.put(service, nb.network_interface("n1", [config]))
    (stored,) = nic["properties"]["ipConfigurations"]
    assert ipaddress.ip_address(stored["properties"]["privateIPAddress"]) in (
        ipaddress.ip_network(PREFIX)
    )


def test_an_ip_configuration_with_an_address_is_static() -> None:
    config = nb.ip_configuration("10.7.0.5", "Blue", dc.VIRTUAL_SUBNET)
    assert config["properties"]["privateIPAddress"] == "10.7.0.5"
    assert config["properties"]["privateIPAllocationMethod"] == "Static"
