"""Dual-stack virtual networks through the service: IPv6 prefixes, NIC IPv6 addresses,
IPv6 ACL rules, and the 400s that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from test_controller_northbound_service_rules import build, nic, refused

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

VNET = "/virtualNetworks/Dual"
SUBNET = f"{VNET}/subnets/web"
V4, V6 = "10.7.0.0/24", "fd00:7::/64"


def dual_vnet(
    *subnet_props: dict[str, Any], space: tuple[str, ...] = ("10.7.0.0/16", "fd00:7::/48")
) -> dict[str, Any]:
    return {
        "properties": {
            "addressSpace": {"addressPrefixes": list(space)},
            "logicalNetwork": {"resourceRef": "/logicalNetworks/HNVPA"},
            "subnets": [
                {"resourceId": "web" if i == 0 else f"s{i}", "properties": props}
                for i, props in enumerate(subnet_props)
            ],
        }
    }


def dual_nic(v4: str | None, v6: str | None, **v6_props: Any) -> dict[str, Any]:
    body = nic(v4 or "10.7.0.10", subnet=SUBNET)
    configs = body["properties"]["ipConfigurations"]
    if v4 is None:
        configs.clear()
    if v6 is not None or v6_props:
        props: dict[str, Any] = {"subnet": {"resourceRef": SUBNET}, **v6_props}
        if v6 is not None:
            props["privateIPAddress"] = v6
        configs.append({"resourceId": "ipconfig6", "properties": props})
    return body


@pytest.fixture
def service() -> ControllerService:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    svc.put(VNET, dual_vnet({"addressPrefix": V4, "addressPrefixes": [V6, V4]}))
    return svc


def test_a_dual_stack_subnet_keeps_both_prefixes_ipv4_first(service: ControllerService) -> None:
    subnet = service.get(SUBNET)["properties"]
    assert subnet["addressPrefix"] == V4
    assert subnet["addressPrefixes"] == [V4, V6]


def test_a_nic_gets_an_ipv4_and_an_ipv6_address_in_one_subnet(service: ControllerService) -> None:
    _, doc = service.put("/networkInterfaces/dual", dual_nic("10.7.0.10", "fd00:7::10"))
    configs = {c["resourceId"]: c["properties"] for c in doc["properties"]["ipConfigurations"]}
    assert configs["ipconfig1"]["privateIPAddress"] == "10.7.0.10"
    assert configs["ipconfig6"]["privateIPAddress"] == "fd00:7::10"
    assert configs["ipconfig6"]["privateIPAddressVersion"] == "IPv6"


def test_a_dynamic_ipv6_address_comes_from_the_ipv6_prefix(service: ControllerService) -> None:
    body = dual_nic("10.7.0.10", None, privateIPAddressVersion="IPv6")
    _, doc = service.put("/networkInterfaces/dyn", body)
    six = doc["properties"]["ipConfigurations"][1]["properties"]
    assert six["privateIPAddress"] == "fd00:7::2"  # ::1 is the distributed router
    assert six["privateIPAllocationMethod"] == "Dynamic"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            dual_nic("10.7.0.10", "fd00:8::10"),
            "ipConfigurations[1].properties.privateIPAddress",
            "outside subnet fd00:7::/64",
        ),
        (
            dual_nic("10.7.0.10", "fd00:7::1"),
            "ipConfigurations[1].properties.privateIPAddress",
            "distributed router",
        ),
        (
            dual_nic("10.7.0.10", "fd00:7::"),
            "ipConfigurations[1].properties.privateIPAddress",
            "network address",
        ),
        (
            dual_nic("10.7.0.10", "fd00:7::10", privateIPAddressVersion="IPv4"),
            "ipConfigurations[1].properties.privateIPAddressVersion",
            "is IPv4, but privateIPAddress fd00:7::10 is IPv6",
        ),
        (
            dual_nic("10.7.0.10", "fd00:7::10", privateIPAddressVersion="IPv7"),
            "ipConfigurations[1].properties.privateIPAddressVersion",
            "not one of IPv4, IPv6",
        ),
    ],
)
def test_bad_ipv6_addresses_are_refused_naming_the_field(
    service: ControllerService, body: dict[str, Any], field: str, words: str
) -> None:
    err = refused(service, "/networkInterfaces/bad", body, 400, words)
    assert err.message.startswith(f"properties.{field}: "), err.message


def test_an_ipv6_address_needs_an_ipv6_prefix_in_its_subnet() -> None:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    svc.put(VNET, dual_vnet({"addressPrefix": V4}))
    refused(svc, "/networkInterfaces/bad", dual_nic("10.7.0.10", "fd00:7::10"), 400,
            f"subnet {SUBNET} has no IPv6 prefix")  # fmt: skip


def test_an_ipv6_only_subnet_takes_ipv6_addresses() -> None:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    svc.put(VNET, dual_vnet({"addressPrefix": V6}))
    _, doc = svc.put("/networkInterfaces/six", dual_nic(None, "fd00:7::20"))
    assert (
        doc["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "fd00:7::20"
    )


@pytest.mark.parametrize(
    ("props", "field", "words"),
    [
        (
            {"addressPrefix": V4, "addressPrefixes": [V6]},
            "subnets[0].properties.addressPrefixes",
            "does not hold addressPrefix",
        ),
        (
            {"addressPrefix": V4, "addressPrefixes": [V4, V6, "fd00:7:1::/64"]},
            "subnets[0].properties.addressPrefixes[2]",
            "second IPv6 prefix",
        ),
        (
            {"addressPrefix": V4, "addressPrefixes": [V4, "fd00:9::/64"]},
            "subnets[0].properties.addressPrefixes[1]",
            "outside the address space",
        ),
        (
            {"addressPrefix": V4, "addressPrefixes": [V4, "not-a-prefix"]},
            "subnets[0].properties.addressPrefixes[1]",
            "",
        ),
        ({"addressPrefix": V4, "addressPrefixes": []}, "subnets[0].properties.addressPrefixes", ""),
    ],
)
def test_bad_dual_stack_subnets_are_refused_naming_the_field(
    props: dict[str, Any], field: str, words: str
) -> None:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    err = refused(svc, VNET, dual_vnet(props), 400, words)
    assert err.message.startswith(f"properties.{field}"), err.message


def test_ipv6_prefixes_of_sibling_subnets_must_not_overlap() -> None:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    body = dual_vnet(
        {"addressPrefix": V4, "addressPrefixes": [V4, V6]},
        {"addressPrefix": "10.7.1.0/24", "addressPrefixes": ["10.7.1.0/24", "fd00:7::/56"]},
    )
    refused(svc, VNET, body, 400, "overlaps sibling subnet web")


def test_removing_the_ipv6_prefix_under_an_ipv6_nic_is_a_conflict(
    service: ControllerService,
) -> None:
    service.put("/networkInterfaces/dual", dual_nic("10.7.0.10", "fd00:7::10"))
    refused(
        service,
        VNET,
        dual_vnet(
            {
                "addressPrefix": V4,
                "virtualSubnetId": service.get(SUBNET)["properties"]["virtualSubnetId"],
            }
        ),
        409,
        "fd00:7::10",
    )


def test_ipv6_acl_rules_are_accepted() -> None:
    svc = ControllerService(SqliteStore(":memory:"))
    rule: dict[str, Any] = {
        "resourceId": "in6",
        "properties": {
            "protocol": "TCP",
            "sourcePortRange": "0-65535",
            "destinationPortRange": "22",
            "sourceAddressPrefix": "fd00:7::/64",
            "destinationAddressPrefix": "fd00:7::10",
            "action": "Allow",
            "priority": "200",
            "type": "Inbound",
        },
    }
    _, doc = svc.put("/accessControlLists/six", {"properties": {"aclRules": [rule]}})
    got = doc["properties"]["aclRules"][0]["properties"]
    assert (got["sourceAddressPrefix"], got["destinationAddressPrefix"]) == (
        "fd00:7::/64",
        "fd00:7::10/128",
    )
    rule["properties"]["sourceAddressPrefix"] = "fd00:7::zz/64"
    refused(svc, "/accessControlLists/bad", {"properties": {"aclRules": [rule]}}, 400,
            "properties.aclRules[0].properties.sourceAddressPrefix")  # fmt: skip
