"""``hnv pki``'s API part: the API CA, listener and client certificates, tokens."""

from __future__ import annotations

import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openhnv.api import pki
from openhnv.api.auth import AuthError, hash_token


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_makes_the_ovsdb_and_api_cas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pki.main(["init", "--dir", str(tmp_path)]) == 0
    for name in ("controllerca", "hostca", "apica"):
        assert (tmp_path / f"{name}-cert.pem").is_file()
        assert stat.S_IMODE((tmp_path / f"{name}-key.pem").stat().st_mode) == 0o600
    assert pki.main(["init", "--dir", str(tmp_path)]) == 1
    assert "already exist" in capsys.readouterr().err


def test_init_adds_the_api_ca_to_an_older_directory(tmp_path: Path) -> None:
    from openhnv.ovsdb import pki as ovsdb_pki

    ovsdb_pki.init_ca(tmp_path)
    before = (tmp_path / "hostca-cert.pem").read_bytes()
    assert pki.main(["init", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "hostca-cert.pem").read_bytes() == before
    assert pki.api_ca_cert(tmp_path).is_file()


def test_server_and_client_certificates(tmp_path: Path) -> None:
    pki.init_api_ca(tmp_path)
    cert_path, key_path = pki.issue_api(tmp_path, "nc1", pki.API_SERVER, ips=["10.0.0.11"])
    server = _cert(cert_path)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["nc1"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.11")]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    client = _cert(pki.issue_api(tmp_path, "alice", "reader")[0])
    assert (
        client.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "reader"
    )
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert client.issuer == _cert(pki.api_ca_cert(tmp_path)).subject


def test_bad_issues_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="no API CA"):
        pki.issue_api(tmp_path, "alice", "admin")
    pki.init_api_ca(tmp_path)
    with pytest.raises(AuthError, match="bad API role"):
        pki.issue_api(tmp_path, "alice", "root")
    with pytest.raises(AuthError, match="bad certificate name"):
        pki.issue_api(tmp_path, "../x", "admin")
    with pytest.raises(AuthError, match="not an IP address"):
        pki.issue_api(tmp_path, "nc", pki.API_SERVER, ips=["nc.example"])


def test_a_token_is_kept_only_as_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pki.main(["token", "--dir", str(tmp_path), "--name", "ci", "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("hnv_")
    assert len(token) > 40
    path = tmp_path / pki.TOKENS_FILE
    assert token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [entry] = json.loads(path.read_text())["tokens"]
    assert (entry["name"], entry["role"], entry["sha256"]) == ("ci", "admin", hash_token(token))
    assert pki.main(["token", "--dir", str(tmp_path), "--name", "ci"]) == 1
    assert "already has a token named 'ci'" in capsys.readouterr().err


def test_cli_init_and_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pki.main(["init", "--dir", str(tmp_path)]) == 0
    assert pki.main(["issue", "--dir", str(tmp_path), "--name", "nc1", "--role", "controller"]) == 0
    key = load_pem_private_key((tmp_path / "nc1-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    out = capsys.readouterr().out
    assert "controller nc1" in out
    assert "hostca-cert.pem" in out


def test_cli_without_ca_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pki.main(["issue", "--dir", str(tmp_path), "--name", "host1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no host CA in" in err
    assert "hnv pki init" in err
