"""networkConnections: L3, IPSec and Nat checked one type at a time; GRE refused."""

from __future__ import annotations

import copy
from typing import Any

import gateway_dc as dc
import pytest

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.paths import parse_path
from openhnv.controller.northbound.service import ControllerService

Body = dc.Body
CONTOSO = "/virtualGateways/Contoso-gw"


def refused(service: ControllerService, path: str, body: Body, status: int, *words: str) -> None:
    before = service.snapshot()
    with pytest.raises(ApiError) as info:
        service.put(path, body)
    assert info.value.status == status, info.value.message
    for word in words:
        assert word in info.value.message, info.value.message
    assert service.snapshot() == before  # a rejected request changes nothing


@pytest.fixture
def service() -> ControllerService:
    svc = dc.datacenter()
    svc.put("/publicIPAddresses/contoso-pip", dc.public_ip())
    svc.put("/publicIPAddresses/other-pip", dc.public_ip())
    return svc


def with_(connection: Body, **changes: Any) -> Body:
    changed = copy.deepcopy(connection)
    changed["properties"].update(changes)
    return dc.virtual_gateway("Contoso", changed)


def test_gre_is_refused_by_name(service: ControllerService) -> None:
    gre = {
        "resourceId": "g",
        "properties": {"connectionType": "GRE", "destinationIPAddress": "203.0.113.7"},
    }
    refused(service, CONTOSO, dc.virtual_gateway("Contoso", gre), 400, "GRE is not supported")


def test_an_l3_connection_needs_its_vlan_subnet_one_address_in_it_and_a_peer(
    service: ControllerService,
) -> None:
    l3 = dc.l3_connection()
    refused(service, CONTOSO, with_(l3, l3Configuration=None), 400, "l3Configuration", "required")
    refused(
        service,
        CONTOSO,
        with_(l3, ipAddresses=[{"ipAddress": "172.16.30.2", "prefixLength": 24}]),
        400,
        "not a usable address of 172.16.20.0/24",
    )
    refused(
        service,
        CONTOSO,
        with_(l3, ipAddresses=[{"ipAddress": "172.16.20.2", "prefixLength": 16}]),
        400,
        "prefixLength",
    )
    refused(service, CONTOSO, with_(l3, peerIPAddresses=[]), 400, "next hop")
    refused(service, CONTOSO, with_(l3, peerIPAddresses=["10.9.9.9"]), 400, "not a peer")
    pa = with_(l3, l3Configuration={"vlanSubnet": dc.ref("/logicalNetworks/HNVPA/subnets/pa1")})
    refused(service, CONTOSO, pa, 400, "HNV provider subnet")
    service.put(CONTOSO, dc.virtual_gateway("Contoso", l3))
    refused(
        service,
        "/virtualGateways/Fabrikam-gw",
        dc.virtual_gateway("Fabrikam", l3),
        409,
        "172.16.20.2 is already used by /virtualGateways/Contoso-gw",
    )


def test_routes_stay_outside_the_vnet_and_are_routed_once(service: ControllerService) -> None:
    l3 = dc.l3_connection()
    inside = with_(l3, routes=[{"destinationPrefix": "10.1.5.0/24"}])
    refused(service, CONTOSO, inside, 400, "inside the VNet's address space")
    ipsec = dc.ipsec_connection("contoso-pip")
    ipsec["properties"]["routes"] = [{"destinationPrefix": "172.16.40.0/24"}]
    twice = dc.virtual_gateway("Contoso", l3, ipsec)
    refused(service, CONTOSO, twice, 400, "also routed by connection physnet")
    supernet = with_(l3, routes=[{"destinationPrefix": "10.0.0.0/8"}])
    service.put(CONTOSO, supernet)  # a supernet of the VNet: the VNet's own space wins


def test_an_ipsec_connection_needs_its_endpoints_routes_and_a_key(
    service: ControllerService,
) -> None:
    ipsec = dc.ipsec_connection("contoso-pip")
    refused(service, CONTOSO, with_(ipsec, destinationIPAddress=None), 400, "destinationIPAddress")
    refused(service, CONTOSO, with_(ipsec, publicIPAddress=None), 400, "publicIPAddress")
    refused(service, CONTOSO, with_(ipsec, routes=[]), 400, "remote prefixes")
    no_key = with_(ipsec, ipSecConfiguration={"authenticationMethod": "PSK"})
    refused(service, CONTOSO, no_key, 400, "sharedSecret", "required")


def test_the_pre_shared_key_is_write_only_and_kept(service: ControllerService) -> None:
    service.put(CONTOSO, dc.virtual_gateway("Contoso", dc.ipsec_connection("contoso-pip")))
    shown = service.get(f"{CONTOSO}/networkConnections/onprem")["properties"]
    assert "sharedSecret" not in shown["ipSecConfiguration"]
    assert shown["sourceIPAddress"] == "203.0.113.10"
    # Re-PUT what GET showed (no key): the stored key stays.
    again = dc.virtual_gateway("Contoso", {"resourceId": "onprem", "properties": shown})
    service.put(CONTOSO, again)
    stored = service.state.top(parse_path(CONTOSO))
    assert stored is not None
    connection = stored["properties"]["networkConnections"][0]["properties"]
    assert connection["ipSecConfiguration"]["sharedSecret"] == "s3cret-psk"


def test_algorithms_strongswan_cannot_run_here_are_refused_by_name(
    service: ControllerService,
) -> None:
    gcm = dc.ipsec_connection(
        "contoso-pip",
        quickMode={
            "cipherTransformationConstant": "GCMAES256",
            "authenticationTransformationConstant": "GCMAES256",
        },
    )
    refused(service, CONTOSO, dc.virtual_gateway("Contoso", gcm), 400, "GCMAES256 is not supported")
    des = dc.ipsec_connection("contoso-pip", mainMode={"encryptionAlgorithm": "DES3"})
    refused(service, CONTOSO, dc.virtual_gateway("Contoso", des), 400, "DES3")
    fine = dc.ipsec_connection(
        "contoso-pip",
        mainMode={"encryptionAlgorithm": "AES128", "diffieHellmanGroup": "Group2"},
        quickMode={"perfectForwardSecrecy": "PFS2048"},
    )
    service.put(CONTOSO, dc.virtual_gateway("Contoso", fine))


def test_certificates_need_both_credentials(service: ControllerService) -> None:
    cert = dc.ipsec_connection("contoso-pip", authenticationMethod="Certificates")
    del cert["properties"]["ipSecConfiguration"]["sharedSecret"]
    refused(service, CONTOSO, dc.virtual_gateway("Contoso", cert), 400, "localCertificate")
    service.put("/credentials/gw-cert", {"properties": {"type": "X509Certificate", "value": "PEM"}})
    service.put("/credentials/site-ca", {"properties": {"type": "X509Certificate", "value": "PEM"}})
    service.put("/credentials/pw", {"properties": {"type": "UsernamePassword", "value": "x"}})
    config = cert["properties"]["ipSecConfiguration"]
    config["localCertificate"] = dc.ref("/credentials/gw-cert")
    config["peerCertificateAuthority"] = dc.ref("/credentials/pw")
    refused(service, CONTOSO, dc.virtual_gateway("Contoso", cert), 400, "not an X509Certificate")
    config["peerCertificateAuthority"] = dc.ref("/credentials/site-ca")
    service.put(CONTOSO, dc.virtual_gateway("Contoso", cert))
    with pytest.raises(ApiError) as info:
        service.delete("/credentials/site-ca")
    assert info.value.status == 409


def test_nat_is_one_connection_behind_one_public_address(service: ControllerService) -> None:
    nat = dc.nat_connection("contoso-pip")
    refused(service, CONTOSO, with_(nat, publicIPAddress=None), 400, "publicIPAddress")
    refused(
        service,
        CONTOSO,
        with_(nat, routes=[{"destinationPrefix": "0.0.0.0/0"}]),
        400,
        "routes 0.0.0.0/0 by itself",
    )
    second = copy.deepcopy(nat)
    second["resourceId"] = "internet2"
    refused(
        service,
        CONTOSO,
        dc.virtual_gateway("Contoso", nat, second),
        400,
        "already the Nat connection",
    )
    other = dc.ipsec_connection("other-pip")
    refused(
        service,
        CONTOSO,
        dc.virtual_gateway("Contoso", nat, other),
        400,
        "one public address per virtual gateway",
    )
    service.put(CONTOSO, dc.virtual_gateway("Contoso", nat))
    theirs = dc.virtual_gateway("Fabrikam", dc.nat_connection("contoso-pip"))
    refused(service, "/virtualGateways/Fabrikam-gw", theirs, 409, "already used by")


def test_inbound_nat_rules_point_into_the_vnet_once_per_port(service: ControllerService) -> None:
    rule = {
        "protocol": "TCP",
        "frontendPort": 8080,
        "backendIPAddress": "10.1.1.11",
        "backendPort": 80,
    }
    outside = dict(rule, backendIPAddress="192.0.2.1")
    refused(
        service,
        CONTOSO,
        dc.virtual_gateway("Contoso", dc.nat_connection("contoso-pip", outside)),
        400,
        "outside the VNet",
    )
    twice = dc.nat_connection("contoso-pip", rule, dict(rule, backendPort=81))
    refused(service, CONTOSO, dc.virtual_gateway("Contoso", twice), 400, "TCP 8080")
    service.put(CONTOSO, dc.virtual_gateway("Contoso", dc.nat_connection("contoso-pip", rule)))
