"""The rows gateways put on hosts: compartments and connections on the gateway host,
routes on every host of the VNet, a compartment port that passes all, and changes."""

from __future__ import annotations

import gateway_dc as dc

from openhnv.controller.compiler.compile import Compiler, compile_datacenter
from openhnv.controller.compiler.index import Index
from openhnv.ovsdb.rows import DesiredState


def hosts() -> dict[str, DesiredState]:
    return compile_datacenter(dc.with_gateways().snapshot()).hosts


def test_the_gateway_host_gets_one_row_per_compartment_and_connection() -> None:
    gw = hosts()["gw1"]
    assert sorted(gw["Gateway_Compartment"]) == ["Contoso-gw", "Fabrikam-gw"]
    assert sorted(gw["Gateway_Connection"]) == [
        "Contoso-gw/internet",
        "Contoso-gw/onprem",
        "Fabrikam-gw/internet",
        "Fabrikam-gw/physnet",
    ]
    compartment = gw["Gateway_Compartment"]["Contoso-gw"]
    assert compartment["address"] == "10.1.254.2/24"
    assert compartment["router"] == "10.1.254.1"
    assert compartment["address_space"] == frozenset({"10.1.0.0/16"})
    port = gw["Physical_Port"][dc.col(compartment, "port")]
    assert dc.col(port, "other_config")["gateway"] == "true"
    nat = gw["Gateway_Connection"]["Contoso-gw/internet"]
    assert nat["addresses"] == frozenset({"203.0.113.10/24"})
    assert dc.col(nat, "network")["interface"] == "pnic2"
    l3 = gw["Gateway_Connection"]["Fabrikam-gw/physnet"]
    assert dc.col(l3, "network")["vlan"] == "20"
    assert l3["peers"] == frozenset({"172.16.20.1"})


def test_other_hosts_get_no_gateway_rows_but_the_routes_and_the_compartments_mapping() -> None:
    compiled = hosts()
    host1 = compiled["host1"]
    assert host1["Gateway_Compartment"] == {}
    assert host1["Gateway_Connection"] == {}
    router = host1["Logical_Router"]["Contoso"]
    assert router["static_routes"] == {"0.0.0.0/0": "10.1.254.2", "192.168.100.0/24": "10.1.254.2"}
    gw_pa = dc.col(compiled["gw1"]["Physical_Switch"]["gw1"], "tunnel_ips")
    mappings = [m for m in host1["Ucast_Macs_Remote"].values() if m["ipaddr"] == "10.1.254.2"]
    assert {dc.col(m, "locator").key.split(":")[1] for m in mappings} == set(gw_pa)


def test_a_compartment_port_passes_all_and_vm_defaults_count_private_sites_as_the_vnet() -> None:
    compiled = hosts()
    gw = compiled["gw1"]
    port = dc.col(gw["Gateway_Compartment"]["Contoso-gw"], "port")
    rules = [r for r in gw["FW_Rules"].values() if r["vnic_id"] == port]
    allow = {r["direction"] for r in rules if str(r["rule_name"]).startswith("gateway-allow")}
    assert allow == {"in", "out"}
    vm_rules = compiled["host1"]["FW_Rules"].values()
    inbound = next(
        r
        for r in vm_rules
        if r["rule_name"] == "default-allow-vnet-in"
        and "192.168.100.0/24" in dc.col(r, "src_ip_addresses")
    )
    assert "10.1.0.0/16" in dc.col(inbound, "src_ip_addresses")
    assert "0.0.0.0/0" not in dc.col(inbound, "src_ip_addresses")  # the Internet stays the Internet


def test_removing_a_connection_or_the_gateway_withdraws_its_routes_on_every_host() -> None:
    service = dc.with_gateways()
    before = Index.build(service.snapshot())
    compiler = Compiler(before)
    compiler.datacenter()
    service.put(
        "/virtualGateways/Contoso-gw",
        dc.virtual_gateway("Contoso", dc.nat_connection("contoso-pip")),
    )
    update = compiler.update(Index.build(service.snapshot()), ["/virtualGateways/Contoso-gw"])
    assert {"host1", "gw1"} <= set(update.changes)
    router = update.states["host1"]["Logical_Router"]["Contoso"]
    assert router["static_routes"] == {"0.0.0.0/0": "10.1.254.2"}
    assert "Contoso-gw/onprem" not in update.states["gw1"]["Gateway_Connection"]
    service.delete("/virtualGateways/Contoso-gw")
    gone = update.compiler.update(Index.build(service.snapshot()), ["/virtualGateways/Contoso-gw"])
    assert gone.states["host1"]["Logical_Router"]["Contoso"]["static_routes"] == {}
    assert "Contoso-gw" not in gone.states["gw1"]["Gateway_Compartment"]
    contoso_gateway_subnet = "4097/"  # VSIDs in creation order: subnet1 4096, then this
    assert not [
        k for k in gone.states["host1"]["Ucast_Macs_Remote"] if k.startswith(contoso_gateway_subnet)
    ]
