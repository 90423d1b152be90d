"""NIC customer-address rules and prefix overlap, as properties over random subnets."""

from __future__ import annotations

import ipaddress

import gateway_dc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.admission import overlapping
from openhnv.controller.northbound.nic_rules import check_customer_address
from openhnv.controller.northbound.service import ControllerService


@given(st.ip_addresses(v=4), st.integers(8, 30), st.ip_addresses(v=4))
def test_customer_address_rule(
    base: ipaddress.IPv4Address, length: int, ip: ipaddress.IPv4Address
) -> None:
    network = ipaddress.ip_network(f"{base}/{length}", strict=False)
    special = {network.network_address, network.broadcast_address, network.network_address + 1}
    field = "properties.ipConfigurations[0].properties.privateIPAddress"
    if ip in network and ip not in special:
        check_customer_address(str(ip), str(network), field)
    else:
        with pytest.raises(ApiError) as info:
            check_customer_address(str(ip), str(network), field)
        assert info.value.status == 400
        assert info.value.message.startswith(f"{field}: {ip} ")


@given(st.ip_addresses(v=4), st.integers(8, 30))
def test_every_usable_host_in_a_small_subnet(base: ipaddress.IPv4Address, length: int) -> None:
    network = ipaddress.ip_network(f"{base}/{max(length, 26)}", strict=False)
    hosts = list(network.hosts())[1:]  # the first host is the distributed router
    for host in hosts:
        check_customer_address(str(host), str(network), "f")


@given(st.ip_addresses(v=4), st.integers(8, 32), st.ip_addresses(v=4), st.integers(8, 32))
def test_overlapping_is_symmetric(
    a: ipaddress.IPv4Address, la: int, b: ipaddress.IPv4Address, lb: int
) -> None:
    na = ipaddress.ip_network(f"{a}/{la}", strict=False)
    nb = ipaddress.ip_network(f"{b}/{lb}", strict=False)
    assert (overlapping([("a", na)], nb) is None) == (overlapping([("b", nb)], na) is None)
    assert (overlapping([("a", na)], nb) is not None) == na.overlaps(nb)


# -- a NIC behind a hardware VTEP (openhnv's vtepAddress) --------------------------------
def tor_nic(
    vtep: str = "192.168.1.200", address: str = "10.1.1.51", **changes: object
) -> gateway_dc.Body:
    body = gateway_dc.vm_nic("Contoso", address)
    props = body["properties"]
    del props["server"]
    props.update(privateMacAddress="02AA00000051", vtepAddress=vtep)
    props.update(changes)
    return body


def test_a_nic_behind_a_vtep_has_a_provider_address_a_static_mac_and_no_server() -> None:
    service = gateway_dc.datacenter()
    good = tor_nic(address="10.1.1.50", privateMacAddress="02AA00000050")
    _, doc = service.put("/networkInterfaces/tor-server", good)
    assert doc["properties"]["vtepAddress"] == "192.168.1.200"
    for body, words in (
        (tor_nic("10.9.9.9"), "no HNV provider subnet"),
        (tor_nic(server={"resourceRef": "/servers/host1"}), "on no server"),
        (tor_nic(privateMacAllocationMethod="Dynamic"), "own static MAC"),
    ):
        with pytest.raises(ApiError) as info:
            service.put("/networkInterfaces/bad", body)
        assert info.value.status == 400
        assert words in info.value.message, info.value.message
    pa = service.get("/servers/host1")["properties"]["providerAddresses"][0]["address"]
    with pytest.raises(ApiError) as clash:
        service.put("/networkInterfaces/bad", tor_nic(pa))
    assert clash.value.status == 409


# -- access-port VLANs apart from provider VLANs -----------------------------------------
def vlan30_nic() -> gateway_dc.Body:
    body = gateway_dc.vm_nic("Contoso", "172.16.30.10")
    config = body["properties"]["ipConfigurations"][0]["properties"]
    config["subnet"] = gateway_dc.ref("/logicalNetworks/PhysNet/subnets/vlan30")
    return body


def provider_network(vlan: int) -> gateway_dc.Body:
    body = dict(gateway_dc.logical_networks())["/logicalNetworks/HNVPA"]
    body["properties"]["subnets"][0]["properties"]["vlanID"] = vlan
    return body


def refused_409(service: ControllerService, path: str, body: gateway_dc.Body, *words: str) -> None:
    with pytest.raises(ApiError) as info:
        service.put(path, body)
    assert info.value.status == 409, info.value.message
    for word in words:
        assert word in info.value.message, info.value.message


def test_a_vm_nic_may_not_sit_on_a_provider_vlan_from_either_side() -> None:
    service = gateway_dc.datacenter()
    service.put("/logicalNetworks/HNVPA", provider_network(30))
    refused_409(
        service,
        "/networkInterfaces/vlanvm",
        vlan30_nic(),
        "ipConfigurations[0].properties.subnet",
        "vlanID 30",
        "/logicalNetworks/HNVPA/subnets/pa1",
    )
    service.put("/logicalNetworks/HNVPA", provider_network(0))
    service.put("/networkInterfaces/vlanvm", vlan30_nic())
    refused_409(
        service,
        "/logicalNetworks/HNVPA",
        provider_network(30),
        "/logicalNetworks/PhysNet/subnets/vlan30",
        "/networkInterfaces/vlanvm",
    )
    physnet = dict(gateway_dc.logical_networks())["/logicalNetworks/PhysNet"]
    service.put("/logicalNetworks/HNVPA", provider_network(20))  # vlan20 holds no VM NIC
    physnet["properties"]["subnets"][1]["properties"]["vlanID"] = 20
    refused_409(service, "/logicalNetworks/PhysNet", physnet, "subnets[1].properties.vlanID")
    assert service.get("/networkInterfaces/vlanvm")["properties"]["ipConfigurations"]


# -- portSettings.qosSettings: a reservation within the cap ------------------------------
def qos_nic(qos: dict[str, object]) -> gateway_dc.Body:
    body = gateway_dc.vm_nic("Contoso", "10.1.1.60")
    body["properties"]["portSettings"] = {"qosSettings": qos}
    return body


@pytest.mark.parametrize(
    ("qos", "accepted"),
    [
        ({"outboundReservedValue": 60}, True),  # no cap: up to the link
        ({"outboundMaximumMbps": 80, "outboundReservedValue": "60"}, True),
        ({"outboundMaximumMbps": 60, "outboundReservedValue": 60}, True),  # equal: allowed
        ({"outboundMaximumMbps": 50, "outboundReservedValue": 60}, False),
        ({"outboundReservedValue": -1}, False),
    ],
)
def test_a_reservation_may_not_exceed_the_outbound_cap(
    qos: dict[str, object], accepted: bool
) -> None:
    service = gateway_dc.datacenter()
    if accepted:
        _, doc = service.put("/networkInterfaces/reserved", qos_nic(qos))
        got = doc["properties"]["portSettings"]["qosSettings"]["outboundReservedValue"]
        assert got == int(str(qos["outboundReservedValue"]))
        return
    with pytest.raises(ApiError) as info:
        service.put("/networkInterfaces/reserved", qos_nic(qos))
    assert info.value.status == 400
    assert "qosSettings.outboundReservedValue" in info.value.message, info.value.message
    with pytest.raises(ApiError):  # a refused request changed nothing
        service.get("/networkInterfaces/reserved")
