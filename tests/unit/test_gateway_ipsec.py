"""strongSwan configuration of a compartment: charon's private files and one IKEv2
connection per IPSec connection, PSK or certificates."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from openhnv.gateway.ipsec import file_stem, ipsec_files, split_pem, strongswan_conf
from openhnv.gateway.rows import ConnectionSpec, Leg

LEG = Leg("pnic2", 0, ipaddress.IPv4Network("203.0.113.0/24"), None)


def tunnel(name: str = "onprem", **options: str) -> ConnectionSpec:
    return ConnectionSpec(
        name=f"vg/{name}",
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
    assert files.credentials["x509/onprem.pem"].startswith("-----BEGIN CERTIFICATE")
    assert files.credentials["private/onprem.pem"].startswith("-----BEGIN PRIVATE KEY")
    assert files.credentials["x509ca/onprem-ca.pem"] == pem
    assert "auth = pubkey" in files.swanctl_conf
    assert "certs = onprem.pem" in files.swanctl_conf
    assert "cacerts = onprem-ca.pem" in files.swanctl_conf
    assert "id = site.example" in files.swanctl_conf
    assert split_pem(pem + key) == (pem, key)


def _certificate(tag: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{tag}\n-----END CERTIFICATE-----\n"


def _key(tag: str) -> str:
    return f"-----BEGIN PRIVATE KEY-----\n{tag}\n-----END PRIVATE KEY-----\n"


def _section(conf: str, name: str) -> str:
    """The text of connection ``name``'s block in swanctl.conf."""
    start = conf.index(f"  {name} {{\n")
    end = conf.index("\n  }\n", start)
    return conf[start:end]


def test_two_certificate_connections_of_one_compartment_keep_their_own_files() -> None:
    specs = [
        tunnel(
            name,
            authenticationMethod="Certificates",
            localCertificate=_certificate(f"{name}-cert") + _key(f"{name}-key"),
            peerCertificateAuthority=_certificate(f"{name}-ca"),
        )
        for name in ("branch", "hq")
    ]
    files = ipsec_files(specs, ["10.1.0.0/16"])
    assert files is not None
    for name in ("branch", "hq"):
        assert f"{name}-cert" in files.credentials[f"x509/{name}.pem"]
        assert f"{name}-key" in files.credentials[f"private/{name}.pem"]
        assert f"{name}-ca" in files.credentials[f"x509ca/{name}-ca.pem"]
        section = _section(files.swanctl_conf, name)
        assert f"certs = {name}.pem" in section
        assert f"cacerts = {name}-ca.pem" in section
    assert len(files.credentials) == 6


def test_credential_file_names_are_safe_and_distinct() -> None:
    assert file_stem("branch-1.a_b") == "branch-1.a_b"
    odd = [file_stem(n) for n in ("a b", "a_b", "a/b", "../x")]
    assert len(set(odd)) == len(odd)
    for stem in odd:
        assert "/" not in stem
        assert " " not in stem
        assert not stem.startswith(".")


def test_charon_logs_each_lines_connection() -> None:
    text = strongswan_conf(Path("/run"), Path("/mnt/charon.log"))
    assert "ike_name = yes" in text
    assert "flush_line = yes" in text  # read while charon runs: no block buffering
