"""The compiler: which southbound rows each host gets from a northbound snapshot."""

from __future__ import annotations

import copy
import gc
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openhnv.controller.compiler.compile import (
    TABLES,
    Compiler,
    affected_hosts,
    compile_datacenter,
    compile_host,
    diff_keys,
)
from openhnv.controller.compiler.firewall import rule_id
from openhnv.controller.compiler.index import CompileProblem, Index
from openhnv.controller.errors import CompileError
from openhnv.ovsdb.rows import DesiredState, Ref, Row, RowChange, diff
from openhnv.testing.snapshots import (
    CONTOSO_RDID,
    FABRIKAM_RDID,
    HOST1_PA,
    HOST2_PA,
    acl,
    configuration,
    figure8,
    instance_id,
    nic,
    rule,
    server,
    snapshot,
    subnet,
    vnet,
)

VNET_TABLES = (
    "Logical_Switch",
    "Logical_Router",
    "Physical_Locator",
    "Physical_Locator_Set",
    "Ucast_Macs_Remote",
    "Mcast_Macs_Remote",
    "Physical_Port",
    "FW_Rules",
)
CONTOSO_SQL = instance_id("/networkInterfaces/contoso-sql")
FABRIKAM_SQL = instance_id("/networkInterfaces/fabrikam-sql")
HOST1 = instance_id("/servers/host1")
LOC1 = "vxlan_over_ipv4:192.168.1.10"
LOC2 = "vxlan_over_ipv4:192.168.2.20"
ALL = frozenset[str]()


def fw_id(nic_instance: str, layer: str, name: str) -> str:
    """The rule_id formula of docs/southbound.md, written out independently."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{nic_instance}/{layer}/{name}"))


def fw(nic_instance: str, layer: str, name: str, **columns: Any) -> tuple[str, Row]:
    """One FW_Rules row: the columns given, the rest at their 'any' values."""
    key = fw_id(nic_instance, layer, name)
    row: dict[str, Any] = {
        "rule_id": key,
        "vnic_id": nic_instance,
        "acl_layer": layer,
        "rule_name": name,
        "protocols": ALL,
        "src_ip_addresses": ALL,
        "dst_ip_addresses": ALL,
        "src_ip_excluded": ALL,
        "dst_ip_excluded": ALL,
        "src_port": "0-65535",
        "dst_port": "0-65535",
        "rule_state": "enabled",
        "logging_state": "disabled",
    }
    row.update(columns)
    return key, row


def defaults(nic_instance: str, layer: str, space: frozenset[str]) -> dict[str, Row]:
    """The five default rules of DESIGN.md §4, spelled out."""
    d = {"rule_type": "default"}
    return dict(
        [
            fw(
                nic_instance,
                layer,
                "default-allow-vnet-in",
                direction="in",
                action="allow",
                priority=65001,
                src_ip_addresses=space,
                **d,
            ),
            fw(
                nic_instance,
                layer,
                "default-allow-vnet-out",
                direction="out",
                action="allow",
                priority=65002,
                dst_ip_addresses=space,
                **d,
            ),
            fw(
                nic_instance,
                layer,
                "default-allow-internet-out",
                direction="out",
                action="allow",
                priority=65003,
                dst_ip_excluded=space,
                **d,
            ),
            fw(
                nic_instance,
                layer,
                "default-deny-all-in",
                direction="in",
                action="deny",
                priority=65500,
                **d,
            ),
            fw(
                nic_instance,
                layer,
                "default-deny-all-out",
                direction="out",
                action="deny",
                priority=65501,
                **d,
            ),
        ]
    )


def switch(vsid: int, rdid: str, prefix: str, gateway: str, vnet_id: str) -> Row:
    return {
        "name": str(vsid),
        "description": rdid,
        "tunnel_key": vsid,
        "other_config": {
            "address_prefix": prefix,
            "gateway_ip": gateway,
            "virtual_network": vnet_id,
        },
    }


def mapping(vsid: int, mac: str, ip: str, locator: str, kind: str) -> Row:
    return {
        "MAC": mac,
        "ipaddr": ip,
        "logical_switch": Ref("Logical_Switch", str(vsid)),
        "locator": Ref("Physical_Locator", locator),
        "mapping_type": kind,
    }


def port(nic_instance: str, nic_id: str, vsid: int, mac: str, ips: str) -> Row:
    return {
        "name": nic_instance,
        "description": nic_id,
        "vlan_bindings": {0: Ref("Logical_Switch", str(vsid))},
        "other_config": {
            "mac_address": mac,
            "ip_addresses": ips,
            "mac_spoofing": "false",
            "arp_guard": "false",
            "dhcp_guard": "false",
        },
    }


def test_figure8_host1_gets_exactly_these_rows() -> None:
    space = frozenset({"10.1.1.0/24"})
    expected = {
        "Global": {
            "global": {
                "switches": frozenset({Ref("Physical_Switch", "host1")}),
                "other_config": {
                    "distributed_router_mac": "40:1d:d8:b7:1c:06",
                    "encapsulation": "vxlan",
                },
            }
        },
        "Physical_Switch": {
            "host1": {
                "name": "host1",
                "description": HOST1,
                "management_ips": frozenset({"10.0.0.11"}),
                "tunnel_ips": frozenset({"192.168.1.10"}),
                "provider_addresses": frozenset({Ref("Provider_Address", "192.168.1.10")}),
                "ports": frozenset(
                    {Ref("Physical_Port", CONTOSO_SQL), Ref("Physical_Port", FABRIKAM_SQL)}
                ),
            }
        },
        "Provider_Address": {
            "192.168.1.10": {
                "address": "192.168.1.10",
                "prefix_length": 24,
                "vlan": 0,
                "default_gateway": "192.168.1.1",
                "interface": "pnic1",
            }
        },
        "Logical_Switch": {
            "5001": switch(5001, CONTOSO_RDID, "10.1.1.0/24", "10.1.1.1", "Contoso"),
            "6001": switch(6001, FABRIKAM_RDID, "10.1.1.0/24", "10.1.1.1", "Fabrikam"),
        },
        "Logical_Router": {
            "Contoso": {
                "name": "Contoso",
                "description": CONTOSO_RDID,
                "enable_logical_router": True,
                "switch_binding": {"10.1.1.0/24": Ref("Logical_Switch", "5001")},
                "static_routes": {},
                "other_config": {"address_space": "10.1.1.0/24"},
            },
            "Fabrikam": {
                "name": "Fabrikam",
                "description": FABRIKAM_RDID,
                "enable_logical_router": True,
                "switch_binding": {"10.1.1.0/24": Ref("Logical_Switch", "6001")},
                "static_routes": {},
                "other_config": {"address_space": "10.1.1.0/24"},
            },
        },
        "Physical_Locator": {
            LOC1: {"dst_ip": "192.168.1.10", "encapsulation_type": "vxlan_over_ipv4"},
            LOC2: {"dst_ip": "192.168.2.20", "encapsulation_type": "vxlan_over_ipv4"},
        },
        "Physical_Locator_Set": {
            f"ls:{vsid}": {
                "locators": frozenset(
                    {Ref("Physical_Locator", LOC1), Ref("Physical_Locator", LOC2)}
                )
            }
            for vsid in (5001, 6001)
        },
        "Ucast_Macs_Remote": {
            # The same CAs in both tenants, told apart by the VSID.
            "5001/00:1d:d8:07:00:11/10.1.1.11": mapping(
                5001, "00:1d:d8:07:00:11", "10.1.1.11", LOC1, "local"
            ),
            "5001/00:1d:d8:07:00:12/10.1.1.12": mapping(
                5001, "00:1d:d8:07:00:12", "10.1.1.12", LOC2, "remote"
            ),
            "6001/00:1d:d8:07:00:21/10.1.1.11": mapping(
                6001, "00:1d:d8:07:00:21", "10.1.1.11", LOC1, "local"
            ),
            "6001/00:1d:d8:07:00:22/10.1.1.12": mapping(
                6001, "00:1d:d8:07:00:22", "10.1.1.12", LOC2, "remote"
            ),
        },
        "Mcast_Macs_Remote": {
            f"{vsid}/unknown-dst": {
                "MAC": "unknown-dst",
                "logical_switch": Ref("Logical_Switch", str(vsid)),
                "locator_set": Ref("Physical_Locator_Set", f"ls:{vsid}"),
                "ipaddr": "",
            }
            for vsid in (5001, 6001)
        },
        "Physical_Port": {
            CONTOSO_SQL: port(CONTOSO_SQL, "contoso-sql", 5001, "00:1d:d8:07:00:11", "10.1.1.11"),
            FABRIKAM_SQL: port(
                FABRIKAM_SQL, "fabrikam-sql", 6001, "00:1d:d8:07:00:21", "10.1.1.11"
            ),
        },
        "FW_Rules": {**defaults(CONTOSO_SQL, "nic", space), **defaults(FABRIKAM_SQL, "nic", space)},
        "Gateway_Compartment": {},  # not a gateway host
        "Gateway_Connection": {},
    }
    assert compile_host(figure8(), "host1") == expected


def test_figure8_host2_mirrors_host1() -> None:
    compiled = compile_datacenter(figure8())
    assert compiled.problems == []
    host2 = compiled.hosts["host2"]
    contoso_web = instance_id("/networkInterfaces/contoso-web")
    fabrikam_web = instance_id("/networkInterfaces/fabrikam-web")
    assert host2["Ucast_Macs_Remote"] == {
        "5001/00:1d:d8:07:00:11/10.1.1.11": mapping(
            5001, "00:1d:d8:07:00:11", "10.1.1.11", LOC1, "remote"
        ),
        "5001/00:1d:d8:07:00:12/10.1.1.12": mapping(
            5001, "00:1d:d8:07:00:12", "10.1.1.12", LOC2, "local"
        ),
        "6001/00:1d:d8:07:00:21/10.1.1.11": mapping(
            6001, "00:1d:d8:07:00:21", "10.1.1.11", LOC1, "remote"
        ),
        "6001/00:1d:d8:07:00:22/10.1.1.12": mapping(
            6001, "00:1d:d8:07:00:22", "10.1.1.12", LOC2, "local"
        ),
    }
    assert set(host2["Physical_Port"]) == {contoso_web, fabrikam_web}
    assert set(host2["Provider_Address"]) == {"192.168.2.20"}
    assert host2["Physical_Switch"]["host2"]["tunnel_ips"] == frozenset({"192.168.2.20"})
    assert set(host2["Logical_Switch"]) == {"5001", "6001"}
    assert set(host2["FW_Rules"]) == set(defaults(contoso_web, "nic", ALL)) | set(
        defaults(fabrikam_web, "nic", ALL)
    )


def test_every_state_has_every_table_in_reference_order() -> None:
    state = compile_host(figure8(), "host1")
    assert tuple(state) == TABLES


def test_a_host_without_nics_gets_no_vnet_rows() -> None:
    snap = figure8()
    snap["servers"].append(server("host3", [("192.168.3.30", 24, 7, "192.168.3.1")]))
    state = compile_host(snap, "host3")
    for table in VNET_TABLES:
        assert state[table] == {}, table
    assert state["Provider_Address"]["192.168.3.30"]["vlan"] == 7
    assert state["Physical_Switch"]["host3"]["ports"] == frozenset()


def test_a_nic_without_a_server_is_on_no_host_and_not_a_problem() -> None:
    snap = figure8()
    snap["networkInterfaces"].append(
        nic("contoso-new", "001DD8070099", [("10.1.1.50", "Contoso/Subnet1")])
    )
    compiled = compile_datacenter(snap)
    assert compiled.problems == []
    assert compiled.hosts == compile_datacenter(figure8()).hosts


def two_subnet_snapshot() -> dict[str, list[dict[str, Any]]]:
    return snapshot(
        servers=[server("host1", [HOST1_PA]), server("host2", [HOST2_PA])],
        vnets=[
            vnet(
                "Contoso",
                ["10.1.0.0/16"],
                [subnet("Web", "10.1.1.0/24", 5001), subnet("Db", "10.1.2.0/24", 5002)],
                CONTOSO_RDID,
            )
        ],
        nics=[
            nic("web1", "001DD8070001", [("10.1.1.11", "Contoso/Web")], "host1"),
            nic("db1", "001DD8070002", [("10.1.2.11", "Contoso/Db")], "host2"),
        ],
    )


def test_two_subnets_of_one_vnet_share_a_router_bound_to_both() -> None:
    state = compile_host(two_subnet_snapshot(), "host1")
    assert state["Logical_Router"]["Contoso"]["switch_binding"] == {
        "10.1.1.0/24": Ref("Logical_Switch", "5001"),
        "10.1.2.0/24": Ref("Logical_Switch", "5002"),
    }
    assert state["Logical_Router"]["Contoso"]["other_config"] == {"address_space": "10.1.0.0/16"}
    # Host1 has only a Web NIC, yet gets the Db subnet and its CA so it can route there.
    assert state["Logical_Switch"]["5002"] == switch(
        5002, CONTOSO_RDID, "10.1.2.0/24", "10.1.2.1", "Contoso"
    )
    assert state["Ucast_Macs_Remote"]["5002/00:1d:d8:07:00:02/10.1.2.11"] == mapping(
        5002, "00:1d:d8:07:00:02", "10.1.2.11", LOC2, "remote"
    )
    assert state["Physical_Locator_Set"] == {
        "ls:5001": {"locators": frozenset({Ref("Physical_Locator", LOC1)})},
        "ls:5002": {"locators": frozenset({Ref("Physical_Locator", LOC2)})},
    }


def test_a_subnet_without_nics_is_bound_but_gets_no_replication_set() -> None:
    snap = two_subnet_snapshot()
    snap["networkInterfaces"] = snap["networkInterfaces"][:1]
    state = compile_host(snap, "host1")
    assert set(state["Logical_Switch"]) == {"5001", "5002"}
    assert set(state["Physical_Locator_Set"]) == {"ls:5001"}
    assert set(state["Mcast_Macs_Remote"]) == {"5001/unknown-dst"}
    assert set(state["Physical_Locator"]) == {LOC1}


def acl_snapshot(nic_acl: str | None = "sql-nic") -> dict[str, list[dict[str, Any]]]:
    return snapshot(
        servers=[server("host1", [HOST1_PA])],
        vnets=[
            vnet(
                "Contoso",
                ["10.1.0.0/16"],
                [subnet("Subnet1", "10.1.1.0/24", 5001, acl="subnet-acl")],
                CONTOSO_RDID,
            )
        ],
        nics=[nic("sql", "001DD8070001", [("10.1.1.11", "Contoso/Subnet1")], "host1", acl=nic_acl)],
        acls=[
            acl(
                "subnet-acl",
                [
                    rule("deny-internet-in", "Inbound", "Deny", 200, source="Internet"),
                    rule(
                        "no-outbound-web",
                        "Outbound",
                        "Deny",
                        300,
                        "TCP",
                        destination="Internet",
                        destination_ports="80",
                        logging="Enabled",
                    ),
                ],
            ),
            acl(
                "sql-nic",
                [
                    rule(
                        "allow-sql",
                        "Inbound",
                        "Allow",
                        100,
                        "TCP",
                        "10.1.2.0/24",
                        destination_ports="1433-1433",
                    )
                ],
            ),
        ],
    )


def test_subnet_and_nic_acls_become_two_layers_each_with_defaults() -> None:
    sql = instance_id("/networkInterfaces/sql")
    space = frozenset({"10.1.0.0/16"})
    state = compile_host(acl_snapshot(), "host1")
    expected = {
        **dict(
            [
                fw(
                    sql,
                    "subnet",
                    "deny-internet-in",
                    direction="in",
                    action="deny",
                    priority=200,
                    src_ip_excluded=space,
                    rule_type="user",
                ),
                fw(
                    sql,
                    "subnet",
                    "no-outbound-web",
                    direction="out",
                    action="deny",
                    priority=300,
                    protocols=frozenset({"6"}),
                    dst_ip_excluded=space,
                    dst_port="80-80",
                    rule_type="user",
                    logging_state="enabled",
                ),
                fw(
                    sql,
                    "nic",
                    "allow-sql",
                    direction="in",
                    action="allow",
                    priority=100,
                    protocols=frozenset({"6"}),
                    src_ip_addresses=frozenset({"10.1.2.0/24"}),
                    dst_port="1433-1433",
                    rule_type="user",
                ),
            ]
        ),
        **defaults(sql, "subnet", space),
        **defaults(sql, "nic", space),
    }
    assert state["FW_Rules"] == expected


def test_a_subnet_acl_alone_gives_only_the_subnet_layer() -> None:
    state = compile_host(acl_snapshot(nic_acl=None), "host1")
    assert {row["acl_layer"] for row in state["FW_Rules"].values()} == {"subnet"}
    assert len(state["FW_Rules"]) == 2 + 5


def test_a_nic_with_no_acl_gets_a_nic_layer_of_defaults_only() -> None:
    sql = instance_id("/networkInterfaces/sql")
    snap = acl_snapshot(nic_acl=None)
    del snap["virtualNetworks"][0]["properties"]["subnets"][0]["properties"]["accessControlList"]
    state = compile_host(snap, "host1")
    assert state["FW_Rules"] == defaults(sql, "nic", frozenset({"10.1.0.0/16"}))


def test_nvgre_configuration_gives_nvgre_locators() -> None:
    snap = figure8()
    snap["virtualNetworkManager"] = [configuration("Nvgre")]
    state = compile_host(snap, "host1")
    assert state["Physical_Locator"] == {
        "nvgre_over_ipv4:192.168.1.10": {
            "dst_ip": "192.168.1.10",
            "encapsulation_type": "nvgre_over_ipv4",
        },
        "nvgre_over_ipv4:192.168.2.20": {
            "dst_ip": "192.168.2.20",
            "encapsulation_type": "nvgre_over_ipv4",
        },
    }
    assert state["Global"]["global"]["other_config"] == {
        "distributed_router_mac": "40:1d:d8:b7:1c:06",
        "encapsulation": "nvgre",
    }
    row = state["Ucast_Macs_Remote"]["5001/00:1d:d8:07:00:12/10.1.1.12"]
    assert row["locator"] == Ref("Physical_Locator", "nvgre_over_ipv4:192.168.2.20")


def test_an_explicit_vxlan_configuration_equals_none() -> None:
    snap = figure8()
    snap["virtualNetworkManager"] = [configuration("VXLAN")]
    assert compile_datacenter(snap) == compile_datacenter(figure8())


def test_a_host_with_two_pas_spreads_nics_stably_over_them() -> None:
    pas = [("192.168.1.10", 24, 0, "192.168.1.1"), ("192.168.1.11", 24, 0, "192.168.1.1")]
    nics = [
        nic(f"vm{i}", f"001DD80701{i:02X}", [(f"10.1.1.{20 + i}", "Contoso/Subnet1")], "host1")
        for i in range(16)
    ]
    snap = snapshot(
        servers=[server("host1", pas)],
        vnets=[vnet("Contoso", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 5001)])],
        nics=nics,
    )
    state = compile_host(snap, "host1")
    assert state["Physical_Switch"]["host1"]["tunnel_ips"] == frozenset(
        {"192.168.1.10", "192.168.1.11"}
    )
    used = {row["locator"] for row in state["Ucast_Macs_Remote"].values()}
    assert used == {
        Ref("Physical_Locator", "vxlan_over_ipv4:192.168.1.10"),
        Ref("Physical_Locator", "vxlan_over_ipv4:192.168.1.11"),
    }
    # The PA of a NIC does not depend on the other NICs of the host.
    alone = snapshot(snap["servers"], snap["virtualNetworks"], nics[3:4])
    key = "5001/00:1d:d8:07:01:03/10.1.1.23"
    assert (
        compile_host(alone, "host1")["Ucast_Macs_Remote"][key] == (state["Ucast_Macs_Remote"][key])
    )


def test_broken_references_are_reported_not_raised() -> None:
    snap = figure8()
    snap["networkInterfaces"] += [
        nic("lost", "001DD8070031", [("10.1.1.31", "Contoso/NoSuchSubnet")], "host1"),
        nic("nowhere", "001DD8070032", [("10.1.1.32", "Contoso/Subnet1")], "host9"),
        nic("badmac", "00-1D-XX", [("10.1.1.33", "Contoso/Subnet1")], "host1"),
        nic("outside", "001DD8070034", [("10.9.9.9", "Contoso/Subnet1")], "host1"),
        nic("no-acl", "001DD8070035", [("10.1.1.35", "Contoso/Subnet1")], "host1", acl="gone"),
    ]
    compiled = compile_datacenter(snap)
    assert [(p.resource_ref, p.message) for p in compiled.problems] == [
        (
            "/networkInterfaces/badmac",
            "properties.privateMacAddress must be 12 hex digits, got '00-1D-XX'",
        ),
        (
            "/networkInterfaces/lost",
            "ipConfiguration ipconfig1 subnet "
            "/virtualNetworks/Contoso/subnets/NoSuchSubnet does not exist or was not compiled",
        ),
        ("/networkInterfaces/no-acl", "ACL /accessControlLists/gone does not exist (fail closed)"),
        (
            "/networkInterfaces/nowhere",
            "properties.server refers to /servers/host9, which does not exist",
        ),
        (
            "/networkInterfaces/outside",
            "ipConfiguration ipconfig1 privateIPAddress 10.9.9.9 is outside 10.1.1.0/24",
        ),
    ]
    # The good NICs compile as if the broken ones were not there.
    assert compiled.hosts == compile_datacenter(figure8()).hosts


def test_a_broken_acl_keeps_its_nics_out_and_is_reported() -> None:
    snap = acl_snapshot()
    snap["accessControlLists"][1]["properties"]["aclRules"][0]["properties"]["priority"] = 70000
    compiled = compile_datacenter(snap)
    assert compiled.problems == [
        CompileProblem(
            "/accessControlLists/sql-nic",
            "aclRule allow-sql: priority must be 100..65000, got 70000",
        ),
        CompileProblem(
            "/networkInterfaces/sql",
            "ACL /accessControlLists/sql-nic could not be compiled (fail closed)",
        ),
    ]
    assert compiled.hosts["host1"]["Physical_Port"] == {}
    assert compiled.hosts["host1"]["FW_Rules"] == {}


def test_broken_vnet_and_subnet_documents_are_reported() -> None:
    snap = figure8()
    del snap["virtualNetworks"][1]["properties"]["routingDomainId"]
    contoso_subnet = snap["virtualNetworks"][0]["properties"]["subnets"][0]["properties"]
    contoso_subnet["virtualSubnetId"] = 12
    compiled = compile_datacenter(snap)
    messages = {(p.resource_ref, p.message.split(" (")[0]) for p in compiled.problems}
    assert (
        "/virtualNetworks/Fabrikam",
        "properties.routingDomainId is missing or not a string: None",
    ) in messages
    assert (
        "/virtualNetworks/Contoso/subnets/Subnet1",
        "virtualSubnetId 12 is outside 4096..16777214",
    ) in messages
    assert {p.resource_ref for p in compiled.problems} >= {
        f"/networkInterfaces/{n}" for n in ("contoso-sql", "contoso-web", "fabrikam-sql")
    }
    for state in compiled.hosts.values():
        assert state["Logical_Switch"] == {}


def test_an_unknown_server_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="'host9' is not in the snapshot"):
        compile_host(figure8(), "host9")


def move(snap: dict[str, list[dict[str, Any]]], nic_id: str, host: str) -> dict[str, Any]:
    """``snap`` with NIC ``nic_id`` moved to ``host``; returns the new NIC document."""
    for i, doc in enumerate(snap["networkInterfaces"]):
        if doc["resourceId"] == nic_id:
            moved = copy.deepcopy(doc)
            moved["properties"]["server"] = {"resourceRef": f"/servers/{host}"}
            snap["networkInterfaces"][i] = moved
            return moved
    raise AssertionError(nic_id)


def by_row(changes: list[RowChange]) -> list[RowChange]:
    """Changes in a canonical order: the order among rows of one table is free."""
    rank = {"insert": 0, "update": 1, "delete": 2}
    return sorted(changes, key=lambda c: (rank[c.op], c.table, c.key))


def three_host_snapshot() -> dict[str, list[dict[str, Any]]]:
    snap = figure8()
    snap["servers"] += [
        server("host3", [("192.168.3.30", 24, 0, "")]),
        server("host4", [("192.168.4.40", 24, 0, "")]),
    ]
    snap["virtualNetworks"].append(
        vnet("Woodgrove", ["10.5.0.0/16"], [subnet("S", "10.5.1.0/24", 7001)])
    )
    snap["networkInterfaces"].append(
        nic("woodgrove-1", "001DD8070041", [("10.5.1.10", "Woodgrove/S")], "host4")
    )
    return snap


def test_moving_one_nic_touches_only_the_hosts_of_its_vnet() -> None:
    before = three_host_snapshot()
    after = copy.deepcopy(before)
    moved = move(after, "contoso-web", "host3")
    old_index = Index.build(before)
    compiler = Compiler(old_index)
    compiler.datacenter()
    new_index = old_index.replace_nic(moved["resourceRef"], moved)
    assert new_index.nics == Index.build(after).nics
    hosts = affected_hosts(old_index, new_index, [moved["resourceRef"]])
    assert hosts == {"host1", "host2", "host3"}  # Fabrikam's hosts are among them; host4 not
    update = compiler.update(new_index, [moved["resourceRef"]])
    assert set(update.changes) == hosts
    # Exactly what a full recompile says, host by host.
    full_before = compile_datacenter(before).hosts
    full_after = compile_datacenter(after).hosts
    for host in ("host1", "host2", "host3", "host4"):
        assert by_row(diff(full_before[host], full_after[host])) == by_row(
            update.changes.get(host, [])
        )
    # host1 keeps its Contoso rows; only the web CA's locator changes.
    loc3 = Ref("Physical_Locator", "vxlan_over_ipv4:192.168.3.30")
    assert update.changes["host1"] == [
        RowChange(
            "insert",
            "Physical_Locator",
            "vxlan_over_ipv4:192.168.3.30",
            {"dst_ip": "192.168.3.30", "encapsulation_type": "vxlan_over_ipv4"},
        ),
        RowChange(
            "update",
            "Physical_Locator_Set",
            "ls:5001",
            {"locators": frozenset({Ref("Physical_Locator", LOC1), loc3})},
        ),
        RowChange(
            "update", "Ucast_Macs_Remote", "5001/00:1d:d8:07:00:12/10.1.1.12", {"locator": loc3}
        ),
    ]
    assert update.changes["host3"][0].op == "insert"
    assert update.compiler.datacenter().hosts == full_after


def test_deleting_a_nic_and_changing_an_acl_recompile_the_right_hosts() -> None:
    snap = three_host_snapshot()
    index = Index.build(snap)
    compiler = Compiler(index)
    gone = index.replace_nic("/networkInterfaces/woodgrove-1", None)
    update = compiler.update(gone, ["/networkInterfaces/woodgrove-1"])
    assert set(update.changes) == {"host4"}
    deleted = {(c.table, c.op) for c in update.changes["host4"]}
    assert ("Logical_Router", "delete") in deleted
    assert ("Physical_Port", "delete") in deleted
    assert affected_hosts(index, index, ["/virtualNetworks/Contoso/subnets/Subnet1"]) == {
        "host1",
        "host2",
    }
    assert affected_hosts(index, index, ["/servers/host4"]) == {"host4"}
    assert affected_hosts(index, index, ["/virtualNetworkManager/configuration"]) == {
        "host1",
        "host2",
        "host3",
        "host4",
    }
    assert affected_hosts(index, index, ["/macPools/pool1"]) == set()


def test_a_general_update_matches_a_full_recompile() -> None:
    before = acl_snapshot()
    after = copy.deepcopy(before)
    after["accessControlLists"][1]["properties"]["aclRules"][0]["properties"]["priority"] = 150
    compiler = Compiler(Index.build(before))
    update = compiler.update(Index.build(after), ["/accessControlLists/sql-nic"])
    assert set(update.changes) == {"host1"}
    assert update.states["host1"] == compile_host(after, "host1")
    (change,) = update.changes["host1"]
    assert change.op == "update"
    assert change.columns == {"priority": 150}


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_compile_is_deterministic_and_ignores_list_order(rnd: Any) -> None:
    snap = three_host_snapshot()
    snap["virtualNetworks"].append(two_subnet_snapshot()["virtualNetworks"][0])
    snap["virtualNetworks"][-1]["resourceId"] = "Contoso2"
    snap["virtualNetworks"][-1]["resourceRef"] = "/virtualNetworks/Contoso2"
    for sub in snap["virtualNetworks"][-1]["properties"]["subnets"]:
        sub["resourceRef"] = sub["resourceRef"].replace("Contoso", "Contoso2")
        sub["properties"]["virtualSubnetId"] += 100
    snap["servers"][0]["properties"]["providerAddresses"].append(
        {"address": "192.168.1.11", "prefixLength": 24, "vlanID": 0}
    )
    snap["networkInterfaces"] += [
        nic(
            f"c2-{i}",
            f"001DD80702{i:02X}",
            [(f"10.1.1.{20 + i}", "Contoso2/Web")],
            f"host{1 + i % 4}",
        )
        for i in range(8)
    ]
    expected = compile_datacenter(snap)
    shuffled = copy.deepcopy(snap)
    for docs in shuffled.values():
        rnd.shuffle(docs)
    for doc in shuffled["virtualNetworks"]:
        rnd.shuffle(doc["properties"]["subnets"])
    assert compile_datacenter(shuffled) == expected
    assert compile_datacenter(snap) == expected


NIC_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["contoso-sql", "contoso-web", "fabrikam-sql", "woodgrove-1", "new-1"]),
        st.sampled_from(["host1", "host2", "host3", "host4", None, "delete", "ip", "fabrikam"]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(NIC_CHANGES)
def test_incremental_updates_equal_full_recompiles(changes: list[tuple[str, str | None]]) -> None:
    """Any run of one-NIC changes leaves every host as a full compile would, and each
    update's row changes are exactly the diff between the two full compiles."""
    snap = three_host_snapshot()
    index = Index.build(snap)
    compiler = Compiler(index)
    compiler.datacenter()
    previous = compile_datacenter(snap).hosts
    for nic_id, action in changes:
        docs = {d["resourceId"]: d for d in snap["networkInterfaces"]}
        ref = f"/networkInterfaces/{nic_id}"
        doc: dict[str, Any] | None
        if action == "delete":
            doc = None
            docs.pop(nic_id, None)
        else:
            doc = copy.deepcopy(
                docs.get(nic_id)
                or nic(nic_id, "001DD80700AA", [("10.1.1.99", "Contoso/Subnet1")], "host3")
            )
            if action == "ip":
                config = doc["properties"]["ipConfigurations"][0]["properties"]
                config["privateIPAddress"] = config["privateIPAddress"].rsplit(".", 1)[0] + ".77"
            elif action == "fabrikam":
                config = doc["properties"]["ipConfigurations"][0]["properties"]
                config["privateIPAddress"] = "10.1.1.88"
                config["subnet"] = {"resourceRef": "/virtualNetworks/Fabrikam/subnets/Subnet1"}
            elif action is None:
                doc["properties"].pop("server", None)
            else:
                doc["properties"]["server"] = {"resourceRef": f"/servers/{action}"}
            docs[nic_id] = doc
        snap["networkInterfaces"] = list(docs.values())
        index = index.replace_nic(ref, doc)
        update = compiler.update(index, [ref])
        compiler = update.compiler
        full = compile_datacenter(snap).hosts
        for host in full:
            expected = diff(previous[host], full[host])
            assert by_row(update.changes.get(host, [])) == by_row(expected), host
            if host in update.states:
                assert update.states[host] == full[host]
        assert compiler.datacenter().hosts == full
        assert index.problems == Index.build(snap).problems
        previous = full


@given(st.text(min_size=1, max_size=40), st.sampled_from(["nic", "subnet"]), st.text(max_size=20))
def test_rule_id_is_uuid5_of_nic_layer_and_rule(nic_id: str, layer: str, name: str) -> None:
    assert rule_id(nic_id, layer, name) == fw_id(nic_id, layer, name)


def test_compile_reads_the_snapshot_without_changing_it_or_the_collector() -> None:
    snap = acl_snapshot()
    before = copy.deepcopy(snap)
    assert gc.isenabled()
    compile_datacenter(snap)
    Compiler(Index.build(snap)).update(Index.build(snap), ["/accessControlLists/sql-nic"])
    assert gc.isenabled()
    assert snap == before


def _add_pa(snap: dict[str, list[dict[str, Any]]]) -> str:
    snap["servers"][1]["properties"]["providerAddresses"].append(
        {"address": "192.168.2.21", "prefixLength": 24, "vlanID": 0}
    )
    return "/servers/host2"


def _add_subnet(snap: dict[str, list[dict[str, Any]]]) -> str:
    extra = vnet("Contoso", ["10.1.0.0/16"], [subnet("Db", "10.1.2.0/24", 5002)])
    snap["virtualNetworks"][0]["properties"]["subnets"] += extra["properties"]["subnets"]
    return "/virtualNetworks/Contoso/subnets/Db"


def _nvgre(snap: dict[str, list[dict[str, Any]]]) -> str:
    snap["virtualNetworkManager"] = [configuration("Nvgre")]
    return "/virtualNetworkManager/configuration"


def _drop_server(snap: dict[str, list[dict[str, Any]]]) -> str:
    snap["servers"] = [s for s in snap["servers"] if s["resourceId"] != "host4"]
    return "/servers/host4"


def _new_server(snap: dict[str, list[dict[str, Any]]]) -> str:
    snap["servers"].append(server("host5", [("192.168.5.50", 24, 0, "")]))
    return "/servers/host5"


@pytest.mark.parametrize("change", [_add_pa, _add_subnet, _nvgre, _drop_server, _new_server])
def test_other_changes_update_exactly_the_hosts_that_change(change: Any) -> None:
    before = three_host_snapshot()
    after = copy.deepcopy(before)
    ref = change(after)
    compiler = Compiler(Index.build(before))
    compiler.datacenter()
    update = compiler.update(Index.build(after), [ref])
    full_before = compile_datacenter(before).hosts
    full_after = compile_datacenter(after).hosts
    for host in full_before.keys() | full_after.keys():
        expected = diff(full_before.get(host, {}), full_after.get(host, {}))
        assert by_row(update.changes.get(host, [])) == by_row(expected), host
        if expected:
            assert host in update.changes, host
    assert update.compiler.datacenter().hosts == full_after


def test_diff_keys_is_diff_on_the_changed_keys() -> None:
    shared: Row = {"name": "1"}
    old: DesiredState = {"Logical_Switch": {"1": shared, "2": {"name": "2"}, "3": {"name": "3"}}}
    new: DesiredState = {
        "Logical_Switch": {"1": shared, "2": {"name": "2", "tunnel_key": 2}, "4": {"name": "4"}}
    }
    everything = {"Logical_Switch": {"1", "2", "3", "4"}}
    assert diff_keys(old, new, everything) == diff(old, new)
    assert diff_keys(old, new, {"Logical_Switch": {"4"}}) == [
        RowChange("insert", "Logical_Switch", "4", {"name": "4"})
    ]
    assert diff_keys(old, new, {}) == []


def test_port_guards_and_dns_servers_reach_the_nics_port_row() -> None:
    snap = figure8()
    sql = next(d for d in snap["networkInterfaces"] if d["resourceId"] == "contoso-sql")
    sql["properties"]["portSettings"].update(arpGuardEnabled="Enabled", dhcpGuardEnabled=True)
    sql["properties"]["dnsSettings"] = {"dnsServers": ["10.1.1.53", "192.0.2.53"]}
    ports = compile_host(snap, "host1")["Physical_Port"]
    other: Any = ports[instance_id("/networkInterfaces/contoso-sql")]["other_config"]
    assert (other["arp_guard"], other["dhcp_guard"]) == ("true", "true")
    assert other["dns_servers"] == "10.1.1.53,192.0.2.53"
    fabrikam: Any = ports[instance_id("/networkInterfaces/fabrikam-sql")]["other_config"]
    assert (fabrikam["arp_guard"], fabrikam["dhcp_guard"]) == ("false", "false")
    assert "dns_servers" not in fabrikam  # no dnsSettings: no column value


def test_qos_caps_reach_the_nics_port_row_and_no_cap_writes_nothing() -> None:
    snap = figure8()
    sql = next(d for d in snap["networkInterfaces"] if d["resourceId"] == "contoso-sql")
    sql["properties"]["portSettings"]["qosSettings"] = {
        "outboundMaximumMbps": 50, "inboundMaximumMbps": 0, "outboundReservedValue": 0,
        "enableHardwareLimits": False,
    }  # fmt: skip
    ports = compile_host(snap, "host1")["Physical_Port"]
    other: Any = ports[instance_id("/networkInterfaces/contoso-sql")]["other_config"]
    assert other["qos_outbound_max_mbps"] == "50"
    assert "qos_inbound_max_mbps" not in other  # 0: no cap, no column value
    fabrikam: Any = ports[instance_id("/networkInterfaces/fabrikam-sql")]["other_config"]
    assert not any(k.startswith("qos_") for k in fabrikam)


def test_a_reservation_reaches_the_nics_port_row_beside_its_cap() -> None:
    snap = figure8()
    sql = next(d for d in snap["networkInterfaces"] if d["resourceId"] == "contoso-sql")
    sql["properties"]["portSettings"]["qosSettings"] = {
        "outboundMaximumMbps": 80, "outboundReservedValue": "60",
    }  # fmt: skip
    ports = compile_host(snap, "host1")["Physical_Port"]
    other: Any = ports[instance_id("/networkInterfaces/contoso-sql")]["other_config"]
    assert (other["qos_outbound_max_mbps"], other["qos_outbound_reserved_mbps"]) == ("80", "60")
