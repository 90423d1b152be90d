"""A small datacenter with gateways, as REST bodies, for the northbound and compiler tests.

Two tenants with the same customer space, Contoso and Fabrikam (10.1.0.0/16: subnet1
10.1.1.0/24 and GatewaySubnet 10.1.254.0/24), one VM each on host1; host ``gw1`` is the
gateway server, with legs on the ``Internet`` (203.0.113.0/24, isPublic, pool .10-.99)
and on the physical network ``PhysNet`` (VLAN subnets 172.16.20.0/24, VLAN 20).
"""

from __future__ import annotations

from typing import Any

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

Body = dict[str, Any]
VNETS = ("Contoso", "Fabrikam")


def col(row: Any, column: str) -> Any:
    """A column of a compiled row (rows hold a union of OVSDB value types)."""
    return row[column]


def ref(path: str) -> dict[str, str]:
    return {"resourceRef": path}


def subnet_ref(vnet: str, subnet: str = "subnet1") -> dict[str, str]:
    return ref(f"/virtualNetworks/{vnet}/subnets/{subnet}")


def logical_networks() -> list[tuple[str, Body]]:
    pa = {
        "properties": {
            "networkVirtualizationEnabled": True,
            "subnets": [
                {
                    "resourceId": "pa1",
                    "properties": {
                        "addressPrefix": "192.168.1.0/24",
                        "defaultGateways": ["192.168.1.1"],
                        "ipPools": [
                            {
                                "resourceId": "pool1",
                                "properties": {
                                    "startIpAddress": "192.168.1.10",
                                    "endIpAddress": "192.168.1.49",
                                },
                            }
                        ],
                    },
                }
            ],
        }
    }
    internet = {
        "properties": {
            "subnets": [
                {
                    "resourceId": "public",
                    "properties": {
                        "addressPrefix": "203.0.113.0/24",
                        "defaultGateways": ["203.0.113.1"],
                        "isPublic": True,
                        "ipPools": [
                            {
                                "resourceId": "pips",
                                "properties": {
                                    "startIpAddress": "203.0.113.10",
                                    "endIpAddress": "203.0.113.99",
                                },
                            }
                        ],
                    },
                }
            ]
        }
    }
    physnet = {
        "properties": {
            "subnets": [
                {
                    "resourceId": "vlan20",
                    "properties": {"addressPrefix": "172.16.20.0/24", "vlanID": 20},
                },
                {
                    "resourceId": "vlan30",
                    "properties": {"addressPrefix": "172.16.30.0/24", "vlanID": 30},
                },
            ]
        }
    }
    return [
        ("/logicalNetworks/HNVPA", pa),
        ("/logicalNetworks/Internet", internet),
        ("/logicalNetworks/PhysNet", physnet),
    ]


def server(name: str, *legs: tuple[str, str]) -> Body:
    nics = [
        {
            "resourceId": "pnic1",
            "properties": {"logicalSubnets": [ref("/logicalNetworks/HNVPA/subnets/pa1")]},
        }
    ]
    for nic_id, subnet in legs:
        nics.append({"resourceId": nic_id, "properties": {"logicalSubnets": [ref(subnet)]}})
    return {
        "properties": {
            "connections": [{"managementAddresses": [f"unix:/tmp/hnv-test/{name}.sock"]}],
            "networkInterfaces": nics,
        }
    }


def vnet() -> Body:
    return {
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
            "logicalNetwork": ref("/logicalNetworks/HNVPA"),
            "subnets": [
                {"resourceId": "subnet1", "properties": {"addressPrefix": "10.1.1.0/24"}},
                {"resourceId": "GatewaySubnet", "properties": {"addressPrefix": "10.1.254.0/24"}},
            ],
        }
    }


def vm_nic(vnet_name: str, address: str = "10.1.1.11", host: str = "host1") -> Body:
    return {
        "properties": {
            "server": ref(f"/servers/{host}"),
            "ipConfigurations": [
                {
                    "resourceId": "ipconfig1",
                    "properties": {"privateIPAddress": address, "subnet": subnet_ref(vnet_name)},
                }
            ],
        }
    }


def public_ip(address: str | None = None) -> Body:
    props: Body = {} if address is None else {"ipAddress": address}
    return {"properties": props}


def nat_connection(pip: str, *rules: Body) -> Body:
    props: Body = {"connectionType": "Nat", "publicIPAddress": ref(f"/publicIPAddresses/{pip}")}
    if rules:
        props["natConfiguration"] = {"inboundNatRules": list(rules)}
    return {"resourceId": "internet", "properties": props}


def l3_connection(address: str = "172.16.20.2", peer: str = "172.16.20.1") -> Body:
    return {
        "resourceId": "physnet",
        "properties": {
            "connectionType": "L3",
            "l3Configuration": {"vlanSubnet": ref("/logicalNetworks/PhysNet/subnets/vlan20")},
            "ipAddresses": [{"ipAddress": address, "prefixLength": 24}],
            "peerIPAddresses": [peer],
            "routes": [{"destinationPrefix": "172.16.40.0/24", "metric": 10}],
        },
    }


def ipsec_connection(pip: str, **ipsec: Any) -> Body:
    return {
        "resourceId": "onprem",
        "properties": {
            "connectionType": "IPSec",
            "publicIPAddress": ref(f"/publicIPAddresses/{pip}"),
            "destinationIPAddress": "203.0.113.50",
            "routes": [{"destinationPrefix": "192.168.100.0/24", "metric": 10}],
            "ipSecConfiguration": {
                "authenticationMethod": "PSK",
                "sharedSecret": "s3cret-psk",
                **ipsec,
            },
        },
    }


def virtual_gateway(vnet_name: str, *connections: Body) -> Body:
    return {
        "properties": {
            "gatewayPool": ref("/gatewayPools/default"),
            "gatewaySubnets": [subnet_ref(vnet_name, "GatewaySubnet")],
            "routingType": "Static",
            "networkConnections": list(connections),
        }
    }


def infrastructure() -> list[tuple[str, Body]]:
    """Everything but the virtual gateways and public IPs, in creation order."""
    out = logical_networks()
    out.append(
        (
            "/macPools/default",
            {
                "properties": {
                    "startMacAddress": "00-1D-D8-07-00-00",
                    "endMacAddress": "00-1D-D8-07-00-FF",
                }
            },
        )
    )
    out.append(("/servers/host1", server("host1")))
    out.append(
        (
            "/servers/gw1",
            server(
                "gw1",
                ("pnic2", "/logicalNetworks/Internet/subnets/public"),
                ("pnic3", "/logicalNetworks/PhysNet/subnets/vlan20"),
            ),
        )
    )
    out.append(("/gatewayPools/default", {"properties": {"type": "All"}}))
    out.append(
        (
            "/gateways/gw1",
            {
                "properties": {
                    "pool": ref("/gatewayPools/default"),
                    "server": ref("/servers/gw1"),
                    "externalInterfaces": [
                        ref("/servers/gw1/networkInterfaces/pnic2"),
                        ref("/servers/gw1/networkInterfaces/pnic3"),
                    ],
                }
            },
        )
    )
    for name in VNETS:
        out.append((f"/virtualNetworks/{name}", vnet()))
        out.append((f"/networkInterfaces/{name}-vm1", vm_nic(name)))
    return out


def datacenter() -> ControllerService:
    """The datacenter without virtual gateways."""
    service = ControllerService(SqliteStore(":memory:"))
    for path, body in infrastructure():
        service.put(path, body)
    return service


def with_gateways() -> ControllerService:
    """Contoso with Nat (pip contoso-pip) and IPSec; Fabrikam with Nat and L3."""
    service = datacenter()
    service.put("/publicIPAddresses/contoso-pip", public_ip())
    service.put("/publicIPAddresses/fabrikam-pip", public_ip())
    service.put(
        "/virtualGateways/Contoso-gw",
        virtual_gateway("Contoso", nat_connection("contoso-pip"), ipsec_connection("contoso-pip")),
    )
    service.put(
        "/virtualGateways/Fabrikam-gw",
        virtual_gateway("Fabrikam", nat_connection("fabrikam-pip"), l3_connection()),
    )
    return service
