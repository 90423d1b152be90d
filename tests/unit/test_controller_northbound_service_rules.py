"""ControllerService: every resource, allocation and refusal, without HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.paths import parse_path
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8"
SUBNET = "/virtualNetworks/Contoso/subnets/subnet1"


def figure8_requests() -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of every request of the README walk-through, in order."""
    out = []
    for file in sorted(FIGURE8.glob("*.json")):
        _, collection, resource_id = file.stem.split("-", 2)
        out.append((f"/{collection}/{resource_id}", json.loads(file.read_text())))
    return out


def build(service: ControllerService) -> None:
    for path, body in figure8_requests():
        service.put(path, body)


@pytest.fixture
def service() -> ControllerService:
    svc = ControllerService(SqliteStore(":memory:"))
    build(svc)
    return svc


@pytest.fixture
def empty() -> ControllerService:
    return ControllerService(SqliteStore(":memory:"))


def refused(
    service: ControllerService, path: str, body: dict[str, Any], status: int, *words: str
) -> ApiError:
    before = service.snapshot()
    with pytest.raises(ApiError) as info:
        service.put(path, body)
    assert info.value.status == status, info.value.message
    for word in words:
        assert word in info.value.message, info.value.message
    assert service.snapshot() == before  # a rejected request changes nothing
    return info.value


def nic(ip: str, mac: str | None = None, subnet: str = SUBNET, **props: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "properties": {
            "ipConfigurations": [
                {
                    "resourceId": "ipconfig1",
                    "properties": {"privateIPAddress": ip, "subnet": {"resourceRef": subnet}},
                }
            ],
            **props,
        }
    }
    if mac is not None:
        body["properties"]["privateMacAddress"] = mac
    return body


def vnet(prefix: str = "10.2.0.0/16", *subnets: tuple[str, str, int | None]) -> dict[str, Any]:
    return {
        "properties": {
            "addressSpace": {"addressPrefixes": [prefix]},
            "subnets": [
                {
                    "resourceId": name,
                    "properties": {"addressPrefix": p}
                    | ({} if vsid is None else {"virtualSubnetId": vsid}),
                }
                for name, p, vsid in subnets
            ],
        }
    }


# --- figure 8 ---------------------------------------------------------------


def test_figure8_allocations(service: ControllerService) -> None:
    host1 = service.get("/servers/host1")["properties"]["providerAddresses"]
    host2 = service.get("/servers/host2")["properties"]["providerAddresses"]
    assert [(p["address"], p["vlanID"], p["prefixLength"], p["defaultGateway"]) for p in host1] == [
        ("192.168.1.10", 11, 24, "192.168.1.1")
    ]
    assert host2[0]["address"] == "192.168.2.20"
    assert host2[0]["networkInterface"] == {"resourceRef": "/servers/host2/networkInterfaces/pnic1"}
    contoso = service.get("/virtualNetworks/Contoso")
    fabrikam = service.get("/virtualNetworks/Fabrikam")
    assert contoso["properties"]["subnets"][0]["properties"]["virtualSubnetId"] == 5001
    assert fabrikam["properties"]["subnets"][0]["properties"]["virtualSubnetId"] == 6001
    assert contoso["properties"]["routingDomainId"] != fabrikam["properties"]["routingDomainId"]
    assert contoso["properties"]["subnets"][0]["properties"]["ipConfigurations"] == [
        {"resourceRef": "/networkInterfaces/Contoso-SQL/ipConfigurations/ipconfig1"},
        {"resourceRef": "/networkInterfaces/Contoso-Web/ipConfigurations/ipconfig1"},
    ]
    assert service.get("/servers/host2")["properties"]["virtualNetworkInterfaces"] == [
        {"resourceRef": "/networkInterfaces/Contoso-Web"},
        {"resourceRef": "/networkInterfaces/Fabrikam-Web"},
    ]


def test_strings_become_numbers_and_booleans(service: ControllerService) -> None:
    network = service.get("/logicalNetworks/HNVPA")["properties"]
    assert network["networkVirtualizationEnabled"] is True
    assert network["subnets"][0]["properties"]["vlanID"] == 11
    pool = network["subnets"][0]["properties"]["ipPools"][0]["properties"]
    assert pool["usage"] == {"numberOfIPAddresses": 10, "numberofIPAddressesAllocated": 1}


def test_envelope_and_children(service: ControllerService) -> None:
    doc = service.get("/virtualNetworks/Contoso")
    assert doc["resourceRef"] == "/virtualNetworks/Contoso"
    assert doc["etag"].startswith('W/"')
    assert doc["properties"]["provisioningState"] == "Succeeded"
    child = service.get("/virtualnetworks/CONTOSO/subnets/SUBNET1")
    assert child["etag"] == doc["etag"]
    assert child["resourceRef"] == SUBNET
    assert child["instanceId"] == doc["properties"]["subnets"][0]["instanceId"]
    listing = service.get("/virtualNetworks")
    assert listing["nextLink"] == ""
    assert [d["resourceId"] for d in listing["value"]] == [
        "Contoso",
        "Fabrikam",
    ]
    assert service.list("/virtualNetworks/Contoso/subnets")["value"][0] == child


def test_identical_put_keeps_etag_and_change_renews_it(service: ControllerService) -> None:
    path, body = figure8_requests()[5]
    before = service.get(path)
    created, after = service.put(path, body)
    assert not created
    assert after["etag"] == before["etag"]
    body = json.loads(json.dumps(body))
    body["tags"] = {"owner": "contoso"}
    _, changed = service.put(path, body)
    assert changed["etag"] != before["etag"]
    assert changed["instanceId"] == before["instanceId"]
    assert changed["properties"]["routingDomainId"] == before["properties"]["routingDomainId"]


def test_put_of_a_get_document_round_trips(service: ControllerService) -> None:
    for collection in ("servers", "virtualNetworks", "networkInterfaces", "logicalNetworks"):
        for doc in service.list(f"/{collection}")["value"]:
            _, again = service.put(doc["resourceRef"], doc)
            assert again == doc


def test_if_match(service: ControllerService) -> None:
    path, body = figure8_requests()[5]
    etag = service.get(path)["etag"]
    service.put(path, body, if_match=etag)
    with pytest.raises(ApiError) as info:
        service.put(path, body | {"tags": {"a": 1}}, if_match='W/"stale"')
    assert info.value.status == 412
    with pytest.raises(ApiError) as info:
        service.delete(SUBNET, if_match='W/"stale"')
    assert info.value.status == 412
    with pytest.raises(ApiError) as info:
        service.put("/credentials/new", {"properties": {"type": "X509Certificate"}}, if_match=etag)
    assert info.value.status == 412
    service.put(path, body, if_match="*")


def test_child_resources(service: ControllerService) -> None:
    service.put("/virtualNetworks/Contoso", vnet("10.1.0.0/16", ("subnet1", "10.1.1.0/24", None)))
    before = service.get("/virtualNetworks/Contoso")
    created, child = service.put(
        "/virtualNetworks/Contoso/subnets/Back", {"properties": {"addressPrefix": "10.1.2.0/24"}}
    )
    assert created
    assert child["resourceRef"] == "/virtualNetworks/Contoso/subnets/Back"
    parent = service.get("/virtualNetworks/Contoso")
    assert parent["etag"] != before["etag"]
    assert child["etag"] == parent["etag"]
    assert child["properties"]["virtualSubnetId"] >= 4096
    service.delete("/virtualNetworks/Contoso/subnets/back")
    names = [
        s["resourceId"] for s in service.get("/virtualNetworks/Contoso")["properties"]["subnets"]
    ]
    assert names == ["subnet1"]
    assert service.get("/virtualNetworks/Contoso")["etag"] != parent["etag"]


def test_acl_rules_at_their_own_uri(empty: ControllerService) -> None:
    empty.put("/accessControlLists/web", {"properties": {"aclRules": []}})
    rule = {
        "properties": {
            "protocol": "tcp",
            "sourcePortRange": "*",
            "destinationPortRange": "1433",
            "sourceAddressPrefix": "10.1.1.12",
            "destinationAddressPrefix": "*",
            "action": "allow",
            "priority": "100",
            "type": "inbound",
            "logging": "Enabled",
        }
    }
    created, doc = empty.put("/accessControlLists/web/aclRules/sql", rule)
    assert created
    props = doc["properties"]
    assert (props["protocol"], props["action"], props["type"], props["priority"]) == (
        "TCP",
        "Allow",
        "Inbound",
        100,
    )
    assert props["sourceAddressPrefix"] == "10.1.1.12/32"
    assert empty.get("/accessControlLists/web")["properties"]["aclRules"][0]["resourceId"] == "sql"
    empty.delete("/accessControlLists/web/aclRules/SQL")
    assert empty.get("/accessControlLists/web")["properties"]["aclRules"] == []


def test_logical_network_ip_pools_at_their_own_uri(service: ControllerService) -> None:
    path = "/logicalNetworks/HNVPA/subnets/pa-subnet-1/ipPools/pool9"
    created, pool = service.put(
        path, {"properties": {"startIpAddress": "192.168.1.100", "endIpAddress": "192.168.1.109"}}
    )
    assert created
    assert pool["resourceRef"] == path
    assert service.get(path)["properties"]["usage"]["numberOfIPAddresses"] == 10
    service.delete(path)
    with pytest.raises(ApiError) as info:
        service.get(path)
    assert info.value.status == 404


def test_missing_parent_is_404(empty: ControllerService) -> None:
    with pytest.raises(ApiError) as info:
        empty.put(
            "/virtualNetworks/none/subnets/a", {"properties": {"addressPrefix": "10.0.0.0/24"}}
        )
    assert info.value.status == 404
    assert "/virtualNetworks/none" in info.value.message


def test_get_and_delete_of_missing_are_404(empty: ControllerService) -> None:
    for call in (lambda: empty.get("/servers/none"), lambda: empty.delete("/servers/none")):
        with pytest.raises(ApiError) as info:
            call()
        assert info.value.status == 404
    with pytest.raises(ApiError) as info:
        empty.get("/noSuchCollection")
    assert info.value.status == 404


def test_resource_id_must_match_the_path(empty: ControllerService) -> None:
    refused(
        empty,
        "/credentials/a",
        {"resourceId": "b", "properties": {"type": "X509Certificate"}},
        400,
        "resourceId",
    )
    created, doc = empty.put(
        "/credentials/A", {"resourceId": "a", "properties": {"type": "X509Certificate"}}
    )
    assert created
    assert doc["resourceId"] == "a"


def test_unknown_properties_round_trip_and_read_only_are_ignored(empty: ControllerService) -> None:
    _, doc = empty.put(
        "/credentials/c",
        {
            "properties": {
                "type": "X509Certificate",
                "value": "thumb",
                "vendorNote": {"x": [1, 2]},
                "provisioningState": "Failed",
            }
        },
    )
    assert doc["properties"]["vendorNote"] == {"x": [1, 2]}
    assert doc["properties"]["provisioningState"] == "Succeeded"
    assert doc["properties"]["value"] == "thumb"


def test_secret_values_are_write_only(service: ControllerService) -> None:
    doc = service.get("/credentials/hostcred")
    assert "value" not in doc["properties"]
    service.put("/credentials/hostcred", doc)
    stored = service.state.top(parse_path("/credentials/hostcred"))
    assert stored is not None
    assert stored["properties"]["value"] == "change-me"


# --- validation: virtual networks and VSIDs ----------------------------------


def test_vsid_range_and_duplicates(service: ControllerService) -> None:
    refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.0/24", 4095)),
        400,
        "virtualSubnetId",
    )
    refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.0/24", 2**24 - 1)),
        400,
        "virtualSubnetId",
    )
    err = refused(
        service, "/virtualNetworks/v", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", 5001)), 409, "5001"
    )
    assert "properties.subnets[0].properties.virtualSubnetId" in err.message
    assert SUBNET in err.message
    refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.0/24", 7000), ("b", "10.2.2.0/24", 7000)),
        409,
        "7000",
    )


def test_vsid_is_allocated_and_fixed_after_creation(service: ControllerService) -> None:
    _, doc = service.put(
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None), ("b", "10.2.2.0/24", None)),
    )
    vsids = [s["properties"]["virtualSubnetId"] for s in doc["properties"]["subnets"]]
    assert len(set(vsids)) == 2
    assert all(4096 <= v <= 2**24 - 2 for v in vsids)
    assert not {5001, 6001} & set(vsids)
    refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.0/24", 9999)),
        409,
        "cannot change",
    )
    _, again = service.put("/virtualNetworks/v", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None)))
    assert again["properties"]["subnets"][0]["properties"]["virtualSubnetId"] == vsids[0]


def test_freed_vsid_is_not_handed_out_again(empty: ControllerService) -> None:
    _, doc = empty.put("/virtualNetworks/v", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None)))
    first = doc["properties"]["subnets"][0]["properties"]["virtualSubnetId"]
    empty.delete("/virtualNetworks/v")
    _, doc = empty.put("/virtualNetworks/w", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None)))
    assert doc["properties"]["subnets"][0]["properties"]["virtualSubnetId"] != first


def test_subnet_outside_space_or_overlapping(service: ControllerService) -> None:
    refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.3.1.0/24", None)),
        400,
        "outside the address space",
    )
    err = refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None), ("b", "10.2.1.128/25", None)),
        400,
        "overlaps sibling subnet a",
    )
    assert err.message.startswith("properties.subnets[1].properties.addressPrefix")
    refused(
        service,
        "/virtualNetworks/v",
        vnet("10.2.0.0/16", ("a", "10.2.1.5/24", None)),
        400,
        "host bits",
    )


def test_overlapping_customer_space_across_vnets_is_allowed(service: ControllerService) -> None:
    service.put("/virtualNetworks/Third", vnet("10.1.1.0/24", ("subnet1", "10.1.1.0/24", None)))
    service.put(
        "/networkInterfaces/third",
        nic("10.1.1.11", "001DD8079999", "/virtualNetworks/Third/subnets/subnet1"),
    )


def test_vnet_logical_network_must_be_the_provider_network(service: ControllerService) -> None:
    plain: dict[str, Any] = {"properties": {"subnets": []}}
    service.put("/logicalNetworks/plain", plain)
    body = vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None))
    body["properties"]["logicalNetwork"] = {"resourceRef": "/logicalNetworks/plain"}
    refused(service, "/virtualNetworks/v", body, 400, "properties.logicalNetwork", "not an HNV")
    service.put("/logicalNetworks/pa2", {"properties": {"networkVirtualizationEnabled": True}})
    body["properties"]["logicalNetwork"] = {"resourceRef": "/logicalNetworks/pa2"}
    service.put("/virtualNetworks/v", body)
    refused(service, "/logicalNetworks/pa2", plain, 409, "/virtualNetworks/v")


def test_subnet_prefix_change_must_keep_its_nics(service: ControllerService) -> None:
    body = vnet("10.1.1.0/24", ("subnet1", "10.1.1.0/29", None))
    body["properties"]["logicalNetwork"] = {"resourceRef": "/logicalNetworks/HNVPA"}
    refused(service, "/virtualNetworks/Contoso", body, 409, "10.1.1.11", "Contoso-SQL")


# --- validation: NICs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.1.2.5", "outside subnet 10.1.1.0/24"),
        ("10.1.1.0", "network address"),
        ("10.1.1.255", "broadcast address"),
        ("10.1.1.1", "distributed router"),
        ("10.1.1.300", "not an IP address"),
    ],
)
def test_nic_address_rules(service: ControllerService, ip: str, reason: str) -> None:
    err = refused(service, "/networkInterfaces/n", nic(ip, "001DD8079999"), 400, reason)
    assert err.message.startswith("properties.ipConfigurations[0].properties.privateIPAddress")


def test_nic_address_used_in_the_vnet(service: ControllerService) -> None:
    refused(service, "/networkInterfaces/n", nic("10.1.1.11", "001DD8079999"), 409, "Contoso-SQL")
    body = nic("10.1.1.50", "001DD8079999")
    body["properties"]["ipConfigurations"].append(
        {
            "resourceId": "ipconfig2",
            "properties": {"privateIPAddress": "10.1.1.50", "subnet": {"resourceRef": SUBNET}},
        }
    )
    refused(service, "/networkInterfaces/n", body, 400, "ipConfigurations[0]")


def test_nic_macs(service: ControllerService) -> None:
    refused(
        service, "/networkInterfaces/n", nic("10.1.1.50", "001DD80710"), 400, "privateMacAddress"
    )
    refused(service, "/networkInterfaces/n", nic("10.1.1.50", "011DD8071011"), 400, "multicast")
    refused(
        service, "/networkInterfaces/n", nic("10.1.1.50", "00-1d-d8-07-10-11"), 409, "Contoso-SQL"
    )
    refused(
        service, "/networkInterfaces/n", nic("10.1.1.50", "401DD8B71C06"), 400, "distributed router"
    )
    refused(
        service,
        "/networkInterfaces/n",
        nic("10.1.1.50", privateMacAllocationMethod="Static"),
        400,
        "required",
    )
    _, doc = service.put("/networkInterfaces/n", nic("10.1.1.50", "00:1d:d8:07:99:99"))
    assert doc["properties"]["privateMacAddress"] == "001DD8079999"


def test_dynamic_macs_come_from_the_pool_and_stay(empty: ControllerService) -> None:
    empty.put("/virtualNetworks/v", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None)))
    sub = "/virtualNetworks/v/subnets/a"
    refused(empty, "/networkInterfaces/n1", nic("10.2.1.10", subnet=sub), 409, "no macPool")
    empty.put(
        "/macPools/p",
        {
            "properties": {
                "startMacAddress": "00-1D-D8-00-00-00",
                "endMacAddress": "00-1D-D8-00-00-01",
            }
        },
    )
    _, one = empty.put("/networkInterfaces/n1", nic("10.2.1.10", subnet=sub))
    _, two = empty.put("/networkInterfaces/n2", nic("10.2.1.11", subnet=sub))
    macs = {one["properties"]["privateMacAddress"], two["properties"]["privateMacAddress"]}
    assert macs == {"001DD8000000", "001DD8000001"}
    assert one["properties"]["privateMacAllocationMethod"] == "Dynamic"
    refused(empty, "/networkInterfaces/n3", nic("10.2.1.12", subnet=sub), 409, "exhausted")
    _, again = empty.put(
        "/networkInterfaces/n1", nic("10.2.1.10", subnet=sub, privateMacAllocationMethod="Dynamic")
    )
    assert again["properties"]["privateMacAddress"] == one["properties"]["privateMacAddress"]
    usage = empty.get("/macPools/p")["properties"]["usage"]
    assert usage == {"numberOfMacAddresses": 2, "numberofMacAddressesAllocated": 2}


def test_dynamic_customer_address(service: ControllerService) -> None:
    body = nic("10.1.1.2", "001DD8079999")
    del body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
    _, doc = service.put("/networkInterfaces/n", body)
    config = doc["properties"]["ipConfigurations"][0]["properties"]
    assert config["privateIPAddress"] == "10.1.1.2"
    assert config["privateIPAllocationMethod"] == "Dynamic"


def test_nic_in_one_subnet_only(service: ControllerService) -> None:
    body = nic("10.1.1.50", "001DD8079999")
    body["properties"]["ipConfigurations"].append(
        {
            "resourceId": "ipconfig2",
            "properties": {
                "privateIPAddress": "10.1.1.51",
                "subnet": {"resourceRef": "/virtualNetworks/Fabrikam/subnets/subnet1"},
            },
        }
    )
    refused(service, "/networkInterfaces/n", body, 400, "ipConfigurations[1].properties.subnet")


# --- validation: references, enums, ACLs ------------------------------------


def test_missing_references_are_400(service: ControllerService) -> None:
    refused(
        service,
        "/networkInterfaces/n",
        nic("10.1.1.50", "001DD8079999", "/virtualNetworks/Contoso/subnets/none"),
        400,
        "subnet",
        "does not exist",
    )
    refused(
        service,
        "/networkInterfaces/n",
        nic("10.1.1.50", "001DD8079999", server={"resourceRef": "/servers/none"}),
        400,
        "properties.server",
    )
    refused(
        service,
        "/networkInterfaces/n",
        nic("10.1.1.50", "001DD8079999", "/servers/host1"),
        400,
        "properties.subnet",
    )
    body = vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None))
    body["properties"]["subnets"][0]["properties"]["accessControlList"] = {
        "resourceRef": "/accessControlLists/none"
    }
    refused(service, "/virtualNetworks/v", body, 400, "accessControlList")
    refused(
        service,
        "/servers/h",
        {
            "properties": {
                "connections": [
                    {
                        "managementAddresses": ["10.0.0.9"],
                        "credential": {"resourceRef": "/credentials/x"},
                    }
                ]
            }
        },
        400,
        "properties.connections[0].credential",
    )


def test_references_are_stored_in_canonical_casing(service: ControllerService) -> None:
    _, doc = service.put(
        "/networkInterfaces/n",
        nic("10.1.1.50", "001DD8079999", "/VIRTUALNETWORKS/contoso/SUBNETS/Subnet1"),
    )
    assert doc["properties"]["ipConfigurations"][0]["properties"]["subnet"]["resourceRef"] == SUBNET


ACL_RULE = {"protocol": "TCP", "action": "Allow", "priority": "100", "type": "Inbound"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("protocol", "GRE"),
        ("action", "Permit"),
        ("type", "Both"),
        ("priority", "99"),
        ("priority", "65001"),
        ("priority", "high"),
        ("sourcePortRange", "70000"),
        ("destinationPortRange", "90-80"),
        ("sourceAddressPrefix", "10.0.0.0/33"),
        ("destinationAddressPrefix", "Intranet"),
        ("logging", "Maybe"),
    ],
)
def test_acl_rule_enums_and_ranges(empty: ControllerService, field: str, value: str) -> None:
    body = {
        "properties": {"aclRules": [{"resourceId": "r", "properties": ACL_RULE | {field: value}}]}
    }
    err = refused(empty, "/accessControlLists/a", body, 400, value)
    assert err.message.startswith(f"properties.aclRules[0].properties.{field}")


def test_acl_rule_missing_field_and_duplicate_priority(empty: ControllerService) -> None:
    rule = {k: v for k, v in ACL_RULE.items() if k != "action"}
    refused(
        empty,
        "/accessControlLists/a",
        {"properties": {"aclRules": [{"resourceId": "r", "properties": rule}]}},
        400,
        "action: is required",
    )
    two = [
        {"resourceId": "r1", "properties": ACL_RULE},
        {"resourceId": "r2", "properties": ACL_RULE},
    ]
    refused(empty, "/accessControlLists/a", {"properties": {"aclRules": two}}, 400, "priority 100")
    dupe = [
        {"resourceId": "r1", "properties": ACL_RULE},
        {"resourceId": "R1", "properties": ACL_RULE | {"priority": 200}},
    ]
    refused(
        empty, "/accessControlLists/a", {"properties": {"aclRules": dupe}}, 400, "appears twice"
    )


def test_acl_back_references_and_delete_in_use(service: ControllerService) -> None:
    service.put(
        "/accessControlLists/acl",
        {"properties": {"aclRules": [{"resourceId": "r", "properties": ACL_RULE}]}},
    )
    body = json.loads((FIGURE8 / "06-virtualNetworks-Contoso.json").read_text())
    body["properties"]["subnets"][0]["properties"]["accessControlList"] = {
        "resourceRef": "/accessControlLists/ACL"
    }
    service.put("/virtualNetworks/Contoso", body)
    body = nic("10.1.1.50", "001DD8079999")
    body["properties"]["ipConfigurations"][0]["properties"]["accessControlList"] = {
        "resourceRef": "/accessControlLists/acl"
    }
    service.put("/networkInterfaces/n", body)
    props = service.get("/accessControlLists/acl")["properties"]
    assert props["subnets"] == [{"resourceRef": SUBNET}]
    assert props["ipConfigurations"] == [
        {"resourceRef": "/networkInterfaces/n/ipConfigurations/ipconfig1"}
    ]
    with pytest.raises(ApiError) as info:
        service.delete("/accessControlLists/acl")
    assert info.value.status == 409
    assert "still referenced" in info.value.message


@pytest.mark.parametrize(
    ("path", "referrer"),
    [
        ("/servers/host1", "/networkInterfaces/Contoso-SQL"),
        ("/credentials/hostcred", "/servers/host1"),
        ("/logicalNetworks/HNVPA", "/virtualNetworks/Contoso"),
        ("/logicalNetworks/HNVPA/subnets/pa-subnet-2", "/servers/host2"),
        ("/virtualNetworks/Contoso", "/networkInterfaces/Contoso-SQL"),
        (SUBNET, "/networkInterfaces/Contoso-SQL"),
    ],
)
def test_delete_still_referenced_is_409(
    service: ControllerService, path: str, referrer: str
) -> None:
    before = service.snapshot()
    with pytest.raises(ApiError) as info:
        service.delete(path)
    assert info.value.status == 409
    assert referrer in info.value.message
    assert service.snapshot() == before


def test_delete_in_dependency_order(service: ControllerService) -> None:
    for path, _ in reversed(figure8_requests()):
        service.delete(path)
    assert all(not v for k, v in service.snapshot().items() if k != "virtualNetworkManager")


def test_singleton(empty: ControllerService) -> None:
    doc = empty.get("/virtualNetworkManager/configuration")
    assert doc["properties"]["networkVirtualizationProtocol"] == "Vxlan"
    assert doc["properties"]["distributedRouterMacAddress"] == "401DD8B71C06"
    _, doc = empty.put(
        "/virtualNetworkManager/Configuration",
        {"properties": {"networkVirtualizationProtocol": "nvgre"}},
    )
    assert doc["properties"]["networkVirtualizationProtocol"] == "Nvgre"
    refused(
        empty,
        "/virtualNetworkManager/configuration",
        {"properties": {"networkVirtualizationProtocol": "Geneve"}},
        400,
        "Geneve",
    )
    with pytest.raises(ApiError) as info:
        empty.put("/virtualNetworkManager/other", {"properties": {}})
    assert info.value.status == 404
    with pytest.raises(ApiError) as info:
        empty.delete("/virtualNetworkManager/configuration")
    assert info.value.status == 409


# --- servers and provider addresses -----------------------------------------


def server(*subnets: str, nics: int = 1) -> dict[str, Any]:
    return {
        "properties": {
            "connections": [{"managementAddresses": ["10.0.0.9"]}],
            "networkInterfaces": [
                {
                    "resourceId": f"pnic{i}",
                    "properties": {"logicalSubnets": [{"resourceRef": s} for s in subnets]},
                }
                for i in range(nics)
            ],
        }
    }


PA1 = "/logicalNetworks/HNVPA/subnets/pa-subnet-1"


def test_one_pa_per_team_member_and_exhaustion(service: ControllerService) -> None:
    _, doc = service.put("/servers/host3", server(PA1, nics=2))
    assert [p["address"] for p in doc["properties"]["providerAddresses"]] == [
        "192.168.1.11",
        "192.168.1.12",
    ]
    _, same = service.put("/servers/host3", server(PA1, nics=2))
    assert same["etag"] == doc["etag"]
    service.put("/servers/big", server(PA1, nics=7))
    refused(service, "/servers/more", server(PA1), 409, "no free provider address")


def test_several_provider_subnets_on_one_nic_get_a_pa_each(service: ControllerService) -> None:
    """SDN Express's Add-SDNExpressVirtualNetworkPASubnet appends a PA subnet to a
    server's first NIC: one PA per provider subnet, with that subnet's VLAN and gateway."""
    pa2 = "/logicalNetworks/HNVPA/subnets/pa-subnet-2"
    _, doc = service.put("/servers/h", server(PA1, pa2, PA1))
    pas = doc["properties"]["providerAddresses"]
    assert [(p["logicalSubnet"]["resourceRef"], p["vlanID"]) for p in pas] == [
        (PA1, 11),
        (pa2, 12),
    ]
    assert {p["networkInterface"]["resourceRef"] for p in pas} == {
        "/servers/h/networkInterfaces/pnic0"
    }
    _, again = service.put("/servers/h", server(pa2, PA1))
    assert {p["address"] for p in again["properties"]["providerAddresses"]} == {
        p["address"] for p in pas
    }


def test_pa_rules(service: ControllerService) -> None:
    service.put(
        "/logicalNetworks/mgmt",
        {
            "properties": {
                "subnets": [{"resourceId": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]
            }
        },
    )
    _, doc = service.put("/servers/h", server("/logicalNetworks/mgmt/subnets/s"))
    assert doc["properties"]["providerAddresses"] == []
    body = json.loads((FIGURE8 / "02-logicalNetworks-HNVPA.json").read_text())
    body["properties"]["networkVirtualizationEnabled"] = False
    refused(service, "/logicalNetworks/HNVPA", body, 409, "192.168.1.10")
    body = json.loads((FIGURE8 / "02-logicalNetworks-HNVPA.json").read_text())
    body["properties"]["subnets"][0]["properties"]["ipPools"][0]["properties"]["startIpAddress"] = (
        "192.168.1.11"
    )
    refused(service, "/logicalNetworks/HNVPA", body, 409, "no longer contain")
    body["properties"]["subnets"][0]["properties"]["ipPools"] = []
    refused(service, "/logicalNetworks/HNVPA", body, 409, "no longer contain")
    mgmt = {
        "properties": {
            "networkVirtualizationEnabled": True,
            "subnets": [{"resourceId": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}],
        }
    }
    refused(service, "/logicalNetworks/mgmt", mgmt, 409, "/servers/h")


def test_deleting_a_server_nic_frees_its_pa(service: ControllerService) -> None:
    service.put("/servers/host3", server(PA1, nics=2))
    service.delete("/servers/host3/networkInterfaces/pnic1")
    pas = service.get("/servers/host3")["properties"]["providerAddresses"]
    assert [p["address"] for p in pas] == ["192.168.1.11"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"addressPrefix": "192.168.1.0/25", "_index": 1},
            ("subnets[1]", "overlaps subnet pa-subnet-1"),
        ),
        ({"defaultGateways": ["10.0.0.1"]}, ("defaultGateways[0]", "outside")),
        ({"vlanID": "4095"}, ("vlanID",)),
        (
            {
                "ipPools": [
                    {
                        "resourceId": "p",
                        "properties": {
                            "startIpAddress": "192.168.1.20",
                            "endIpAddress": "192.168.1.10",
                        },
                    }
                ]
            },
            ("below",),
        ),
        (
            {
                "ipPools": [
                    {
                        "resourceId": "p",
                        "properties": {
                            "startIpAddress": "192.168.1.0",
                            "endIpAddress": "192.168.1.10",
                        },
                    }
                ]
            },
            ("not a usable",),
        ),
        (
            {
                "ipPools": [
                    {
                        "resourceId": "p",
                        "properties": {
                            "startIpAddress": "192.168.1.1",
                            "endIpAddress": "192.168.1.10",
                        },
                    }
                ]
            },
            ("gateway",),
        ),
    ],
)
def test_logical_network_rules(
    empty: ControllerService, change: dict[str, Any], words: tuple[str, ...]
) -> None:
    body = json.loads((FIGURE8 / "02-logicalNetworks-HNVPA.json").read_text())
    index = change.pop("_index", 0)
    body["properties"]["subnets"][index]["properties"].update(change)
    refused(empty, "/logicalNetworks/HNVPA", body, 400, *words)


def test_mac_pool_rules(empty: ControllerService) -> None:
    refused(
        empty,
        "/macPools/p",
        {
            "properties": {
                "startMacAddress": "00-1D-D8-00-00-10",
                "endMacAddress": "00-1D-D8-00-00-01",
            }
        },
        400,
        "below",
    )
    refused(
        empty,
        "/macPools/p",
        {"properties": {"startMacAddress": "nope", "endMacAddress": "00-1D-D8-00-00-01"}},
        400,
        "startMacAddress",
    )
    empty.put(
        "/macPools/p",
        {"properties": {"startMacAddress": "001DD8000000", "endMacAddress": "001DD80000FF"}},
    )
    assert empty.get("/macPools/p")["properties"]["startMacAddress"] == "00-1D-D8-00-00-00"
    refused(
        empty,
        "/macPools/q",
        {"properties": {"startMacAddress": "001DD8000080", "endMacAddress": "001DD8000180"}},
        409,
        "/macPools/p",
    )


# --- store, restart, provisioning -------------------------------------------


def test_restart_serves_same_state_and_allocations_continue(tmp_path: Path) -> None:
    db = tmp_path / "nc.db"
    first = ControllerService(SqliteStore(db))
    build(first)
    _, doc = first.put("/virtualNetworks/v", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None)))
    vsid = doc["properties"]["subnets"][0]["properties"]["virtualSubnetId"]
    before = first.snapshot()
    first.store.close()
    second = ControllerService(SqliteStore(db))
    assert second.snapshot() == before
    second.delete("/virtualNetworks/v")
    _, doc = second.put("/virtualNetworks/w", vnet("10.2.0.0/16", ("a", "10.2.1.0/24", None)))
    assert doc["properties"]["subnets"][0]["properties"]["virtualSubnetId"] == vsid + 1


def test_set_provisioning_state(service: ControllerService) -> None:
    etag = service.get("/networkInterfaces/Contoso-SQL")["etag"]
    service.set_provisioning_state("/networkinterfaces/contoso-sql", "Updating")
    doc = service.get("/networkInterfaces/Contoso-SQL")
    assert doc["properties"]["provisioningState"] == "Updating"
    assert doc["etag"] == etag
    assert doc["properties"]["ipConfigurations"][0]["properties"]["provisioningState"] == "Updating"
    with pytest.raises(ApiError):
        service.set_provisioning_state("/networkInterfaces/Contoso-SQL", "Bogus")
