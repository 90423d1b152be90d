"""A host with a VM NIC on a logical (VLAN) subnet: the northbound documents, for the
compiler's and the agent's tests of access ports."""

from __future__ import annotations

from typing import Any

from openhnv.testing.snapshots import HOST1_PA, HOST2_PA, acl, instance_id, rule, server, snapshot

LN = "/logicalNetworks/tenantvlan"
SUBNET = f"{LN}/subnets/vlan12"
NIC_REF = "/networkInterfaces/vlanvm"
MAC = "00:1d:d8:50:00:0a"


def logical_network(vlan: int = 12, acl_id: str | None = None, hnv: bool = False) -> dict[str, Any]:
    subnet: dict[str, Any] = {
        "resourceId": "vlan12",
        "resourceRef": SUBNET,
        "properties": {
            "addressPrefix": "10.50.0.0/24",
            "vlanID": vlan,
            "defaultGateways": ["10.50.0.1"],
        },
    }
    if acl_id is not None:
        subnet["properties"]["accessControlList"] = {"resourceRef": f"/accessControlLists/{acl_id}"}
    return {
        "resourceId": "tenantvlan",
        "resourceRef": LN,
        "properties": {"networkVirtualizationEnabled": hnv, "subnets": [subnet]},
    }


def vlan_nic(host: str = "host1", acl_id: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "privateIPAddress": "10.50.0.10",
        "subnet": {"resourceRef": SUBNET},
    }
    if acl_id is not None:
        config["accessControlList"] = {"resourceRef": f"/accessControlLists/{acl_id}"}
    return {
        "resourceId": "vlanvm",
        "resourceRef": NIC_REF,
        "instanceId": instance_id(NIC_REF),
        "properties": {
            "privateMacAddress": MAC.replace(":", "").upper(),
            "server": {"resourceRef": f"/servers/{host}"},
            "ipConfigurations": [
                {
                    "resourceId": "ipconfig1",
                    "resourceRef": f"{NIC_REF}/ipConfigurations/ipconfig1",
                    "properties": config,
                }
            ],
        },
    }


def world(**kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    nic_acl = kwargs.pop("nic_acl", None)
    snap = snapshot(
        servers=[server("host1", [HOST1_PA]), server("host2", [HOST2_PA])],
        nics=[vlan_nic(acl_id=nic_acl)],
        acls=[
            acl("deny-ssh", [rule("no-ssh", "Inbound", "Deny", 100, "TCP", destination_ports="22")])
        ],
    )
    snap["logicalNetworks"] = [logical_network(**kwargs)]
    return snap
