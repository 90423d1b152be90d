"""Typed views of southbound rows: the compiler's rows read cleanly; a bad row is a
problem naming table, key and reason, and blocks nothing else."""

from __future__ import annotations

import ipaddress

from openhnv.agent.rows import lowest_usable, read_catalog
from openhnv.ovsdb.rows import Ref
from openhnv.testing import snapshots as nb
from openhnv.testing.snapshots import acl_datacenter
from openhnv.testing.southbound import host_rows, port_of


def test_the_compilers_rows_read_without_problems() -> None:
    rows = host_rows(nb.figure8())
    cat = read_catalog(rows)
    assert cat.problems == []
    assert cat.counts() == {
        "Global": 1,
        "Provider_Address": 1,
        "Logical_Switch": 2,
        "Logical_Router": 2,
        "Physical_Locator": 2,
        "Ucast_Macs_Remote": 4,
        "Mcast_Macs_Remote": 2,
        "Physical_Port": 2,
        "FW_Rules": 10,
    }
    switch = cat.switches["5001"]
    assert (switch.vsid, switch.rdid, switch.gateway_ip) == (5001, nb.CONTOSO_RDID, "10.1.1.1")
    port = cat.ports[port_of(rows, "contoso-sql")]
    assert (port.switch, port.mac, port.ip_addresses) == (
        "5001",
        "00:1d:d8:07:00:11",
        ("10.1.1.11",),
    )
    local = [m for m in cat.macs.values() if m.local]
    assert {m.customer_address for m in local} == {"10.1.1.11"}
    assert cat.global_row is not None
    assert cat.global_row.router_mac == "40:1d:d8:b7:1c:06"


def test_fw_rules_parse_ports_protocols_and_the_internet_tag() -> None:
    rows = host_rows(acl_datacenter(subnet_acl=True))
    cat = read_catalog(rows)
    by_name = {(r.vnic, r.name): r for r in cat.fw_rules.values()}
    web = port_of(rows, "web")
    ssh = by_name[(web, "deny-ssh")]
    assert (ssh.layer, ssh.direction, ssh.allow, ssh.protocols) == (
        "subnet",
        "in",
        False,
        frozenset({6}),
    )
    assert (ssh.src_ports, ssh.dst_ports, ssh.priority) == (None, (22, 22), 100)
    internet = by_name[(web, "default-allow-internet-out")]
    assert internet.dst_prefixes == ()
    assert internet.dst_excluded == (ipaddress.ip_network("10.1.0.0/16"),)


def test_a_malformed_switch_takes_its_dependants_with_it_and_nothing_else() -> None:
    rows = host_rows(nb.figure8())
    rows["Logical_Switch"]["6001"]["tunnel_key"] = 6002
    cat = read_catalog(rows, {"Logical_Switch": {"6001": "uuid-of-6001"}})
    problems = {(p.table, p.key): p for p in cat.problems}
    assert problems[("Logical_Switch", "6001")].uuid == "uuid-of-6001"
    assert "tunnel_key 6002" in problems[("Logical_Switch", "6001")].reason
    assert ("Logical_Router", "Fabrikam") in problems
    assert ("Ucast_Macs_Remote", "6001/00:1d:d8:07:00:21/10.1.1.11") in problems
    assert ("Physical_Port", port_of(rows, "fabrikam-sql")) in problems
    assert "missing or unusable" in problems[("Mcast_Macs_Remote", "6001/unknown-dst")].reason
    assert set(cat.switches) == {"5001"}
    assert "Contoso" in cat.routers
    assert port_of(rows, "contoso-sql") in cat.ports


def test_bad_columns_are_named() -> None:
    rows = host_rows(acl_datacenter())
    web = port_of(rows, "web")
    fw_key = next(k for k, r in rows["FW_Rules"].items() if r["vnic_id"] == web)
    rows["FW_Rules"][fw_key]["src_ip_addresses"] = frozenset({"10.1.1.300/24"})
    rows["Physical_Port"][web]["vlan_bindings"] = {7: Ref("Logical_Switch", "5001")}
    rows["Provider_Address"]["192.168.1.10"]["default_gateway"] = "gateway"
    rows["Logical_Switch"]["5001"]["other_config"] = {
        **rows["Logical_Switch"]["5001"]["other_config"],
        "gateway_ip": "10.1.1.254",
    }
    reasons = {(p.table, p.key): p.reason for p in read_catalog(rows).problems}
    assert "10.1.1.300/24" in reasons[("FW_Rules", fw_key)]
    assert "VLAN 0" in reasons[("Physical_Port", web)]
    assert "default_gateway" in reasons[("Provider_Address", "192.168.1.10")]
    assert "lowest usable" in reasons[("Logical_Switch", "5001")]


def test_a_bound_port_needs_its_mac_and_a_mapping_its_subnet() -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    rows["Physical_Port"][sql]["other_config"] = {"ip_addresses": "10.1.1.11"}
    key = "5001/00:1d:d8:07:00:12/10.1.1.12"
    rows["Ucast_Macs_Remote"][key]["ipaddr"] = "10.9.9.9"
    reasons = {(p.table, p.key): p.reason for p in read_catalog(rows).problems}
    assert "mac_address" in reasons[("Physical_Port", sql)]
    assert "outside" in reasons[("Ucast_Macs_Remote", key)]


def test_lowest_usable() -> None:
    assert lowest_usable(ipaddress.ip_network("10.1.2.0/24")) == "10.1.2.1"
    assert lowest_usable(ipaddress.ip_network("fd00::/64")) == "fd00::1"


def test_a_huge_value_is_named_by_its_column_and_not_repeated_whole() -> None:
    rows = host_rows(nb.figure8())
    key = next(iter(rows["Ucast_Macs_Remote"]))
    rows["Ucast_Macs_Remote"][key]["ipaddr"] = "9" * 100_000
    (problem,) = read_catalog(rows).problems
    assert (problem.table, problem.key) == ("Ucast_Macs_Remote", key)
    assert problem.reason.startswith("ipaddr=")
    assert problem.reason.endswith("characters)")
    assert len(problem.reason) < 400
