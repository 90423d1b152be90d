"""Northbound documents shaped as the REST GET returns them, for compiler tests and benches.

Each helper builds one resource document (envelope, ``properties``, children inline,
allocated read-only values included); ``figure8()`` is the seed's figure 8 datacenter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Doc = dict[str, Any]

CONTOSO_RDID = "2b0a7f14-5c1e-4d0e-9a11-c0c0c0c05001"
FABRIKAM_RDID = "7e5d3a22-8f4b-4c6f-b1d2-fafafafa6001"


def instance_id(ref: str) -> str:
    """A stable instanceId for a resource, as the controller would have allocated."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openhnv-test:{ref}"))


def _envelope(ref: str, properties: Mapping[str, Any]) -> Doc:
    return {
        "resourceId": ref.rsplit("/", 1)[-1],
        "resourceRef": ref,
        "instanceId": instance_id(ref),
        "etag": f'W/"{instance_id(ref + "#etag")}"',
        "properties": {**properties, "provisioningState": "Succeeded"},
    }


def server(
    server_id: str,
    pas: Sequence[tuple[str, int, int, str]] = (),
    management: Sequence[str] = (),
) -> Doc:
    """A server with allocated PAs ``(address, prefix_length, vlan, gateway)``, one per pNIC."""
    ref = f"/servers/{server_id}"
    pnics = [
        _envelope(
            f"{ref}/networkInterfaces/pnic{i + 1}",
            {
                "isBMC": False,
                "logicalSubnets": [{"resourceRef": "/logicalNetworks/HNVPA/subnets/pa"}],
            },
        )
        for i in range(len(pas))
    ]
    return _envelope(
        ref,
        {
            "connections": [
                {
                    "managementAddresses": list(management),
                    "credential": {"resourceRef": "/credentials/HostCert"},
                    "credentialType": "X509Certificate",
                }
            ],
            "networkInterfaces": pnics,
            "providerAddresses": [
                {
                    "address": address,
                    "prefixLength": prefix_length,
                    "vlanID": vlan,
                    "defaultGateway": gateway,
                    "networkInterface": {"resourceRef": f"{ref}/networkInterfaces/pnic{i + 1}"},
                    "logicalSubnet": {"resourceRef": "/logicalNetworks/HNVPA/subnets/pa"},
                }
                for i, (address, prefix_length, vlan, gateway) in enumerate(pas)
            ],
        },
    )


def subnet(
    subnet_id: str, prefix: str, vsid: int, acl: str | None = None
) -> tuple[str, str, int, str | None]:
    """A virtual subnet to pass to ``vnet``: (id, prefix, VSID, ACL resourceId)."""
    return (subnet_id, prefix, vsid, acl)


def vnet(
    vnet_id: str,
    address_space: Sequence[str],
    subnets: Iterable[tuple[str, str, int, str | None]],
    rdid: str | None = None,
) -> Doc:
    """A virtual network with its subnets inline and allocated RDID and VSIDs."""
    ref = f"/virtualNetworks/{vnet_id}"
    children = []
    for subnet_id, prefix, vsid, acl in subnets:
        props: dict[str, Any] = {
            "addressPrefix": prefix,
            "virtualSubnetId": vsid,
            "ipConfigurations": [],
        }
        if acl is not None:
            props["accessControlList"] = {"resourceRef": f"/accessControlLists/{acl}"}
        children.append(_envelope(f"{ref}/subnets/{subnet_id}", props))
    return _envelope(
        ref,
        {
            "addressSpace": {"addressPrefixes": list(address_space)},
            "logicalNetwork": {"resourceRef": "/logicalNetworks/HNVPA"},
            "routingDomainId": rdid or instance_id(ref + "#rdid"),
            "subnets": children,
        },
    )


def nic(
    nic_id: str,
    mac: str,
    ips: Sequence[tuple[str, str]],
    host: str | None = None,
    acl: str | None = None,
    mac_spoofing: str = "Disabled",
) -> Doc:
    """A VM NIC: ``ips`` are (privateIPAddress, "vnet/subnet"); ``host`` its server."""
    ref = f"/networkInterfaces/{nic_id}"
    configs = []
    for i, (address, where) in enumerate(ips):
        vnet_id, subnet_id = where.split("/")
        props: dict[str, Any] = {
            "privateIPAddress": address,
            "privateIPAllocationMethod": "Static",
            "subnet": {"resourceRef": f"/virtualNetworks/{vnet_id}/subnets/{subnet_id}"},
        }
        if acl is not None:
            props["accessControlList"] = {"resourceRef": f"/accessControlLists/{acl}"}
        configs.append(_envelope(f"{ref}/ipConfigurations/ipconfig{i + 1}", props))
    props = {
        "privateMacAddress": mac,
        "privateMacAllocationMethod": "Static",
        "portSettings": {
            "macSpoofingEnabled": mac_spoofing,
            "arpGuardEnabled": "Disabled",
            "dhcpGuardEnabled": "Disabled",
        },
        "ipConfigurations": configs,
    }
    if host is not None:
        props["server"] = {"resourceRef": f"/servers/{host}"}
    return _envelope(ref, props)


def rule(
    rule_id: str,
    direction: str,
    action: str,
    priority: int,
    protocol: str = "All",
    source: str = "*",
    destination: str = "*",
    source_ports: str = "0-65535",
    destination_ports: str = "0-65535",
    logging: str = "Disabled",
) -> tuple[str, dict[str, Any]]:
    """An aclRule to pass to ``acl``."""
    return rule_id, {
        "protocol": protocol,
        "sourcePortRange": source_ports,
        "destinationPortRange": destination_ports,
        "sourceAddressPrefix": source,
        "destinationAddressPrefix": destination,
        "action": action,
        "priority": priority,
        "type": direction,
        "logging": logging,
    }


def acl(acl_id: str, rules: Iterable[tuple[str, dict[str, Any]]]) -> Doc:
    """An access control list with its aclRules inline."""
    ref = f"/accessControlLists/{acl_id}"
    return _envelope(
        ref,
        {
            "aclRules": [_envelope(f"{ref}/aclRules/{rid}", props) for rid, props in rules],
            "ipConfigurations": [],
            "subnets": [],
        },
    )


def configuration(protocol: str = "Vxlan") -> Doc:
    """The virtualNetworkManager/configuration singleton."""
    doc = _envelope(
        "/virtualNetworkManager/configuration",
        {"networkVirtualizationProtocol": protocol, "distributedRouterMacAddress": "401DD8B71C06"},
    )
    return doc


def snapshot(
    servers: Iterable[Doc] = (),
    vnets: Iterable[Doc] = (),
    nics: Iterable[Doc] = (),
    acls: Iterable[Doc] = (),
    config: Doc | None = None,
) -> dict[str, list[Doc]]:
    """A compiler snapshot of those documents."""
    return {
        "logicalNetworks": [],
        "macPools": [],
        "credentials": [],
        "servers": list(servers),
        "accessControlLists": list(acls),
        "virtualNetworks": list(vnets),
        "networkInterfaces": list(nics),
        "virtualNetworkManager": [] if config is None else [config],
    }


HOST1_PA = ("192.168.1.10", 24, 0, "192.168.1.1")
HOST2_PA = ("192.168.2.20", 24, 0, "192.168.2.1")


def figure8() -> dict[str, list[Doc]]:
    """The seed's figure 8: Contoso and Fabrikam, both 10.1.1.0/24, SQL on host1, Web on host2."""
    return snapshot(
        servers=[
            server("host1", [HOST1_PA], ["10.0.0.11"]),
            server("host2", [HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[
            vnet(
                "Contoso", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 5001)], CONTOSO_RDID
            ),
            vnet(
                "Fabrikam", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 6001)], FABRIKAM_RDID
            ),
        ],
        nics=[
            nic("contoso-sql", "001DD8070011", [("10.1.1.11", "Contoso/Subnet1")], "host1"),
            nic("contoso-web", "001DD8070012", [("10.1.1.12", "Contoso/Subnet1")], "host2"),
            nic("fabrikam-sql", "001DD8070021", [("10.1.1.11", "Fabrikam/Subnet1")], "host1"),
            nic("fabrikam-web", "001DD8070022", [("10.1.1.12", "Fabrikam/Subnet1")], "host2"),
        ],
    )
