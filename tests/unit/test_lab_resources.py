"""A topology's REST documents, checked by the real controller app in-process."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openhnv.api.app import create_app
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.lab import management, resources
from openhnv.lab.documents import Document
from openhnv.lab.edge_resources import edge_infrastructure
from openhnv.lab.errors import LabError
from openhnv.lab.rest import ControllerClient, nic_states, provisioning_state
from openhnv.lab.topology import Topology, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_DIR = Path("/run/openhnv/fig8")


@pytest.fixture
def controller() -> Iterator[ControllerClient]:
    app = create_app(ControllerService(SqliteStore(":memory:")))
    with TestClient(app) as http:
        yield ControllerClient(http)


def create_all(client: ControllerClient, topology: Topology) -> dict[str, Document]:
    answers = {}
    for resource in resources.plan(topology, RUN_DIR):
        answers[resource.path] = client.put(resource)
    return answers


def test_figure8_is_accepted_and_gets_the_seed_provider_addresses(
    controller: ControllerClient,
) -> None:
    topology = load(EXAMPLES / "figure8.yaml")
    answers = create_all(controller, topology)
    host1 = controller.get("/servers/host1")["properties"]
    host2 = controller.get("/servers/host2")["properties"]
    # Two uplinks per host: one PA per team member, named after the uplink.
    assert [
        (pa["address"], pa["networkInterface"]["resourceRef"]) for pa in host1["providerAddresses"]
    ] == [
        ("192.168.1.10", "/servers/host1/networkInterfaces/up0"),
        ("192.168.1.11", "/servers/host1/networkInterfaces/up1"),
    ]
    assert host2["providerAddresses"][0]["address"] == "192.168.2.20"
    assert host2["providerAddresses"][0]["vlanID"] == 20
    # registered as SDN Express does: a bare IP on the lab's management network
    addresses = management.plan(topology)
    assert host1["connections"][0]["managementAddresses"] == [addresses.address("host1")]
    assert ipaddress.ip_address(addresses.address("host1")) in addresses.prefix
    contoso = controller.get("/virtualNetworks/contoso/subnets/subnet1")
    fabrikam = controller.get("/virtualNetworks/fabrikam/subnets/subnet1")
    assert contoso["properties"]["virtualSubnetId"] == 5001
    assert fabrikam["properties"]["virtualSubnetId"] == 6001
    sql = answers["/networkInterfaces/contoso-sql"]
    assert sql["properties"]["server"] == {"resourceRef": "/servers/host1"}
    ip = sql["properties"]["ipConfigurations"][0]["properties"]
    assert ip["privateIPAddress"] == "10.1.1.11"
    # No MAC in the topology: the lab's pool gives one, unique per NIC.
    macs = {resources.mac_of(answers[f"/networkInterfaces/{vm.name}"]) for vm in topology.vms}
    assert len(macs) == 4
    assert all(m.startswith("00:1d:d8:b7:") for m in macs)
    assert (
        controller.get("/virtualNetworkManager/configuration")["properties"][
            "networkVirtualizationProtocol"
        ]
        == "Vxlan"
    )
    states = nic_states(controller, [vm.name for vm in topology.vms])
    assert all(s.state for s in states)
    assert "missing" not in {s.state for s in states}, states


def test_two_subnets_carries_acl_static_mac_and_nvgre(controller: ControllerClient) -> None:
    topology = load(EXAMPLES / "two-subnets.yaml")
    plan = resources.plan(topology, RUN_DIR)
    nics = [r.resource_id for r in plan if r.collection == "networkInterfaces"]
    assert nics[0] == "web2"  # the static MAC goes before the pool hands any out
    answers = create_all(controller, topology)
    assert resources.mac_of(answers["/networkInterfaces/web2"]) == "00:1d:d8:b7:1c:11"
    acl = controller.get("/accessControlLists/backend-acl")["properties"]["aclRules"]
    allow = next(r for r in acl if r["resourceId"] == "allow-sql-from-frontend")["properties"]
    assert (allow["protocol"], allow["destinationPortRange"], allow["sourcePortRange"]) == (
        "TCP",
        "1433",
        "*",
    )
    assert allow["sourceAddressPrefix"] == "10.2.1.0/24"
    assert allow["priority"] == 100
    backend = controller.get("/virtualNetworks/woodgrove/subnets/backend")["properties"]
    assert backend["accessControlList"] == {"resourceRef": "/accessControlLists/backend-acl"}
    assert backend["virtualSubnetId"] >= 4096
    config = controller.get("/virtualNetworkManager/configuration")["properties"]
    assert config["networkVirtualizationProtocol"] == "Nvgre"
    assert provisioning_state(answers["/networkInterfaces/sql1"]) != ""


def test_plan_puts_references_before_their_users() -> None:
    topology = load(EXAMPLES / "two-subnets.yaml")
    order = [r.collection for r in resources.plan(topology, RUN_DIR)]
    first = {c: order.index(c) for c in order}
    assert first["logicalNetworks"] < first["servers"] < first["virtualNetworks"]
    assert first["accessControlLists"] < first["virtualNetworks"] < first["networkInterfaces"]
    assert order[-3:] == ["networkInterfaces"] * 3


def test_port_ranges_are_written_as_microsoft_does() -> None:
    assert resources._port_range((0, 65535)) == "*"
    assert resources._port_range((1433, 1433)) == "1433"
    assert resources._port_range((1000, 2000)) == "1000-2000"


def test_a_refused_put_names_method_path_and_reason(controller: ControllerClient) -> None:
    topology = load(EXAMPLES / "figure8.yaml")
    with pytest.raises(LabError, match=r"PUT /networkInterfaces/contoso-sql: 400 .*servers/host1"):
        controller.put(resources.nic_resource(topology.vm("contoso-sql")))


def test_mac_of_refuses_a_document_without_a_mac() -> None:
    with pytest.raises(ValueError, match="privateMacAddress"):
        resources.mac_of({"properties": {}})
    assert resources.mac_of({"properties": {"privateMacAddress": "001DD8B71C11"}}) == (
        "00:1d:d8:b7:1c:11"
    )


def test_vlan_vms_get_nics_on_the_logical_subnet_put_after_its_network(
    controller: ControllerClient,
) -> None:
    topology = load(EXAMPLES / "vlan-network.yaml")
    paths = [r.path for r in resources.plan(topology, RUN_DIR)]
    assert paths.index("/logicalNetworks/tenantvlan") < paths.index("/networkInterfaces/vlanvm1")
    answers = create_all(controller, topology)
    config = answers["/networkInterfaces/vlanvm1"]["properties"]["ipConfigurations"][0]
    assert config["properties"]["subnet"] == {
        "resourceRef": "/logicalNetworks/tenantvlan/subnets/vlan12"
    }
    assert config["properties"]["accessControlList"] == {
        "resourceRef": "/accessControlLists/vlan-acl"
    }
    subnet = controller.get("/logicalNetworks/tenantvlan/subnets/vlan12")["properties"]
    assert subnet["vlanID"] == 12
    # the edge does not create the VMs' network a second time
    edge = [r.path for r in edge_infrastructure(topology, RUN_DIR)]
    assert "/logicalNetworks/tenantvlan" not in edge
