"""The agent's planner: VFP state from the compiler's rows, checked by where packets go,
and the difference between two plans (minimal, never a flush)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from openhnv.agent.dhcp import DhcpConfig
from openhnv.agent.planner import (
    EMPTY_PLAN,
    Plan,
    changes,
    engine_rules,
    plan,
    plan_of_engine,
    uplink_name,
)
from openhnv.agent.rows import FwRuleView, read_catalog
from openhnv.ovsdb.rows import Ref
from openhnv.packet.arp import ARP_REPLY
from openhnv.packet.frames import arp_frame, tcp_frame, udp_frame
from openhnv.testing import snapshots as nb
from openhnv.testing.snapshots import acl_datacenter
from openhnv.testing.southbound import ROUTER_MAC, host_rows, port_of
from openhnv.vfp import commands as c
from openhnv.vfp.emits import Deliver, Drop, Emit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.guards import GUARD
from openhnv.vfp.layout import ACL_NIC, ACL_SUBNET, VNET
from openhnv.vfp.policy import Allow, Block, Route
from openhnv.vfp.qos import QosSettings
from openhnv.vfp.spaces import ProviderAddress

SYN = 0x02
SQL_MAC, WEB_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12"


def programmed(p: Plan) -> VfpEngine:
    """An engine programmed with ``p`` (and host1's PA, which the vswitch would add)."""
    engine = VfpEngine()
    engine.programming.apply(
        c.AddProviderAddress(ProviderAddress("192.168.1.10", "02:00:00:00:00:01"))
    )
    for unit in changes(EMPTY_PLAN, p):
        engine.programming.apply_all(unit.commands)
    return engine


def tcp(src: tuple[str, str], dst: tuple[str, str], dst_port: int) -> bytes:
    return tcp_frame(
        src_mac=src[0],
        dst_mac=dst[0],
        src_ip=src[1],
        dst_ip=dst[1],
        src_port=40000,
        dst_port=dst_port,
        flags=SYN,
    )


SQL = (SQL_MAC, "10.1.1.11")
WEB = (WEB_MAC, "10.1.1.12")


def where(engine: VfpEngine, port: str, frame: bytes) -> list[Emit]:
    return [e for e in engine.process(port, frame) if isinstance(e, Deliver | Drop)]


def test_figure8_host1_gets_its_two_ports_the_mappings_and_its_pa() -> None:
    rows = host_rows(nb.figure8())
    p = plan(read_catalog(rows))
    assert p.problems == ()
    sql = port_of(rows, "contoso-sql")
    assert set(p.ports) == {sql, port_of(rows, "fabrikam-sql")}
    port = p.ports[sql]
    assert (port.port.mac, port.port.vsid, port.port.rdid) == (SQL_MAC, 5001, nb.CONTOSO_RDID)
    assert port.port.ip_addresses == ("10.1.1.11",)
    assert list(port.layers) == [ACL_NIC, VNET]  # no subnet ACL: only the NIC defaults
    route = port.layers[VNET].groups["out-v4"].rules["route"]
    assert route.action == Route(ROUTER_MAC)
    assert {(m.rdid, m.customer_address, m.provider_address) for m in p.mappings.values()} == {
        (nb.CONTOSO_RDID, "10.1.1.11", "192.168.1.10"),
        (nb.CONTOSO_RDID, "10.1.1.12", "192.168.2.20"),
        (nb.FABRIKAM_RDID, "10.1.1.11", "192.168.1.10"),
        (nb.FABRIKAM_RDID, "10.1.1.12", "192.168.2.20"),
    }
    (pa,) = p.provider_addresses
    assert (pa.address, pa.prefix_length, pa.vlan_id, pa.gateway, pa.interface) == (
        "192.168.1.10",
        24,
        None,
        "192.168.1.1",
        "up0",
    )
    assert p.arp.gateways == {5001: "10.1.1.1", 6001: "10.1.1.1"}


def test_a_nic_without_its_own_acl_is_governed_by_the_subnet_acl_and_defaults() -> None:
    """The compiler sends only ``subnet`` rules for such a NIC: no empty deny-all NIC layer."""
    rows = host_rows(acl_datacenter(subnet_acl=True))
    p = plan(read_catalog(rows))
    sql, web = port_of(rows, "sql"), port_of(rows, "web")
    assert list(p.ports[web].layers) == [ACL_SUBNET, VNET]
    engine = programmed(p)
    assert where(engine, sql, tcp(SQL, WEB, 80)) == [Deliver(web, tcp(SQL, WEB, 80))]
    assert where(engine, sql, tcp(SQL, WEB, 8080))[0] == Deliver(web, tcp(SQL, WEB, 8080))
    assert where(engine, sql, tcp(SQL, WEB, 22)) == [Drop(web, "acl_deny")]


def test_traffic_must_pass_both_the_nic_and_the_subnet_acl() -> None:
    rows = host_rows(acl_datacenter(subnet_acl=True, web_acl=True, sql_acl=True))
    p = plan(read_catalog(rows))
    sql, web = port_of(rows, "sql"), port_of(rows, "web")
    assert list(p.ports[web].layers) == [ACL_NIC, ACL_SUBNET, VNET]
    engine = programmed(p)
    # subnet allows 80 inbound, web's own ACL denies it
    assert where(engine, sql, tcp(SQL, WEB, 80)) == [Drop(web, "acl_deny")]
    # sql's own ACL allows 443 inbound, the subnet denies it
    assert where(engine, web, tcp(WEB, SQL, 443)) == [Drop(sql, "acl_deny")]
    # both allow (defaults within the VNet)
    assert where(engine, web, tcp(WEB, SQL, 1433)) == [Deliver(sql, tcp(WEB, SQL, 1433))]


def test_a_nic_with_no_acl_anywhere_gets_the_nic_defaults() -> None:
    rows = host_rows(acl_datacenter(subnet_acl=False))
    p = plan(read_catalog(rows))
    sql, web = port_of(rows, "sql"), port_of(rows, "web")
    assert list(p.ports[web].layers) == [ACL_NIC, VNET]
    engine = programmed(p)
    assert where(engine, sql, tcp(SQL, WEB, 22)) == [Deliver(web, tcp(SQL, WEB, 22))]
    rules = p.ports[web].layers[ACL_NIC].groups["in-v4"].rules
    assert rules["default-deny-all-in"].action == Block()
    assert rules["default-allow-vnet-in"].conditions.src_prefixes == (
        ipaddress.ip_network("10.1.0.0/16"),
    )


def test_a_bound_port_without_fw_rules_passes_nothing() -> None:
    rows = host_rows(acl_datacenter(subnet_acl=False))
    rows["FW_Rules"] = {}
    p = plan(read_catalog(rows))
    sql, web = port_of(rows, "sql"), port_of(rows, "web")
    layer = p.ports[web].layers[ACL_NIC]
    assert (layer.layer.default_inbound, layer.layer.default_outbound) == (Block(), Block())
    assert where(programmed(p), sql, tcp(SQL, WEB, 80))[0].reason == "acl_deny"  # type: ignore[union-attr]


def test_identical_plans_need_no_command() -> None:
    p = plan(read_catalog(host_rows(nb.figure8())))
    assert changes(p, plan(read_catalog(host_rows(nb.figure8())))) == []


def test_a_remote_nic_added_elsewhere_is_one_mapping_and_nothing_else() -> None:
    before = nb.figure8()
    after = nb.figure8()
    after["networkInterfaces"].append(
        nb.nic("contoso-app", "001DD8070013", [("10.1.1.13", "Contoso/Subnet1")], "host2")
    )
    units = changes(plan(read_catalog(host_rows(before))), plan(read_catalog(host_rows(after))))
    assert [(u.table, [type(x).__name__ for x in u.commands]) for u in units] == [
        ("Ucast_Macs_Remote", ["AddMapping"])
    ]


def test_an_acl_rule_change_touches_only_that_rule_of_that_port() -> None:
    before = acl_datacenter(subnet_acl=False, web_acl=True)
    after = acl_datacenter(subnet_acl=False, web_acl=True)
    web_acl = next(a for a in after["accessControlLists"] if a["resourceId"] == "web-acl")
    web_acl["properties"]["aclRules"][0]["properties"]["priority"] = 200
    old_rows, new_rows = host_rows(before), host_rows(after)
    units = changes(plan(read_catalog(old_rows)), plan(read_catalog(new_rows)))
    (unit,) = units
    assert unit.key == port_of(new_rows, "web")
    assert [
        (cmd.layer, cmd.group, [r.rule_id for r in cmd.rules])
        for cmd in unit.commands
        if isinstance(cmd, c.AddRules)
    ] == [(ACL_NIC, "in-v4", ["no-http"]), (ACL_NIC, "in-v6", ["no-http"])]
    assert len(unit.commands) == 2


def test_removed_acl_layers_and_ports_are_removed() -> None:
    with_acl = plan(read_catalog(host_rows(acl_datacenter(subnet_acl=True, web_acl=True))))
    rows = host_rows(acl_datacenter(subnet_acl=False, web_acl=True))
    web, sql = port_of(rows, "web"), port_of(rows, "sql")
    del rows["Physical_Port"][sql]
    units = changes(with_acl, plan(read_catalog(rows)))
    cmds = {u.key: u.commands for u in units}
    assert c.RemoveLayer(web, ACL_SUBNET, missing_ok=True) in cmds[web]
    assert cmds[sql] == (c.RemovePort(sql, missing_ok=True),)


def test_an_engine_read_back_equals_its_plan() -> None:
    p = plan(read_catalog(host_rows(acl_datacenter(web_acl=True))))
    assert changes(plan_of_engine(programmed(p)), p) == []


def test_ports_sharing_a_mac_and_conflicting_mappings_are_problems() -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    rows["Physical_Port"]["zz-copy"] = {**rows["Physical_Port"][sql], "name": "zz-copy"}
    key = "5001/00:1d:d8:07:00:99/10.1.1.11"
    rows["Ucast_Macs_Remote"][key] = {
        **rows["Ucast_Macs_Remote"]["5001/00:1d:d8:07:00:11/10.1.1.11"],
        "MAC": "00:1d:d8:07:00:99",
    }
    p = plan(read_catalog(rows))
    assert {(x.table, x.key) for x in p.problems} == {
        ("Physical_Port", "zz-copy"),
        ("Ucast_Macs_Remote", key),
    }
    assert sql in p.ports
    assert "zz-copy" not in p.ports
    assert len(p.mappings) == 4


def test_a_disabled_router_means_no_route_rule_and_no_gateway_answer() -> None:
    rows = host_rows(nb.figure8())
    for router in rows["Logical_Router"].values():
        router["enable_logical_router"] = False
    p = plan(read_catalog(rows))
    port = p.ports[port_of(rows, "contoso-sql")]
    assert list(port.layers[VNET].groups["out-v4"].rules) == ["l2"]
    assert p.arp.gateways == {}


def rule_view(**kw: object) -> FwRuleView:
    base: dict[str, object] = dict(
        key="k",
        vnic="n",
        layer="nic",
        name="r",
        direction="out",
        allow=True,
        protocols=frozenset({1}),
        src_prefixes=(),
        dst_prefixes=(),
        src_excluded=(),
        dst_excluded=(ipaddress.ip_network("10.1.0.0/16"),),
        src_ports=None,
        dst_ports=None,
        priority=65003,
        enabled=True,
    )
    base.update(kw)
    return FwRuleView(**base)  # type: ignore[arg-type]


def test_the_internet_tag_becomes_everything_but_the_vnet_space_in_both_families() -> None:
    (v4, r4), (v6, r6) = engine_rules(rule_view())
    assert (v4, v6) == (4, 6)
    assert r4.conditions.dst_prefixes == (ipaddress.ip_network("0.0.0.0/0"),)
    assert r4.conditions.dst_excluded == (ipaddress.ip_network("10.1.0.0/16"),)
    assert r4.conditions.protocols == frozenset({1})
    assert r6.conditions.dst_prefixes is None  # every IPv6 address is outside a v4 space
    assert r6.conditions.protocols == frozenset({58})  # ICMP means ICMPv6 there
    assert r4.action == Allow()


def test_a_rule_with_ipv4_prefixes_only_is_not_an_ipv6_rule() -> None:
    rules = engine_rules(rule_view(src_prefixes=(ipaddress.ip_network("10.0.0.0/8"),)))
    assert [f for f, _ in rules] == [4]


@pytest.mark.parametrize(
    ("interface", "index", "uplink"),
    [("up3", 0, "up3"), ("pnic1", 5, "up0"), ("pnic2", 0, "up1"), ("team-a", 1, "up1")],
)
def test_uplink_names(interface: str, index: int, uplink: str) -> None:
    assert uplink_name(interface, index) == uplink


def test_a_port_unbound_by_the_controller_is_not_programmed() -> None:
    rows = host_rows(nb.figure8())
    rows["Physical_Port"]["vm-new"] = {"name": "vm-new", "status": {"attached": "true"}}
    p = plan(read_catalog(rows))
    assert "vm-new" not in p.ports
    assert p.problems == ()
    assert rows["Physical_Port"][port_of(rows, "contoso-sql")]["vlan_bindings"] == {
        0: Ref("Logical_Switch", "5001")
    }


def _guarded_rows(arp_guard: str, dhcp_guard: str) -> tuple[dict[str, Any], str]:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    other = dict(rows["Physical_Port"][sql]["other_config"])
    other.update(arp_guard=arp_guard, dhcp_guard=dhcp_guard)
    rows["Physical_Port"][sql] = {**rows["Physical_Port"][sql], "other_config": other}
    return rows, sql


def test_port_guards_become_the_guard_layer_and_go_with_it() -> None:
    rows, sql = _guarded_rows("true", "true")
    guarded = plan(read_catalog(rows))
    engine = programmed(guarded)
    spoof = arp_frame(op=ARP_REPLY, src_mac=SQL_MAC, dst_mac=WEB_MAC, sender_mac=SQL_MAC,
                      sender_ip="10.1.1.12", target_mac=WEB_MAC, target_ip="10.1.1.12")  # fmt: skip
    offer = udp_frame(src_mac=SQL_MAC, dst_mac="ff:ff:ff:ff:ff:ff", src_ip="10.1.1.11",
                      dst_ip="255.255.255.255", src_port=67, dst_port=68, payload=b"o")  # fmt: skip
    assert [e.reason for e in engine.process(sql, spoof) if isinstance(e, Drop)] == ["arp_guard"]
    assert [e.reason for e in engine.process(sql, offer) if isinstance(e, Drop)] == ["dhcp_guard"]
    assert changes(plan_of_engine(engine), guarded) == []  # read back: nothing to do
    off_rows, _ = _guarded_rows("false", "false")
    cmds = [cmd for u in changes(guarded, plan(read_catalog(off_rows))) for cmd in u.commands]
    assert cmds == [c.RemoveLayer(sql, GUARD, missing_ok=True)]


def test_qos_caps_become_the_ports_qos_layer_and_go_with_it() -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    other = dict(rows["Physical_Port"][sql]["other_config"])
    other.update(qos_outbound_max_mbps="1", qos_inbound_max_mbps="2")
    rows["Physical_Port"][sql] = {**rows["Physical_Port"][sql], "other_config": other}
    capped = plan(read_catalog(rows))
    assert capped.ports[sql].port.qos == QosSettings(outbound_max_mbps=1, inbound_max_mbps=2)
    engine = programmed(capped)
    frame = udp_frame(src_mac=SQL_MAC, dst_mac=WEB_MAC, src_ip="10.1.1.11", dst_ip="10.1.1.12",
                      src_port=5000, dst_port=5001, payload=b"x" * 1400)  # fmt: skip
    reasons = {e.reason for _ in range(200) for e in engine.process(sql, frame, 0.0)
               if isinstance(e, Drop)}  # fmt: skip
    assert "qos_outbound" in reasons  # (the rest: no PA route in this engine)
    assert changes(plan_of_engine(engine), capped) == []  # read back: nothing to do
    uncapped = plan(read_catalog(host_rows(nb.figure8())))
    cmds = [cmd for u in changes(capped, uncapped) for cmd in u.commands]
    assert [type(cmd) for cmd in cmds] == [c.AddPort]
    assert cmds[0].qos == QosSettings()  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["-1", "fast", "400001"])
def test_a_qos_cap_that_is_no_count_is_a_row_problem(value: str) -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    other = {**rows["Physical_Port"][sql]["other_config"], "qos_inbound_max_mbps": value}
    rows["Physical_Port"][sql] = {**rows["Physical_Port"][sql], "other_config": other}
    catalog = read_catalog(rows)
    assert any("qos_inbound_max_mbps" in p.reason for p in catalog.problems)


def test_a_reservation_reaches_the_port_without_a_qos_layer() -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    other = {**rows["Physical_Port"][sql]["other_config"], "qos_outbound_reserved_mbps": "60"}
    rows["Physical_Port"][sql] = {**rows["Physical_Port"][sql], "other_config": other}
    reserved = plan(read_catalog(rows))
    assert reserved.ports[sql].port.qos == QosSettings(outbound_reserved_mbps=60)
    engine = programmed(reserved)
    frame = udp_frame(src_mac=SQL_MAC, dst_mac=WEB_MAC, src_ip="10.1.1.11", dst_ip="10.1.1.12",
                      src_port=5000, dst_port=5001, payload=b"x" * 1400)  # fmt: skip
    reasons = {e.reason for _ in range(200) for e in engine.process(sql, frame, 0.0)
               if isinstance(e, Drop)}  # fmt: skip
    assert "qos_outbound" not in reasons  # a minimum is no policer: the uplink's htb gives it
    assert changes(plan_of_engine(engine), reserved) == []


def test_a_reservation_above_the_cap_is_a_row_problem() -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    other = {**rows["Physical_Port"][sql]["other_config"],
             "qos_outbound_max_mbps": "50", "qos_outbound_reserved_mbps": "60"}  # fmt: skip
    rows["Physical_Port"][sql] = {**rows["Physical_Port"][sql], "other_config": other}
    catalog = read_catalog(rows)
    assert any("qos_outbound_reserved_mbps" in p.reason for p in catalog.problems)


def test_a_bound_port_gets_its_dhcp_answers_from_its_rows() -> None:
    rows = host_rows(nb.figure8())
    sql = port_of(rows, "contoso-sql")
    other = dict(rows["Physical_Port"][sql]["other_config"])
    other["dns_servers"] = "10.1.1.53,2001:db8::53"
    rows["Physical_Port"][sql] = {**rows["Physical_Port"][sql], "other_config": other}
    config = plan(read_catalog(rows)).ports[sql].dhcp
    assert config == DhcpConfig(
        address="10.1.1.11",
        prefix_length=24,
        server="10.1.1.1",
        server_mac=ROUTER_MAC,
        router="10.1.1.1",
        dns_servers=("10.1.1.53",),  # DHCPv4 carries IPv4 servers only
    )
    assert plan(read_catalog(rows)).ports[sql].dhcp6 is None  # no IPv6 address: no DHCPv6
    # the RAs' RDNSS option picks the IPv6 ones from the same list (agent.ndp)
    assert plan(read_catalog(rows)).ports[sql].dns_servers == ("10.1.1.53", "2001:db8::53")
