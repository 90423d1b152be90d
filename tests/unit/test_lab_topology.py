"""Topology files: the shipped examples load, and every bad input names its key path."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from openhnv.lab.resources import nic_resource
from openhnv.lab.topology import TopologyError, from_document, load, parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def figure8() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / "figure8.yaml").read_text())
    return doc


def test_figure8_is_the_seed_datacenter() -> None:
    topology = load(EXAMPLES / "figure8.yaml")
    assert topology.encapsulation == "vxlan"
    assert [(s.name, str(s.prefix), s.vlan) for s in topology.pa_subnets] == [
        ("pa1", "192.168.1.0/24", 0),
        ("pa2", "192.168.2.0/24", 20),
    ]
    assert [tuple(map(str, s.ip_pool)) for s in topology.pa_subnets] == [
        ("192.168.1.10", "192.168.1.99"),
        ("192.168.2.20", "192.168.2.99"),
    ]
    assert {h.name: (h.pa_subnet, h.uplinks) for h in topology.hosts} == {
        "host1": ("pa1", 2),
        "host2": ("pa2", 2),
    }
    vsids = {n.name: n.subnets[0].vsid for n in topology.virtual_networks}
    assert vsids == {"contoso": 5001, "fabrikam": 6001}
    sql = topology.vm("contoso-sql")
    assert (sql.host, sql.ip) == ("host1", ipaddress.IPv4Address("10.1.1.11"))
    assert topology.vm_subnet(sql).gateway == ipaddress.IPv4Address("10.1.1.1")
    # Both tenants use the same customer addresses.
    assert topology.vm("fabrikam-sql").ip == sql.ip


def test_two_subnets_example_has_an_acl_on_the_back_end() -> None:
    topology = load(EXAMPLES / "two-subnets.yaml")
    assert topology.encapsulation == "nvgre"
    backend = topology.virtual_network("woodgrove").subnet("backend")
    assert backend.acl == "backend-acl"
    allow = topology.acls[0].rules[0]
    assert (allow.protocol, allow.destination_ports, allow.action, allow.type) == (
        "TCP",
        (1433, 1433),
        "Allow",
        "Inbound",
    )
    assert allow.source_ports == (0, 65535)
    assert topology.vm("web2").mac == "00:1d:d8:b7:1c:11"
    assert {vm.host for vm in topology.vms} == {"host1", "host2"}


def _error(doc: object) -> str:
    with pytest.raises(TopologyError) as info:
        from_document(doc)
    return str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("vms", 1, "ip"), "10.1.1.300", "vms[1].ip: 10.1.1.300 is not an IPv4 address"),
        (("vms", 0, "ip"), "10.1.2.5", "vms[0].ip: 10.1.2.5 is outside subnet subnet1"),
        (("vms", 0, "ip"), "10.1.1.1", "vms[0].ip: 10.1.1.1 is reserved"),
        (("vms", 1, "ip"), "10.1.1.11", "vms[1].ip: 10.1.1.11 is already used by VM 'contoso-sql'"),
        (("vms", 2, "host"), "host9", "vms[2].host: no host named 'host9'"),
        (("vms", 2, "subnet"), "nope", "vms[2].subnet: virtual network 'fabrikam' has no subnet"),
        (("vms", 0, "mac"), "01:00:5e:00:00:01", "vms[0].mac: 01:00:5e:00:00:01 is a multicast"),
        (("vms", 0, "mac"), "zz:00", "vms[0].mac: zz:00 is not a MAC address"),
        (("vms", 0, "dhcp"), "yes", "vms[0].dhcp: expected true or false, got 'yes'"),
        (("vms", 0, "dns"), ["10.0.0.x"], "vms[0].dns[0]: '10.0.0.x' is not an IP address"),
        (("vms", 0, "dns"), "10.0.0.53", "vms[0].dns: expected a list"),
        (("vms", 0, "qos"), {"outbound_max_mbps": -1}, "vms[0].qos.outbound_max_mbps: -1 is"),
        (("vms", 0, "qos"), {"inbound_max_mbps": "50"}, "vms[0].qos.inbound_max_mbps: '50' is"),
        (("vms", 0, "qos"), {"outbound": 50}, "vms[0].qos"),
        (("pa_subnets", 1, "vlan"), 4095, "pa_subnets[1].vlan: 4095 is not in 0..4094"),
        (("pa_subnets", 1, "vlan"), "20", "pa_subnets[1].vlan: '20' is not an integer"),
        (("pa_subnets", 0, "gateway"), "192.168.2.1", "pa_subnets[0].gateway: 192.168.2.1 is not"),
        (
            ("pa_subnets", 1, "prefix"),
            "192.168.0.0/22",
            "pa_subnets[1].prefix: 192.168.0.0/22 (pa2) overlaps 192.168.1.0/24 (pa1)",
        ),
        (("pa_subnets", 0, "prefix"), "192.168.1.0", "pa_subnets[0].prefix: 192.168.1.0 is not"),
        (("pa_subnets", 0, "ip_pool"), "192.168.1.1-192.168.1.9", "contains the gateway"),
        (("pa_subnets", 0, "ip_pool"), "192.168.1.9-192.168.1.8", "is not a range of usable"),
        (("pa_subnets", 0, "ip_pool"), "192.168.1.9-192.168.2.8", "is not a range of usable"),
        (("pa_subnets", 0, "ip_pool"), "10.0.0.x", "'10.0.0.x' is not an address range"),
        (
            ("pa_subnets", 0, "ip_pool"),
            "192.168.1.10",
            "pa_subnets[0].ip_pool: 1 addresses for 2 uplinks (hosts host1)",
        ),
        (("hosts", 0, "pa_subnet"), "pa7", "hosts[0].pa_subnet: no PA subnet named 'pa7'"),
        (("hosts", 0, "uplinks"), 0, "hosts[0].uplinks: 0 is not in 1..8"),
        (("hosts", 1, "name"), "host1", "hosts[1].name: 'host1' is used twice"),
        (("encapsulation",), "geneve", "encapsulation: 'geneve' is not one of vxlan, nvgre"),
        (("name",), "Fig-8", "name: 'Fig-8' is not a valid name"),
        (
            ("virtual_networks", 1, "subnets", 0, "vsid"),
            5001,
            "virtual_networks[1].subnets[0].vsid: VSID 5001 is already used by contoso/subnet1",
        ),
        (
            ("virtual_networks", 0, "subnets", 0, "vsid"),
            100,
            "virtual_networks[0].subnets[0].vsid: 100 is not in 4096..16777214",
        ),
        (
            ("virtual_networks", 0, "subnets", 0, "prefix"),
            "10.9.0.0/24",
            "virtual_networks[0].subnets[0].prefix: 10.9.0.0/24 is outside the address space",
        ),
        (
            ("virtual_networks", 0, "subnets", 0, "acl"),
            "missing",
            "virtual_networks[0].subnets[0].acl: no ACL named 'missing'",
        ),
    ],
)
def test_bad_value_names_its_key_path(path: tuple[Any, ...], value: object, message: str) -> None:
    doc = figure8()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert message in _error(doc)


def test_a_vm_may_cap_its_nic_with_qos() -> None:
    doc = figure8()
    doc["vms"][0]["qos"] = {"outbound_max_mbps": 50, "inbound_max_mbps": 20}
    topology = from_document(doc)
    first, second = topology.vms[0], topology.vms[1]
    assert (first.qos_outbound_mbps, first.qos_inbound_mbps) == (50, 20)
    assert (second.qos_outbound_mbps, second.qos_inbound_mbps) == (0, 0)
    settings = nic_resource(first).body["properties"]["portSettings"]
    assert settings["qosSettings"] == {"outboundMaximumMbps": 50, "inboundMaximumMbps": 20}
    assert "qosSettings" not in nic_resource(second).body["properties"]["portSettings"]


def test_a_vm_may_reserve_bandwidth_and_a_host_name_its_uplinks_capacity() -> None:
    doc = figure8()
    doc["vms"][0]["qos"] = {"outbound_reserved_mbps": 60}
    doc["hosts"][0]["uplink_mbps"] = 100
    topology = from_document(doc)
    assert topology.vms[0].qos_reserved_mbps == 60
    assert (topology.hosts[0].uplink_mbps, topology.hosts[1].uplink_mbps) == (100, None)
    settings = nic_resource(topology.vms[0]).body["properties"]["portSettings"]
    assert settings["qosSettings"]["outboundReservedValue"] == 60


def test_a_reservation_above_the_vms_cap_is_refused() -> None:
    doc = figure8()
    doc["vms"][0]["qos"] = {"outbound_max_mbps": 50, "outbound_reserved_mbps": 60}
    with pytest.raises(TopologyError, match="outbound_reserved_mbps"):
        from_document(doc)


def test_a_vm_may_take_its_address_by_dhcp_and_name_dns_servers() -> None:
    doc = figure8()
    doc["vms"][0].update(dhcp=True, dns=["10.1.1.53", "192.0.2.53"])
    topology = from_document(doc)
    first, second = topology.vms[0], topology.vms[1]
    assert first.dhcp
    assert [str(a) for a in first.dns_servers] == ["10.1.1.53", "192.0.2.53"]
    assert (second.dhcp, second.dns_servers) == (False, ())
    resource = nic_resource(first)
    assert resource.body["properties"]["dnsSettings"] == {"dnsServers": ["10.1.1.53", "192.0.2.53"]}
    assert "dnsSettings" not in nic_resource(second).body["properties"]


def test_missing_and_unknown_keys() -> None:
    doc = figure8()
    del doc["vms"][3]["ip"]
    assert _error(doc) == "vms[3].ip: missing"
    doc = figure8()
    doc["hosts"][0]["uplink"] = 2
    assert _error(doc).startswith("hosts[0].uplink: unknown key")
    doc = figure8()
    doc["hosts"] = []
    assert _error(doc) == "hosts: must not be empty"
    assert _error([1, 2]) == "topology: expected a mapping, got list"


def test_acl_rule_errors() -> None:
    doc = figure8()
    rule = {
        "name": "r1",
        "protocol": "tcp",
        "source_prefix": "Internet",
        "destination_prefix": "10.1.1.0/24",
        "destination_ports": "1433",
        "action": "allow",
        "priority": 100,
        "type": "inbound",
    }
    doc["acls"] = [{"name": "a", "rules": [rule]}]
    parsed = from_document(doc).acls[0].rules[0]
    assert (parsed.protocol, parsed.source_prefix, parsed.action, parsed.type) == (
        "TCP",
        "Internet",
        "Allow",
        "Inbound",
    )
    for key, value, message in [
        ("priority", 99, "acls[0].rules[0].priority: 99 is not in 100..65000"),
        ("destination_ports", "90-80", "acls[0].rules[0].destination_ports: '90-80' is not"),
        ("destination_ports", "http", "acls[0].rules[0].destination_ports: 'http' is not a port"),
        ("protocol", "SCTP", "acls[0].rules[0].protocol: 'SCTP' is not one of"),
        ("source_prefix", "10.0.0.0/33", "acls[0].rules[0].source_prefix: 10.0.0.0/33 is not"),
        ("type", "Both", "acls[0].rules[0].type: 'Both' is not one of Inbound, Outbound"),
    ]:
        bad = copy.deepcopy(doc)
        bad["acls"][0]["rules"][0][key] = value
        assert message in _error(bad), key


def test_default_pool_is_above_the_gateway_or_below_it() -> None:
    doc = figure8()
    del doc["pa_subnets"][0]["ip_pool"]
    pool = from_document(doc).pa_subnets[0].ip_pool
    assert tuple(map(str, pool)) == ("192.168.1.2", "192.168.1.254")
    doc["pa_subnets"][0]["gateway"] = "192.168.1.254"
    pool = from_document(doc).pa_subnets[0].ip_pool
    assert tuple(map(str, pool)) == ("192.168.1.1", "192.168.1.253")


def test_parse_reports_yaml_syntax_errors() -> None:
    with pytest.raises(TopologyError, match="not valid YAML"):
        parse("name: [unclosed", source="x.yaml")


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read"):
        load(tmp_path / "absent.yaml")


def test_values_are_frozen() -> None:
    topology = load(EXAMPLES / "figure8.yaml")
    with pytest.raises(AttributeError):
        topology.name = "other"  # type: ignore[misc]
    assert hash(topology.vms[0]) == hash(load(EXAMPLES / "figure8.yaml").vms[0])


def test_the_vlan_example_puts_vms_on_a_trunked_logical_network() -> None:
    topology = load(EXAMPLES / "vlan-network.yaml")
    vm = topology.vm("vlanvm1")
    assert (vm.logical_network, vm.subnet, vm.virtual_network, vm.acl) == (
        "tenantvlan",
        "vlan12",
        "",
        "vlan-acl",
    )
    assert topology.edge.external_network("tenantvlan").trunk == "pa"
    assert topology.vm_prefix(vm) == (ipaddress.ip_network("10.50.0.0/24"), None)


def _vlan_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / "vlan-network.yaml").read_text())
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["vms"][0].update(virtual_network="woodgrove"), "vms[0]: give either"),
        (lambda d: d["vms"][0].pop("logical_network"), "vms[0]: give either"),
        (lambda d: d["vms"][0].update(logical_network="nope"), "no external network named"),
        (lambda d: d["vms"][0].update(acl="nope"), "vms[0].acl: no ACL named 'nope'"),
        (lambda d: d["external_networks"][0].pop("trunk"), "is not trunked to PA subnet pa"),
        (lambda d: d["external_networks"][0].update(trunk="x"), "trunk: no PA subnet named 'x'"),
        (lambda d: d["external_networks"][0]["subnets"][0].pop("vlan"), "has no vlan"),
        (lambda d: d["vms"][1].update(ip="10.50.0.10"), "already used by VM 'vlanvm1'"),
        (lambda d: d["vms"][0].update(ip="10.51.0.10"), "no free host address"),
    ],
)
def test_vlan_vm_errors_name_their_key(change: Any, message: str) -> None:
    doc = _vlan_doc()
    change(doc)
    assert message in _error(doc)


def dual_stack() -> dict[str, Any]:
    doc = figure8()
    doc["virtual_networks"][0]["subnets"][0]["prefix6"] = "fd00:1::/64"
    doc["vms"][0]["ip6"] = "fd00:1::11"
    doc["vms"][1]["ip6"] = "fd00:1::12"
    return doc


def test_a_dual_stack_vm_gets_a_second_ip_configuration() -> None:
    topology = from_document(dual_stack())
    sql = topology.vm("contoso-sql")
    assert sql.ip6 == ipaddress.IPv6Address("fd00:1::11")
    assert topology.vm_subnet(sql).gateway6 == ipaddress.IPv6Address("fd00:1::1")
    configs = nic_resource(sql).body["properties"]["ipConfigurations"]
    assert [c["properties"]["privateIPAddress"] for c in configs] == ["10.1.1.11", "fd00:1::11"]
    assert configs[1]["properties"]["privateIPAddressVersion"] == "IPv6"
    assert (
        nic_resource(topology.vm("fabrikam-sql")).body["properties"]["ipConfigurations"][0][
            "properties"
        ]["privateIPAddress"]
        == "10.1.1.11"
    )


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("vms", 0, "ip6"), "fd00:2::11", "vms[0].ip6: fd00:2::11 is outside subnet subnet1"),
        (("vms", 0, "ip6"), "fd00:1::1", "vms[0].ip6: fd00:1::1 is reserved"),
        (("vms", 1, "ip6"), "fd00:1::11", "vms[1].ip6: fd00:1::11 is already used by VM"),
        (("vms", 0, "ip6"), "10.1.1.11", "vms[0].ip6: 10.1.1.11 is not an IPv6 address"),
        (("vms", 2, "ip6"), "fd00:1::13", "vms[2].ip6: subnet subnet1 has no prefix6"),
        (
            ("virtual_networks", 0, "subnets", 0, "prefix6"),
            "10.1.1.0/24",
            "virtual_networks[0].subnets[0].prefix6: 10.1.1.0/24 is not an IPv6 prefix",
        ),
        (
            ("virtual_networks", 0, "subnets", 0, "prefix6"),
            "fd00:1::/127",
            "virtual_networks[0].subnets[0].prefix6: fd00:1::/127 is too small",
        ),
    ],
)
def test_bad_ipv6_values_name_their_key_path(
    path: tuple[Any, ...], value: object, message: str
) -> None:
    doc = dual_stack()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert message in _error(doc)
