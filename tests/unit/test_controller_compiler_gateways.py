"""The compiler's gateways: compartments and their NICs, the VNets' routes, TOR NICs."""

from __future__ import annotations

import gateway_dc as dc

from openhnv.controller.compiler.compile import compile_datacenter
from openhnv.controller.compiler.index import Index


def index() -> Index:
    return Index.build(dc.with_gateways().snapshot())


def test_each_virtual_gateway_is_a_compartment_on_its_gateway_host() -> None:
    idx = index()
    assert idx.problems == []
    contoso = idx.gateways.by_vnet["Contoso"]
    fabrikam = idx.gateways.by_vnet["Fabrikam"]
    assert (contoso.server_id, fabrikam.server_id) == ("gw1", "gw1")
    assert contoso.nic.address == fabrikam.nic.address == "10.1.254.2"
    assert idx.gateways.hosts == frozenset({"gw1"})
    assert [c.kind for c in contoso.connections] == ["Nat", "IPSec"]
    ipsec = contoso.connections[1]
    assert ipsec.leg.interface == "pnic2"
    assert ipsec.peers == ("203.0.113.50",)
    assert ipsec.options["sharedSecret"] == "s3cret-psk"  # the compiler sees the secret
    l3 = fabrikam.connections[1]
    assert (l3.leg.interface, l3.leg.vlan, l3.addresses) == ("pnic3", 20, ("172.16.20.2/24",))


def test_the_compartment_nic_is_placed_like_a_vm_nic_on_the_gateway_host() -> None:
    idx = index()
    nics = [n for n in idx.nics.values() if n.gateway]
    assert sorted((n.nic_id, n.server_id) for n in nics) == [
        ("Contoso-gw", "gw1"),
        ("Fabrikam-gw", "gw1"),
    ]
    assert idx.hosts_of_vnet("Contoso") == {"host1", "gw1"}


def test_the_vnet_routes_off_vnet_prefixes_to_its_compartment() -> None:
    idx = index()
    assert idx.gateways.by_vnet["Contoso"].routes() == {
        "0.0.0.0/0": "10.1.254.2",
        "192.168.100.0/24": "10.1.254.2",
    }
    # L3: the declared routes and the VLAN subnet the compartment sits on.
    assert idx.gateways.by_vnet["Fabrikam"].routes() == {
        "0.0.0.0/0": "10.1.254.2",
        "172.16.20.0/24": "10.1.254.2",
        "172.16.40.0/24": "10.1.254.2",
    }
    assert idx.gateways.by_vnet["Fabrikam"].private_prefixes() == frozenset(
        {"172.16.20.0/24", "172.16.40.0/24"}
    )


def test_a_virtual_gateway_whose_gateway_lost_a_leg_is_a_problem_and_left_out() -> None:
    service = dc.with_gateways()
    snapshot = service.snapshot()
    for gateway in snapshot["gateways"]:
        gateway["properties"]["externalInterfaces"] = gateway["properties"]["externalInterfaces"][
            :1
        ]
    idx = Index.build(snapshot)
    assert "Fabrikam" not in idx.gateways.by_vnet
    assert any("no external interface" in p.message for p in idx.problems)
    assert "Contoso" in idx.gateways.by_vnet


def test_a_nic_behind_a_vtep_is_a_mapping_on_every_host_of_its_vnet_and_a_port_nowhere() -> None:
    service = dc.datacenter()
    nic = dc.vm_nic("Contoso", "10.1.1.50")
    del nic["properties"]["server"]
    nic["properties"].update(privateMacAddress="02AA00000050", vtepAddress="192.168.1.200")
    service.put("/networkInterfaces/tor-server", nic)
    compiled = compile_datacenter(service.snapshot())
    host1 = compiled.hosts["host1"]
    mapping = host1["Ucast_Macs_Remote"]["4096/02:aa:00:00:00:50/10.1.1.50"]
    assert dc.col(mapping, "locator").key == "vxlan_over_ipv4:192.168.1.200"
    assert all(r["description"] != "tor-server" for r in host1["Physical_Port"].values())
    assert "" not in compiled.hosts
