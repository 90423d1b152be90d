"""X.509 building blocks shared by every PKI openhnv makes.

Three kinds of authority use them: the OVSDB controller and host CAs (``pki`` here),
the northbound API CA (``hnv pki``'s API part) and the lab's IPsec authority (the
edge's resources). They differ in key type, names and usages, not in how
a certificate is built, signed, written or loaded: that is this module, once.

Every certificate starts five minutes in the past (clocks of namespaces and peers may
differ slightly) and is signed with SHA-256. Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CLOCK_SKEW = datetime.timedelta(minutes=5)
RSA_BITS = 2048
RSA_EXPONENT = 65537


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA's key and self-signed certificate."""

    key: PrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return certificate_pem(self.certificate).decode()


def ec_key() -> ec.EllipticCurvePrivateKey:
    """An EC P-256 key (OVSDB and API identities)."""
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key, for peers without elliptic-curve support (strongSwan here)."""
    return rsa.generate_private_key(public_exponent=RSA_EXPONENT, key_size=RSA_BITS)


def name(common_name: str, *, organization: str = "", unit: str = "") -> x509.Name:
    """A subject: O (when given), OU (when given), CN."""
    attributes = []
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - CLOCK_SKEW).not_valid_after(
        now + datetime.timedelta(days=days)
    )


def new_authority(
    subject: x509.Name, days: int, key: PrivateKey, *, digital_signature: bool = False
) -> Authority:
    """A self-signed CA that signs end-entity certificates only (path length 0);
    ``digital_signature`` for peers that also expect that usage on a CA."""
    usage = x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
    )
    certificate = (
        _validity(builder, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def sign(
    authority: Authority,
    subject: x509.Name,
    key: PrivateKey,
    days: int,
    *,
    usages: Sequence[ObjectIdentifier] = (),
    alt_names: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    """An end-entity certificate for ``key``, signed by ``authority``; extended key
    usages and subject alternative names only when given."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
    )
    builder = _validity(builder, days).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(alt_names)), critical=False
        )
    return builder.sign(authority.key, hashes.SHA256())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def write_pem(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data``; a private key's file is created with mode 0600, never wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def save(path_key: Path, path_certificate: Path, key: PrivateKey, cert: x509.Certificate) -> None:
    """Write a key (0600) and its certificate."""
    write_pem(path_key, key_pem(key), private=True)
    write_pem(path_certificate, certificate_pem(cert), private=False)


def load_authority(path_key: Path, path_certificate: Path) -> Authority:
    """A CA written by ``save``. Raises FileNotFoundError when a file is missing and
    ValueError when one is unreadable or the key is of a kind openhnv does not make."""
    key = serialization.load_pem_private_key(path_key.read_bytes(), None)
    certificate = x509.load_pem_x509_certificate(path_certificate.read_bytes())
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path_key} holds a {type(key).__name__}, not an EC or RSA key")
    return Authority(key, certificate)
