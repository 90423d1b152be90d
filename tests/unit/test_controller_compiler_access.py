"""The compiler and NICs on logical (VLAN) subnets: access ports with their ACLs, no
virtual network's rows, and what a logical network's change reaches."""

from __future__ import annotations

from collections.abc import Mapping

from access_world import LN, MAC, NIC_REF, vlan_nic, world

from openhnv.controller.compiler.compile import Compiler, affected_hosts, compile_datacenter
from openhnv.controller.compiler.index import Index
from openhnv.ovsdb.keys import ACCESS_VLAN, controller_bound
from openhnv.testing.snapshots import instance_id


def test_a_nic_on_a_logical_subnet_is_an_access_port_on_its_vlan() -> None:
    compiled = compile_datacenter(world())
    assert compiled.problems == []
    state = compiled.hosts["host1"]
    port = state["Physical_Port"][instance_id(NIC_REF)]
    assert port["vlan_bindings"] == {}
    config = port["other_config"]
    assert isinstance(config, Mapping)
    assert config[ACCESS_VLAN] == "12"
    assert config["mac_address"] == MAC
    assert config["ip_addresses"] == "10.50.0.10"
    assert controller_bound(port)
    for table in ("Logical_Switch", "Logical_Router", "Ucast_Macs_Remote", "Physical_Locator"):
        assert state[table] == {}, table
    assert compiled.hosts["host2"]["Physical_Port"] == {}


def test_its_acl_rules_take_the_logical_subnet_as_the_networks_own_space() -> None:
    state = compile_datacenter(world(nic_acl="deny-ssh")).hosts["host1"]
    rules = {r["rule_name"]: r for r in state["FW_Rules"].values()}
    assert rules["no-ssh"]["action"] == "deny"
    assert rules["no-ssh"]["dst_port"] == "22-22"
    assert rules["default-allow-vnet-in"]["src_ip_addresses"] == frozenset({"10.50.0.0/24"})
    assert {r["vnic_id"] for r in state["FW_Rules"].values()} == {instance_id(NIC_REF)}


def test_the_logical_subnets_acl_is_the_subnet_layer() -> None:
    state = compile_datacenter(world(acl_id="deny-ssh")).hosts["host1"]
    layers = {(r["rule_name"], r["acl_layer"]) for r in state["FW_Rules"].values()}
    assert ("no-ssh", "subnet") in layers


def test_an_untagged_logical_subnet_and_the_provider_network_are_not_compiled() -> None:
    untagged = compile_datacenter(world(vlan=0))
    assert untagged.hosts["host1"]["Physical_Port"] == {}
    assert any("vlanID 0" in p.message for p in untagged.problems)
    provider = compile_datacenter(world(hnv=True))
    assert provider.hosts["host1"]["Physical_Port"] == {}
    assert any("does not exist" in p.message for p in provider.problems)


def test_a_change_of_the_logical_network_reaches_the_host_of_its_nics() -> None:
    old = Index.build(world())
    new = Index.build(world(vlan=13))
    assert affected_hosts(old, new, [LN]) == {"host1"}
    update = Compiler(old).update(new, [LN])
    (change,) = [c for c in update.changes["host1"] if c.table == "Physical_Port"]
    config = change.columns["other_config"]
    assert isinstance(config, Mapping)
    assert config[ACCESS_VLAN] == "13"


def test_moving_the_nic_changes_only_the_two_hosts_port_rows() -> None:
    snap = world()
    compiler = Compiler(Index.build(snap))
    compiler.datacenter()
    snap["networkInterfaces"] = [vlan_nic(host="host2")]
    update = compiler.update(Index.build(snap), [NIC_REF])
    assert {c.table for c in update.changes["host1"]} <= {"Physical_Port", "FW_Rules",
                                                           "Physical_Switch"}  # fmt: skip
    assert instance_id(NIC_REF) in update.states["host2"]["Physical_Port"]
    assert update.states["host1"]["Physical_Port"] == {}
