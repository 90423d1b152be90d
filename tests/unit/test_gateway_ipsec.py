"""strongSwan configuration of a compartment: charon's private files and one IKEv2
connection per IPSec connection, PSK or certificates."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from openhnv.gateway.ipsec import ipsec_files, split_pem, strongswan_conf
from openhnv.gateway.rows import ConnectionSpec, Leg

LEG = Leg("pnic2", 0, ipaddress.IPv4Network("203.0.113.0/24"), None)


def tunnel(**options: str) -> ConnectionSpec:
    return ConnectionSpec(
        name="vg/onprem",
        kind="IPSec",
        routes=(ipaddress.IPv4Network("192.168.100.0/24"),),
        addresses=(ipaddress.IPv4Interface("203.0.113.10/24"),),
        peers=(ipaddress.IPv4Address("203.0.113.50"),),
        leg=LEG,
        options=options,
    )


def test_charon_uses_kernel_libipsec_and_a_private_vici_socket() -> None:
    text = strongswan_conf(Path("/run"), Path("/mnt/charon.log"))
    assert "kernel-libipsec" in text
    assert "unix:///run/charon.vici" in text


def test_a_psk_tunnel_between_the_vnet_and_the_remote_prefixes() -> None:
    files = ipsec_files([tunnel(authenticationMethod="PSK", sharedSecret='a"b')], ["10.1.0.0/16"])
    assert files is not None
    conf = files.swanctl_conf
    assert "local_ts = 10.1.0.0/16" in conf
    assert "remote_ts = 192.168.100.0/24" in conf
    assert "proposals = aes256-sha256-modp2048" in conf
    assert "esp_proposals = aes256-sha256" in conf
    assert 'secret = "a\\"b"' in conf
    assert files.credentials == {}
    assert ipsec_files([], ["10.1.0.0/16"]) is None


def test_certificates_land_in_swanctls_directories() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n"
    files = ipsec_files(
        [
            tunnel(
                authenticationMethod="Certificates",
                localCertificate=key + pem,
                peerCertificateAuthority=pem,
                peerId="site.example",
            )
        ],
        ["10.1.0.0/16"],
    )
    assert files is not None
    assert files.credentials["x509/local.pem"].startswith("-----BEGIN CERTIFICATE")
    assert files.credentials["private/local.pem"].startswith("-----BEGIN PRIVATE KEY")
    assert "auth = pubkey" in files.swanctl_conf
    assert "id = site.example" in files.swanctl_conf
    assert split_pem(pem + key) == (pem, key)
