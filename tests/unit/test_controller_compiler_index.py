"""The compile index: references resolved once, bad documents reported, never raised."""

from __future__ import annotations

import copy

from openhnv.controller.compiler.index import CompileProblem, Index
from openhnv.testing.snapshots import HOST1_PA, figure8, nic, server, snapshot, subnet, vnet


def test_figure8_is_filed_by_vnet_and_host() -> None:
    index = Index.build(figure8())
    assert index.problems == []
    assert index.encapsulation == "vxlan"
    assert set(index.vnets) == {"Contoso", "Fabrikam"}
    assert index.nics_by_host["host1"] == {
        "/networkinterfaces/contoso-sql",
        "/networkinterfaces/fabrikam-sql",
    }
    assert index.hosts_of_vnet("Contoso") == {"host1", "host2"}
    sql = index.nics["/networkinterfaces/contoso-sql"]
    assert (sql.mac, sql.addresses, sql.provider_address) == (
        "00:1d:d8:07:00:11",
        ("10.1.1.11",),
        "192.168.1.10",
    )


def test_references_are_case_insensitive() -> None:
    snap = figure8()
    web = snap["networkInterfaces"][1]["properties"]
    web["server"] = {"resourceRef": "/Servers/HOST2"}
    web["ipConfigurations"][0]["properties"]["subnet"] = {
        "resourceRef": "/virtualnetworks/contoso/SUBNETS/subnet1"
    }
    index = Index.build(snap)
    assert index.problems == []
    assert index.nics["/networkinterfaces/contoso-web"].server_id == "host2"


def test_duplicate_documents_keep_one_and_are_reported() -> None:
    snap = figure8()
    twin = copy.deepcopy(snap["networkInterfaces"][0])
    twin["properties"]["privateMacAddress"] = "001DD80700FF"
    snap["networkInterfaces"].append(twin)
    index = Index.build(snap)
    assert index.problems == [
        CompileProblem("/networkInterfaces/contoso-sql", "2 documents share this resourceRef")
    ]
    reversed_snap = copy.deepcopy(snap)
    reversed_snap["networkInterfaces"].reverse()
    assert Index.build(reversed_snap).nics == index.nics


def test_ip_configurations_must_share_subnet_and_acl() -> None:
    snap = snapshot(
        servers=[server("host1", [HOST1_PA])],
        vnets=[
            vnet(
                "Contoso",
                ["10.1.0.0/16"],
                [subnet("A", "10.1.1.0/24", 5001), subnet("B", "10.1.2.0/24", 5002)],
            )
        ],
        nics=[
            nic("two", "001DD8070001", [("10.1.1.5", "Contoso/A"), ("10.1.2.5", "Contoso/B")]),
            nic("multi", "001DD8070002", [("10.1.1.6", "Contoso/A"), ("10.1.1.7", "Contoso/A")]),
        ],
    )
    for doc in snap["networkInterfaces"]:
        doc["properties"]["server"] = {"resourceRef": "/servers/host1"}
    index = Index.build(snap)
    assert index.problems == [
        CompileProblem(
            "/networkInterfaces/two",
            "ipConfiguration ipconfig2 is in /virtualNetworks/Contoso/subnets/B, "
            "but the NIC is already in /virtualNetworks/Contoso/subnets/A",
        )
    ]
    assert index.nics["/networkinterfaces/multi"].addresses == ("10.1.1.6", "10.1.1.7")


def test_duplicate_vsids_and_bad_configuration_are_reported() -> None:
    snap = figure8()
    fabrikam = snap["virtualNetworks"][1]["properties"]["subnets"][0]["properties"]
    fabrikam["virtualSubnetId"] = 5001
    snap["virtualNetworkManager"] = [
        {
            "resourceId": "configuration",
            "resourceRef": "/virtualNetworkManager/configuration",
            "properties": {"networkVirtualizationProtocol": "Geneve"},
        }
    ]
    index = Index.build(snap)
    assert [p.resource_ref for p in index.problems] == [
        "/networkInterfaces/fabrikam-sql",
        "/networkInterfaces/fabrikam-web",
        "/virtualNetworkManager/configuration",
        "/virtualNetworks/Fabrikam/subnets/Subnet1",
    ]
    assert index.encapsulation == "vxlan"
    assert "virtualSubnetId 5001 is already /virtualNetworks/Contoso/subnets/Subnet1's" in {
        p.message for p in index.problems
    }


def test_replace_nic_reports_and_then_clears_its_problem() -> None:
    index = Index.build(figure8())
    broken = nic("contoso-sql", "XYZ", [("10.1.1.11", "Contoso/Subnet1")], "host1")
    worse = index.replace_nic("/networkInterfaces/contoso-sql", broken)
    assert "/networkinterfaces/contoso-sql" not in worse.nics
    assert [p.resource_ref for p in worse.problems] == ["/networkInterfaces/contoso-sql"]
    fixed = worse.replace_nic("/networkInterfaces/contoso-sql", figure8()["networkInterfaces"][0])
    assert fixed.problems == []
    assert fixed.nics == index.nics
    assert fixed.nics_by_host == index.nics_by_host


def test_not_a_document_is_reported() -> None:
    snap = figure8()
    snap["servers"].append("host3")  # type: ignore[arg-type]
    snap["servers"].append({"properties": {}})
    index = Index.build(snap)
    assert [(p.resource_ref, p.message) for p in index.problems] == [
        ("/servers", "document without resourceId"),
        ("/servers", "not a document: 'host3'"),
    ]


def test_a_collection_that_is_not_a_list_is_reported() -> None:
    snap: dict[str, object] = dict(figure8())
    snap["accessControlLists"] = None
    snap["servers"] = {"resourceId": "host1"}
    index = Index.build(snap)  # type: ignore[arg-type]
    assert (
        CompileProblem("/servers", "not a list of documents: {'resourceId': 'host1'}")
        in index.problems
    )
    assert index.hosts == {}
    assert index.nics == {}  # their server is gone: each NIC says so
