"""The X.509 building blocks: an authority, the certificates it signs, files on disk."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openhnv.ovsdb import certs


def test_an_authority_signs_only_end_entities() -> None:
    ca = certs.new_authority(certs.name("test CA", organization="openhnv"), 10, certs.ec_key())
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    usage = ca.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert not usage.digital_signature
    assert ca.certificate.subject == ca.certificate.issuer


def test_a_signed_certificate_carries_only_what_was_asked() -> None:
    ca = certs.new_authority(certs.name("test CA"), 10, certs.rsa_key(), digital_signature=True)
    key = certs.rsa_key()
    alt = x509.IPAddress(ipaddress.ip_address("192.0.2.7"))
    cert = certs.sign(ca, certs.name("192.0.2.7"), key, 3, alt_names=(alt,))
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "192.0.2.7"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3


def test_usages_and_names_in_the_subject() -> None:
    ca = certs.new_authority(certs.name("test CA"), 10, certs.ec_key())
    subject = certs.name("alice", organization="openhnv", unit="admin")
    cert = certs.sign(ca, subject, certs.ec_key(), 1, usages=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    unit = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert unit[0].value == "admin"


def test_saved_authority_loads_back_with_a_private_key_file(tmp_path: Path) -> None:
    ca = certs.new_authority(certs.name("test CA"), 10, certs.ec_key())
    key_path, cert_path = tmp_path / "ca-key.pem", tmp_path / "ca-cert.pem"
    certs.save(key_path, cert_path, ca.key, ca.certificate)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    loaded = certs.load_authority(key_path, cert_path)
    assert loaded.certificate == ca.certificate
    assert isinstance(loaded.key, ec.EllipticCurvePrivateKey)
    assert loaded.key.private_numbers() == ca.key.private_numbers()
    assert isinstance(certs.rsa_key(), rsa.RSAPrivateKey)


def test_load_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        certs.load_authority(tmp_path / "none-key.pem", tmp_path / "none-cert.pem")
    (tmp_path / "bad-key.pem").write_text("not a key")
    (tmp_path / "bad-cert.pem").write_text("not a certificate")
    with pytest.raises(ValueError):  # noqa: PT011 - the cryptography message varies by version
        certs.load_authority(tmp_path / "bad-key.pem", tmp_path / "bad-cert.pem")
