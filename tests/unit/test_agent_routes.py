"""The agent's customer routes: Logical_Router.static_routes become the engine's route
table of the VNet's routing domain, checked by where packets go; changes are minimal."""

from __future__ import annotations

from typing import Any

from openhnv.agent.planner import EMPTY_PLAN, Plan, changes, plan, plan_of_engine
from openhnv.agent.rows import read_catalog
from openhnv.ovsdb.rows import Ref
from openhnv.packet.frames import udp_frame
from openhnv.vfp import commands as c
from openhnv.vfp.emits import Drop, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.policy import IN, OUT, Allow, Rule, conditions
from openhnv.vfp.spaces import ProviderAddress

RDID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ROUTER_MAC = "40:1d:d8:b7:1c:06"
VM_MAC, VM_IP = "00:1d:d8:07:00:11", "10.1.1.11"
GW_MAC, GW_IP = "00:1d:d8:07:00:99", "10.1.9.4"
HOST_PA, GW_PA = "192.168.1.10", "192.168.1.20"


def rows(static_routes: dict[str, str], *, gateway_port: bool = False) -> dict[str, Any]:
    """host1's rows: Contoso's VM (local) and its gateway compartment's NIC (remote)."""
    switch = {
        "name": "5001",
        "description": RDID,
        "tunnel_key": 5001,
        "other_config": {"address_prefix": "10.1.1.0/24"},
    }
    gw_switch = {
        "name": "5009",
        "description": RDID,
        "tunnel_key": 5009,
        "other_config": {"address_prefix": "10.1.9.0/24"},
    }
    vm_port: dict[str, Any] = {
        "name": "vm-port",
        "vlan_bindings": {0: Ref("Logical_Switch", "5001")},
        "other_config": {"mac_address": VM_MAC, "ip_addresses": VM_IP},
    }
    if gateway_port:
        vm_port["other_config"]["gateway"] = "true"
    return {
        "Global": {"global": {"other_config": {"distributed_router_mac": ROUTER_MAC}}},
        "Logical_Switch": {"5001": switch, "5009": gw_switch},
        "Logical_Router": {
            "Contoso": {
                "name": "Contoso",
                "description": RDID,
                "enable_logical_router": True,
                "switch_binding": {
                    "10.1.1.0/24": Ref("Logical_Switch", "5001"),
                    "10.1.9.0/24": Ref("Logical_Switch", "5009"),
                },
                "static_routes": static_routes,
                "other_config": {"address_space": "10.1.0.0/16"},
            }
        },
        "Physical_Locator": {
            f"vxlan_over_ipv4:{pa}": {"dst_ip": pa, "encapsulation_type": "vxlan_over_ipv4"}
            for pa in (HOST_PA, GW_PA)
        },
        "Ucast_Macs_Remote": {
            f"5001/{VM_MAC}/{VM_IP}": {
                "MAC": VM_MAC,
                "ipaddr": VM_IP,
                "logical_switch": Ref("Logical_Switch", "5001"),
                "locator": Ref("Physical_Locator", f"vxlan_over_ipv4:{HOST_PA}"),
                "mapping_type": "local",
            },
            f"5009/{GW_MAC}/{GW_IP}": {
                "MAC": GW_MAC,
                "ipaddr": GW_IP,
                "logical_switch": Ref("Logical_Switch", "5009"),
                "locator": Ref("Physical_Locator", f"vxlan_over_ipv4:{GW_PA}"),
                "mapping_type": "remote",
            },
        },
        "Physical_Port": {"vm-port": vm_port},
        "FW_Rules": {},
    }


def programmed(p: Plan) -> VfpEngine:
    engine = VfpEngine()
    engine.programming.apply(c.AddProviderAddress(ProviderAddress(HOST_PA, "02:00:00:00:00:01")))
    engine.programming.apply(c.SetPaNeighbor(GW_PA, "02:00:00:00:00:02"))
    for unit in changes(EMPTY_PLAN, p):
        engine.programming.apply_all(unit.commands)
    return engine


def to_internet() -> bytes:
    return udp_frame(
        src_mac=VM_MAC, dst_mac=ROUTER_MAC, src_ip=VM_IP, dst_ip="203.0.113.80",
        src_port=4000, dst_port=80,
    )  # fmt: skip


def test_static_routes_become_the_routing_domains_table() -> None:
    p = plan(read_catalog(rows({"0.0.0.0/0": GW_IP})))
    table = p.routes[RDID]
    assert table.connected == ("10.1.0.0/16",)
    assert [(r.prefix, r.next_hop) for r in table.routes] == [("0.0.0.0/0", GW_IP)]


def test_route_changes_are_one_unit_per_routing_domain() -> None:
    before = plan(read_catalog(rows({"0.0.0.0/0": GW_IP})))
    after = plan(read_catalog(rows({"192.168.100.0/24": GW_IP})))
    units = changes(before, after)
    assert [(u.table, u.key) for u in units] == [("Logical_Router", RDID)]
    assert isinstance(units[0].commands[0], c.SetRoutes)
    gone = changes(after, plan(read_catalog(rows({}))))
    assert [u.commands for u in gone] == [(c.RemoveRoutes(RDID, missing_ok=True),)]
    assert changes(after, after) == []


def test_a_bad_route_is_a_problem_of_its_router_and_routes_nothing() -> None:
    p = plan(read_catalog(rows({"0.0.0.0/0": "2001:db8::1"})))
    assert p.routes == {}
    assert [(x.table, x.key) for x in p.problems] == [("Logical_Router", "Contoso")]


def test_a_restarted_agent_reads_the_routes_back_from_the_engine() -> None:
    p = plan(read_catalog(rows({"0.0.0.0/0": GW_IP}, gateway_port=True)))
    engine = programmed(p)
    held = plan_of_engine(engine)
    assert held.routes == p.routes
    assert held.ports["vm-port"].port.gateway is True
    assert [u for u in changes(held, p) if u.table != "Ucast_Macs_Remote"] == []


def test_the_engine_sends_off_vnet_traffic_to_the_gateways_pa() -> None:
    p = plan(read_catalog(rows({"0.0.0.0/0": GW_IP})))
    engine = programmed(p)
    # The port's FW_Rules have not arrived (fail closed): let its ACL layer pass all.
    for direction in (IN, OUT):
        group = f"{direction}-v4"
        engine.programming.apply(c.AddGroup("vm-port", "ACL_NIC", group, direction, 4))
        rule = Rule("all", 100, conditions(), Allow())
        engine.programming.apply(c.AddRules("vm-port", "ACL_NIC", group, (rule,)))
    sent = engine.process("vm-port", to_internet(), 0.0)
    assert len(sent) == 1
    assert isinstance(sent[0], Transmit)
    assert sent[0].provider_address == GW_PA
    engine.programming.apply(c.RemoveRoutes(RDID))
    assert engine.process("vm-port", to_internet(), 0.0) == [Drop("vm-port", "no_mapping")]
