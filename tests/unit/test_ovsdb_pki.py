"""hnv pki: a CA, and controller/host certificates that it signs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import init_ca, issue, main


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_issued_certificates_are_signed_by_the_ca(tmp_path: Path) -> None:
    ca_path = init_ca(tmp_path)
    files = issue(tmp_path, "host1", "host")
    ca, cert = _cert(ca_path), _cert(files.certificate)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "host"
    assert files.ca_cert == ca_path
    assert (files.private_key.stat().st_mode & 0o777) == 0o600
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_certificate_of_another_ca_does_not_verify(tmp_path: Path) -> None:
    init_ca(tmp_path / "a")
    other_ca = init_ca(tmp_path / "b")
    files = issue(tmp_path / "a", "ctl", "controller")
    with pytest.raises(InvalidSignature):
        _cert(files.certificate).verify_directly_issued_by(_cert(other_ca))


def test_an_existing_ca_is_kept_unless_forced(tmp_path: Path) -> None:
    first = init_ca(tmp_path).read_bytes()
    with pytest.raises(OvsdbError, match="a CA already exists"):
        init_ca(tmp_path)
    assert init_ca(tmp_path, force=True).read_bytes() != first


@pytest.mark.parametrize(
    ("name", "role", "reason"),
    [
        ("host 1", "host", "bad certificate name 'host 1'"),
        ("host1", "admin", "bad role 'admin'"),
    ],
)
def test_bad_names_and_roles_are_refused(tmp_path: Path, name: str, role: str, reason: str) -> None:
    init_ca(tmp_path)
    with pytest.raises(OvsdbError, match=reason):
        issue(tmp_path, name, role)


def test_cli_init_and_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--dir", str(tmp_path)]) == 0
    assert main(["issue", "--dir", str(tmp_path), "--name", "nc1", "--role", "controller"]) == 0
    key = (tmp_path / "nc1-key.pem").read_bytes()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert isinstance(load_pem_private_key(key, None), ec.EllipticCurvePrivateKey)
    assert "controller nc1" in capsys.readouterr().out


def test_cli_without_ca_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["issue", "--dir", str(tmp_path), "--name", "host1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no CA in" in err and "hnv pki init" in err
