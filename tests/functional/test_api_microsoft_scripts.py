"""Microsoft's own SDN scripts against a fresh ``hnv controller``, in their order.

Each request below is one a script of the public microsoft/SDN repository sends, written
here from what the script builds (never copied): the path with its casing, the body the
script's objects serialise to, and the status Microsoft's Network Controller answers.
Sources (microsoft/SDN, the last commit that still had them, 97e1a82^):

- ``SDNExpress/scripts/SDNExpress.psm1`` (the NetworkController module's cmdlets, which
  PUT the objects the functions fill in);
- ``SDNExpress/Tools/SDNExplorer/NetworkControllerRESTWrappers.ps1`` (JSONPost: PUT to
  ``/Networking/v1<path>/<resourceId>``);
- ``NCRESTExamples/ZeroToSDNBlog.ps1``, ``NCRESTExamples/OutboundNAT.ps1`` and
  ``Diagnostics/Test-VNetPing.ps1`` (NC-REFERENCE.md 1.4).

A status of 501 marks a feature openhnv does not implement; Microsoft's NC would accept
those bodies, and the point is that openhnv never answers them with a 404 (which the
scripts read as "not there yet").
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from openhnv.testing.processes import ControllerProcess

NC = "/Networking/v1"  # the wrappers' casing ($uriRoot)
PA_SUBNET = "/logicalNetworks/HNVPA/subnets/10.10.56.0_23"
PA_SUBNET_2 = "/logicalNetworks/HNVPA/subnets/10.10.60.0_23"
HOST_ID = "5f2c8b3e-3d2a-4c55-9a0e-1b7c3f1d9e01"  # SDN Express: the vSwitch's id
CERT = "MIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGUgZGF0YQ=="  # base64 of the host certificate


@dataclass
class Step:
    """One request of a script: what it sends and what Microsoft's NC answers."""

    source: str  # file and function
    method: str
    path: str  # under /Networking/v1, in the script's casing
    body: dict[str, Any] | None = None
    status: int = 201
    check: dict[str, Any] = field(default_factory=dict)  # dotted path -> expected value


def _resource(resource_id: str, properties: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"resourceId": resource_id, "properties": properties, **envelope}


def _ref(path: str) -> dict[str, str]:
    return {"resourceRef": path}


def sdn_express() -> list[Step]:
    """SDNExpress.psm1, in the order SDNExpress.ps1 calls its functions."""
    src = "SDNExpress.psm1"
    mac_pool = _resource(
        "DefaultMacPool",
        {"StartMacAddress": "00-1D-D8-B7-1C-00", "EndMacAddress": "00-1D-D8-F4-1F-FF"},
    )
    pa_subnet = _resource(
        "10.10.56.0_23",
        {"VLANId": "11", "AddressPrefix": "10.10.56.0/23", "DefaultGateways": ["10.10.56.1"]},
    )
    pa_pool = _resource(
        "10.10.56.0_23", {"startipaddress": "10.10.56.10", "endipaddress": "10.10.57.250"}
    )
    vip = [
        _resource(
            "PrivateVIP",
            {
                "NetworkVirtualizationEnabled": "False",
                "Subnets": [
                    _resource(
                        "10.10.58.0_24",
                        {
                            "AddressPrefix": "10.10.58.0/24",
                            "DefaultGateways": ["10.10.58.1"],
                            "IsPublic": False,
                            "IpPools": [
                                _resource(
                                    "10.10.58.0_24",
                                    {
                                        "StartIpAddress": "10.10.58.5",
                                        "EndIpAddress": "10.10.58.250",
                                    },
                                )
                            ],
                        },
                    )
                ],
            },
        ),
        _resource(
            "PublicVIP",
            {
                "NetworkVirtualizationEnabled": "False",
                "Subnets": [
                    _resource(
                        "40.40.40.0_24",
                        {
                            "AddressPrefix": "40.40.40.0/24",
                            "DefaultGateways": ["40.40.40.1"],
                            "IsPublic": True,
                            "IpPools": [
                                _resource(
                                    "40.40.40.0_24",
                                    {
                                        "StartIpAddress": "40.40.40.5",
                                        "EndIpAddress": "40.40.40.250",
                                    },
                                )
                            ],
                        },
                    )
                ],
            },
        ),
    ]
    server = _resource(
        HOST_ID,
        {
            "Connections": [
                {
                    "ManagementAddresses": ["host01.contoso.local"],
                    "Credential": _ref("/credentials/NCHostCert"),
                    "CredentialType": "X509CertificateSubjectName",
                    "Port": 6645,
                },
                {
                    "ManagementAddresses": ["host01.contoso.local"],
                    "Credential": _ref("/credentials/NCHostUser"),
                    "CredentialType": "UsernamePassword",
                },
            ],
            "NetworkInterfaces": [
                {"resourceId": "SDNSwitch", "properties": {"LogicalSubnets": [_ref(PA_SUBNET)]}}
            ],
            "Certificate": CERT,
        },
    )
    frontend = _resource(
        "gw01.contoso.local_FrontEnd",
        {
            "privateMacAllocationMethod": "Dynamic",
            "IPConfigurations": [
                _resource(
                    "FrontEnd",
                    {"Subnet": _ref(PA_SUBNET), "PrivateIPAllocationMethod": "Dynamic"},
                )
            ],
        },
    )
    return [
        Step(f"{src} New-SDNExpressVirtualNetworkManagerConfiguration", "PUT",
             "/macPools/DefaultMacPool", mac_pool),
        Step(f"{src} New-SDNExpressVirtualNetworkManagerConfiguration (UseCertBySubject)",
             "PUT", "/credentials/NCHostCert",
             _resource("NCHostCert", {"Type": "X509CertificateSubjectName",
                                      "Value": "CN=nc.contoso.local"}),
             check={"properties.type": "X509CertificateSubjectName",
                    "properties.value": "CN=nc.contoso.local"}),
        Step(f"{src} New-SDNExpressVirtualNetworkManagerConfiguration", "PUT",
             "/credentials/NCHostUser",
             _resource("NCHostUser", {"Type": "UsernamePassword",
                                      "UserName": "CONTOSO\\sdnadmin", "Value": "p@ss"})),
        Step(f"{src} New-SDNExpressVirtualNetworkManagerConfiguration: get, else create",
             "GET", "/logicalNetworks/HNVPA", status=404),
        Step(f"{src} New-SDNExpressVirtualNetworkManagerConfiguration", "PUT",
             "/logicalNetworks/HNVPA",
             _resource("HNVPA", {"NetworkVirtualizationEnabled": True})),
        Step(f"{src} Add-SDNExpressVirtualNetworkPASubnet", "PUT", PA_SUBNET, pa_subnet),
        Step(f"{src} Add-SDNExpressVirtualNetworkPASubnet", "PUT",
             f"{PA_SUBNET}/ipPools/10.10.56.0_23", pa_pool),
        Step(f"{src} New-SDNExpressLoadBalancerManagerConfiguration", "PUT",
             "/logicalNetworks/PrivateVIP", vip[0]),
        Step(f"{src} New-SDNExpressLoadBalancerManagerConfiguration", "PUT",
             "/logicalNetworks/PublicVIP", vip[1]),
        Step(f"{src} New-SDNExpressLoadBalancerManagerConfiguration", "PUT",
             "/loadBalancerManager/config",
             _resource("config", {"LoadBalancerManagerIPAddress": "10.10.58.1",
                                  "VipIpPools": [_ref("/logicalNetworks/PublicVIP/subnets/"
                                                      "40.40.40.0_24/ipPools/40.40.40.0_24")]}),
             status=501),
        Step(f"{src} New-SDNExpressiDNSConfiguration", "PUT", "/credentials/iDNSUser",
             _resource("iDNSUser", {"Type": "UsernamePassword", "UserName": "CONTOSO\\dns",
                                    "Value": "p@ss"})),
        Step(f"{src} New-SDNExpressiDNSConfiguration", "PUT", "/iDnsServer/configuration",
             _resource("configuration", {"Zone": "contoso.local"}), status=501),
        Step(f"{src} Add-SDNExpressHost", "PUT", f"/Servers/{HOST_ID}", server,
             check={"properties.providerAddresses.0.vlanID": 11,
                    "properties.connections.0.port": 6645}),
        Step(f"{src} Add-SDNExpressVirtualNetworkPASubnet (a second rack)", "PUT",
             PA_SUBNET_2, _resource("10.10.60.0_23", {"VLANId": "12",
                                                      "AddressPrefix": "10.10.60.0/23",
                                                      "DefaultGateways": ["10.10.60.1"]})),
        Step(f"{src} Add-SDNExpressVirtualNetworkPASubnet", "PUT",
             f"{PA_SUBNET_2}/ipPools/10.10.60.0_23",
             _resource("10.10.60.0_23", {"startipaddress": "10.10.60.10",
                                         "endipaddress": "10.10.61.250"})),
        Step(f"{src} Add-SDNExpressVirtualNetworkPASubnet: the server re-PUT with the "
             "subnet appended to networkinterfaces[0]", "PUT", f"/Servers/{HOST_ID}",
             None, status=200,
             check={"properties.providerAddresses.1.vlanID": 12}),
        Step(f"{src} New-SDNExpressGatewayPool", "PUT", "/publicIPAddresses/DefaultAll",
             _resource("DefaultAll", {"IdleTimeoutInMinutes": 4,
                                      "PublicIPAllocationMethod": "Dynamic"}),
             check={"properties.ipAddress": "40.40.40.5"}),
        Step(f"{src} New-SDNExpressGatewayPool", "PUT", "/logicalNetworks/GreVIP",
             _resource("GreVIP", {"NetworkVirtualizationEnabled": False})),
        Step(f"{src} New-SDNExpressGatewayPool", "PUT",
             "/logicalNetworks/GreVIP/subnets/31.30.30.0_24",
             _resource("31.30.30.0_24", {"AddressPrefix": "31.30.30.0/24",
                                         "DefaultGateways": ["31.30.30.1"]})),
        Step(f"{src} New-SDNExpressGatewayPool", "PUT",
             "/logicalNetworks/GreVIP/subnets/31.30.30.0_24/ipPools/31.30.30.0_24",
             _resource("31.30.30.0_24", {"startipaddress": "31.30.30.2",
                                         "endipaddress": "31.30.30.254"})),
        Step(f"{src} New-SDNExpressGatewayPool", "PUT", "/GatewayPools/DefaultAll",
             _resource("DefaultAll", {
                 "RedundantGatewayCount": "1", "GatewayCapacityKiloBitsPerSecond": 10000000,
                 "Type": "All",
                 "IPConfiguration": {
                     "PublicIPAddresses": [_ref("/publicIPAddresses/DefaultAll")],
                     "GreVipSubnets": [_ref("/logicalNetworks/GreVIP/subnets/31.30.30.0_24")]}})),
        Step(f"{src} Initialize-SDNExpressGateway", "PUT",
             "/networkInterfaces/gw01.contoso.local_BackEnd",
             _resource("gw01.contoso.local_BackEnd", {"privateMacAllocationMethod": "Dynamic"})),
        Step(f"{src} Initialize-SDNExpressGateway", "PUT",
             "/networkInterfaces/gw01.contoso.local_FrontEnd", frontend,
             check={"properties.ipConfigurations.0.properties.privateIPAllocationMethod":
                    "Dynamic"}),
        Step(f"{src} Initialize-SDNExpressGateway", "PUT", "/virtualServers/gw01.contoso.local",
             _resource("gw01.contoso.local", {"Connections": [
                 {"ManagementAddresses": ["gw01.contoso.local"],
                  "Credential": _ref("/credentials/NCHostUser"),
                  "CredentialType": "UsernamePassword"}]}), status=501),
        Step(f"{src} New-SDNExpressGateway", "PUT", "/Gateways/gw01.contoso.local",
             _resource("gw01.contoso.local", {
                 "NetworkInterfaces": {
                     "InternalNetworkInterface": _ref(
                         "/networkInterfaces/gw01.contoso.local_BackEnd"),
                     "ExternalNetworkInterface": _ref(
                         "/networkInterfaces/gw01.contoso.local_FrontEnd")},
                 "Pool": _ref("/gatewayPools/DefaultAll"),
                 "VirtualServer": _ref("/virtualServers/gw01.contoso.local"),
                 "BgpConfig": {"ExtASNumber": "0.64628", "BgpPeer": [
                     {"PeerExtAsNumber": "0.64623", "PeerIP": "10.184.108.1"}]}}),
             status=501),
    ]  # fmt: skip


def rest_wrappers() -> list[Step]:
    """NetworkControllerRESTWrappers.ps1 (SDNExplorer), as ZeroToSDNBlog.ps1 uses it."""
    src = "NetworkControllerRESTWrappers.ps1"
    rule = {
        "protocol": "All", "sourcePortRange": "0-65535", "destinationPortRange": "0-65535",
        "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "action": "Allow",
        "logging": "Enabled",
    }  # fmt: skip
    acl = _resource(
        "AllowAll",
        {
            "aclRules": [
                _resource("AllowAll_Inbound", {**rule, "type": "Inbound", "priority": "100"}),
                _resource("AllowAll_Outbound", {**rule, "type": "Outbound", "priority": "110"}),
            ],
            "ipConfigurations": [],
            "subnet": [],
        },
    )
    vnet = _resource(
        "Contoso_VNet1",
        {
            "addressSpace": {"addressPrefixes": ["192.168.33.0/24"]},
            "logicalnetwork": _ref("/logicalnetworks/HNVPA"),
            "subnets": [
                _resource(
                    "Contoso_WebTier",
                    {
                        "addressPrefix": "192.168.33.0/24",
                        "accessControlList": _ref("/accessControlLists/AllowAll"),
                        "ipConfigurations": [],
                    },
                )
            ],
        },
        resourceMetadata={"client": "SDNExplorer", "resourceName": "Contoso VNet 1"},
    )
    vm_nic = _resource(
        "Contoso_WebTier_VM1",
        {
            "privateMacAddress": "001DD8B71C10",
            "privateMacAllocationMethod": "Static",
            "ipConfigurations": [
                _resource(
                    "8b0a3c5e-1c6f-4a2b-9d7e-2f1e3c4b5a60",
                    {
                        "subnet": _ref("/virtualNetworks/Contoso_VNet1/subnets/Contoso_WebTier"),
                        "privateIPAddress": "192.168.33.4",
                        "privateIPAllocationMethod": "Static",
                        "accessControlList": _ref("/accessControlLists/AllowAll"),
                    },
                )
            ],
            "dnsSettings": {"dnsServers": ["10.0.0.10"]},
        },
    )
    vlan_network = _resource(
        "VLAN200",
        {
            "subnets": [
                _resource(
                    "VLAN200_Subnet",
                    {"addressPrefix": "10.200.0.0/24", "vlanid": "200", "IsPublic": False,
                     "defaultGateways": ["10.200.0.1"]},
                )
            ],
            "networkVirtualizationEnabled": "False",
        },
    )  # fmt: skip
    vlan_nic = _resource(
        "Tenant_VLAN_VM1",
        {
            "privateMacAddress": "001DD8B71C20",
            "privateMacAllocationMethod": "Static",
            "ipConfigurations": [
                _resource(
                    "3c9d5e2a-7b41-4f6e-8a2c-5d1e9f0b7c31",
                    {
                        "subnet": _ref("/logicalnetworks/VLAN200/subnets/VLAN200_Subnet"),
                        "privateIPAddress": "10.200.0.20",
                        "privateIPAllocationMethod": "Static",
                        "accessControlList": _ref("/accessControlLists/AllowAll"),
                    },
                )
            ],
        },
    )
    return [
        Step(f"{src} New-NCAccessControlList (ZeroToSDNBlog.ps1)", "PUT",
             "/accessControlLists/AllowAll", acl,
             check={"properties.aclRules.0.properties.priority": 100}),
        Step(f"{src} New-NCVirtualNetwork", "PUT", "/virtualnetworks/Contoso_VNet1", vnet,
             check={"resourceMetadata.client": "SDNExplorer"}),
        Step(f"{src} New-NCNetworkInterface (ByVirtualNetwork)", "PUT",
             "/NetworkInterfaces/Contoso_WebTier_VM1", vm_nic),
        Step(f"{src} New-NCLogicalNetwork + New-NCLogicalNetworkSubnet", "PUT",
             "/logicalnetworks/VLAN200", vlan_network),
        Step(f"{src} New-NCNetworkInterface (ByLogicalNetwork)", "PUT",
             "/NetworkInterfaces/Tenant_VLAN_VM1", vlan_nic,
             check={"properties.ipConfigurations.0.properties.privateIPAddress": "10.200.0.20"}),
        Step(f"{src} New-NCPublicIPAddress", "PUT", "/publicIPAddresses/pip-web",
             _resource("pip-web", {"ipAddress": "40.40.40.200",
                                   "publicIPAllocationMethod": "Static"})),
        Step(f"{src} New-NCMACPool", "PUT", "/MacPools/Tenant",
             _resource("Tenant", {"startMacAddress": "00-1D-D8-F5-00-00",
                                  "endMacAddress": "00-1D-D8-F5-FF-FF"})),
        Step(f"{src} Get-NCRouteTable", "GET", "/RouteTables/rt1", status=501),
        Step("OutboundNAT.ps1 New-NetworkControllerLoadBalancer", "PUT",
             "/LoadBalancers/OutboundNATMembers",
             _resource("OutboundNATMembers", {"frontendIPConfigurations": [],
                                              "backendAddressPools": [],
                                              "outboundNatRules": []}), status=501),
        Step("Test-VNetPing.ps1 (diagnostics/connectivityCheck)", "PUT",
             "/diagnostics/connectivityCheck/action",
             _resource("action", {"senderIpAddress": "192.168.33.4",
                                  "receiverIpAddress": "192.168.33.5",
                                  "protocol": "Icmp"}), status=501),
        Step(f"{src} Get-NCConnectivityCheckResult", "GET",
             "/diagnostics/ConnectivityCheckResults/1234", status=501),
        Step(f"{src} Remove-NCNetworkInterface", "DELETE",
             "/NetworkInterfaces/Tenant_VLAN_VM1", status=200),
        Step(f"{src} Remove-NCNetworkInterface: polled until 404", "GET",
             "/NetworkInterfaces/Tenant_VLAN_VM1", status=404),
    ]  # fmt: skip


def _at(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[httpx.Client]:
    process = ControllerProcess(tmp_path / "nc.db")
    try:
        with httpx.Client(base_url=process.url, timeout=10.0) as client:
            yield client
    finally:
        process.stop()


def _second_pa_subnet(client: httpx.Client) -> dict[str, Any]:
    """What Add-SDNExpressVirtualNetworkPASubnet PUTs: the GET server document's
    properties, the new subnet (a whole GET document) appended to its first NIC."""
    server = client.get(f"{NC}/servers/{HOST_ID}").json()
    subnet = client.get(f"{NC}{PA_SUBNET_2}").json()
    body = {"resourceId": server["resourceId"], "properties": copy.deepcopy(server["properties"])}
    body["properties"]["networkInterfaces"][0]["properties"]["logicalSubnets"].append(subnet)
    return body


def test_microsofts_scripts_in_their_order(controller: httpx.Client) -> None:
    answers: list[str] = []
    for step in [*sdn_express(), *rest_wrappers()]:
        body = step.body
        if body is None and step.method == "PUT":
            body = _second_pa_subnet(controller)
        sent = controller.request(
            step.method,
            NC + step.path,
            json=body if step.method == "PUT" else None,
            headers={"Accept": "application/json"},
        )
        answers.append(f"{step.status} {sent.status_code} {step.method} {step.path}")
        assert sent.status_code == step.status, f"{step.source}: {sent.text}"
        if sent.status_code == 501:
            error = sent.json()["error"]
            assert error["code"] == "NotImplemented"
            assert "not implemented by openhnv" in error["message"]
        for dotted, expected in step.check.items():
            assert _at(sent.json(), dotted) == expected, f"{step.source}: {dotted}"
    assert len(answers) == len(sdn_express()) + len(rest_wrappers())


def test_a_fetched_document_goes_back_unchanged(controller: httpx.Client) -> None:
    """Microsoft's tools PUT back what they GET (resourceMetadata and all)."""
    for step in sdn_express() + rest_wrappers()[:2]:
        if step.method == "PUT" and step.body is not None and step.status != 501:
            assert controller.put(NC + step.path, json=step.body).status_code in (200, 201)
    for path in ("/virtualNetworks/Contoso_VNet1", f"/servers/{HOST_ID}"):
        fetched = controller.get(NC + path).json()
        again = controller.put(NC + path, json=fetched)
        assert again.status_code == 200
        assert again.json()["etag"] == fetched["etag"]
